"""ews-whatif: the same history through two configurations, in event time,
without touching the live state, the live alert topic or the live group:
the same configuration twice differs in nothing, and lower thresholds
raise what the generator's scenario implies. Also the processor's replay
mode on its own (--end-offsets, --alerts-file), and stopping a what-if
half-way."""

import base64
import collections
import json
import math
import os
import re
import signal
import subprocess

import pytest

import ewsenv

CONFIG = os.path.join(ewsenv.ROOT, "config", "ews.yaml")
DAY = 86400000
# Campaign events left out: each campaign is judged against
# rules.campaign.underperforming.default.target, which a configuration
# below changes.
NO_CAMPAIGN_EVENTS = ["--no-campaign-events"]


@pytest.fixture
def names(request):
    """Short names: a replay's prefix, <prefix>whatif:<pid>:a:, must fit
    redis.prefix's 63 bytes."""
    return ewsenv.Names("wi-" + "-".join(request.node.name.split("_")[1:3]))


def config_with(tmp_path, name, replacements):
    """config/ews.yaml with each (old, new) replaced once (the schemas come
    from the environment, EWS_DECODE_SCHEMA_DIR)."""
    with open(CONFIG) as f:
        text = f.read()
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def whatif_cmd(other, args=()):
    return [os.path.join(ewsenv.BUILD, "ews-whatif"), "-c", CONFIG, "-w",
            other, *ewsenv.FAST_CONSUMER, *args]


def whatif_env(names, broker, redis, tmpdir):
    env = names.env(broker, redis)
    env["TMPDIR"] = str(tmpdir)
    return env


