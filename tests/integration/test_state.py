"""Scores and state survive crashes, replays and zombies exactly once."""

import json
import math
import random
import signal
import subprocess
import time

import redis as redis_py

import ewsenv


def close(a, b, path=""):
    """Equal, with floats within 1e-9 relative."""
    if isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (path, a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), (path, a.keys() ^ b.keys())
        for k in a:
            close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def state(names, broker, redis, truth):
    """Every user's, account's and campaign's state, as ews-inspect has it."""
    out = {}
    for t in truth:
        if t["kind"] == "user":
            out["user", t["id"]] = ewsenv.inspect(names, broker, redis,
                                                  "user", t["id"])
            out["account", t["account"]] = ewsenv.inspect(
                names, broker, redis, "account", t["account"])
        elif t["kind"] == "campaign":
            out["campaign", t["id"]] = ewsenv.inspect(
                names, broker, redis, "campaign", t["id"])
    return out


def fence_offsets(client, names, partitions=None):
    """The sum of the next offsets in the store's fences: how far it got.
    Read by key, not by SCAN, which slows down with everything else the
    suite left in this Redis, and a slow look kills too late. partitions:
    the topics' partition counts, when not from the store."""
    total = 0
    for topic in (names.usage, names.campaign):
        count = partitions[topic] if partitions else int(
            client.get(f"{names.prefix}m:{topic}") or 0)
        for k in range(count):
            total += int(client.hget(f"{names.prefix}p:{topic}:{k}",
                                     "offset") or 0)
    return total


# A live processor over input produced in full before it starts: a
# partition at its end has nothing more to come, so in time.mode event it
# follows the others at once rather than after time.idle.timeout.
BACKLOG = {"EWS_TIME_IDLE_TIMEOUT": "0s"}


def watermarks_settled(client, names, partitions=None):
    """In time.mode event a partition read to its end takes the usage
    topic's largest watermark (and fires the timers due by it) at the next
    tick once it may (BACKLOG): once every usage partition has it and no
    campaign partition is behind it, nothing moves without new input.
    partitions as above."""
    marks = {}
    for topic in (names.usage, names.campaign):
        count = partitions[topic] if partitions else int(
            client.get(f"{names.prefix}m:{topic}") or 0)
        marks[topic] = [int(client.hget(f"{names.prefix}p:{topic}:{k}",
                                        "watermark") or 0)
                        for k in range(count)]
    usage = marks[names.usage]
    return bool(usage) and min(usage) == max(usage) > 0 and \
        all(w >= usage[0] for w in marks[names.campaign])


