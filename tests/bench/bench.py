"""make bench: what the processor costs at 100,000 trial users.

One run on real processes (ews-devbroker, redis-server, ews-processor, all on
free loopback ports and all stopped at the end) measures two things.

Redis memory per user
    A fresh redis-server; INFO used_memory just before the processor starts
    and again after it has consumed a generated backlog of 100,000 users with
    the default model (config/ews.yaml); (after - before) / users is the
    figure. Every key is then classified by its class (u:, a:, c:, p:, t:,
    m:) and type, with the sum of its MEMORY USAGE, so the breakdown shows
    what dominates. What MEMORY USAGE does not see (the bucket arrays of the
    main and expires dictionaries, the expires entries, the Lua scripts) is
    printed as the rest.

Throughput, as ratios
    The machine may be shared and noisy, so an absolute events/s means little
    on its own. The same backlog is read twice by kcat, once before and once
    after the processor, as the baseline (fetch only, no work; the faster of
    the two counts, which keeps the ratio conservative), and once by the
    processor with --exit-at-end:
      processor_events_per_s      consumed / (start to exit), group join and
                                  start-up included
      processor_run_events_per_s  consumed / (first partition assignment to
                                  exit): its own rate once it is consuming
      ratio                       processor_events_per_s /
                                  baseline_events_per_s
    CPU seconds of the processor and of redis-server are reported too: they
    move less with the machine's load than wall time does. Peak RSS and CPU
    time of a child come from wait4(2), the call /usr/bin/time -v reports
    from, so nothing wraps the processor and stopping it stays simple.

Nothing may be lost on the way
    The dev broker keeps at most 5 MiB per partition and drops older data.
    The usage topic therefore has 64 partitions (2 simulated days of 100,000
    users are a little under 4 MiB per partition), and before anything reads
    it the run checks that every partition still starts at offset 0 and that
    the topics hold exactly the events ews-gen reports. Afterwards the
    processor's consumed count must equal that number. Either mismatch fails
    the run.

Usage (make bench sets EWS_BUILD):
    EWS_BUILD=build /usr/bin/python3 tests/bench/bench.py [--days N] ...

The run ends with a summary block of `bench: key=value ...` lines; exit
status 1 and a `bench: FAILED: ...` line when a figure would not be valid.
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import ewsenv  # noqa: E402
import redis as redis_py  # noqa: E402
from confluent_kafka import (  # noqa: E402
    Consumer, KafkaException, TopicPartition)

GEN_TIMEOUT = 240        # ews-gen producing the whole backlog
BASELINE_TIMEOUT = 120   # one kcat pass over one topic
PROCESSOR_TIMEOUT = 300  # the processor from start to --exit-at-end
STAT_LINE = "ews-processor: consumed="


class BenchError(Exception):
    """A run whose figures would not be valid; the message says why."""


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--campaigns", type=int, default=50)
    p.add_argument("--users-per-campaign", type=int, default=2000)
    p.add_argument("--days", type=int, default=2,
                   help="simulated days; events grow with it, users do not")
    p.add_argument("--signup-days", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--partitions", type=int, default=64,
                   help="partitions of the usage topic (see the docstring)")
    return p.parse_args()


def log(msg):
    print(f"bench: {msg}", flush=True)


def check_tools():
    missing = [path for path in (os.path.join(ewsenv.BUILD, name) for name in
                                 ("ews-devbroker", "ews-gen", "ews-processor"))
               if not os.access(path, os.X_OK)]
    if missing:
        raise BenchError(f"not built: {', '.join(missing)} (run make all)")
    for tool in ("kcat", "redis-server", "redis-cli"):
        if not shutil.which(tool):
            raise BenchError(f"{tool} not found on PATH (run make deps)")


def reap(proc, timeout, what):
    """Waits for proc with wait4(2), which also returns its peak RSS and CPU
    time. Raises BenchError on timeout; the caller's cleanup stops proc."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            # Reaped here, so Popen must not wait for it again.
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not finish within {timeout}s")
        time.sleep(0.01)


def cpu_seconds(usage):
    return usage.ru_utime + usage.ru_stime


# --- the backlog -----------------------------------------------------------

