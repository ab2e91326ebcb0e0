"""Alert delivery: the outbox between the Redis commit and Kafka."""

import os
import re
import signal
import subprocess

import ewsenv


def producer_config(tmp_path, name, settings):
    """config/ews.yaml with settings added under kafka.producer."""
    with open(os.path.join(ewsenv.ROOT, "config", "ews.yaml")) as f:
        conf = f.read().replace("  producer:\n", "  producer:\n" + "".join(
            f"    {key}: {value}\n" for key, value in settings.items()))
    path = tmp_path / name
    path.write_text(conf)
    return str(path)


def outbox_ids(redis, names):
    """The record ids in the usage partitions' outboxes."""
    ids = set()
    for key in redis.cli("--scan", "--pattern",
                         f"{names.prefix}o:{names.usage}:*").split():
        ids |= set(redis.cli("HKEYS", key).split())
    return ids


def alert_ids(broker, topic):
    sch = ewsenv.schema("alert.avsc")
    return {ewsenv.avro_decode(sch, value)["alert_id"]
            for _, value, _ in ewsenv.consume_all(broker, topic)}


def restart_delivers(broker, redis, names, kept):
    """Nothing of kept is on the alert topic yet; a restart puts all of it
    there and, delivered, deletes it from the outbox."""
    assert ewsenv.consume_all(broker, names.alerts, timeout=3) == []
    ewsenv.run_processor_to_end(names, broker, redis)
    sent = alert_ids(broker, names.alerts)
    assert kept <= sent, sorted(kept - sent)[:5]
    ewsenv.wait_for(lambda: not outbox_ids(redis, names), 20,
                    "the outbox to empty")


def test_kill_between_commit_and_delivery_loses_no_alert(broker, redis, names,
                                                         tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "5", "--campaigns", "2", "--days", "8"])
    # A producer that holds every message for ten minutes: the commits
    # happen, the deliveries cannot.
    held = producer_config(tmp_path, "held.yaml", {
        "linger.ms": 600000, "message.timeout.ms": 1200000})

    port = ewsenv.free_port()
    proc = ewsenv.processor(names, broker, redis, ["-c", held],
                            env_extra={"EWS_HTTP_PORT": str(port)})
    try:
        ewsenv.wait_for(lambda: len(outbox_ids(redis, names)) >= 10, 60,
                        "alerts committed to the outbox")
        # what ops see: records waiting, none delivered
        ewsenv.wait_for(
            lambda: ewsenv.scrape(port).get("ews_outbox_records", 0) >= 10,
            10, "ews_outbox_records")
        metrics = ewsenv.scrape(port)
        assert metrics["ews_outbox_delivered_total"] == 0
        assert metrics["ews_outbox_sent_total"] >= 10
        assert metrics["ews_leader"] == 1
        assert metrics["ews_outbox_failures_total"] == 0
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        ewsenv.stop(proc)
    restart_delivers(broker, redis, names, outbox_ids(redis, names))


def test_undeliverable_alerts_stay_until_they_can_go(broker, redis, names,
                                                    tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "5", "--campaigns", "2", "--days", "8"])
    # The producer alone talks to a port where nothing listens: every
    # delivery fails after 1.5 s.
    cut_off = producer_config(tmp_path, "cut-off.yaml", {
        "bootstrap.servers": f"127.0.0.1:{ewsenv.free_port()}",
        "message.timeout.ms": 1500})

    port = ewsenv.free_port()
    proc = ewsenv.processor(names, broker, redis, ["-c", cut_off],
                            env_extra={"EWS_HTTP_PORT": str(port),
                                       "EWS_OUTBOX_RESEND_INTERVAL": "1s"},
                            stderr=subprocess.DEVNULL)
    try:
        # failed, kept, counted, and sent again
        ewsenv.wait_for(
            lambda: (lambda m: m.get("ews_outbox_failures_total", 0) >= 10
                     and m.get("ews_outbox_resent_total", 0) >= 1
                     and m.get("ews_outbox_records", 0) >= 10)(
                ewsenv.scrape(port)), 90, "failed deliveries sent again")
        assert ewsenv.scrape(port)["ews_outbox_delivered_total"] == 0
    finally:
        ewsenv.stop(proc)
    assert proc.returncode == 0
    kept = outbox_ids(redis, names)
    assert len(kept) >= 10
    # the cause fixed: a restart delivers what was kept, then deletes it
    restart_delivers(broker, redis, names, kept)