def run_whatif(names, broker, redis, tmpdir, other, args=()):
    proc = subprocess.run(whatif_cmd(other, args),
                          env=whatif_env(names, broker, redis, tmpdir),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def live_state(redis, names):
    """Every key of the live prefix with its value (DUMP), the replays'
    prefix <prefix>whatif: aside."""
    import redis as redis_py
    r = redis_py.Redis(port=redis.port)
    whatif = names.prefix.encode() + b"whatif:"
    return {k: r.dump(k) for k in r.scan_iter(match=names.prefix + "*",
                                              count=1000)
            if not k.startswith(whatif)}


def whatif_keys(redis, names):
    return redis.cli("--scan", "--pattern",
                     f"{names.prefix}whatif:*").split()


def topic_ends(broker, names):
    """The end offset of every partition of the alert and dead-letter
    topics, and the live group's committed offsets of the inputs."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": broker.bootstrap,
                  "group.id": names.group, "enable.auto.commit": False})
    try:
        # all topics: asking for one by name may create it
        topics = c.list_topics(timeout=10).topics
        ends = {}
        for topic in (names.alerts, names.dlq):
            for p in (topics[topic].partitions if topic in topics else ()):
                ends[(topic, p)] = c.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=10)[1]
        inputs = [TopicPartition(t, p) for t in (names.usage, names.campaign)
                  if t in topics for p in topics[t].partitions]
        committed = {(tp.topic, tp.partition): tp.offset
                     for tp in c.committed(inputs, timeout=10)}
        return ends, committed
    finally:
        c.close()


def live_alerts(broker, names):
    sch = ewsenv.schema("alert.avsc")
    alerts = {}
    for _, value, _ in ewsenv.consume_all(broker, names.alerts):
        a = ewsenv.avro_decode(sch, value)
        alerts[a["alert_id"]] = a
    return list(alerts.values())


def untouched(broker, redis, names, tmpdir, before):
    """The live keys, topics and group as before; nothing of the replays
    left in Redis or in TMPDIR."""
    assert live_state(redis, names) == before[0]
    assert topic_ends(broker, names) == before[1]
    assert whatif_keys(redis, names) == []
    assert os.listdir(tmpdir) == []


def wilson_upper(k, n, z):
    p = k / n
    return (p + z * z / (2 * n) + z * math.sqrt(
        p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)


def flag_day_end(users, campaign, min_sample, target, z=1.645):
    """The end of the first day by which the campaign's signups mature
    after 3 days (activated: E reached 40 by then, the truth's
    `activated`) give at least min_sample of them and a Wilson upper bound
    below target: when the campaign rule fires, or None."""
    mine = [u for u in users.values() if u["campaign"] == campaign]
    start = ewsenv.millis(ewsenv.utc(min(u["signup_ms"] for u in mine))
                          .replace(hour=0, minute=0, second=0,
                                   microsecond=0))
    for day in range(1, 60):
        end = start + day * DAY
        mature = [u for u in mine if u["signup_ms"] + 3 * DAY <= end]
        k = sum(u["activated"] for u in mature)
        if len(mature) >= min_sample and \
                wilson_upper(k, len(mature), z) < target:
            return end
    return None


def test_the_same_configuration_twice_differs_in_nothing(broker, redis, names,
                                                          tmp_path):
    # campaigns launched with their targets, spend, both input topics
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "7"])
    ewsenv.run_processor_to_end(names, broker, redis)
    live = live_alerts(broker, names)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    before = (live_state(redis, names), topic_ends(broker, names))
    assert before[0] and before[1][0]

    out = run_whatif(names, broker, redis, tmpdir, CONFIG).stdout
    assert out.rstrip().endswith(
        f"no differences: B raises exactly the alerts A raises "
        f"({len(live)})"), out
    # each replay raised what the live processor did (event time too)
    counts = collections.Counter((a["rule"], a["status"]) for a in live)
    assert len(counts) >= 4, counts
    for (rule, status), n in counts.items():
        assert re.search(rf"^  {rule} +{status} +{n} +{n} +0 +0$", out,
                         re.M), (rule, status, n, out)
    untouched(broker, redis, names, tmpdir, before)


def test_lower_thresholds_raise_what_the_scenario_implies(broker, redis,
                                                           names, tmp_path,
                                                           monkeypatch):
    # The campaign days below are computed with the daily Wilson bound: both
    # replays (and the live run) decide with it.
    monkeypatch.setenv("EWS_RULES_CAMPAIGN_UNDERPERFORMING_DECISION", "wilson")
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                           ["--seed", "4", *NO_CAMPAIGN_EVENTS])
    users = {t["id"]: t for t in truth if t["kind"] == "user"}
    poor = {t["id"] for t in truth if t["kind"] == "campaign" and t["poor"]}
    ewsenv.run_processor_to_end(names, broker, redis)
    live = live_alerts(broker, names)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    before = (live_state(redis, names), topic_ends(broker, names))
    other = config_with(tmp_path, "lower.yaml", [
        ("sales.ready.points: 100", "sales.ready.points: 60"),
        ("exit.points: 70", "exit.points: 40"),
        ("min.sample: 20", "min.sample: 10"),
        ("default.target: 0.3", "default.target: 0.45")])

    d = json.loads(run_whatif(names, broker, redis, tmpdir, other,
                              ["--json"]).stdout)

    # A is the live configuration: sales-ready are those whose E reached
    # 100; B adds those that reached 60 and not 100, and flags the others
    # earlier or at the same time, never later.
    ready = {a["subject_id"] for a in live if a["rule"] == "SALES_READY"}
    assert ready == {u for u, t in users.items()
                     if t["peak_points_e"] >= 100}
    assert d["a"]["alerts"] == len(live) and not d["identical"]
    subjects = [s for s in d["subjects"] if s["rule"] == "SALES_READY"]
    only_b = {s["subject"] for s in subjects
              if s["first_firing_a_ms"] is None}
    assert only_b == {u for u, t in users.items()
                      if 60 <= t["peak_points_e"] < 100}
    assert only_b, "the scenario has no user between the thresholds"
    assert all(s["first_firing_b_ms"] is not None for s in subjects)
    moved = [s["shift_ms"] for s in subjects if s["shift_ms"] is not None]
    assert moved and all(shift < 0 for shift in moved), moved
    assert {s["subject"] for s in d["subjects"]
            if s["rule"] != "CAMPAIGN_UNDERPERFORMING"} == only_b | {
        s["subject"] for s in subjects if s["shift_ms"]}
    # the other rules do not move
    assert {g["rule"] for g in d["groups"] if g["only_a"] or g["only_b"]} \
        <= {"SALES_READY", "CAMPAIGN_UNDERPERFORMING"}
    by_rule = collections.Counter(g["rule"] for g in d["groups"])
    assert by_rule["USER_DISENGAGED"], by_rule

    # the poor campaigns, flagged on the day their mature signups allow
    # under each configuration: earlier under B
    flags = {c["subject"]: c for c in d["campaigns"]}
    assert set(flags) == poor
    for campaign in poor:
        a = flag_day_end(users, campaign, 20, 0.3)
        b = flag_day_end(users, campaign, 10, 0.45)
        assert a and b and b < a, (campaign, a, b)
        assert flags[campaign]["first_firing_a_ms"] == a, (campaign, a)
        assert flags[campaign]["first_firing_b_ms"] == b, (campaign, b)
        assert flags[campaign]["shift_ms"] == b - a
    untouched(broker, redis, names, tmpdir, before)


def test_sigterm_mid_replay_deletes_its_keys(broker, redis, names, tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "8", *NO_CAMPAIGN_EVENTS])
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen(whatif_cmd(CONFIG),
                            env=whatif_env(names, broker, redis, tmpdir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        ewsenv.wait_for(lambda: len(whatif_keys(redis, names)) >= 50, 60,
                        "the replay's keys")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        ewsenv.stop(proc)
    assert proc.returncode == 1, err
    # the keys were there, the stop came during one of the replays
    assert re.search(r"^ews-whatif: stopped during replay [AB]$", err,
                     re.M), err
    assert out == ""
    assert whatif_keys(redis, names) == []
    assert os.listdir(tmpdir) == []
    # its ews-processor went with it
    assert subprocess.run(["pgrep", "-f", str(tmpdir)],
                          capture_output=True).returncode == 1


def test_end_offsets_and_alerts_file_keep_a_replay_off_kafka(broker, redis,
                                                              names, tmp_path):
    summary = ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                             ["--seed", "9", "--days", "10"])[-1]
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "x"})
    ends = {}
    for topic in (names.usage, names.campaign):
        for p in c.list_topics(topic, timeout=10).topics[topic].partitions:
            ends[(topic, p)] = c.get_watermark_offsets(
                TopicPartition(topic, p), timeout=10)[1]
    c.close()
    half = {tp: end // 2 for tp, end in ends.items()}
    alerts_file = tmp_path / "alerts.jsonl"
    err = ewsenv.run_processor_to_end(names, broker, redis, [
        "--end-offsets", ",".join(f"{t}:{p}={o}"
                                  for (t, p), o in sorted(half.items())),
        "--alerts-file", str(alerts_file)])
    consumed = int(re.search(r" consumed=(\d+) ",
                             err.strip().splitlines()[-1]).group(1))
    assert consumed == sum(half.values()) < summary["events"]
    for (topic, p), offset in half.items():
        fence = redis.cli("HGET", f"{names.prefix}p:{topic}:{p}", "offset")
        assert int(fence) == offset, (topic, p, fence)
    # the alerts are in the file, as the alert topic would have had them,
    # and not on the topic; the outboxes are empty
    records = [r for r in map(json.loads,
                              alerts_file.read_text().splitlines())
               if r["kind"] == "alert"]
    sch = ewsenv.schema("alert.avsc")
    decoded = [ewsenv.avro_decode(sch, base64.b64decode(r["value"]))
               for r in records]
    assert [r["id"] for r in records] == [a["alert_id"] for a in decoded]
    assert len(decoded) > 20
    assert all(base64.b64decode(r["key"]).decode() == a["subject_id"]
               for r, a in zip(records, decoded))
    assert ewsenv.consume_all(broker, names.alerts, timeout=3) == []
    assert redis.cli("--scan", "--pattern", f"{names.prefix}o:*").split() \
        == []


@pytest.mark.parametrize("args,message", [
    ([], "ews-whatif: -w FILE (the configuration to try) is required"),
    (["-w", CONFIG, "foo"], "ews-whatif: unexpected argument 'foo'"),
    (["-w", CONFIG, "--nope"], "ews-whatif: unknown option '--nope'"),
    (["-w", CONFIG, "--from", "yesterday"],
     "ews-whatif: a time is 2026-01-05, 2026-01-05T09:30:00Z or ms, not "
     "'yesterday'"),
    (["-w", CONFIG, "--from", "2026-01-05", "--to", "2026-01-04"],
     "ews-whatif: --from must come before --to"),
    (["-w", CONFIG, "--list", "-1"],
     "ews-whatif: --list wants a number >= 0, not '-1'"),
    (["-w", "/nonexistent.yaml"], "ews-whatif: /nonexistent.yaml: "),
])
def test_whatif_argument_errors(args, message):
    proc = subprocess.run([os.path.join(ewsenv.BUILD, "ews-whatif"), *args],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(message), proc.stderr
    assert proc.stdout == ""


def test_whatif_refuses_another_history(tmp_path):
    other = config_with(tmp_path, "other.yaml", [
        ("usage: product-usage", "usage: other-usage")])
    proc = subprocess.run([os.path.join(ewsenv.BUILD, "ews-whatif"), "-c",
                           CONFIG, "-w", other], capture_output=True,
                          text=True, timeout=30,
                          env=dict(os.environ,
                                   EWS_DECODE_SCHEMA_DIR=ewsenv.SCHEMAS))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[0] == (
        "ews-whatif: the configuration to try has topics.usage "
        "'other-usage', the live one 'product-usage': both must replay the "
        "same history"), proc.stderr


def test_processor_refuses_a_bad_end_offsets_list():
    proc = subprocess.run([os.path.join(ewsenv.BUILD, "ews-processor"), "-c",
                           CONFIG, "--end-offsets", "product-usage:0=5,x:1=2"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        "ews-processor: --end-offsets: 'x:1=2' is not TOPIC:PARTITION=OFFSET "
        "with TOPIC product-usage or campaign-events\n"), proc.stderr