def generate(names, broker, args, tmp):
    """Produces the scenario; returns ews-gen's summary and the seconds."""
    truth = os.path.join(tmp, "truth")
    cmd = [os.path.join(ewsenv.BUILD, "ews-gen"), "-b", broker.bootstrap,
           "--usage-topic", names.usage, "--campaign-topic", names.campaign,
           "--schemas", ewsenv.SCHEMAS, "--truth", truth,
           "--seed", str(args.seed), "--campaigns", str(args.campaigns),
           "--users-per-campaign", str(args.users_per_campaign),
           "--days", str(args.days), "--signup-days", str(args.signup_days)]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=GEN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError(f"ews-gen did not finish within {GEN_TIMEOUT}s")
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise BenchError(f"ews-gen exit {proc.returncode}:\n{proc.stderr}")
    return truth_summary(truth), seconds


def truth_summary(path):
    # The summary is the truth file's last record; the rest are per user.
    with open(path) as f:
        for line in f:
            pass
    summary = json.loads(line)
    if summary.get("kind") != "summary":
        raise BenchError(f"{path}: last record is not the summary")
    return summary


def check_backlog(broker, topics, events):
    """Fails unless the broker still holds every event ews-gen produced: a
    partition whose log no longer starts at 0 lost its oldest data."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap,
                         "group.id": f"bench-watermarks-{os.getpid()}"})
    try:
        held = 0
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            for partition in sorted(meta.partitions):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10)
                if low != 0:
                    raise BenchError(
                        f"the dev broker dropped data: {topic} [{partition}] "
                        f"starts at offset {low}; use more --partitions or "
                        "fewer --days")
                held += high
    finally:
        consumer.close()
    if held != events:
        raise BenchError(f"the broker holds {held} messages but ews-gen "
                         f"reported {events} events")


def baseline(broker, topics):
    """Seconds kcat takes to read every topic from the start to its end."""
    seconds = 0.0
    for topic in topics:
        cmd = ["kcat", "-C", "-b", broker.bootstrap, "-t", topic, "-e",
               "-o", "beginning", "-q"]
        # stderr to a file: nobody reads a pipe while kcat runs.
        with tempfile.TemporaryFile() as err:
            started = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                    stderr=err)
            try:
                reap(proc, BASELINE_TIMEOUT, f"kcat on {topic}")
                seconds += time.monotonic() - started
            finally:
                ewsenv.stop(proc)
            if proc.returncode != 0:
                err.seek(0)
                raise BenchError(f"kcat on {topic} exit {proc.returncode}: "
                                 + err.read().decode(errors="replace"))
    return seconds


# --- the processor ---------------------------------------------------------

class ProcessorRun:
    """The processor over the backlog with --exit-at-end, timed from outside.
    stderr is read on a thread, each line with the time it arrived, so the
    first partition assignment can be timed as well as the exit."""

    ASSIGNED = re.compile(r"\bassigned \d+ partition")

    def __init__(self, names, broker, redis):
        cmd = [os.path.join(ewsenv.BUILD, "ews-processor"), "-c",
               os.path.join(ewsenv.ROOT, "config", "ews.yaml"),
               # The tests' consumer settings, so that start-up and the end
               # of the backlog are noticed as quickly as in make test.
               *ewsenv.FAST_CONSUMER, "--exit-at-end"]
        self.lines = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=names.env(broker, redis),
                                     stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait(self, timeout):
        """Returns the run's figures; raises BenchError if it failed."""
        usage = reap(self.proc, timeout, "the processor")
        ended = time.monotonic()
        self.reader.join(10)
        if self.proc.returncode != 0:
            raise BenchError(f"processor exit {self.proc.returncode}:\n"
                             + self.tail())
        stats = [line for _, line in self.lines if line.startswith(STAT_LINE)]
        assigned = [t for t, line in self.lines if self.ASSIGNED.search(line)]
        if not stats or not assigned:
            raise BenchError("processor output lacks its stats line or a "
                             "partition assignment:\n" + self.tail())
        return {
            "stats": {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)",
                                                       stats[-1])},
            "stats_line": stats[-1],
            "seconds": ended - self.started,
            "run_seconds": ended - assigned[0],
            "peak_rss_kib": usage.ru_maxrss,  # Linux reports KiB
            "cpu_seconds": cpu_seconds(usage),
        }

    def tail(self, count=40):
        return "\n".join(line for _, line in self.lines[-count:])

    def stop(self):
        ewsenv.stop(self.proc)
        self.reader.join(10)


