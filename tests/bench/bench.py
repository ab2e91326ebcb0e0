"""make bench: what the processor costs at USERS (100,000) trial users, and
how fast its alerts follow live events.

One run on real processes (ews-devbroker, redis-server, ews-processor, all on
free loopback ports and all stopped at the end) measures these things.

Redis memory per user
    A fresh redis-server; INFO used_memory just before the processor starts
    and again after it has consumed a generated backlog of 100,000 users with
    the default model (config/ews.yaml); (after - before) / users is the
    figure. Every key is then classified by its class (ub:, a:, c:, p:, t:,
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
    The usage topic therefore has 64 partitions per 100,000 users (2
    simulated days of 100,000 users are a little under 4 MiB per
    partition), and before anything reads
    it the run checks that every partition still starts at offset 0 and that
    the topics hold exactly the events ews-gen reports. Afterwards the
    processor's consumed count must equal that number. Either mismatch fails
    the run.

    The backlog is --campaigns (50) campaigns of --users / 50 users each,
    the same events per user at any size; the usage topic gets 64
    partitions per 100,000 users and 2 days unless --partitions says.

Live latency (after the backlog run; --rate 0 skips it)
    A second processor, on topics of its own (live-*) and in time.mode auto
    with a 2 s inactivity, 0 s allowed lateness and no dwell (LIVE_ENV),
    while this process produces --rate events/s for --seconds, paced from
    the monotonic clock, event time and Kafka timestamp = the wall clock at
    produce. Users come in cohorts of rate/20; each user sends
    LIVE_SEQUENCE, one event a round (about 50 ms apart): trial_started
    and 12 invite_sent take E to 101, which fires SALES_READY; 4
    unsubscribed take it to 61, below exit.points 70, which resolves it.
    A thread reads the alert topic (fetch.wait.max.ms 5) and notes when
    each (rule, status, subject) first arrives. Reported:
      live_direct  SALES_READY FIRING and RESOLVED: arrival - produce time
                   of the triggering event; p50/p99/max ms, matched/expected
      live_timer   USER_DISENGAGED FIRING: arrival - its deadline (the last
                   activity's event time + 2 s); p50/p99/max ms
      achieved_rate  events produced / seconds producing, next to the
                   offered rate
    After producing, the run waits until every expected alert arrived or
    2 s + 10 s passed; what never arrived shows as matched < expected.

Growth (--growth, make bench-growth; nothing else runs)
    A light workload produced by this process: per user trial_started,
    feature_used, login (3 events), an account per 10 users, signups over
    one day of event time; at each of --growth-sizes (10,000 and 1,000,000
    users), on a fresh broker and Redis with enough partitions (up to 256)
    to stay well under 5 MiB each, checked as above. eps_10k and eps_1m are
    the processor's rate from its first assignment to its exit (start-up
    would dominate the 30,000 events of the small size); rss_mb_1m is its
    peak RSS at 1,000,000 users.

Replication and WAIT (--replicas N, --wait-replicas N)
    N replicas of the bench's redis-server (redis-server --replicaof, in
    sync before the backlog is produced) for both processor runs; with
    --wait-replicas the processors run with redis.wait.replicas N (a WAIT
    after every round of commits, redis.wait.timeout 1 s), and as many
    replicas as that. The replicas' CPU seconds over the backlog run are
    reported on their own line (replica_cpu_us_per_event), not in
    cpu_us_per_event: compare eps and cpu_us_per_event with a run without
    the option to see what the WAIT costs (tests/bench/README.md).

Usage (make bench sets EWS_BUILD; tests/bench/README.md has the targets):
    EWS_BUILD=build /usr/bin/python3 tests/bench/bench.py [--users N]
        [--rate N] [--seconds S] [--growth] [--days N] ...

The run ends with a summary block of `bench: key=value ...` lines and one
headline line holding every headline figure (-1 for one not measured):
    bench: eps= ceiling_eps= ratio= cpu_us_per_event=
           redis_cpu_us_per_event= redis_bytes_per_user= rss_mb_1m=
           eps_10k= eps_1m= p50_ms= p99_ms=
exit status 1 and a `bench: FAILED: ...` line when a figure would not be
valid.
"""

