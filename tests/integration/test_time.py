"""The idle clock: a topic that goes quiet still fires its timers, and what
it advanced is kept across a restart."""

import subprocess
import time

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
