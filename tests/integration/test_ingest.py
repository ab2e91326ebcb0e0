"""Ingest as platform teams produce it: the Schema Registry wire format with
evolving writers, raw Avro, JSON; bad input goes to the dead-letter topic
and never stops the stream; a registry outage pauses, it is not bad input.
Events are encoded by Debian's python3-avro, an implementation independent
of avro-c."""

import json
import math
import os
import signal
import struct
import subprocess
import time

import redis as redis_py

import ewsenv
from registry import Registry

T0 = 1767225600000
SCHEMAS = {
    1: os.path.join(ewsenv.SCHEMAS, "usage_event.avsc"),
    2: os.path.join(ewsenv.ROOT, "tests/schemas/usage_event_v2_added.avsc"),
    3: os.path.join(ewsenv.ROOT, "tests/schemas/usage_event_v2_removed.avsc"),
    4: os.path.join(ewsenv.ROOT, "tests/schemas/usage_event_incompatible.avsc"),
}


def schema_text(sid):
    with open(SCHEMAS[sid]) as f:
        return f.read()


def event(i, user, etype="login", **extra):
    e = {"event_id": f"e-{user}-{i}", "user_id": user, "account_id": None,
         "event_type": etype, "product": None, "value": None,
         "campaign_id": None, "occurred_at": ewsenv.utc(T0 + i * 60000),
         "attributes": {}}
    e.update(extra)
    return e


def wire(sid, datum):
    """The registry's wire format: byte 0, big-endian id, Avro binary."""
    from avro.schema import parse
    body = ewsenv.avro_encode(parse(schema_text(sid)), datum)
    return b"\0" + struct.pack(">i", sid) + body


def registry_env(registry, fmt="confluent"):
    return {"EWS_DECODE_USAGE_FORMAT": fmt,
            "EWS_DECODE_REGISTRY_URL": registry.url if registry else "",
            "EWS_DECODE_REGISTRY_TIMEOUT": "500ms"}


def events_of(names, broker, redis, user):
    state = ewsenv.inspect(names, broker, redis, "user", user)
    return state["events"] if state else 0


def dead_letters(broker, names):
    return [(k, v, {h: x.decode() for h, x in hs.items()})
            for k, v, hs in ewsenv.consume_all(broker, names.dlq)]


def test_registry_writers_evolve(broker, redis, names):
    registry = Registry({sid: schema_text(sid) for sid in SCHEMAS})
    try:
        v2 = event(2, "u-2")
        v2["session_id"] = "s-1"
        v3 = event(3, "u-3")
        del v3["product"]
        messages = [(b"u-1", wire(1, event(1, "u-1"))),
                    (b"u-2", wire(2, v2)),              # field added
                    (b"u-3", wire(3, v3)),              # field removed
                    (b"u-4", wire(4, dict(event(4, "u-4"), user_id=4))),
                    (b"u-1", wire(1, event(5, "u-1")))]
        ewsenv.produce(broker, names.usage, messages)
        err = ewsenv.run_processor_to_end(names, broker, redis,
                                          env_extra=registry_env(registry))
        assert "decoded=4 dead_letters=1 " in err, err[-1500:]
        assert events_of(names, broker, redis, "u-1") == 2
        assert events_of(names, broker, redis, "u-2") == 1
        assert events_of(names, broker, redis, "u-3") == 1
        (key, value, headers), = dead_letters(broker, names)
        assert key == b"u-4" and value == messages[3][1]
        assert headers["ews.error.reason"] == "incompatible_schema"
        assert "user_id" in headers["ews.error.detail"]
        # each id was asked for once, however many messages carried it
        assert sorted(registry.requests) == [f"/schemas/ids/{i}"
                                             for i in (1, 2, 3, 4)]
    finally:
        registry.close()


def test_raw_avro_with_a_configured_writer_schema(broker, redis, names):
    from avro.schema import parse
    v3 = parse(schema_text(3))
    e = event(1, "u-1")
    del e["product"]
    ewsenv.produce(broker, names.usage,
                   [(b"u-1", ewsenv.avro_encode(v3, e))])
    ewsenv.run_processor_to_end(
        names, broker, redis,
        env_extra={"EWS_DECODE_USAGE_WRITER_SCHEMA": SCHEMAS[3]})
    assert events_of(names, broker, redis, "u-1") == 1