def test_sigkill_at_random_moments_changes_nothing(broker, redis, names,
                                                   tmp_path):
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                           ["--seed", "11", "--campaigns", "3", "--days", "10"])
    events = next(t for t in truth if t["kind"] == "summary")["events"]

    reference = ewsenv.Names(names.usage + "-ref")
    reference.usage, reference.campaign = names.usage, names.campaign
    ewsenv.run_processor_to_end(reference, broker, redis)
    want = state(reference, broker, redis, truth)

    # Kill points drawn at random over the stream; small batches so that
    # the stream takes thousands of commits and a kill can land anywhere.
    client = redis_py.Redis(port=redis.port)
    rng = random.Random(5)
    points = sorted(rng.randrange(events // 20, events) for _ in range(10))
    crashing = ewsenv.Names(names.usage + "-crash")
    crashing.usage, crashing.campaign = names.usage, names.campaign
    env_batch = {"EWS_KAFKA_BATCH_MAX": "5"}
    fast_rejoin = ["-X", "session.timeout.ms=3000"]
    mid_stream = 0
    for point in points:
        proc = ewsenv.processor(crashing, broker, redis, fast_rejoin,
                                stderr=subprocess.DEVNULL, env_extra=env_batch)
        try:
            ewsenv.wait_for(lambda: fence_offsets(client, crashing) >= point
                            or proc.poll() is not None, 120, f"offset {point}")
            assert proc.poll() is None, "the processor died by itself"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        mid_stream += fence_offsets(client, crashing) < events
    # a loaded machine may kill one late, but the stream must be cut
    assert mid_stream >= 8, f"only {mid_stream} kills landed mid-stream"
    ewsenv.run_processor_to_end(crashing, broker, redis, env_extra=env_batch)
    close(state(crashing, broker, redis, truth), want)


def test_refuses_a_changed_partition_count(broker, redis, names, tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                   ["--campaigns", "1", "--users-per-campaign", "3",
                    "--days", "2"])
    ewsenv.run_processor_to_end(names, broker, redis)
    key = f"{names.prefix}m:{names.usage}"
    assert redis.cli("GET", key).strip() == "4"  # recorded on first use
    redis.cli("SET", key, "8")  # as if the topic had 8 partitions before
    proc = ewsenv.processor(names, broker, redis, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert (f"topic {names.usage} has 4 partitions but the store at {key} "
            "was built with 8") in err


def run_store_test(name, redis, expect):
    """Runs tests/integration/c/<name> (a cmocka program against the
    Redis given) and checks it passed and printed expect."""
    proc = subprocess.run(
        [f"{ewsenv.BUILD}/tests/{name}", "127.0.0.1", str(redis.port)],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert expect in proc.stdout


def test_zombie_commit_is_rejected(redis):
    """An owner that lost its partition cannot write: its commit is fenced
    off and changes nothing (tests/integration/c/store_zombie.c, on a real
    Redis)."""
    run_store_test("store_zombie", redis, "zombie: rejected")


def test_state_of_an_earlier_version_is_read_and_moved_on(redis):
    """A user packed in version 2 under its own key with its timer in the
    partition's one timer key, an account's members in am:<id> and its days
    in ab:<id>: read, and written in the current layout by the next commit;
    the exports' walks give a user once, moved or not
    (tests/integration/c/store_upgrade.c, on a real Redis)."""
    run_store_test("store_upgrade", redis, "upgrade: read and moved on")


def test_segment_pages_merge_shards_and_the_old_set(redis):
    """A segment's pages in Redis' order over its shards, through a tie
    longer than a round's read of a shard, and with the set an earlier
    version kept read beside them, its entries that no longer stand taken
    out (tests/integration/c/store_segments.c, on a real Redis)."""
    run_store_test("store_segments", redis, "segments: paged over shards")


def test_segment_moves_written_once_a_round(redis):
    """A round writes the segment moves of its commits whose fence holds,
    grouped by shard, and none of a fenced commit
    (tests/integration/c/store_segments.c)."""
    run_store_test("store_segments", redis, "segments: a round's moves")


def test_account_days_written_as_runs_read_as_days(redis):
    """An account's users active at day ends: a run of days is +n at its
    first and -n after its last, read back as each day's count, and the
    leader's drop keeps the later days' counts
    (tests/integration/c/store_cohort.c, on a real Redis)."""
    run_store_test("store_cohort", redis, "cohort: runs read as days")


def test_leader_writes_many_decisions_at_once(redis):
    """The leader's decisions written in one round trip after the server
    lost the script: each has its own outcome (applied, or its account
    expired), and a token that no longer holds the lease applies none
    (tests/integration/c/store_cohort.c, on a real Redis)."""
    run_store_test("store_cohort", redis, "cohort: written at once")


def test_users_swept_a_retention_after_their_last_write(redis):
    """Users kept in their buckets have no expiry of their own: the
    leader's sweep deletes those a retention and a day past their last
    write's day, not one written since (tests/integration/c/store_sweep.c,
    on a real Redis)."""
    run_store_test("store_sweep", redis, "sweep: expired users deleted")


def test_names_given_ids_read_by_another_instance(redis):
    """A name a commit packs in full gets an id before the next load, and
    a store that read the names before reads them again
    (tests/integration/c/store_names.c, on a real Redis)."""
    run_store_test("store_names", redis, "by id")


def test_counters_summed_over_a_round(redis):
    """Two partitions' increments in one round add up on the key both count
    into, a commit fenced off adds nothing, an id holding the byte kept
    between key and field counts into its own key, and a counter key of
    another type stops only the commit that counts into it
    (tests/integration/c/store_counters.c, on a real Redis)."""
    run_store_test("store_counters", redis, "rejected alone")


def test_account_engagement_is_the_sum_of_its_users(broker, redis, names,
                                                    tmp_path):
    """A(t) = sum of the members' E(t): folded in the commit script from
    each batch's points, it must agree with the users' own scores."""
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                           ["--seed", "21", "--campaigns", "2", "--days", "6"])
    ewsenv.run_processor_to_end(names, broker, redis)
    half_life_ms = 7 * 86400 * 1000
    members = {}
    for t in truth:
        if t["kind"] == "user":
            members.setdefault(t["account"], []).append(t["id"])
    checked = 0
    for account, users in sorted(members.items())[:25]:
        a = ewsenv.inspect(names, broker, redis, "account", account)
        at = a["engagement"]["as_of"]
        total = 0.0
        for u in users:
            e = ewsenv.inspect(names, broker, redis, "user", u)["engagement"]
            dt = (iso_ms(at) - iso_ms(e["as_of"])) if e["as_of"] else 0
            total += e["score"] * 2 ** (-dt / half_life_ms)
        assert math.isclose(a["engagement"]["score"], total, rel_tol=1e-9), \
            (account, a, total)
        assert a["users"] == len(users)
        checked += 1
    assert checked == 25


def iso_ms(text):
    """Exact milliseconds of "YYYY-MM-DDTHH:MM:SS.mmmZ" (no float)."""
    import calendar
    import datetime
    d = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return calendar.timegm(d.timetuple()) * 1000 + d.microsecond // 1000


def test_subject_keys_expire_and_an_expired_cohort_stays_gone(
        broker, redis, names, tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "3", "--campaigns", "2", "--days", "8"])
    ewsenv.run_processor_to_end(names, broker, redis)
    client = redis_py.Redis(port=redis.port, decode_responses=True)
    # every account key carries the retention, its cohort's too (an
    # account's members and cohort days are in its a:<id>); users are
    # fields of their buckets, kept as listpacks, swept by the leader
    keys = list(client.scan_iter(f"{names.prefix}a:*", count=1000))
    assert keys
    assert all(client.pttl(k) > 0 for k in keys)
    buckets = list(client.scan_iter(f"{names.prefix}ub:*", count=1000))
    assert buckets
    assert all(client.object("encoding", k) == "listpack" for k in buckets)
    assert not list(client.scan_iter(f"{names.prefix}u:*", count=1000))
    # an account whose cohort expired while it waited for its next day
    queued = sorted(account_queue(client, names.prefix))
    assert queued
    gone = queued[0]
    client.delete(f"{names.prefix}a:{gone}")
    # the wall clock closes every day: the leader reaches the queued id
    err = ewsenv.run_processor_to_end(names, broker, redis,
                                      env_extra={"EWS_TIME_MODE": "wall"})
    assert f"leader: {gone}: expired with its subject" in err, err[-3000:]
    assert gone not in account_queue(client, names.prefix)
    assert not client.exists(f"{names.prefix}a:{gone}")


def account_queue(client, prefix):
    """The accounts' queue: id -> day, over its shards (aq:<n>) and the
    set an earlier version kept (aq), an id at its earliest day."""
    queued = {}
    for key in [f"{prefix}aq"] + list(client.scan_iter(f"{prefix}aq:*")):
        for member, day in client.zrange(key, 0, -1, withscores=True):
            queued[member] = min(day, queued.get(member, day))
    return queued


def test_account_queue_in_shards_old_set_read_until_empty(
        broker, redis, names, tmp_path):
    """The accounts wait for the leader in 1,024 small sets, each account
    in the one its id hashes to; accounts an earlier version queued in one
    set (aq) are still decided, and leave it then (those queued in both,
    once, at the earlier day)."""
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "3", "--campaigns", "2", "--days", "8"])
    ewsenv.run_processor_to_end(names, broker, redis)
    client = redis_py.Redis(port=redis.port, decode_responses=True)
    shards = list(client.scan_iter(f"{names.prefix}aq:*"))
    assert not client.exists(f"{names.prefix}aq")
    queued = account_queue(client, names.prefix)
    assert len(queued) > 25 and len(shards) > 20, (len(queued), len(shards))
    for key in shards:
        assert client.object("encoding", key) == "listpack", key
    # as an earlier version left them: 20 in the one set only, 5 in both
    moved = sorted(queued)[:25]
    for i, account in enumerate(moved):
        shard = next(k for k in shards if client.zscore(k, account))
        if i < 20:
            client.zrem(shard, account)
        client.zadd(f"{names.prefix}aq", {account: queued[account] - i % 2})
    # the wall clock closes every day: the leader reaches every queued id
    ewsenv.run_processor_to_end(names, broker, redis,
                                env_extra={"EWS_TIME_MODE": "wall"})
    assert not client.exists(f"{names.prefix}aq")
    after = account_queue(client, names.prefix)
    marks = [int(client.hget(k, "watermark") or 0)
             for k in client.scan_iter(f"{names.prefix}p:*")]
    closed_day = max(marks) // 86400000
    assert not [a for a, day in after.items() if day <= closed_day], after


