"""The live funnel and the segments against the generator's truth: each
stage counted once per user, whatever the batches and however often the
processor is killed and replays."""

import collections
import datetime
import math
import json
import os
import signal
import subprocess

import redis as redis_py

import ewsenv
from test_ops import http, running, stop

STAGES = ("signed_up", "activated", "sales_ready", "customer", "lost")
GEN = ["--seed", "5", "--campaigns", "3", "--days", "6"]


def truth_funnel(truth):
    """{campaign: {stage: users}} and the total, from the truth file."""
    out = collections.defaultdict(collections.Counter)
    for t in truth:
        if t["kind"] != "user":
            continue
        reached = {"signed_up": True,
                   "activated": t["activated"],
                   # E reached sales.ready.points (100) before converting
                   "sales_ready": t["peak_points_e"] >= 100,
                   "customer": t["converted_ms"] is not None}
        for c in (t["campaign"], ""):
            for stage, hit in reached.items():
                out[c][stage] += int(hit)
    return {c: {s: n[s] for s in STAGES} for c, n in out.items()}


def stored_funnel(names, redis):
    client = redis_py.Redis(port=redis.port)
    out = {}
    for key in client.keys(f"{names.prefix}f*"):
        key = key.decode()
        if key == f"{names.prefix}fi":
            continue
        c = "" if key == f"{names.prefix}ft" else key.split(":f:", 1)[1]
        h = client.hgetall(key)
        out[c] = {s: int(h.get(s.encode(), 0)) for s in STAGES}
    return out


def committed(client, names):
    """Usage offsets committed to the fences so far."""
    return sum(int(client.hget(f"{names.prefix}p:{names.usage}:{k}",
                               "offset") or 0)
               for k in range(int(client.get(f"{names.prefix}m:{names.usage}")
                                  or 0)))


def inspect(names, broker, redis, *words):
    proc = subprocess.run(
        [os.path.join(ewsenv.BUILD, "ews-inspect"), *words],
        env=names.env(broker, redis), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_funnel_equals_the_truth_and_a_replay_changes_nothing(
        broker, redis, names, tmp_path):
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"), GEN)
    want = truth_funnel(truth)
    # killed twice along the way with batches of 7: what was committed and
    # not yet acknowledged to Kafka comes again and is fenced off
    small = {"EWS_KAFKA_BATCH_MAX": "7"}
    client = redis_py.Redis(port=redis.port)
    for more in (50, 400):
        before = committed(client, names)
        proc = ewsenv.processor(names, broker, redis, env_extra=small,
                                stderr=subprocess.DEVNULL)
        ewsenv.wait_for(lambda: committed(client, names) >= before + more,
                        30, "commits")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ewsenv.run_processor_to_end(names, broker, redis, env_extra=small)
    assert stored_funnel(names, redis) == want

    # the same stream in batches of 5000, under another prefix: the same
    other = ewsenv.Names("funnel-big-batches")
    ewsenv.run_gen(other, broker, str(tmp_path / "truth2"), GEN)
    ewsenv.run_processor_to_end(other, broker, redis,
                                env_extra={"EWS_KAFKA_BATCH_MAX": "5000"})
    assert stored_funnel(other, redis) == want

    table = inspect(names, broker, redis, "funnel")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]
            if line.startswith(("c-", "(all)"))}
    assert set(rows) == {c or "(all)" for c in want}
    for c, n in want.items():
        row = rows[c or "(all)"]
        assert (int(row[1]), int(row[2])) == (n["signed_up"], n["activated"])
    one = json.loads(json.dumps(want["c-001"]))
    assert inspect(names, broker, redis, "funnel", "c-001").splitlines()[1] \
        .split()[1:3] == [str(one["signed_up"]), str(one["activated"])]


