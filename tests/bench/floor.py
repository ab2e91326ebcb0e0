"""The dev broker's own latency floor: how long after its produce call a
bare consumer has a message, with nothing in between, at the live part's
rate. The figure `make bench` reports for alerts includes this twice (the
event in, the alert out), so it is the floor those numbers stand on.

A producer in a process of its own (no GIL shared with the reader) sends
RATE messages/s of 60 bytes for SECONDS to a topic of 8 partitions of a
fresh ews-devbroker, with linger.ms 5 as the bench's; a consumer in this
process reads them and takes, for each, its arrival time minus its Kafka
timestamp (the produce call's wall clock).

Usage:
    EWS_BUILD=build /usr/bin/python3 tests/bench/floor.py \\
        [--rate 20000] [--seconds 10] [--fetch-wait-ms 500]

--fetch-wait-ms is the consumer's fetch.wait.max.ms (librdkafka's default
500). The dev broker (librdkafka's mock cluster) holds a fetch that finds
no data for that long without waking when data comes; a real broker
answers once fetch.min.bytes are there.
"""

import argparse
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import ewsenv  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

TOPIC = "floor-usage"
PARTITIONS = 8


def produce(bootstrap, rate, seconds):
    """Paced from the monotonic clock, as the bench's live part."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    producer.list_topics(TOPIC, timeout=10)
    start, sent = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        due = int((time.monotonic() - start) * rate)
        while sent < due:
            ms = int(time.time() * 1000)
            producer.produce(TOPIC, key=str(sent % 1000).encode(),
                             value=b"x" * 60, timestamp=ms)
            sent += 1
        producer.poll(0)
        time.sleep(0.0005)
    producer.flush(30)


def read(consumer, expected, seconds):
    """Ages of the messages at arrival, ms, sorted."""
    ages = []
    deadline = time.time() + seconds + 5
    while time.time() < deadline and len(ages) < expected:
        # a short timeout: a batch call returns only when full or timed
        # out, and its timeout would be added to the ages
        for m in consumer.consume(10000, 0.001):
            now = time.time() * 1000
            if not m.error():
                ages.append(now - m.timestamp()[1])
    return sorted(ages)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--fetch-wait-ms", type=int, default=500)
    args = parser.parse_args()

    broker = ewsenv.Broker([(TOPIC, PARTITIONS)])
    try:
        consumer = Consumer({"bootstrap.servers": broker.bootstrap,
                             "group.id": "floor", "enable.auto.commit": False,
                             "fetch.wait.max.ms": args.fetch_wait_ms})
        consumer.assign([TopicPartition(TOPIC, p, 0)
                         for p in range(PARTITIONS)])
        producer = multiprocessing.Process(
            target=produce, args=(broker.bootstrap, args.rate, args.seconds))
        producer.start()
        ages = read(consumer, int(args.rate * args.seconds), args.seconds)
        producer.join()
        consumer.close()
    finally:
        broker.close()
    if not ages:
        print("floor: FAILED: nothing read")
        return 1
    print(f"floor: rate={args.rate} fetch_wait_ms={args.fetch_wait_ms} "
          f"read={len(ages)} p50_ms={ages[len(ages) // 2]:.1f} "
          f"p99_ms={ages[int(len(ages) * 0.99)]:.1f} max_ms={ages[-1]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
