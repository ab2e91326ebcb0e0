"""The idle clock: a topic that goes quiet still fires its timers, and what
it advanced is kept across a restart."""

import re
import subprocess
import time
import urllib.request

import ewsenv

INACTIVITY_S = 4


def usage_event(sch, i, user, etype, ms):
    return ewsenv.avro_encode(sch, {
        "event_id": f"{user}-{i}", "user_id": user, "account_id": None,
        "event_type": etype, "product": None, "value": None,
        "campaign_id": None, "occurred_at": ewsenv.utc(ms), "attributes": {}})


def watermarks(redis, names):
    """Stored watermark per usage partition, from the fences."""
    out = {}
    for key in redis.cli("--scan", "--pattern",
                         f"{names.prefix}p:{names.usage}:*").split():
        value = redis.cli("HGET", key, "watermark").strip()
        if value:
            out[int(key.rsplit(":", 1)[1])] = int(value)
    return out


def disengaged(broker, names, user):
    sch = ewsenv.schema("alert.avsc")
    return [a for a in (ewsenv.avro_decode(sch, value) for _, value, _ in
                        ewsenv.consume_all(broker, names.alerts, timeout=5))
            if a["rule"] == "USER_DISENGAGED" and a["subject_id"] == user]


def test_quiet_topic_still_fires_and_keeps_its_watermark(broker, redis,
                                                         names):
    sch = ewsenv.schema("usage_event.avsc")
    env = {"EWS_TIME_MODE": "auto", "EWS_TIME_ALLOWED_LATENESS": "0s",
           "EWS_RULES_USER_DISENGAGED_INACTIVITY": f"{INACTIVITY_S}s"}
    now = int(time.time() * 1000)
    # one trial user, then nothing on the whole topic
    ewsenv.produce(broker, names.usage, [
        (b"u-idle", usage_event(sch, 0, "u-idle", "trial_started", now - 2000),
         0),
        (b"u-idle", usage_event(sch, 1, "u-idle", "login", now - 1000), 0)])
    proc = ewsenv.processor(names, broker, redis, env_extra=env)
    try:
        ewsenv.wait_for(lambda: disengaged(broker, names, "u-idle"), 60,
                        "USER_DISENGAGED from the idle clock")
        firing = disengaged(broker, names, "u-idle")
        assert [a["status"] for a in firing] == ["FIRING"]
        # at the deadline in event time: last activity + the inactivity
        assert ewsenv.millis(firing[0]["event_time"]) == \
            now - 1000 + INACTIVITY_S * 1000
        before = watermarks(redis, names)
        # advanced past the last event by the wall clock, and stored
        assert before[0] >= now - 1000 + INACTIVITY_S * 1000
    finally:
        ewsenv.stop(proc)
    assert proc.returncode == 0

    # a restart in event time, with a late event on the same partition:
    # the watermark stays where the idle clock had taken it
    ewsenv.produce(broker, names.usage, [
        (b"u-late", usage_event(sch, 0, "u-late", "login", now - 60000), 0)])
    env["EWS_TIME_MODE"] = "event"
    err = ewsenv.run_processor_to_end(names, broker, redis, env_extra=env)
    assert " consumed=1 " in err.strip().splitlines()[-1], err[-2000:]
    assert ewsenv.inspect(names, broker, redis, "user", "u-late") is not None
    after = watermarks(redis, names)
    assert after.keys() == before.keys()
    assert all(after[p] >= before[p] for p in before), (before, after)
    # and nothing fired twice
    assert [a["status"] for a in disengaged(broker, names, "u-idle")] == \
        ["FIRING"]


HOUR = 3600000


def fence_offsets(redis, names):
    """Stored next offset per usage partition."""
    out = {}
    for key in redis.cli("--scan", "--pattern",
                         f"{names.prefix}p:{names.usage}:*").split():
        value = redis.cli("HGET", key, "offset").strip()
        if value:
            out[int(key.rsplit(":", 1)[1])] = int(value)
    return out