def redis_cpu_seconds(client):
    info = client.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


# --- what Redis holds ------------------------------------------------------

# The size of a value in its own unit: bytes of a string, members of a zset
# or set, fields of a hash, elements of a list.
SIZE_COMMANDS = {"string": "STRLEN", "zset": "ZCARD", "set": "SCARD",
                 "hash": "HLEN", "list": "LLEN"}


def key_breakdown(client, prefix):
    """(class, type) -> [keys, MEMORY USAGE bytes, items], over every key
    under prefix; the class is what follows the prefix up to the first colon
    (u, a, c, p, t, m), items are counted as SIZE_COMMANDS says."""
    rows = collections.defaultdict(lambda: [0, 0, 0])
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    for i in range(0, len(keys), 1000):
        chunk = keys[i:i + 1000]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.type(key)
            # SAMPLES 0: exact for the few large zsets too, not estimated.
            pipe.memory_usage(key, samples=0)
        replies = pipe.execute()
        sized = []
        for j, key in enumerate(chunk):
            kind, used = replies[2 * j], replies[2 * j + 1] or 0
            row = rows[(key[len(prefix):].split(":", 1)[0], kind)]
            row[0] += 1
            row[1] += used
            if kind in SIZE_COMMANDS:
                sized.append(row)
                pipe.execute_command(SIZE_COMMANDS[kind], key)
        for row, size in zip(sized, pipe.execute()):
            row[2] += size
    return rows


def print_breakdown(rows, delta, users):
    """Prints rows, largest first, and the part of delta (the growth of
    used_memory) they do not account for; returns what they account for."""
    print(f"{'class':6} {'type':7} {'keys':>8} {'MEMORY USAGE':>13} "
          f"{'avg/key':>9} {'per user':>9} {'items/key':>10}  (items)")
    accounted = 0
    for (cls, kind), (keys, used, items) in sorted(
            rows.items(), key=lambda item: -item[1][1]):
        accounted += used
        unit = SIZE_COMMANDS.get(kind, "?")
        print(f"{cls + ':':6} {kind:7} {keys:8d} {used:13d} "
              f"{used / keys:9.1f} {used / users:9.1f} {items / keys:10.1f}"
              f"  ({unit})")
    rest = delta - accounted
    print(f"{'rest':6} {'':7} {'':>8} {rest:13d} {'':>9} {rest / users:9.1f}"
          "  dictionaries' buckets, expires entries, scripts")
    return accounted


# --- the run ---------------------------------------------------------------

def start_services(topics, started_procs):
    """The broker and a fresh Redis, registered for cleanup as they start."""
    broker = ewsenv.Broker(topics)
    started_procs.append(broker)
    redis = ewsenv.Redis()
    started_procs.append(redis)
    return broker, redis


def produce_backlog(names, broker, args, tmp):
    """Generates the backlog and checks the broker kept all of it; returns
    (events, users)."""
    summary, seconds = generate(names, broker, args, tmp)
    events, users = summary["events"], summary["users"]
    log(f"ews-gen: {events} events of {users} users in {seconds:.1f}s")
    check_backlog(broker, [names.usage, names.campaign], events)
    return events, users


def measure_processor(names, broker, redis, client, events, started_procs):
    """One processor run over the backlog, with Redis's memory and CPU time
    read just before it starts and just after it exits."""
    mem_before = client.info("memory")
    redis_cpu_before = redis_cpu_seconds(client)
    run = ProcessorRun(names, broker, redis)
    started_procs.append(run)
    result = run.wait(PROCESSOR_TIMEOUT)
    result["redis_cpu_seconds"] = redis_cpu_seconds(client) - redis_cpu_before
    result["mem_before"] = mem_before
    result["mem_after"] = client.info("memory")
    log(result["stats_line"])
    consumed = result["stats"].get("consumed")
    if consumed != events:
        raise BenchError(f"processor consumed {consumed} events, ews-gen "
                         f"produced {events}:\n" + run.tail())
    return result


