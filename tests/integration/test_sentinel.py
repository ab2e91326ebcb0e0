"""Redis failover through Sentinel: a primary, a replica and three
sentinels (ewsenv.RedisFailover); the processor finds the primary through
the sentinels, the primary is killed with SIGKILL, a sentinel promotes the
replica, and the processor finds the new primary and goes on. The end
state (ews-inspect export, through the sentinels as well) and the alert ids
equal a run without the failover.

Replication is asynchronous: what the primary had not yet passed to its
replica is missing on the new primary, fences included, and is replayed.
The tests make that loss certain rather than a matter of timing: the
input comes in two halves, and before the second the replica stops
receiving (RedisFailover.stall_replication), so everything the second half
writes is on the primary alone when it is killed. With
redis.wait.replicas: 1 nothing of that is acknowledged (no Kafka offset
committed, no alert sent) until the new primary has a replica again.

Three sentinels with quorum 2, as deployed: finding each other takes about
2 s at the start, a failover about 2 s after the kill
(down-after-milliseconds 1000). The data nodes keep no files: a promotion
restarts nothing, and the killed primary comes back (rejoin) as an empty
replica that syncs in full."""

import json
import os
import subprocess

import pytest
import redis as redis_py
from confluent_kafka import Consumer, Producer, TopicPartition

import ewsenv
from test_alerts import alert_ids
from test_state import close

WAIT_ENV = {"EWS_REDIS_WAIT_REPLICAS": "1", "EWS_REDIS_WAIT_TIMEOUT": "200ms"}
# Kafka's committed offsets are what "acknowledged" means here: commit
# them soon after they are stored.
FAST_COMMIT = ["-X", "auto.commit.interval.ms=100"]