def test_a_stored_user_that_does_not_unpack_waits_until_removed(
        broker, redis, names, tmp_path):
    """A user whose stored value is no packed user is never guessed at: its
    events wait where they are (the partition goes back to its fence,
    counted and logged, the value untouched) and are applied once an
    operator removes the key, the user then from nothing."""
    client = redis_py.Redis(port=redis.port)
    bad = ewsenv.user_bucket_key(names.prefix, "u-bad")
    client.hset(bad, "u-bad", b"\x04not a packed user")
    t0 = 1767225600000
    lines = [{"event_id": "b-1", "user_id": "u-bad",
              "event_type": "trial_started", "occurred_at": t0},
             {"event_id": "b-2", "user_id": "u-bad", "event_type": "login",
              "occurred_at": t0 + 60000}]
    subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", names.usage,
                    "-K", "\t"], check=True, text=True,
                   input="".join(f"u-bad\t{json.dumps(x)}\n" for x in lines))
    port = ewsenv.free_port()
    log = tmp_path / "processor.log"
    with open(log, "w") as err:
        proc = ewsenv.processor(
            names, broker, redis, stderr=err,
            env_extra={"EWS_DECODE_USAGE_FORMAT": "json",
                       "EWS_HTTP_PORT": str(port)})
    try:
        ewsenv.wait_for(
            lambda: ewsenv.scrape(port).get("ews_redis_errors_total", 0) >= 2
            and "u-bad: stored value is not a packed user" in log.read_text()
            and f"HDEL {bad} u-bad" in log.read_text(),
            60, "the load refused twice, and said why and where")
        assert client.hget(bad, "u-bad") == b"\x04not a packed user"
        client.hdel(bad, "u-bad")
        ewsenv.wait_for(
            lambda: (ewsenv.inspect(names, broker, redis, "user", "u-bad")
                     or {}).get("events") == 2, 60, "the events applied")
    finally:
        ewsenv.stop(proc)