def test_json_by_hand(broker, redis, names):
    lines = [{"event_id": "j-1", "user_id": "u-j", "event_type": "trial_started",
              "campaign_id": "c-j", "occurred_at": "2026-01-01T00:00:00Z",
              "attributes": {"company_size": "200"}},
             {"event_id": "j-2", "user_id": "u-j", "event_type": "video_play",
              "value": 0.5, "occurred_at": T0 + 60000}]
    # as kcat -P would send them: one object per message
    subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", names.usage,
                    "-K", "\t"], check=True, text=True,
                   input="".join(f"u-j\t{json.dumps(x)}\n" for x in lines))
    ewsenv.run_processor_to_end(names, broker, redis,
                                env_extra={"EWS_DECODE_USAGE_FORMAT": "json"})
    state = ewsenv.inspect(names, broker, redis, "user", "u-j")
    assert state["events"] == 2
    assert state["fit"] == 10
    assert state["campaign_id"] == "c-j"
    assert math.isclose(state["engagement"]["score"],
                        5 * 2 ** (-60000 / (7 * 86400000)) + 3, rel_tol=1e-9)


def test_longest_ids_and_names_kept_whole(broker, redis, names):
    """A batch keeps its events compact until their partition is applied:
    ids of 127 bytes and names of 63 (the longest accepted) must come out
    whole, attributes with them; ids that differ only in their last byte
    must stay apart."""
    def long_id(tag, n=127):
        return (tag + "-" * n)[:n]

    user, account, campaign = long_id("user"), long_id("acct"), long_id("camp")
    product = long_id("prod", 63)
    first = long_id("event", 126) + "1"
    lines = [{"event_id": first, "user_id": user, "account_id": account,
              "event_type": "trial_started", "campaign_id": campaign,
              "occurred_at": T0, "attributes": {"company_size": "200"}},
             {"event_id": long_id("event", 126) + "2", "user_id": user,
              "event_type": "feature_used", "product": product,
              "occurred_at": T0 + 60000},
             # the first again: a duplicate, not counted
             {"event_id": first, "user_id": user,
              "event_type": "trial_started", "occurred_at": T0}]
    subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", names.usage,
                    "-K", "\t"], check=True, text=True,
                   input="".join(f"{user}\t{json.dumps(x)}\n" for x in lines))
    ewsenv.run_processor_to_end(names, broker, redis,
                                env_extra={"EWS_DECODE_USAGE_FORMAT": "json"})
    state = ewsenv.inspect(names, broker, redis, "user", user)
    assert len(user) == 127 and len(product) == 63
    assert state["user_id"] == user
    assert state["events"] == 2
    assert state["account_id"] == account
    assert state["campaign_id"] == campaign
    assert state["fit"] == 10
    assert [x["name"] for x in state["interest"]] == [product]
    assert {x["name"] for x in state["top_contributors"]} == {
        "trial_started", "feature_used"}