def export(names, broker, redis):
    """Every subject's state, as ews-inspect export has it."""
    proc = subprocess.run(
        [os.path.join(ewsenv.BUILD, "ews-inspect"), "export"],
        env=names.env(broker, redis), capture_output=True, text=True,
        timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["kind"] == "fences" and lines[-1]["kind"] == "end"
    return {(s["kind"], s["id"]): s["state"] for s in lines[1:-1]}


def fences(port, names, topics):
    """(topic, partition) -> the fence's next offset on that Redis."""
    client = redis_py.Redis(port=port)
    return {(t, p): int(client.hget(f"{names.prefix}p:{t}:{p}", "offset")
                        or 0)
            for t, count in topics.items() for p in range(count)}


def outbox_empty(port, names):
    """Every alert committed so far is delivered: no outbox holds one."""
    client = redis_py.Redis(port=port)
    return not any(client.scan_iter(f"{names.prefix}o:*", count=1000))


def committed(broker, names, topics):
    """(topic, partition) -> the group's committed offset (0: none)."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap,
                         "group.id": names.group,
                         "enable.auto.commit": False})
    try:
        got = consumer.committed([TopicPartition(t, p)
                                  for t, count in topics.items()
                                  for p in range(count)], timeout=10)
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in got}


@pytest.fixture(scope="module")
def scenario(broker, tmp_path_factory):
    """A generated input in topics of its own, and the state and alert ids
    of a run over it without a failover."""
    names = ewsenv.Names("sentinel-input")
    truth = ewsenv.run_gen(names, broker,
                           str(tmp_path_factory.mktemp("truth") / "truth"),
                           ["--seed", "41", "--campaigns", "3", "--days",
                            "6"])
    records = {t: ewsenv.consume_records(broker, t)
               for t in (names.usage, names.campaign)}
    reference = ewsenv.Redis()
    try:
        ewsenv.run_processor_to_end(names, broker, reference)
        want = export(names, broker, reference)
    finally:
        reference.close()
    want_alerts = alert_ids(broker, names.alerts)
    assert want and want_alerts, "the scenario made no state or no alert"
    return truth, records, want, want_alerts


def copy(broker, records, names, half):
    """The scenario's first (half=0) or second (half=1) half of every
    partition into names' topics, partitions and order kept."""
    producer = Producer({"bootstrap.servers": broker.bootstrap,
                         "enable.idempotence": True})
    for source, topic in zip(records, (names.usage, names.campaign)):
        by_partition = {}
        for r in records[source]:
            by_partition.setdefault(r["partition"], []).append(r)
        for p, rs in sorted(by_partition.items()):
            rs.sort(key=lambda r: r["offset"])
            for r in (rs[:len(rs) // 2], rs[len(rs) // 2:])[half]:
                producer.produce(topic, key=r["key"], value=r["value"],
                                 partition=p, timestamp=r["timestamp"],
                                 headers=list(r["headers"].items()))
    assert producer.flush(30) == 0


def per_partition(records):
    """(source topic, partition) -> its records."""
    out = {}
    for topic, rs in records.items():
        for r in rs:
            out[topic, r["partition"]] = out.get((topic, r["partition"]),
                                                 0) + 1
    return out


def partition_counts(records, names):
    return {topic: 1 + max(r["partition"] for r in records[source])
            for source, topic in zip(records, (names.usage, names.campaign))}


def run_failover(broker, names, scenario, tmp_path, env_extra):
    """The failover run: returns what was seen at the kill, the log, and
    the end state."""
    truth, records, want, want_alerts = scenario
    topics = partition_counts(records, names)
    total = sum(len(rs) for rs in records.values())
    first = sum(n // 2 for n in per_partition(records).values())
    failover = ewsenv.RedisFailover()
    http_port = ewsenv.free_port()
    log = open(tmp_path / "processor.log", "w+")
    proc = None
    seen = {}
    try:
        copy(broker, records, names, 0)
        proc = ewsenv.processor(names, broker, failover, FAST_COMMIT,
                                env_extra={"EWS_KAFKA_BATCH_MAX": "20",
                                           "EWS_HTTP_PORT": str(http_port),
                                           **env_extra},
                                stderr=log)
        ewsenv.wait_for(lambda: sum(fences(failover.port, names,
                                           topics).values()) == first
                        or proc.poll() is not None, 60,
                        "the first half applied")
        assert proc.poll() is None, "the processor stopped"
        ewsenv.wait_for(lambda: outbox_empty(failover.port, names), 30,
                        "the first half's alerts delivered")
        failover.stall_replication()
        seen["alerts_at_stall"] = alert_ids(broker, names.alerts)
        copy(broker, records, names, 1)
        if env_extra:
            # WAIT falls short: the commits are on the primary alone and
            # go back to their fences, again and again
            ewsenv.wait_for(lambda: "replicas acknowledged" in
                            open(log.name).read(), 30, "a WAIT shortfall")
        else:
            ewsenv.wait_for(lambda: sum(fences(failover.port, names,
                                               topics).values()) == total,
                            30, "the second half applied on the primary")
            ewsenv.wait_for(lambda: sum(committed(broker, names,
                                                  topics).values()) ==
                            total, 30, "the second half acknowledged")
        seen["primary"] = fences(failover.port, names, topics)
        seen["committed"] = committed(broker, names, topics)
        seen["alerts_at_kill"] = alert_ids(broker, names.alerts)
        failover.kill_primary()
        seen["replica"] = fences(failover.replica.port, names, topics)
        seen["promoted_s"] = failover.wait_promoted()
        if env_extra:
            # with no replica every WAIT falls short: one comes back
            failover.rejoin()
        ewsenv.wait_for(lambda: sum(fences(failover.port, names,
                                           topics).values()) == total
                        or proc.poll() is not None, 60,
                        "everything applied on the new primary")
        assert proc.poll() is None, "the processor stopped"
        ewsenv.wait_for(lambda: ewsenv.scrape(http_port).get(
            "ews_redis_failovers_total") == 1, 10, "the failover counted")
        seen["metrics"] = ewsenv.scrape(http_port)
        ewsenv.stop(proc)
        assert proc.returncode == 0
        seen["state"] = export(names, broker, failover)
        seen["alerts"] = alert_ids(broker, names.alerts)
    finally:
        if proc:
            ewsenv.stop(proc)
        failover.close()
        log.seek(0)
        seen["log"] = log.read()
        log.close()
    seen["first"], seen["total"] = first, total
    return seen


def test_failover_replays_what_async_replication_lost(broker, scenario,
                                                      tmp_path):
    names = ewsenv.Names("sentinel-async")
    seen = run_failover(broker, names, scenario, tmp_path, {})
    _, _, want, want_alerts = scenario
    # The second half was applied and acknowledged on the primary alone:
    # the new primary's fences are behind what Kafka holds as committed.
    assert sum(seen["primary"].values()) == seen["total"]
    assert sum(seen["replica"].values()) == seen["first"]
    assert any(seen["committed"][k] > seen["replica"][k]
               for k in seen["committed"]), seen
    assert "redis primary 'ews' moved from" in seen["log"], seen["log"]
    assert seen["metrics"]["ews_redis_wait_shortfalls_total"] == 0
    assert "(sentinel 127.0.0.1:" in seen["log"]
    # ... and replayed from those fences: nothing lost, nothing twice
    close(seen["state"], want)
    assert seen["alerts"] == want_alerts


def test_wait_replicas_acknowledges_nothing_a_failover_loses(broker, scenario,
                                                             tmp_path):
    names = ewsenv.Names("sentinel-wait")
    seen = run_failover(broker, names, scenario, tmp_path, WAIT_ENV)
    _, _, want, want_alerts = scenario
    # The primary had writes its replica never got ...
    assert sum(seen["primary"].values()) > sum(seen["replica"].values())
    # ... none of them acknowledged: no offset committed past the
    # replica's fences, no alert sent while the replica was behind
    assert all(seen["committed"][k] <= seen["replica"][k]
               for k in seen["committed"]), seen
    assert seen["alerts_at_kill"] == seen["alerts_at_stall"]
    assert seen["alerts"] > seen["alerts_at_kill"], \
        "the second half sends no alert: the check above proves nothing"
    assert "1 replicas acknowledged" in seen["log"]
    assert seen["metrics"]["ews_redis_wait_shortfalls_total"] > 0
    close(seen["state"], want)
    assert seen["alerts"] == want_alerts


def test_a_sentinel_naming_a_replica_is_passed_over(broker):
    """A sentinel that names a server answering ROLE as a replica (a
    primary demoted by a failover it has not heard of; here one monitoring
    the replica) is passed over for the next, and the tools connect to the
    primary the next one names."""
    failover = ewsenv.RedisFailover(sentinels=1)
    behind = ewsenv.Sentinel(failover.master_name, failover.replica.port,
                             quorum=1, down_after_ms=60000,
                             failover_timeout_ms=60000)
    try:
        names = ewsenv.Names("sentinel-behind")
        env = names.env(broker, failover)
        env["EWS_REDIS_SENTINELS"] = ",".join([behind.addr,
                                               *failover.sentinel_addrs])
        proc = subprocess.run(
            [os.path.join(ewsenv.BUILD, "ews-inspect"), "export"], env=env,
            capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert (f"redis 127.0.0.1:{failover.replica.port} answers ROLE as "
                f"slave") in proc.stderr, proc.stderr
        assert (f"redis primary 'ews' is 127.0.0.1:{failover.primary.port} "
                f"(sentinel {failover.sentinel_addrs[0]})") in proc.stderr
    finally:
        behind.close()
        failover.close()
