"""A partition paused while Redis is away, then revoked and assigned again
by a rebalance, is consumed again. librdkafka (2.0.2) keeps an
application's pause through an unassign and the next assign, and resets only
its own: when Redis is back before the assignment, the claims there succeed
and nothing else resumes the partition, which then stays paused for good
while the processor counts it as running, and ready (found by make chaos:
a Redis crash during a consumer-group session timeout)."""

import time

import redis as redis_py

import ewsenv
from test_state import fence_offsets

AOF = ["--appendonly", "yes", "--appendfsync", "always"]


def test_a_partition_paused_for_redis_resumes_after_a_rebalance(tmp_path):
    names = ewsenv.Names("pause")
    broker = ewsenv.Broker([(names.usage, 4), (names.campaign, 1),
                            (names.alerts, 1), (names.dlq, 1)], control=True)
    redis = ewsenv.Redis(extra=AOF)
    log_path = tmp_path / "processor.log"
    proc = None
    try:
        ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                       ["--seed", "4", "--campaigns", "1",
                        "--users-per-campaign", "12", "--days", "3"])
        records = ewsenv.consume_records(broker, names.usage)
        total = len(records) + len(ewsenv.consume_records(broker,
                                                          names.campaign))
        client = redis_py.Redis(port=redis.port, socket_timeout=2)
        with open(log_path, "w") as log:
            proc = ewsenv.processor(names, broker, redis, stderr=log,
                                    env_extra={"EWS_REDIS_TIMEOUT": "500ms"})
        ewsenv.wait_for(lambda: fence_offsets(client, names) == total, 60,
                        "every event applied")

        # Redis goes away; new input on every usage partition fails its
        # commit, and the claim that follows: the partitions are paused
        redis.crash()
        again = [next(r for r in records if r["partition"] == k)
                 for k in range(4)]
        ewsenv.produce(broker, names.usage,
                       [(r["key"], r["value"], r["partition"]) for r in again])
        ewsenv.wait_for(lambda: log_path.read_text().count(": claim: ") >= 4,
                        30, "the claims to fail")
        # a rebalance takes every partition back; Redis returns before they
        # are given again, so that the assignment's claims succeed
        assert broker.control("errors Heartbeat 1 REBALANCE_IN_PROGRESS") == \
            "ok"
        ewsenv.wait_for(lambda: "in_kafka: revoked" in log_path.read_text(),
                        30, "the partitions revoked")
        redis.start()
        ewsenv.wait_for(lambda: log_path.read_text().count(
            "in_kafka: assigned") >= 2, 30, "the partitions assigned again")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if fence_offsets(client, names) == total + 4:
                    break
            except redis_py.RedisError:
                pass
            time.sleep(0.1)
        assert proc.poll() is None, log_path.read_text()[-3000:]
        got = fence_offsets(client, names)
        assert got == total + 4, (
            f"fences at {got} of {total + 4}: a partition stayed paused\n" +
            log_path.read_text()[-3000:])
    finally:
        ewsenv.stop(proc)
        redis.close()
        broker.close()