def malformed():
    """(format, payload, reason): at least one of every kind."""
    from avro.schema import parse
    ok = parse(schema_text(1))
    good = ewsenv.avro_encode(ok, event(0, "u-x"))
    hdr = b"\0" + struct.pack(">i", 1)
    return [
        ("confluent", hdr + good[:-4], "truncated"),
        ("confluent", hdr + b"\x01", "bad_length"),           # length -1
        ("confluent", hdr + b"\x80\x80\x80\x80\x80\x80\x80\x40", "bad_length"),
        ("confluent", b"\0" + struct.pack(">i", 77) + good, "unknown_schema"),
        ("confluent", wire(4, dict(event(0, "u-x"), user_id=3)),
         "incompatible_schema"),
        ("confluent", b"\x01" + struct.pack(">i", 1) + good, "bad_magic"),
        ("confluent", b"\0\0", "bad_magic"),
        ("confluent", hdr + ewsenv.avro_encode(ok, event(0, "")),
         "missing_field"),
        ("confluent", hdr + ewsenv.avro_encode(ok, event(0, "u-x",
                                                         occurred_at=ewsenv.utc(
                                                             int(time.time() * 1000) + 7 * 86400000))),
         "future_timestamp"),
        ("confluent", hdr + ewsenv.avro_encode(ok, event(0, "u-x",
                                                         occurred_at=ewsenv.utc(T0 // 1000))),
         "bad_timestamp"),
        ("confluent", hdr + ewsenv.avro_encode(ok, event(0, "u" * 200)),
         "id_too_long"),
        ("confluent", hdr + good + b"\0", "trailing_bytes"),
        ("confluent", hdr + good[:8] + b"\x0e" + good[9:], "bad_index"),
        ("confluent", b"", "empty"),
        ("confluent", hdr + ewsenv.avro_encode(ok, event(0, "u-x",
                                                         value=float("nan"))),
         "bad_value"),
        ("json", b'{"event_id": "j", "user_id"', "bad_json"),
        ("json", b'{"event_id": "j", "event_type": "login", '
                 b'"occurred_at": 1767225600000}', "missing_field"),
        ("json", b'{"event_id": "j", "user_id": "u", "event_type": "x", '
                 b'"occurred_at": "noon"}', "bad_timestamp"),
    ]


def test_bad_input_is_dead_lettered_and_the_stream_goes_on(broker, redis,
                                                           names):
    registry = Registry({sid: schema_text(sid) for sid in SCHEMAS})
    try:
        cases = malformed()
        for fmt in ("confluent", "json"):
            run = ewsenv.Names(f"bad-input-{fmt}")
            messages, want = [], []
            for i, (f, payload, reason) in enumerate(c for c in cases
                                                     if c[0] == fmt):
                good = event(i, "u-good")
                messages.append((b"u-good", wire(1, good) if fmt == "confluent"
                                 else json.dumps(dict(
                                     good, occurred_at=T0 + i)).encode()))
                messages.append((f"bad-{i}".encode(), payload))
                want.append((f"bad-{i}".encode(), reason, payload))
            ewsenv.produce(broker, run.usage, messages)
            err = ewsenv.run_processor_to_end(run, broker, redis,
                                              env_extra=registry_env(registry,
                                                                     fmt))
            assert f"dead_letters={len(want)} " in err, err[-1500:]
            got = sorted((k, h["ews.error.reason"], v)
                         for k, v, h in dead_letters(broker, run))
            assert got == sorted(want)
            for _, _, h in dead_letters(broker, run):
                assert h["ews.source.topic"] == run.usage
                assert h["ews.error.detail"]
            # every valid event around them was scored
            assert events_of(run, broker, redis, "u-good") == len(want)
        kinds = {reason for _, _, reason in cases}
        assert len(kinds) >= 12, kinds
    finally:
        registry.close()


def test_registry_outage_pauses_and_loses_nothing(broker, redis, names):
    registry = Registry({sid: schema_text(sid) for sid in SCHEMAS})
    client = redis_py.Redis(port=redis.port)
    proc = None

    def applied():
        return sum(int(client.hget(k, "offset") or 0)
                   for k in client.scan_iter(f"{names.prefix}p:{names.usage}:*"))

    try:
        first = [(b"u-1", wire(1, event(i, "u-1"))) for i in range(5)]
        ewsenv.produce(broker, names.usage, first)
        proc = ewsenv.processor(names, broker, redis, stderr=subprocess.PIPE,
                                env_extra=registry_env(registry))
        ewsenv.wait_for(lambda: applied() == 5, 60, "the first events")

        registry.stop()  # down: connections refused
        second = [(b"u-1", wire(2, dict(event(10 + i, "u-1"), session_id="s")))
                  for i in range(5)]
        ewsenv.produce(broker, names.usage, second)
        time.sleep(4)  # several retries' worth
        assert applied() == 5, "went past a message it could not decode"
        assert proc.poll() is None

        registry.start()  # back on the same port
        ewsenv.wait_for(lambda: applied() == 10, 60, "the rest after the outage")
        assert events_of(names, broker, redis, "u-1") == 10
        assert dead_letters(broker, names) == []
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            assert "paused at" in err, err[-2000:]
        registry.close()