def test_segment_pages_in_engagement_order(broker, redis, names, tmp_path):
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"), GEN)
    ewsenv.run_processor_to_end(names, broker, redis)
    users = {t["id"]: ewsenv.inspect(names, broker, redis, "user", t["id"])
             for t in truth if t["kind"] == "user"}
    h = 7 * 86400000  # scoring.half.life in config/ews.yaml

    for stage in ("trial", "activated", "sales_ready", "customer"):
        members = {u for u, s in users.items() if s["stage"] == stage}
        for order in ("asc", "desc"):
            got, cursor = [], None
            while True:
                words = ["segment", stage, order, "limit=7"]
                if cursor is not None:
                    words.append(f"cursor={cursor}")
                page = json.loads(inspect(names, broker, redis, *words))
                got += page["users"]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert sorted(u["user_id"] for u in got) == sorted(members)
            # in the order of E now, at any now
            for now in (1767225600000, 1767225600000 + 90 * 86400000):
                values = [u["engagement_ref"] *
                          2 ** (-(now - u["engagement_ref_ms"]) / h)
                          for u in got]
                for a, b in zip(values, values[1:]):
                    assert (a <= b * (1 + 1e-9) if order == "asc"
                            else a * (1 + 1e-9) >= b), (stage, order, a, b)
    # users that expired: passed over, and out of the set, without
    # shifting the pages after them
    client = redis_py.Redis(port=redis.port, decode_responses=True)
    trial = sorted(u for u, s in users.items() if s["stage"] == "trial")
    expired = set(trial[::3])
    for u in expired:
        client.hdel(ewsenv.user_bucket_key(names.prefix, u), u)
    got, cursor = [], None
    while True:
        words = ["segment", "trial", "limit=2"]
        if cursor is not None:
            words.append(f"cursor={cursor}")
        page = json.loads(inspect(names, broker, redis, *words))
        got += [u["user_id"] for u in page["users"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(got) == sorted(set(trial) - expired)
    sets = list(client.scan_iter(f"{names.prefix}sg*:trial*"))
    assert sets
    assert all(client.zscore(k, u) is None for k in sets for u in expired)

    # filtered by campaign: only its users, all of them
    pairs = collections.Counter((s["stage"], s["campaign_id"])
                                for u, s in users.items() if u not in expired)
    (stage, campaign), n = pairs.most_common(1)[0]
    assert n >= 2
    page = json.loads(inspect(names, broker, redis, "segment", stage,
                              f"campaign={campaign}", "limit=1000"))
    assert {u["user_id"] for u in page["users"]} == {
        u for u, s in users.items()
        if s["stage"] == stage and s["campaign_id"] == campaign} - expired


def test_funnel_and_segments_over_http(broker, redis, names, tmp_path):
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"), GEN)
    want = truth_funnel(truth)
    ewsenv.run_processor_to_end(names, broker, redis)
    proc, port = running(names, broker, redis)

    def series():
        return {k: v for k, v in ewsenv.scrape(port).items()
                if k.startswith("ews_funnel_users")}
    try:
        status, body = http(port, "/v1/campaigns/c-002/funnel")
        assert status == 200, body
        one = json.loads(body)
        assert one["reached"] == want["c-002"]
        n = want["c-002"]
        assert one["rate"]["activated"] == n["activated"] / n["signed_up"]
        assert one["median_to_activated_ms"] > 0
        assert http(port, "/v1/campaigns/c-nope/funnel")[0] == 404

        status, body = http(port, "/v1/funnel?sort=activated&order=desc")
        assert status == 200, body
        every = json.loads(body)
        assert every["total"]["reached"] == want[""]
        rates = [f["rate"]["activated"] for f in every["campaigns"]]
        assert rates == sorted(rates, reverse=True) and len(rates) == 3
        assert http(port, "/v1/funnel?sort=nonsense")[0] == 400
        # the total's spend is every campaign's, however many are listed
        client = redis_py.Redis(port=redis.port, decode_responses=True)
        spend = sum(float(client.hget(f"{names.prefix}c:c-00{i}", "spend"))
                    for i in (1, 2, 3))
        one = json.loads(http(port, "/v1/funnel?limit=1")[1])
        assert len(one["campaigns"]) == 1
        assert math.isclose(one["total"]["spend"], spend, rel_tol=1e-12)

        seen, cursor = [], None
        while True:
            path = "/v1/segments?stage=trial&order=asc&limit=5"
            if cursor is not None:
                path += f"&cursor={cursor}"
            status, body = http(port, path)
            assert status == 200, body
            page = json.loads(body)
            seen += [u["engagement"] for u in page["users"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen and seen == sorted(seen)
        assert http(port, "/v1/segments?stage=bogus")[0] == 400

        status, body = http(port, "/v1/accounts?order_by=active_users&limit=3"
                            "&members=2")
        assert status == 200, body
        accounts = json.loads(body)["accounts"]
        active = [a["active_users"] for a in accounts]
        assert len(accounts) == 3 and active == sorted(active, reverse=True)
        assert all(len(a["members"]) <= 2 for a in accounts)
        assert http(port, "/v1/accounts?order_by=size")[0] == 400

        # Prometheus: the total and the campaigns (the 10 most recent)
        ewsenv.wait_for(lambda: len(series()) == 5 + 3 * 5, 10, "series")
        got = series()
        for c, n in want.items():
            for stage, users in n.items():
                labels = (f'campaign="{c}",' if c else "") + \
                    f'stage="{stage}"'
                assert got[f"ews_funnel_users{{{labels}}}"] == users
    finally:
        stop(proc)
    # bounded: the one campaign named and the one most recent
    proc, port = running(names, broker, redis, {
        "EWS_STATE_FUNNEL_METRICS_CAMPAIGNS": "c-001",
        "EWS_STATE_FUNNEL_METRICS_RECENT": "1"})
    try:
        ewsenv.wait_for(lambda: any("c-001" in k for k in series()), 10,
                        "series")
        campaigns = {k.split('"')[1] for k in series() if "campaign=" in k}
        client = redis_py.Redis(port=redis.port, decode_responses=True)
        recent = client.zrevrange(f"{names.prefix}fi", 0, 0)
        assert campaigns == {"c-001", *recent}
    finally:
        stop(proc)


def iso_ms(text):
    return int(datetime.datetime.fromisoformat(
        text.replace("Z", "+00:00")).timestamp() * 1000)


def test_accounts_by_engagement_and_by_active_users(broker, redis, names,
                                                    tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth"), GEN)
    ewsenv.run_processor_to_end(names, broker, redis)
    h = 7 * 86400000
    # each account from its members as exported: (E, t_ref) summed the
    # way the model folds them, and its members by last activity
    export = subprocess.run(
        [os.path.join(ewsenv.BUILD, "ews-inspect"), "export", "--kind",
         "user"], env=names.env(broker, redis), capture_output=True,
        text=True, check=True)
    members = collections.defaultdict(list)
    for line in export.stdout.splitlines():
        s = json.loads(line)
        if s.get("kind") != "user" or not s["state"]["account_id"]:
            continue
        u = s["state"]
        members[u["account_id"]].append(
            (u["engagement"]["score"], iso_ms(u["engagement"]["as_of"]),
             iso_ms(u["last_activity_at"]), u["user_id"]))
    stored = {}
    for acc, ms in members.items():
        er = max(ref for _, ref, _, _ in ms)
        stored[acc] = (sum(e * 2 ** (-(er - ref) / h) for e, ref, _, _ in ms),
                       er)
    assert len(stored) > 10
    at = max(er for _, er in stored.values())

    def a_at(acc):
        e, er = stored[acc]
        return e * 2 ** (-(at - er) / h)

    view = json.loads(inspect(names, broker, redis, "accounts",
                              "by=engagement", "limit=5", "members=3"))
    got = [a["account_id"] for a in view["accounts"]]
    want = sorted(stored, key=a_at, reverse=True)[:5]
    assert [round(a_at(a), 6) for a in got] == \
        [round(a_at(a), 6) for a in want]
    for a in view["accounts"]:
        e, er = stored[a["account_id"]]
        assert math.isclose(a["engagement"],
                            e * 2 ** (-(a["as_of_ms"] - er) / h),
                            rel_tol=1e-9)
        recent = sorted(members[a["account_id"]],
                        key=lambda m: (-m[2], m[3]))
        assert a["members"] == [m[3] for m in recent[:3]]

    view = json.loads(inspect(names, broker, redis, "accounts",
                              "by=active_users", "asc", "limit=1000",
                              "members=0"))
    active = [a["active_users"] for a in view["accounts"]]
    assert len(active) == len(stored) and active == sorted(active)
    for a in view["accounts"][:5]:
        one = ewsenv.inspect(names, broker, redis, "account", a["account_id"])
        assert one["active_users"] == a["active_users"]


def test_segments_off_writes_none_and_says_so(broker, redis, names, tmp_path):
    """state.segments false: the funnel as ever, no segment set written,
    and the segment reads refuse with the reason rather than answer from
    nothing."""
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"), GEN)
    off = {"EWS_STATE_SEGMENTS": "false"}
    ewsenv.run_processor_to_end(names, broker, redis, env_extra=off)
    assert stored_funnel(names, redis) == truth_funnel(truth)
    client = redis_py.Redis(port=redis.port)
    assert list(client.scan_iter(f"{names.prefix}sg*")) == []
    env = {**names.env(broker, redis), **off}
    proc = subprocess.run(
        [os.path.join(ewsenv.BUILD, "ews-inspect"), "segment", "trial"],
        env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "state.segments: false" in proc.stderr
    server, port = running(names, broker, redis, off)
    try:
        status, body = http(port, "/v1/segments?stage=trial")
        assert status == 404 and "state.segments: false" in body
        assert http(port, "/v1/funnel")[0] == 200
    finally:
        stop(server)
