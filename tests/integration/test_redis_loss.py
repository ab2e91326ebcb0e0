"""Redis loses its last writes (what `appendfsync everysec` may lose on a
machine crash, or a failover to a replica that was behind): the fences
turn the loss into a replay, never into events skipped. The crash is
modelled as SIGKILL plus the AOF cut back to an earlier size."""

import time

import redis as redis_py

import ewsenv
from test_state import (BACKLOG, close, fence_offsets, state,
                        watermarks_settled)

AOF = ["--appendonly", "yes", "--appendfsync", "everysec"]


def partition_counts(client, names):
    """As the store recorded them: a loss may take the record with it."""
    return {topic: int(client.get(f"{names.prefix}m:{topic}"))
            for topic in (names.usage, names.campaign)}


def scenario(names, broker, tmp_path, seed):
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                           ["--seed", str(seed), "--campaigns", "2",
                            "--days", "5"])
    events = next(t for t in truth if t["kind"] == "summary")["events"]
    reference = ewsenv.Redis()
    try:
        ewsenv.run_processor_to_end(names, broker, reference)
        want = state(names, broker, reference, truth)
    finally:
        reference.close()
    return truth, events, want


def test_a_lost_fence_replays_from_the_start(broker, names, tmp_path):
    """Every write of the run is lost, fences included; new input then
    arrives. A missing fence where the group has committed is a lost one:
    the partition starts again from the first offset the broker has, not
    from the batch that found it missing."""
    truth, events, want = scenario(names, broker, tmp_path, 11)
    redis = ewsenv.Redis(extra=AOF)
    client = redis_py.Redis(port=redis.port)
    empty = redis.aof_size()
    proc = ewsenv.processor(names, broker, redis, env_extra=BACKLOG)
    try:
        ewsenv.wait_for(lambda: fence_offsets(client, names) == events, 60,
                        "every event applied")
        counts = partition_counts(client, names)
        redis.crash(aof_size=empty)
        redis.start()
        assert fence_offsets(client, names, counts) == 0
        # one more event for a user on every partition's path: the batch
        # that carries it finds no fence
        sch = ewsenv.schema("usage_event.avsc")
        user = next(t for t in truth if t["kind"] == "user")
        ewsenv.produce(broker, names.usage, [(user["id"].encode(),
                       ewsenv.avro_encode(sch, {
                           "event_id": "after-the-loss",
                           "user_id": user["id"], "account_id": None,
                           "event_type": "login", "product": None,
                           "value": None, "campaign_id": None,
                           "occurred_at": ewsenv.utc(user["last_event_ms"]),
                           "attributes": {}}))])
        ewsenv.wait_for(
            lambda: fence_offsets(client, names, counts) == events + 1, 60,
            "everything applied again")
        ewsenv.wait_for(lambda: watermarks_settled(client, names, counts),
                        30, "the watermarks at their end")
    finally:
        ewsenv.stop(proc)
    assert proc.returncode == 0
    got = state(names, broker, redis, truth)
    redis.close()
    # the one new event: its user and account have it on top
    got_user = got.pop(("user", user["id"]))
    assert got_user["events"] == want.pop(("user", user["id"]))["events"] + 1
    assert got.pop(("account", user["account"]))["engagement"]["score"] > \
        want.pop(("account", user["account"]))["engagement"]["score"]
    close(got, want)


def test_a_fence_that_went_back_is_replayed_while_idle(broker, names,
                                                        tmp_path):
    """The last writes are lost after the input went quiet: nothing new
    arrives, yet the processor notices the fences behind its position
    after it reconnects, and replays up to where it was."""
    truth, events, want = scenario(names, broker, tmp_path, 12)
    redis = ewsenv.Redis(extra=AOF)
    client = redis_py.Redis(port=redis.port)
    proc = ewsenv.processor(names, broker, redis,
                            env_extra={"EWS_KAFKA_BATCH_MAX": "50", **BACKLOG})
    try:
        ewsenv.wait_for(lambda: fence_offsets(client, names) > events // 3,
                        60, "a third applied")
        midway = redis.aof_size()
        ewsenv.wait_for(lambda: fence_offsets(client, names) == events, 60,
                        "every event applied")
        counts = partition_counts(client, names)
        redis.crash(aof_size=midway)
        redis.start()
        assert fence_offsets(client, names, counts) < events
        ewsenv.wait_for(
            lambda: fence_offsets(client, names, counts) == events, 30,
            "the fences back at the end, with no new input")
        ewsenv.wait_for(lambda: watermarks_settled(client, names, counts),
                        30, "the watermarks at their end")
    finally:
        ewsenv.stop(proc)
    assert proc.returncode == 0
    got = state(names, broker, redis, truth)
    redis.close()
    close(got, want)


def test_a_primary_that_refuses_writes_for_a_while_is_waited_out(
        broker, names, tmp_path):
    """Redis answers READONLY (a primary demoted under the processor's
    connection, as REPLICAOF does without Sentinel closing it): the
    commit was not applied and the server is no primary to write to. The
    processor drops the connection and keeps trying, and goes on once it
    is a primary again; a READONLY refusal is no wrong commit, so no
    partition is failed (paused until its fence is moved by hand)."""
    truth, events, want = scenario(names, broker, tmp_path, 13)
    redis = ewsenv.Redis()
    client = redis_py.Redis(port=redis.port)
    log = open(tmp_path / "processor.log", "w+")
    proc = ewsenv.processor(names, broker, redis, stderr=log,
                            env_extra={"EWS_KAFKA_BATCH_MAX": "20", **BACKLOG})
    try:
        ewsenv.wait_for(lambda: fence_offsets(client, names) > events // 4,
                        60, "a quarter applied")
        # a replica of a primary that cannot be reached: it keeps its data
        # and refuses writes
        redis.cli("REPLICAOF", "127.0.0.1", str(ewsenv.free_port()))
        stalled = fence_offsets(client, names)
        time.sleep(3)
        assert fence_offsets(client, names) < events
        redis.cli("REPLICAOF", "NO", "ONE")
        ewsenv.wait_for(lambda: fence_offsets(client, names) == events, 60,
                        "every event applied once it is a primary again")
        ewsenv.wait_for(lambda: watermarks_settled(client, names), 30,
                        "the watermarks at their end")
    finally:
        ewsenv.stop(proc)
    log.seek(0)
    err = log.read()
    log.close()
    assert proc.returncode == 0
    assert "READONLY" in err, err[-3000:]
    assert "rejected" not in err, err[-3000:]
    assert stalled < events
    got = state(names, broker, redis, truth)
    redis.close()
    close(got, want)
