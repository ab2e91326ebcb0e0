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


def test_replay_gives_the_same_alert_ids(broker, redis, names, tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "11", "--campaigns", "3", "--poor-campaigns",
                    "1", "--days", "14"])
    sch = ewsenv.schema("alert.avsc")
    runs = []
    # the same input from empty state, cut into batches of 2000 and of 7
    for batch in ("2000", "7"):
        replay = ewsenv.Names(f"{names.prefix[:-1]}-b{batch}")
        replay.usage, replay.campaign = names.usage, names.campaign
        ewsenv.run_processor_to_end(replay, broker, redis,
                                    env_extra={"EWS_KAFKA_BATCH_MAX": batch})
        # at least once: a resend may repeat an id, never change one
        runs.append({
            ewsenv.avro_decode(sch, value)["alert_id"]
            for _, value, _ in ewsenv.consume_all(broker, replay.alerts)})
    assert len(runs[0]) > 50
    assert {a.split(":")[0] for a in runs[0]} >= {
        "USER_DISENGAGED", "SALES_READY", "CAMPAIGN_UNDERPERFORMING"}
    assert runs[0] == runs[1]