import argparse
import collections
import json
import os
import re
import shlex
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
    Consumer, KafkaException, Producer, TopicPartition)

GEN_TIMEOUT = 240        # ews-gen producing the whole backlog
BASELINE_TIMEOUT = 120   # one kcat pass over one topic
PROCESSOR_TIMEOUT = 300  # the processor from start to --exit-at-end
# The timeouts above are for 100,000 users and 2 days; a larger backlog
# (make bench USERS=1000000) multiplies them by its size (set in main).
TIMEOUT_SCALE = 1.0
STAT_LINE = "ews-processor: consumed="
# Environment of every processor run (--wait-replicas sets it).
PROCESSOR_ENV = {}


class BenchError(Exception):
    """A run whose figures would not be valid; the message says why."""


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=100000,
                   help="trial users of the backlog: --campaigns campaigns "
                   "of users/campaigns users each")
    p.add_argument("--campaigns", type=int, default=50)
    p.add_argument("--days", type=int, default=2,
                   help="simulated days; events grow with it, users do not")
    p.add_argument("--signup-days", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--partitions", type=int, default=0,
                   help="partitions of the usage topic; 0: 64 per 100,000 "
                   "users and 2 days (see the docstring)")
    p.add_argument("--rate", type=int, default=20000,
                   help="live part: offered events/s (0: no live part)")
    p.add_argument("--seconds", type=float, default=10,
                   help="live part: seconds of producing")
    p.add_argument("--growth", action="store_true",
                   help="only the growth runs: --growth-sizes users each")
    p.add_argument("--growth-sizes", default="10000,1000000")
    p.add_argument("--replicas", type=int, default=0,
                   help="replicas of the bench's Redis (asynchronous)")
    p.add_argument("--wait-replicas", type=int, default=0,
                   help="redis.wait.replicas for the processors, with as "
                   "many replicas at least")
    args = p.parse_args()
    args.replicas = max(args.replicas, args.wait_replicas)
    args.users_per_campaign = max(1, args.users // args.campaigns)
    if not args.partitions:
        args.partitions = max(8, -(-64 * args.users * args.days
                                   // (100000 * 2)))
    args.growth_sizes = [int(x) for x in args.growth_sizes.split(",") if x]
    return args


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
           "--schemas", ewsenv.SCHEMAS, "--truth", truth, *ewsenv.GEN_START,
           "--seed", str(args.seed), "--campaigns", str(args.campaigns),
           "--users-per-campaign", str(args.users_per_campaign),
           "--days", str(args.days), "--signup-days", str(args.signup_days)]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=GEN_TIMEOUT * TIMEOUT_SCALE)
    except subprocess.TimeoutExpired:
        raise BenchError("ews-gen did not finish within "
                         f"{GEN_TIMEOUT * TIMEOUT_SCALE:.0f}s")
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
                reap(proc, BASELINE_TIMEOUT * TIMEOUT_SCALE,
                     f"kcat on {topic}")
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

    def __init__(self, names, broker, redis, exit_at_end=True,
                 env_extra=None):
        # EWS_WRAP: a command the processor runs under, as in make
        # valgrind (e.g. valgrind --tool=callgrind to count instructions,
        # which a shared machine's load does not move)
        cmd = [*shlex.split(os.environ.get("EWS_WRAP", "")),
               os.path.join(ewsenv.BUILD, "ews-processor"), "-c",
               os.path.join(ewsenv.ROOT, "config", "ews.yaml"),
               # The tests' consumer settings, so that start-up and the end
               # of the backlog are noticed as quickly as in make test.
               *ewsenv.FAST_CONSUMER,
               *(["--exit-at-end"] if exit_at_end else [])]
        env = names.env(broker, redis)
        env.update(PROCESSOR_ENV)
        env.update(env_extra or {})
        self.lines = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env,
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

    def wait_assigned(self, timeout):
        deadline = time.monotonic() + timeout
        while not any(self.ASSIGNED.search(line) for _, line in self.lines):
            if self.proc.poll() is not None:
                raise BenchError("processor exited:\n" + self.tail())
            if time.monotonic() > deadline:
                raise BenchError(f"no partition assignment in {timeout}s")
            time.sleep(0.02)

    def stop_and_stats(self):
        """SIGTERM; the counters of its last stats line ({} if none)."""
        self.stop()
        stats = [line for _, line in self.lines if line.startswith(STAT_LINE)]
        return ({k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", stats[-1])}
                if stats else {})

    def tail(self, count=40):
        return "\n".join(line for _, line in self.lines[-count:])

    def stop(self):
        ewsenv.stop(self.proc)
        self.reader.join(10)


def proc_cpu_seconds(pid):
    """User + system CPU seconds of a running process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


# --- hand-rolled Avro ------------------------------------------------------
# The producers below write millions of events; avro.io's pure-Python
# writer would be the bottleneck, so the few shapes the bench needs are
# encoded by hand (schemas/usage_event.avsc: event_id, user_id, account_id,
# event_type, product, value, campaign_id, occurred_at, attributes).

def avro_long(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def avro_str(s):
    b = s.encode()
    return avro_long(len(b)) + b


def avro_opt_str(s):
    return b"\x00" if s is None else b"\x02" + avro_str(s)


def usage_event(event_id, user_id, event_type, occurred_ms, account_id=None,
                campaign_id=None):
    # product null, value null, attributes {} (one empty block).
    return b"".join((avro_str(event_id), avro_str(user_id),
                     avro_opt_str(account_id), avro_str(event_type),
                     b"\x00\x00", avro_opt_str(campaign_id),
                     avro_long(occurred_ms), b"\x00"))


class AvroReader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def long(self):
        shift = result = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return (result >> 1) ^ -(result & 1)

    def str(self):
        n = self.long()
        self.pos += n
        return self.data[self.pos - n:self.pos].decode()

    def opt_str(self):
        return self.str() if self.long() else None


ALERT_RULES = ["USER_DISENGAGED", "CAMPAIGN_UNDERPERFORMING", "SALES_READY",
               "ACCOUNT_AT_RISK"]
ALERT_STATUS = ["FIRING", "RESOLVED"]


def alert_head(data):
    """The leading fields of an alert (schemas/alert.avsc) up to
    emitted_at: (rule, status, subject_id, event_time_ms)."""
    r = AvroReader(data)
    r.str(), r.str(), r.long()  # alert_id, episode_id, seq
    rule, status = ALERT_RULES[r.long()], ALERT_STATUS[r.long()]
    r.long(), r.long()  # severity, subject_type
    subject = r.str()
    r.opt_str(), r.opt_str()  # account_id, campaign_id
    return rule, status, subject, r.long()


def new_producer(broker, **extra):
    conf = {"bootstrap.servers": broker.bootstrap,
            "queue.buffering.max.messages": 1000000,
            "queue.buffering.max.kbytes": 1048576}
    conf.update(extra)
    return Producer(conf)


def produce_one(producer, topic, key, value, **kw):
    while True:
        try:
            producer.produce(topic, key=key, value=value, **kw)
            return
        except BufferError:
            producer.poll(0.05)


# --- growth: the same light workload at several sizes ----------------------

GROWTH_EVENTS = ("trial_started", "feature_used", "login")
GROWTH_BASE_MS = 1767225600000  # 2026-01-01T00:00:00Z


def produce_growth(broker, names, users):
    """users x GROWTH_EVENTS, keyed by user, signups spread over one day of
    event time, an account per 10 users and a campaign per 20,000; returns
    the events produced and the seconds it took."""
    producer = new_producer(broker, **{"linger.ms": 100,
                                       "batch.num.messages": 10000})
    started = time.monotonic()
    count = 0
    step = 86400000 / users
    for i in range(users):
        user, t = f"g{i}", GROWTH_BASE_MS + int(i * step)
        key = user.encode()
        account, campaign = f"ga{i // 10}", f"gc{i % 50}"
        for j, kind in enumerate(GROWTH_EVENTS):
            produce_one(producer, names.usage, key, usage_event(
                f"{user}-{j}", user, kind, t + j * 60000, account,
                campaign if j == 0 else None))
            count += 1
        if i % 1000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise BenchError("growth producer: messages left undelivered")
    return count, time.monotonic() - started


def growth_partitions(users):
    # About 70 bytes an event on the broker: 1M users x 3 events are
    # ~1 MiB per partition at 256, well within the dev broker's 5 MiB.
    return max(8, min(256, -(-users * len(GROWTH_EVENTS) * 100 // (2 << 20))))


def growth_step(users, started_procs):
    """One size: fresh broker and Redis, the backlog, the processor with
    --exit-at-end; returns (events/s from start, events/s from assignment,
    peak RSS MiB)."""
    names = ewsenv.Names(f"growth{users}")
    partitions = growth_partitions(users)
    broker, redis = start_services(
        [(names.usage, partitions), (names.campaign, 2), (names.alerts, 4),
         (names.dlq, 1)], started_procs)
    client = redis_py.Redis(port=redis.port, decode_responses=True)
    try:
        events, seconds = produce_growth(broker, names, users)
        log(f"growth {users} users: {events} events on {partitions} "
            f"partitions produced in {seconds:.1f}s")
        check_backlog(broker, [names.usage, names.campaign], events)
        run = measure_processor(names, broker, redis, client, events,
                                started_procs)
        mem = run["mem_after"]["used_memory"] - run["mem_before"]["used_memory"]
        rate = events / run["seconds"]
        run_rate = events / run["run_seconds"]
        rss_mb = run["peak_rss_kib"] / 1024
        log(f"growth_users={users} events={events} "
            f"processor_events_per_s={rate:.0f} "
            f"processor_run_events_per_s={run_rate:.0f} "
            f"processor_seconds={run['seconds']:.1f} "
            f"processor_peak_rss_mb={rss_mb:.0f} "
            f"processor_cpu_s={run['cpu_seconds']:.1f} "
            f"redis_cpu_s={run['redis_cpu_seconds']:.1f} "
            f"redis_bytes_per_user={mem / users:.0f}")
        return rate, run_rate, rss_mb
    finally:
        client.close()
        for thing in (redis, broker):
            started_procs.remove(thing)
            thing.close()


# --- live latency -----------------------------------------------------------

# A live user's events: trial_started (5 points), then invite_sent (8 each):
# E reaches 101 at the 12th invite, which fires SALES_READY; then four
# unsubscribed (-10 each, not activity) take E to 61, below exit.points
# (70), which resolves it. The last invite is the user's last activity, so
# USER_DISENGAGED fires once the watermark passes it + the inactivity.
LIVE_SEQUENCE = ["trial_started"] + ["invite_sent"] * 12 + ["unsubscribed"] * 4
LIVE_FIRES_AT = 12     # index of the event that fires SALES_READY
LIVE_RESOLVES_AT = 16  # and of the one that resolves it
LIVE_LAST_ACTIVITY = 12
LIVE_INACTIVITY_MS = 2000
LIVE_ENV = {"EWS_TIME_MODE": "auto",
            "EWS_RULES_USER_DISENGAGED_INACTIVITY": f"{LIVE_INACTIVITY_MS}ms",
            "EWS_TIME_ALLOWED_LATENESS": "0s",
            # An episode may resolve as soon as E allows it.
            "EWS_RULES_DWELL": "0s"}


def live_events(cohort_users):
    """Yields (user, index, event_type) forever: cohorts of cohort_users
    users; each round gives the next event to every user of the cohort, so
    a user's events are a round apart and its sequence lasts one cohort."""
    cohort = 0
    while True:
        users = [f"live{cohort}-{i}" for i in range(cohort_users)]
        for index, kind in enumerate(LIVE_SEQUENCE):
            for user in users:
                yield user, index, kind
        cohort += 1


class AlertWatcher:
    """Reads the alert topic on a thread from the beginning; keeps, per
    (rule, status, subject), the wall time the alert was first seen and its
    event time."""

    def __init__(self, broker, topic):
        self.seen = {}
        self.consumer = Consumer({
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"bench-alerts-{os.getpid()}",
            "enable.auto.commit": False, "fetch.wait.max.ms": 5,
            "fetch.error.backoff.ms": 5})
        meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
        self.consumer.assign([TopicPartition(topic, p, 0)
                              for p in meta.partitions])
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        # poll, not consume(n, timeout): a batch call returns only when it
        # has n messages or its timeout passed, and would add up to the
        # timeout to every arrival time it notes.
        while self.running:
            m = self.consumer.poll(0.05)
            now = time.time()
            if m is None or m.error():
                continue
            rule, status, subject, event_ms = alert_head(m.value())
            self.seen.setdefault((rule, status, subject),
                                 (now, event_ms, m.timestamp()[1]))

    def count(self, rule, status):
        return sum(1 for r, s, _ in list(self.seen) if (r, s) == (rule, status))

    def count_live(self):
        """Alerts seen, the warm-up user's left out."""
        return sum(1 for _, _, s in list(self.seen) if s != "warm-up")

    def close(self):
        self.running = False
        self.thread.join(10)
        self.consumer.close()


def percentiles(values):
    values = sorted(values)
    if not values:
        return {"p50": -1, "p99": -1, "max": -1}

    def at(q):
        return values[max(0, min(len(values) - 1,
                                 int(-(-q * len(values) // 1)) - 1))]
    return {"p50": at(0.50), "p99": at(0.99), "max": values[-1]}


def warm_up(producer, watcher, names):
    """One user's sequence up to SALES_READY, and its alert seen: the
    producer has its metadata and connection, the processor its first
    batch and the watcher its fetch going before the clock starts. Without
    it the first cohort's latency is the bench's own start-up (the Python
    producer's first metadata request, a second and more)."""
    now = int(time.time() * 1000)
    for index, kind in enumerate(LIVE_SEQUENCE[:LIVE_FIRES_AT + 1]):
        produce_one(producer, names.usage, b"warm-up",
                    usage_event(f"warm-up-{index}", "warm-up", kind, now),
                    timestamp=now)
    if producer.flush(30) != 0:
        raise BenchError("live producer: the warm-up was not delivered")
    ewsenv.wait_for(lambda: ("SALES_READY", "FIRING", "warm-up")
                    in watcher.seen, 60, "the warm-up user's alert")


def live(names, broker, redis, args, started_procs):
    """The processor in time.mode auto while events are produced at
    args.rate events/s for args.seconds; returns the latency figures."""
    run = ProcessorRun(names, broker, redis, exit_at_end=False,
                       env_extra=LIVE_ENV)
    started_procs.append(run)
    run.wait_assigned(60)
    watcher = AlertWatcher(broker, names.alerts)
    producer = new_producer(broker, **{"linger.ms": 5})
    warm_up(producer, watcher, names)
    # A user's events are a round apart: keep a round (cohort_users events)
    # near 50 ms so that the gaps stay far below the 2 s inactivity.
    cohort_users = max(10, args.rate // 20)
    events = live_events(cohort_users)
    trigger_ms = {}        # (status, user) -> produce time, ms
    last_activity_ms = {}  # user -> occurred_at of its last activity
    sent = 0
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # let the watcher thread in promptly
    client = redis_py.Redis(port=redis.port)
    cpu_before = (proc_cpu_seconds(broker.proc.pid),
                  proc_cpu_seconds(run.proc.pid), redis_cpu_seconds(client),
                  time.process_time())
    try:
        start = time.monotonic()
        start_wall = time.time()
        end = start + args.seconds
        while True:
            now = time.monotonic()
            if now >= end:
                break
            due = min(int((now - start) * args.rate), sent + 2000)
            if sent >= due:
                producer.poll(0)
                time.sleep(0.0005)
                continue
            while sent < due:
                user, index, kind = next(events)
                ms = int(time.time() * 1000)
                produce_one(producer, names.usage, user.encode(),
                            usage_event(f"{user}-{index}", user, kind, ms),
                            timestamp=ms)
                sent += 1
                if index == LIVE_FIRES_AT:
                    trigger_ms[("FIRING", user)] = ms
                elif index == LIVE_RESOLVES_AT:
                    trigger_ms[("RESOLVED", user)] = ms
                if index == LIVE_LAST_ACTIVITY:
                    last_activity_ms[user] = ms
            producer.poll(0)
        produced_seconds = time.monotonic() - start
        cpu_produced = (proc_cpu_seconds(broker.proc.pid),
                        proc_cpu_seconds(run.proc.pid),
                        redis_cpu_seconds(client), time.process_time())
        if producer.flush(30) != 0:
            raise BenchError("live producer: messages left undelivered")
        # Drain: until every expected alert is in, or inactivity + 10 s.
        expected = len(trigger_ms) + len(last_activity_ms)
        deadline = time.monotonic() + LIVE_INACTIVITY_MS / 1000 + 10
        while (time.monotonic() < deadline
               and watcher.count_live() < expected):
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        sys.setswitchinterval(old_interval)
        watcher.close()
    stats = run.stop_and_stats()

    direct, timers = [], []
    by_second = {}  # second of the live part -> direct latencies
    # to the alert's own Kafka timestamp (the processor's produce call):
    # the processor's share, without the broker's and the reader's
    produced = []
    for (status, user), ms in trigger_ms.items():
        got = watcher.seen.get(("SALES_READY", status, user))
        if got:
            direct.append(got[0] * 1000 - ms)
            produced.append(got[2] - ms)
            by_second.setdefault(int((ms / 1000) - start_wall),
                                 []).append(got[0] * 1000 - ms)
    for user, ms in last_activity_ms.items():
        got = watcher.seen.get(("USER_DISENGAGED", "FIRING", user))
        if got:
            timers.append(got[0] * 1000 - (ms + LIVE_INACTIVITY_MS))
    result = {"offered_rate": args.rate, "sent": sent,
              "achieved_rate": sent / produced_seconds,
              "seconds": produced_seconds,
              "direct_expected": len(trigger_ms),
              "direct_matched": len(direct),
              "direct": percentiles(direct),
              "timer_expected": len(last_activity_ms),
              "timer_matched": len(timers),
              "timer": percentiles(timers),
              "stats": stats}
    d, t = result["direct"], result["timer"]
    log(f"live: offered_rate={args.rate} achieved_rate="
        f"{result['achieved_rate']:.0f} sent={sent} "
        f"seconds={produced_seconds:.1f} consumed="
        f"{stats.get('consumed', -1)}")
    log(f"live_direct (SALES_READY FIRING/RESOLVED, produce -> alert "
        f"consumed): matched={len(direct)}/{len(trigger_ms)} "
        f"p50_ms={d['p50']:.1f} p99_ms={d['p99']:.1f} max_ms={d['max']:.1f}")
    log(f"live_timer (USER_DISENGAGED, deadline -> alert consumed): "
        f"matched={len(timers)}/{len(last_activity_ms)} "
        f"p50_ms={t['p50']:.1f} p99_ms={t['p99']:.1f} max_ms={t['max']:.1f}")
    q = percentiles(produced)
    log(f"live_direct_to_alert_produced (event produced -> alert's Kafka "
        f"timestamp): p50_ms={q['p50']:.1f} p99_ms={q['p99']:.1f} "
        f"max_ms={q['max']:.1f}")
    # Who had the CPU while the events came (2 cores for all four): the
    # dev broker serves every request on one thread.
    log("live_cpu (CPU seconds while producing, per second of it): " + " ".join(
        f"{who}={(after - before) / produced_seconds:.2f}"
        for who, before, after in zip(
            ("broker", "processor", "redis", "bench"), cpu_before,
            cpu_produced)))
    # Where the slow ones are: a stall shows as one second's max.
    log("live_direct_by_second (second: p50/p99/max ms): " + " ".join(
        f"{sec}:{p['p50']:.0f}/{p['p99']:.0f}/{p['max']:.0f}"
        for sec, p in ((sec, percentiles(v))
                       for sec, v in sorted(by_second.items()))))
    return result


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


def start_replicas(redis, client, count, started_procs):
    """count replicas of redis, in sync; their clients."""
    client.config_set("repl-diskless-sync-delay", 0)  # sync at once
    clients = []
    for _ in range(count):
        replica = ewsenv.Redis(extra=["--replicaof", "127.0.0.1",
                                      str(redis.port)])
        started_procs.append(replica)
        clients.append(redis_py.Redis(port=replica.port,
                                      decode_responses=True))
    ewsenv.wait_for(lambda: all(c.info("replication")["master_link_status"]
                                == "up" for c in clients), 30,
                    "the replicas in sync")
    return clients


def command_delta(before, after):
    """Per Redis command over the run: (calls, µs), from INFO
    commandstats read before and after."""
    out = {}
    for key, stats in after.items():
        old = before.get(key, {"calls": 0, "usec": 0})
        calls = stats["calls"] - old["calls"]
        if calls > 0:
            out[key.replace("cmdstat_", "")] = (calls,
                                                stats["usec"] - old["usec"])
    return out


def measure_processor(names, broker, redis, client, events, started_procs,
                      replicas=()):
    """One processor run over the backlog, with Redis's memory and CPU time
    (and its replicas' CPU time) read just before it starts and just after
    it exits."""
    mem_before = client.info("memory")
    commands_before = client.info("commandstats")
    redis_cpu_before = redis_cpu_seconds(client)
    replica_cpu_before = sum(redis_cpu_seconds(c) for c in replicas)
    run = ProcessorRun(names, broker, redis)
    started_procs.append(run)
    result = run.wait(PROCESSOR_TIMEOUT * TIMEOUT_SCALE)
    result["redis_cpu_seconds"] = redis_cpu_seconds(client) - redis_cpu_before
    result["replica_cpu_seconds"] = (sum(redis_cpu_seconds(c)
                                         for c in replicas)
                                     - replica_cpu_before)
    result["mem_before"] = mem_before
    result["mem_after"] = client.info("memory")
    result["commands"] = command_delta(commands_before,
                                       client.info("commandstats"))
    log(result["stats_line"])
    consumed = result["stats"].get("consumed")
    if consumed != events:
        raise BenchError(f"processor consumed {consumed} events, ews-gen "
                         f"produced {events}:\n" + run.tail())
    return result


def bench(args, tmp, started_procs):
    """Runs what args ask for; returns the headline figures."""
    check_tools()
    head = dict.fromkeys(HEADLINE, -1)
    if args.growth:
        rates = {}
        for users in args.growth_sizes:
            rate, run_rate, rss_mb = growth_step(users, started_procs)
            rates[users] = run_rate
            if users == 1000000:
                head["rss_mb_1m"] = rss_mb
        head["eps_10k"] = rates.get(10000, -1)
        head["eps_1m"] = rates.get(1000000, -1)
        return head

    names = ewsenv.Names("bench")
    live_names = ewsenv.Names("live")
    inputs = [names.usage, names.campaign]
    # The live topic: about 60 bytes an event, at most 3 MiB a partition.
    live_partitions = max(8, -(-int(args.rate * args.seconds) * 60
                               // (3 << 20)))
    broker, redis = start_services(
        [(names.usage, args.partitions), (names.campaign, 2),
         (names.alerts, 4), (names.dlq, 1),
         (live_names.usage, live_partitions), (live_names.campaign, 1),
         (live_names.alerts, 4), (live_names.dlq, 1)], started_procs)
    client = redis_py.Redis(port=redis.port, decode_responses=True)
    log(f"redis-server {client.info('server')['redis_version']} "
        f"({client.info('memory')['mem_allocator']}), broker "
        f"{broker.bootstrap}, load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg()))

    replicas = start_replicas(redis, client, args.replicas, started_procs)
    if args.wait_replicas:
        PROCESSOR_ENV["EWS_REDIS_WAIT_REPLICAS"] = str(args.wait_replicas)
    events, users = produce_backlog(names, broker, args, tmp)
    baselines = [baseline(broker, inputs)]
    log(f"kcat over the backlog: {baselines[0]:.2f}s")
    run = measure_processor(names, broker, redis, client, events,
                            started_procs, replicas)
    baselines.append(baseline(broker, inputs))
    log(f"kcat over the backlog again: {baselines[1]:.2f}s")

    rows = key_breakdown(client, names.prefix)
    delta = run["mem_after"]["used_memory"] - run["mem_before"]["used_memory"]
    print()
    accounted = print_breakdown(rows, delta, users)
    print()
    summarize(args, client, run, rows, baselines, events, users, accounted)

    consumed = run["stats"]["consumed"]
    head["eps"] = consumed / run["seconds"]
    head["ceiling_eps"] = events / min(baselines)
    head["ratio"] = head["eps"] / head["ceiling_eps"]
    head["cpu_us_per_event"] = (1e6 * (run["cpu_seconds"]
                                       + run["redis_cpu_seconds"]) / events)
    head["redis_cpu_us_per_event"] = 1e6 * run["redis_cpu_seconds"] / events
    head["redis_bytes_per_user"] = delta / users
    if users == 1000000:
        head["rss_mb_1m"] = run["peak_rss_kib"] / 1024
    if args.rate > 0 and args.seconds > 0:
        result = live(live_names, broker, redis, args, started_procs)
        if result["direct_matched"]:
            head["p50_ms"] = result["direct"]["p50"]
            head["p99_ms"] = result["direct"]["p99"]
    return head


# The headline line's fields, in order, and their decimals.
HEADLINE = {"eps": 0, "ceiling_eps": 0, "ratio": 3, "cpu_us_per_event": 1,
            "redis_cpu_us_per_event": 1, "redis_bytes_per_user": 0,
            "rss_mb_1m": 0, "eps_10k": 0, "eps_1m": 0, "p50_ms": 1,
            "p99_ms": 1}


def headline(head):
    def fmt(key):
        value = head[key]
        return "-1" if value == -1 else f"{value:.{HEADLINE[key]}f}"
    return "bench: " + " ".join(f"{key}={fmt(key)}" for key in HEADLINE)


def summarize(args, client, run, rows, baselines, events, users, accounted):
    """The summary block: one `bench: key=value ...` line per subject."""
    before, after = run["mem_before"], run["mem_after"]
    delta = after["used_memory"] - before["used_memory"]
    rss_delta = after["used_memory_rss"] - before["used_memory_rss"]
    # users stored: the fields of their buckets, and any u: key of an
    # earlier version's layout
    users_stored = sum(row[2] if cls == "ub" else row[0]
                       for (cls, _), row in rows.items() if cls in ("u", "ub"))
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
        f"users_stored={users_stored} memory_usage_per_user={accounted / users:.0f} "
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
    if args.replicas:
        log(f"replicas={args.replicas} wait_replicas={args.wait_replicas} "
            f"replica_cpu_s={run['replica_cpu_seconds']:.1f} "
            f"replica_cpu_us_per_event="
            f"{1e6 * run['replica_cpu_seconds'] / events:.1f}")
    # Redis' own accounting of its commands' time (not its I/O and event
    # loop, which redis_cpu_s holds too), the costliest first.
    for name, (calls, usec) in sorted(run["commands"].items(),
                                      key=lambda kv: -kv[1][1])[:10]:
        log(f"redis_command={name} calls={calls} "
            f"calls_per_event={calls / events:.3f} "
            f"usec_per_call={usec / calls:.2f} "
            f"us_per_event={usec / events:.2f}")
    for note in odd_things(run["stats"], users_stored, users):
        log(f"note: {note}")


def odd_things(stats, users_stored, users):
    """Things that do not invalidate the figures but deserve a look."""
    notes = []
    if users_stored != users:
        notes.append(f"{users_stored} users stored for {users} generated "
                     "users")
    for key in ("dead_letters", "fenced", "store_errors", "replayed",
                "failed"):
        if stats.get(key):
            notes.append(f"processor {key}={stats[key]}")
    return notes


def main():
    global TIMEOUT_SCALE
    args = parse_args()
    TIMEOUT_SCALE = max(1.0, args.users * args.days / 200000,
                        max(args.growth_sizes or [0]) / 300000
                        if args.growth else 1.0)
    started = time.monotonic()
    started_procs = []
    try:
        with tempfile.TemporaryDirectory(prefix="ews-bench-") as tmp:
            head = bench(args, tmp, started_procs)
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
    print(headline(head), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
