"""A partition paused because the broker no longer has its fenced offset
goes on by itself once an operator moves the fence by hand (README,
"Exactly once in effect"): no restart needed, and the other partitions
of the instance go on where they were."""

import pytest
import redis as redis_py

import ewsenv
from test_ops import running, stop


# The eager protocol assigns the whole assignment again, the cooperative one
# the partition alone.
@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_a_fence_moved_by_hand_resumes_the_paused_partition(redis, strategy):
    names = ewsenv.Names(f"fence-by-hand-{strategy}")
    args = ["-X", f"partition.assignment.strategy={strategy}"]
    broker = ewsenv.Broker([(names.usage, 2), (names.campaign, 1),
                            (names.alerts, 1), (names.dlq, 1)])
    client = redis_py.Redis(port=redis.port)
    fence = f"{names.prefix}p:{names.usage}:0"

    def offset():
        return int(client.hget(fence, "offset") or -1)

    def bad(partition, offsets):
        """Inputs decode refuses: each becomes one dead letter."""
        ewsenv.produce(broker, names.usage,
                       [(b"k", b"not avro %d" % i, partition)
                        for i in offsets])

    def dead():
        return sorted((int(r["headers"]["ews.source.partition"]),
                       int(r["headers"]["ews.source.offset"]))
                      for r in ewsenv.consume_records(broker, names.dlq, 5))

    proc = None
    try:
        bad(0, range(3))
        bad(1, range(2))
        ewsenv.run_processor_to_end(names, broker, redis, args)
        assert offset() == 3

        # A fence the broker does not have: the partition pauses, the
        # other one goes on.
        client.hset(fence, "offset", 1000)
        proc, port = running(names, broker, redis, args=args)
        ewsenv.wait_for(
            lambda: ewsenv.scrape(port).get("ews_partitions_paused") == 1,
            30, "the partition paused")
        bad(1, range(2, 4))
        ewsenv.wait_for(lambda: len(dead()) == 7, 20,
                        "the other partition going on")

        # Moved back by hand to where the data is: it goes on from there.
        client.hset(fence, "offset", 3)
        bad(0, range(3, 5))
        bad(1, range(4, 6))
        ewsenv.wait_for(lambda: offset() == 5, 30,
                        "the partition going on from the moved fence")
        ewsenv.wait_for(
            lambda: ewsenv.scrape(port).get("ews_partitions_paused") == 0,
            10, "no partition paused")
        want = [(0, i) for i in range(5)] + [(1, i) for i in range(6)]
        ewsenv.wait_for(lambda: dead() == want, 20,
                        "each input once in the dead-letter topic")
    finally:
        try:
            code, err = stop(proc) if proc else (0, "")
        finally:
            broker.close()
    assert code == 0, err[-2000:]
    assert "no longer has the offset" in err, err[-2000:]
    assert "moved by hand" in err, err[-2000:]
    # librdkafka 2.0.2's cooperative rebalances lose batch-consumed
    # messages (make chaos): the processor says so at start.
    warned = "incremental rebalances can lose messages" in err
    assert warned == (strategy == "cooperative-sticky"), err[-2000:]
