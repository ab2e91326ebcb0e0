"""Records Kafka refuses for good leave the outbox: a dead letter larger
than the dead-letter topic takes goes out truncated, with its headers and
one saying so; a record the broker refuses for good is parked, counted,
listed by `ews-inspect outbox`, and retried or dropped by hand, instead of
being sent again every resend interval forever."""

import json
import os
import subprocess
import time

import ewsenv
from test_ops import http, stop


def scenario(names, broker_extra=()):
    topics = [(names.usage, 1), (names.campaign, 1), (names.alerts, 1),
              (names.dlq, 1)]
    return names, ewsenv.Broker(topics, extra=broker_extra), ewsenv.Redis()


def produce_big(broker, topic, key, value):
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": broker.bootstrap,
                         "message.max.bytes": 4_000_000})
    producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def start(names, broker, redis):
    port = ewsenv.free_port()
    proc = ewsenv.processor(names, broker, redis, env_extra={
        "EWS_HTTP_PORT": str(port), "EWS_OUTBOX_RESEND_INTERVAL": "1s"},
        stderr=subprocess.PIPE)
    ewsenv.wait_for(lambda: http(port, "/healthz")[0] == 200, 30, "/healthz")
    return proc, port


def metric(port, name, default=0.0):
    return ewsenv.scrape(port).get(name, default)


def outbox(names, broker, redis, *args):
    """ews-inspect outbox ARGS: (exit code, JSON lines, stderr)."""
    p = subprocess.run([os.path.join(ewsenv.BUILD, "ews-inspect"), "outbox",
                        *args], env=names.env(broker, redis),
                       capture_output=True, text=True)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line]
    return p.returncode, lines, p.stderr


def test_an_oversized_dead_letter_goes_out_truncated_with_its_headers():
    names = ewsenv.Names("outbox-big")
    names, broker, redis = scenario(names, ["--max-request-bytes", "4000000"])
    value = bytes(range(256)) * 8192  # 2 MiB that decode refuses
    proc = None
    try:
        produce_big(broker, names.usage, b"big-key", value)
        proc, port = start(names, broker, redis)
        records = []
        deadline = time.monotonic() + 30
        while not records and time.monotonic() < deadline:
            records = ewsenv.consume_records(broker, names.dlq, timeout=2)
        assert len(records) == 1, "the dead letter never arrived"
        r = records[0]
        assert r["key"] == b"big-key"
        assert r["headers"]["ews.truncated"] == str(len(value)).encode()
        assert 0 < len(r["value"]) < 1_000_000
        assert value.startswith(r["value"])
        for h in ("ews.error.reason", "ews.error.detail", "ews.source.topic",
                  "ews.source.partition", "ews.source.offset",
                  "ews.source.timestamp"):
            assert h in r["headers"], (h, r["headers"])
        assert r["headers"]["ews.source.topic"] == names.usage.encode()
        assert r["headers"]["ews.source.offset"] == b"0"
        ewsenv.wait_for(lambda: metric(port, "ews_outbox_records", -1) == 0,
                        10, "an empty outbox")
        assert metric(port, "ews_outbox_parked_records") == 0
    finally:
        try:
            code, err = stop(proc) if proc else (0, "")
        finally:
            broker.close()
            redis.close()
    assert code == 0, err[-2000:]


def test_a_refused_record_is_parked_listed_retried_and_dropped():
    # The broker answers the dead-letter topic's first three produce
    # requests with MESSAGE_TOO_LARGE, as a topic with a smaller
    # max.message.bytes would: a permanent error in librdkafka's terms.
    names = ewsenv.Names("outbox-parked")
    names, broker, redis = scenario(names, [
        "--refuse-produce", f"{names.dlq}:MSG_SIZE_TOO_LARGE:3"])
    first = f"dlq:{names.usage}:0:0"
    second = f"dlq:{names.usage}:0:1"
    parked_total = 'ews_outbox_parked_total{reason="too_large"}'
    proc = None
    try:
        ewsenv.produce(broker, names.usage, [(b"k1", b"not avro")])
        proc, port = start(names, broker, redis)

        # 1. Refused: parked, counted, not in the outbox, not resent.
        ewsenv.wait_for(lambda: metric(port, parked_total) == 1, 20,
                        "the refused dead letter parked")
        ewsenv.wait_for(
            lambda: metric(port, "ews_outbox_parked_records") == 1, 5,
            "the parked gauge")
        assert metric(port, "ews_outbox_records") == 0
        resent = metric(port, "ews_outbox_resent_total")
        failures = metric(port, "ews_outbox_failures_total")
        time.sleep(3.5)  # three resend intervals
        assert metric(port, "ews_outbox_resent_total") == resent
        assert metric(port, "ews_outbox_failures_total") == failures
        assert metric(port, parked_total) == 1

        rc, lines, err = outbox(names, broker, redis)
        assert rc == 0, err
        assert len(lines) == 1, lines
        rec = lines[0]
        assert rec["state"] == "parked" and rec["id"] == first, rec
        assert rec["outbox"] == f"{names.usage}:0"
        assert rec["kind"] == "dead_letter" and rec["bytes"] == len(b"not avro")
        assert rec["code"] == "MSG_SIZE_TOO_LARGE", rec
        assert "too large" in rec["error"].lower(), rec
        assert rec["parked"].endswith("Z"), rec

        # 2. Retried while the broker still refuses: parked again.
        rc, lines, err = outbox(names, broker, redis, "retry", first)
        assert rc == 0, err
        assert lines == [{"outbox": f"{names.usage}:0", "id": first,
                          "retried": True}], lines
        ewsenv.wait_for(lambda: metric(port, parked_total) == 2, 20,
                        "parked again")

        # 3. A second refused record, dropped: gone, and logged.
        ewsenv.produce(broker, names.usage, [(b"k2", b"not avro either")])
        ewsenv.wait_for(lambda: metric(port, parked_total) == 3, 20,
                        "the second record parked")
        rc, lines, err = outbox(names, broker, redis)
        assert sorted(r["id"] for r in lines) == [first, second], lines
        rc, lines, err = outbox(names, broker, redis, "drop", second)
        assert rc == 0, err
        assert lines == [{"outbox": f"{names.usage}:0", "id": second,
                          "dropped": True}], lines
        assert second in err and "drop" in err.lower(), err
        rc, lines, err = outbox(names, broker, redis, "drop", second)
        assert rc == 1 and lines == [] and second in err, (rc, lines, err)

        # 4. The broker takes records again: --all delivers what is left.
        rc, lines, err = outbox(names, broker, redis, "retry", "--all")
        assert rc == 0, err
        assert [r["id"] for r in lines] == [first], lines
        ewsenv.wait_for(
            lambda: [r["key"] for r in
                     ewsenv.consume_records(broker, names.dlq, 2)] == [b"k1"],
            30, "the retried dead letter delivered")
        ewsenv.wait_for(
            lambda: metric(port, "ews_outbox_parked_records", -1) == 0 and
            metric(port, "ews_outbox_records", -1) == 0, 10,
            "empty outbox and parked set")
        assert outbox(names, broker, redis)[1] == []
        assert metric(port, parked_total) == 3
    finally:
        try:
            code, err = stop(proc) if proc else (0, "")
        finally:
            broker.close()
            redis.close()
    assert code == 0, err[-2000:]