def test_replay_gives_the_same_alert_ids(broker, redis, names, tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "11", "--campaigns", "3", "--poor-campaigns",
                    "1", "--days", "14"])
    runs = {}
    # the same input from empty state: cut into batches of 2000 and of 7,
    # and shared by two instances of one group
    for run, instances, batch in (("b2000", 1, "2000"), ("b7", 1, "7"),
                                  ("two", 2, "50")):
        replay = ewsenv.Names(f"{names.prefix[:-1]}-{run}")
        replay.usage, replay.campaign = names.usage, names.campaign
        env = {"EWS_KAFKA_BATCH_MAX": batch}
        procs = [ewsenv.processor(replay, broker, redis, ["--exit-at-end"],
                                  env_extra=env, stderr=subprocess.PIPE)
                 for _ in range(instances)]
        try:
            errs = [p.communicate(timeout=180)[1] for p in procs]
        finally:
            for p in procs:
                ewsenv.stop(p)
        assert [p.returncode for p in procs] == [0] * instances, errs
        # both instances owned partitions and consumed from them
        reports = [e.strip().splitlines()[-1] for e in errs]
        assert all(int(re.search(r" consumed=(\d+) ", r).group(1))
                   for r in reports), reports
        # at least once: a resend may repeat an id, never change one
        runs[run] = alert_ids(broker, replay.alerts)
    assert len(runs["b2000"]) > 50
    assert {a.split(":")[0] for a in runs["b2000"]} >= {
        "USER_DISENGAGED", "SALES_READY", "CAMPAIGN_UNDERPERFORMING"}
    assert runs["b7"] == runs["b2000"]
    assert runs["two"] == runs["b2000"]


def test_rules_routed_to_their_own_topics(broker, redis, names, tmp_path):
    """rules.<rule>.topic: SALES_READY and CAMPAIGN_UNDERPERFORMING each to a
    topic of its own, the rest to topics.alerts; each alert on its topic
    only, none lost."""
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "11", "--campaigns", "3", "--poor-campaigns",
                    "1", "--days", "14"])
    sales, campaigns = names.alerts + "-sales", names.alerts + "-campaigns"
    err = ewsenv.run_processor_to_end(names, broker, redis, env_extra={
        "EWS_RULES_SALES_READY_TOPIC": sales,
        "EWS_RULES_CAMPAIGN_UNDERPERFORMING_TOPIC": campaigns})
    # what the processor published, per rule: FIRING/RESOLVED
    report = err.strip().splitlines()[-1]
    published = {rule: int(f) + int(r) for rule, f, r in
                 re.findall(r" ([A-Z_]+)=(\d+)/(\d+)", report)}
    sch = ewsenv.schema("alert.avsc")
    rules = {}
    for topic in (names.alerts, sales, campaigns):
        alerts = {}
        for _, value, _ in ewsenv.consume_all(broker, topic):
            a = ewsenv.avro_decode(sch, value)
            alerts[a["alert_id"]] = a["rule"]
        rules[topic] = alerts
    assert set(rules[sales].values()) == {"SALES_READY"}, report
    assert set(rules[campaigns].values()) == {"CAMPAIGN_UNDERPERFORMING"}
    assert set(rules[names.alerts].values()) == {"USER_DISENGAGED"}, report
    # every published alert arrived, on its one topic
    for topic, rule in ((sales, "SALES_READY"),
                        (campaigns, "CAMPAIGN_UNDERPERFORMING"),
                        (names.alerts, "USER_DISENGAGED")):
        assert len(rules[topic]) == published[rule], (rule, report)
    ewsenv.wait_for(lambda: not outbox_ids(redis, names), 20,
                    "the outbox to empty")


def test_rule_topic_must_not_be_an_input(names, broker, redis):
    env = names.env(broker, redis)
    env["EWS_RULES_SALES_READY_TOPIC"] = names.usage
    proc = subprocess.run(
        [os.path.join(ewsenv.BUILD, "ews-processor"), "-c",
         os.path.join(ewsenv.ROOT, "config", "ews.yaml"), "--check-config"],
        env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().endswith(
        "ews.yaml: rules.sales.ready.topic: must differ from topics.usage"), \
        proc.stderr