def test_event_mode_partition_between_events_waits(redis, names):
    """time.mode event, live input: a partition read to its end is only
    between two events, so it must not take the others' watermark (and
    fire its users' timers early) before time.idle.timeout or the end of
    the input. The same events then give the alerts a backfill gives."""
    broker = ewsenv.Broker([(names.usage, 2), (names.campaign, 1)])
    sch = ewsenv.schema("usage_event.avsc")
    env = {"EWS_TIME_ALLOWED_LATENESS": "0s",
           "EWS_RULES_USER_DISENGAGED_INACTIVITY": "1h"}
    t0 = int(time.time() * 1000) - 30 * 24 * HOUR
    # partition 0 runs ten hours ahead; partition 1 is at t0 + 1 min
    ewsenv.produce(broker, names.usage, [
        (b"u-far", usage_event(sch, 0, "u-far", "trial_started", t0), 0),
        (b"u-far", usage_event(sch, 1, "u-far", "login", t0 + 10 * HOUR), 0),
        (b"u-near", usage_event(sch, 0, "u-near", "trial_started", t0), 1),
        (b"u-near", usage_event(sch, 1, "u-near", "login", t0 + 60000), 1)])
    proc = ewsenv.processor(names, broker, redis, env_extra=env)
    try:
        ewsenv.wait_for(lambda: fence_offsets(redis, names) == {0: 2, 1: 2},
                        60, "both partitions applied")
        time.sleep(4)  # four ticks at its end
        assert watermarks(redis, names)[1] == t0 + 60000
        assert disengaged(broker, names, "u-near") == []
        # its next event, within the hour after its last
        ewsenv.produce(broker, names.usage, [
            (b"u-near", usage_event(sch, 2, "u-near", "login",
                                    t0 + 30 * 60000), 1)])
        ewsenv.wait_for(lambda: fence_offsets(redis, names)[1] == 3, 60,
                        "the next event applied")
    finally:
        ewsenv.stop(proc)
    try:
        # the input has ended: now partition 1 follows, and u-near's
        # timer fires once, an hour after its last event
        ewsenv.run_processor_to_end(names, broker, redis, env_extra=env)
        firing = disengaged(broker, names, "u-near")
        assert [(a["status"], ewsenv.millis(a["event_time"]))
                for a in firing] == [("FIRING", t0 + 90 * 60000)]
        assert watermarks(redis, names)[1] == t0 + 10 * HOUR

        # live again with a short time.idle.timeout: a quiet partition
        # follows once it has had nothing new for that long
        ewsenv.produce(broker, names.usage, [
            (b"u-far", usage_event(sch, 2, "u-far", "login", t0 + 20 * HOUR),
             0)])
        env["EWS_TIME_IDLE_TIMEOUT"] = "2s"
        proc = ewsenv.processor(names, broker, redis, env_extra=env)
        try:
            ewsenv.wait_for(
                lambda: watermarks(redis, names).get(1) == t0 + 20 * HOUR,
                60, "partition 1 following after time.idle.timeout")
        finally:
            ewsenv.stop(proc)
    finally:
        broker.close()


def test_a_timer_read_before_its_deadline_is_filed_again(broker, redis,
                                                        names):
    """Timers are filed by the hour and a deadline that moves later within
    its hour keeps its entry. Once the watermark passes that entry, the
    user comes in early; its entry must then move to the real deadline, or
    every later batch reads the user again until it is due (a live stream
    of such users made each batch load more than it processed)."""
    sch = ewsenv.schema("usage_event.avsc")
    env = {"EWS_TIME_ALLOWED_LATENESS": "0s",
           "EWS_RULES_USER_DISENGAGED_INACTIVITY": "20m"}
    minute = 60000
    t0 = (int(time.time() * 1000) - 30 * 24 * HOUR) // HOUR * HOUR
    key = f"{names.prefix}t:{names.usage}:0:{t0 // HOUR}"

    def run(*events):
        ewsenv.produce(broker, names.usage, [
            (user.encode(), usage_event(sch, i, user, kind, ms), 0)
            for i, user, kind, ms in events])
        ewsenv.run_processor_to_end(names, broker, redis, env_extra=env)

    def filed(user):
        return redis.cli("ZSCORE", key, user).strip()

    run((0, "u-a", "trial_started", t0))
    assert filed("u-a") == str(20 * minute)
    run((1, "u-a", "login", t0 + 10 * minute))
    assert filed("u-a") == str(20 * minute)  # later in its hour: kept
    # the watermark passes the entry, not the deadline: filed again
    run((0, "u-b", "trial_started", t0 + 25 * minute))
    assert filed("u-a") == str(30 * minute)
    # and it fires at its deadline
    run((1, "u-b", "login", t0 + 40 * minute))
    firing = disengaged(broker, names, "u-a")
    assert [(a["status"], ewsenv.millis(a["event_time"]))
            for a in firing] == [("FIRING", t0 + 30 * minute)]


