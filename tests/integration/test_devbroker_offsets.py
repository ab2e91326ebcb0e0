"""ews-devbroker refuses what it could not keep, and the group's committed
offsets follow the store's fences from the first assignment on."""

import os
import time

import redis as redis_py

import ewsenv


def test_devbroker_refuses_a_message_over_its_limit():
    """The mock keeps 5 MiB per partition and drops older data silently:
    a message that big used to wipe the partition. The broker now refuses
    it; the producer gets an error and the earlier messages stay."""
    from confluent_kafka import Producer
    broker = ewsenv.Broker([("big", 1)])
    try:
        ewsenv.produce(broker, "big", [(b"k", b"v%d" % i) for i in range(3)])
        errors = []
        producer = Producer({"bootstrap.servers": broker.bootstrap,
                             "message.max.bytes": 20_000_000,
                             "message.timeout.ms": 5000,
                             "log_level": 0})
        producer.produce("big", key=b"k", value=b"x" * 10_000_000,
                         on_delivery=lambda err, msg: errors.append(err))
        producer.flush(20)
        assert len(errors) == 1 and errors[0] is not None, errors
        records = ewsenv.consume_records(broker, "big")
        assert [(r["offset"], r["value"]) for r in records] == \
            [(i, b"v%d" % i) for i in range(3)]
    finally:
        broker.close()


def test_devbroker_listens_on_the_port_asked(tmp_path):
    port = ewsenv.free_port()
    broker = ewsenv.Broker([("fixed", 1)], port=port)
    try:
        assert broker.bootstrap == f"127.0.0.1:{port}"
        ewsenv.produce(broker, "fixed", [(b"k", b"v")])
        assert [r["value"] for r in
                ewsenv.consume_records(broker, "fixed")] == [b"v"]
    finally:
        broker.close()


def committed(broker, group, topics):
    """{(topic, partition): committed offset, or a negative one}."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": broker.bootstrap,
                         "group.id": group, "enable.auto.commit": False})
    try:
        parts = [TopicPartition(t, p) for t, n in topics.items()
                 for p in range(n)]
        return {(tp.topic, tp.partition): tp.offset
                for tp in consumer.committed(parts, timeout=10)}
    finally:
        consumer.close()


def test_a_new_group_commits_the_fences_it_starts_from(broker, redis, names,
                                                       tmp_path):
    """A group whose commits were lost (a new one here) starts from the
    store's fences; it commits them without waiting for new input, so lag
    tools see where the processor is."""
    ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                   ["--seed", "5", "--campaigns", "2", "--days", "3"])
    ewsenv.run_processor_to_end(names, broker, redis)
    client = redis_py.Redis(port=redis.port)
    topics = {t: int(client.get(f"{names.prefix}m:{t}") or 0)
              for t in (names.usage, names.campaign)}
    fences = {(t, p): int(client.hget(f"{names.prefix}p:{t}:{p}", "offset")
                          or -1)
              for t, n in topics.items() for p in range(n)}
    assert topics[names.usage] and max(fences.values()) > 0, fences

    group = names.group + "-new"
    proc = ewsenv.processor(names, broker, redis,
                            ["-X", "auto.commit.interval.ms=200"],
                            env_extra={"EWS_KAFKA_GROUP_ID": group},
                            stderr=open(os.devnull, "w"))
    try:
        want = {k: v for k, v in fences.items() if v >= 0}
        deadline = time.monotonic() + 30
        got = None
        while time.monotonic() < deadline:
            got = committed(broker, group, topics)
            if all(got.get(k) == v for k, v in want.items()):
                break
            time.sleep(0.5)
        assert all(got.get(k) == v for k, v in want.items()), (got, want)
    finally:
        ewsenv.stop(proc)
