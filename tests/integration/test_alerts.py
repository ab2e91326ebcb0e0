"""Alert delivery: the outbox between the Redis commit and Kafka."""

import os
import signal

import ewsenv


def test_kill_between_commit_and_delivery_loses_no_alert(broker, redis, names,
                                                         tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "5", "--campaigns", "2", "--days", "8"])
    # A producer that holds every message for ten minutes: the commits
    # happen, the deliveries cannot.
    with open(os.path.join(ewsenv.ROOT, "config", "ews.yaml")) as f:
        conf = f.read().replace("  producer:\n",
                                "  producer:\n    linger.ms: 600000\n")
    held = tmp_path / "held.yaml"
    held.write_text(conf)
    outbox = f"{names.prefix}o:{names.usage}:*"

    def pending():
        ids = set()
        for key in redis.cli("--scan", "--pattern", outbox).split():
            ids |= set(redis.cli("HKEYS", key).split())
        return ids

    proc = ewsenv.processor(names, broker, redis, ["-c", str(held)])
    try:
        ewsenv.wait_for(lambda: len(pending()) >= 10, 60,
                        "alerts committed to the outbox")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        ewsenv.stop(proc)
    committed = pending()
    assert ewsenv.consume_all(broker, names.alerts, timeout=3) == []

    ewsenv.run_processor_to_end(names, broker, redis)
    sch = ewsenv.schema("alert.avsc")
    sent = {ewsenv.avro_decode(sch, value)["alert_id"]
            for _, value, _ in ewsenv.consume_all(broker, names.alerts)}
    assert committed <= sent, sorted(committed - sent)[:5]
    # delivered, so deleted
    ewsenv.wait_for(lambda: not pending(), 20, "the outbox to empty")