def test_a_batch_takes_what_has_arrived(broker, redis, names):
    """kafka.batch.wait is the longest wait for a batch's first message,
    not for a full batch: with a wait of a minute and room for 100,000, a
    lone live event is applied as soon as it arrives (librdkafka's batch
    call alone would hold it for the whole minute)."""
    sch = ewsenv.schema("usage_event.avsc")
    env = {"EWS_KAFKA_BATCH_WAIT": "60s", "EWS_KAFKA_BATCH_MAX": "100000"}
    proc = ewsenv.processor(names, broker, redis, env_extra=env)
    try:
        ewsenv.wait_for(lambda: redis.cli("--scan", "--pattern",
                                          f"{names.prefix}p:{names.usage}:*"),
                        60, "the partitions assigned")
        time.sleep(1)  # the first wait under way
        now = int(time.time() * 1000)
        ewsenv.produce(broker, names.usage, [
            (b"u-1", usage_event(sch, 0, "u-1", "login", now), 0)])
        # far less than the minute a full batch would have waited
        ewsenv.wait_for(lambda: fence_offsets(redis, names).get(0) == 1, 20,
                        "the event applied")
    finally:
        ewsenv.stop(proc)


def batch_counts(port):
    """ews_batch_messages' _count and _sum from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                timeout=5) as resp:
        text = resp.read().decode()
    return tuple(int(float(re.search(rf"^ews_batch_messages_{what} (\S+)$",
                                     text, re.M).group(1)))
                 for what in ("count", "sum"))


def test_a_batch_lingers_for_what_follows(broker, redis, names):
    """kafka.batch.linger: once a batch has its first message it keeps
    filling that long. Two events a second apart, with a linger of 5 s,
    are one batch of two; without a linger they are two batches."""
    sch = ewsenv.schema("usage_event.avsc")
    for linger, batches in (("5s", 1), ("0s", 2)):
        port = ewsenv.free_port()
        # a group and state of its own, from the end of the topic
        env = {"EWS_KAFKA_BATCH_LINGER": linger, "EWS_HTTP_PORT": str(port),
               "EWS_REDIS_PREFIX": f"{names.prefix}{linger}:",
               "EWS_KAFKA_GROUP_ID": f"linger-{linger}",
               "EWS_KAFKA_AUTO_OFFSET_RESET": "latest"}
        proc = ewsenv.processor(names, broker, redis, env_extra=env)
        try:
            ewsenv.wait_for(lambda: redis.cli(
                "--scan", "--pattern",
                f"{names.prefix}{linger}:p:{names.usage}:*"), 60,
                "the partitions assigned")
            time.sleep(1)
            assert batch_counts(port) == (0, 0)
            now = int(time.time() * 1000)
            for i in range(2):
                ewsenv.produce(broker, names.usage, [
                    (b"u-l", usage_event(sch, f"{linger}-{i}", "u-l", "login",
                                         now + i), 0)])
                time.sleep(1)
            ewsenv.wait_for(lambda: batch_counts(port)[1] == 2, 30,
                            "both events consumed")
            assert batch_counts(port) == (batches, 2)
        finally:
            ewsenv.stop(proc)