def bench(args, tmp, started_procs):
    check_tools()
    names = ewsenv.Names("bench")
    inputs = [names.usage, names.campaign]
    broker, redis = start_services(
        [(names.usage, args.partitions), (names.campaign, 2),
         (names.alerts, 4), (names.dlq, 1)], started_procs)
    client = redis_py.Redis(port=redis.port, decode_responses=True)
    log(f"redis-server {client.info('server')['redis_version']} "
        f"({client.info('memory')['mem_allocator']}), broker "
        f"{broker.bootstrap}, load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg()))

    events, users = produce_backlog(names, broker, args, tmp)
    baselines = [baseline(broker, inputs)]
    log(f"kcat over the backlog: {baselines[0]:.2f}s")
    run = measure_processor(names, broker, redis, client, events,
                            started_procs)
    baselines.append(baseline(broker, inputs))
    log(f"kcat over the backlog again: {baselines[1]:.2f}s")

    rows = key_breakdown(client, names.prefix)
    delta = run["mem_after"]["used_memory"] - run["mem_before"]["used_memory"]
    print()
    accounted = print_breakdown(rows, delta, users)
    print()
    summarize(args, client, run, rows, baselines, events, users, accounted)


def summarize(args, client, run, rows, baselines, events, users, accounted):
    """The summary block: one `bench: key=value ...` line per subject."""
    before, after = run["mem_before"], run["mem_after"]
    delta = after["used_memory"] - before["used_memory"]
    rss_delta = after["used_memory_rss"] - before["used_memory_rss"]
    user_keys = sum(row[0] for (cls, _), row in rows.items() if cls == "u")
    keyspace = client.info("keyspace").get("db0", {})
    consumed = run["stats"]["consumed"]
    processor_rate = consumed / run["seconds"]
    baseline_rate = events / min(baselines)
    cpu = run["cpu_seconds"] + run["redis_cpu_seconds"]

    log(f"redis_version={client.info('server')['redis_version']} "
        f"used_memory_before={before['used_memory']} "
        f"used_memory_after={after['used_memory']} "
        f"keys={keyspace.get('keys', 0)} expires={keyspace.get('expires', 0)}")
    log(f"redis_bytes_per_user={delta / users:.0f} users={users} "
        f"user_keys={user_keys} memory_usage_per_user={accounted / users:.0f} "
        f"rss_bytes_per_user={rss_delta / users:.0f} events={events} "
        f"days={args.days}")
    log(f"processor_events_per_s={processor_rate:.0f} "
        f"processor_run_events_per_s={consumed / run['run_seconds']:.0f} "
        f"baseline_events_per_s={baseline_rate:.0f} "
        f"ratio={processor_rate / baseline_rate:.3f} "
        f"processor_seconds={run['seconds']:.1f} "
        f"baseline_seconds={baselines[0]:.2f},{baselines[1]:.2f}")
    log(f"processor_peak_rss_kib={run['peak_rss_kib']} "
        f"processor_cpu_s={run['cpu_seconds']:.1f} "
        f"redis_cpu_s={run['redis_cpu_seconds']:.1f} "
        f"cpu_us_per_event={1e6 * cpu / events:.1f} "
        f"partitions={args.partitions} cores={os.cpu_count()}")
    for note in odd_things(run["stats"], user_keys, users):
        log(f"note: {note}")


def odd_things(stats, user_keys, users):
    """Things that do not invalidate the figures but deserve a look."""
    notes = []
    if user_keys != users:
        notes.append(f"{user_keys} u: keys for {users} generated users")
    for key in ("dead_letters", "fenced", "store_errors", "replayed",
                "failed"):
        if stats.get(key):
            notes.append(f"processor {key}={stats[key]}")
    return notes


def main():
    args = parse_args()
    started = time.monotonic()
    started_procs = []
    try:
        with tempfile.TemporaryDirectory(prefix="ews-bench-") as tmp:
            bench(args, tmp, started_procs)
    except (BenchError, TimeoutError, RuntimeError, KafkaException,
            redis_py.RedisError) as e:
        print(f"bench: FAILED: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        # Newest first: the processor before the Redis and broker it uses.
        for thing in reversed(started_procs):
            if isinstance(thing, ProcessorRun):
                thing.stop()
            else:
                thing.close()
    log(f"seconds={time.monotonic() - started:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