def test_a_bounded_run_decides_every_closed_day_before_it_exits(
        broker, redis, names, tmp_path):
    """--exit-at-end ends after the leader decided every closed day, however
    many turns that takes: a leader that is deciding is not waiting, and
    the lease's wait (for another instance's leader) does not cut it off.
    Turns of 5 ids and the shortest lease make a few hundred accounts
    outlast that wait."""
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "5", "--campaigns", "2",
                    "--users-per-campaign", "400", "--days", "3"])
    ewsenv.run_processor_to_end(names, broker, redis, env_extra={
        "EWS_LEADER_TURN_IDS": "5", "EWS_LEADER_LEASE": "2s"})
    client = redis_py.Redis(port=redis.port, decode_responses=True)
    marks = [int(client.hget(k, "watermark") or 0)
             for k in client.scan_iter(f"{names.prefix}p:*")]
    assert marks and min(marks) > 0, marks
    closed_day = min(marks) // 86400000 - 1
    queued = account_queue(client, names.prefix)
    assert len(queued) > 100, len(queued)  # more than 20 turns of 5 decide
    due = [a for a, day in queued.items() if day <= closed_day]
    assert not due, ("aq", closed_day, len(due), due[:5])
    due = client.zrangebyscore(f"{names.prefix}cq", "-inf", closed_day)
    assert not due, ("cq", closed_day, len(due), due[:5])
