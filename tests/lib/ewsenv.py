"""Real processes for tests and the demo: ews-devbroker, redis-server, the
processor, ews-gen. Everything listens on loopback ports picked free at
start, lives in its own temporary directory, and is stopped afterwards."""

import datetime
import io
import json
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time

import avro.io
import avro.schema

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("EWS_BUILD", os.path.join(ROOT, "build"))
SCHEMAS = os.path.join(ROOT, "schemas")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


USER_BUCKETS = 8192  # store/store_int.h STORE_USER_BUCKETS


def user_bucket_key(prefix, user_id):
    """The hash a user is a field of: ub:<FNV-1a(id) % 8192>."""
    h = 2166136261
    for b in user_id.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return f"{prefix}ub:{h % USER_BUCKETS}"


def stored_user_ids(redis, prefix):
    """The ids of the users stored under prefix (their buckets' fields,
    and an earlier version's u:<id> keys), with redis-cli."""
    ids = set()
    for key in redis.cli("--scan", "--pattern", f"{prefix}ub:*").split():
        ids.update(redis.cli("hkeys", key).split())
    ids.update(k[len(prefix) + 2:] for k in
               redis.cli("--scan", "--pattern", f"{prefix}u:*").split())
    return ids


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.002)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def stop(proc, timeout=10):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Redis:
    """redis-server on a free loopback port, no persistence unless asked."""

    def __init__(self, policy="noeviction", extra=()):
        self.dir = tempfile.TemporaryDirectory(prefix="ews-redis-")
        for _ in range(5):
            self.port = free_port()
            self.args = ["redis-server", "--port", str(self.port), "--bind",
                         "127.0.0.1", "--dir", self.dir.name, "--save", "",
                         "--appendonly", "no", "--maxmemory-policy", policy,
                         # the users' buckets stay listpacks (README)
                         "--hash-max-listpack-value", "1024",
                         "--hash-max-listpack-entries", "256", *extra]
            try:
                self.start()
                return
            except TimeoutError:
                stop(self.proc)
        raise RuntimeError("redis-server did not start")

    cli_args = []  # e.g. a password

    def start(self):
        """Starts (again) on the same port and directory: an AOF is read."""
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(self.ping, 5, "redis-server")

    def crash(self, aof_size=None):
        """SIGKILL; then, to model what `appendfsync everysec` may lose on
        a machine crash, the AOF's increment cut back to aof_size bytes."""
        self.proc.kill()
        self.proc.wait()
        if aof_size is not None:
            os.truncate(self.aof_incr(), aof_size)

    def aof_incr(self):
        """The AOF's current increment file (Redis 7's multi-part AOF)."""
        folder = os.path.join(self.dir.name, "appendonlydir")
        incr = sorted((f for f in os.listdir(folder) if f.endswith(".aof")
                       and ".incr." in f),
                      key=lambda f: int(f.split(".")[-3]))
        return os.path.join(folder, incr[-1])

    def aof_size(self):
        return os.path.getsize(self.aof_incr())

    def ping(self):
        if self.proc.poll() is not None:
            return False
        reply = self.cli("PING").strip()
        return reply == "PONG" or reply.startswith("NOAUTH")

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port),
                               *self.cli_args, *args],
                              capture_output=True, text=True).stdout

    def ews_env(self):
        """The processor's and the tools' way here (Names.env)."""
        return {"EWS_REDIS_PORT": str(self.port)}

    def close(self):
        stop(self.proc)
        self.dir.cleanup()


class Sentinel:
    """redis-sentinel (Debian's) on a free loopback port, monitoring the
    primary at primary_port as master_name. Its configuration file is its
    own to rewrite, in its own directory."""

    def __init__(self, master_name, primary_port, quorum, down_after_ms,
                 failover_timeout_ms):
        self.dir = tempfile.TemporaryDirectory(prefix="ews-sentinel-")
        self.conf = os.path.join(self.dir.name, "sentinel.conf")
        self.log = os.path.join(self.dir.name, "sentinel.log")
        for _ in range(5):
            self.port = free_port()
            with open(self.conf, "w") as f:
                f.write(f"port {self.port}\nbind 127.0.0.1\n"
                        f"dir {self.dir.name}\nlogfile {self.log}\n"
                        f"sentinel monitor {master_name} 127.0.0.1 "
                        f"{primary_port} {quorum}\n"
                        f"sentinel down-after-milliseconds {master_name} "
                        f"{down_after_ms}\n"
                        f"sentinel failover-timeout {master_name} "
                        f"{failover_timeout_ms}\n"
                        f"sentinel parallel-syncs {master_name} 1\n")
            self.proc = subprocess.Popen(["redis-sentinel", self.conf],
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            try:
                wait_for(lambda: self.proc.poll() is None and
                         self.cli("PING").strip() == "PONG", 5,
                         "redis-sentinel")
                return
            except TimeoutError:
                stop(self.proc)
        raise RuntimeError("redis-sentinel did not start")

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args],
                              capture_output=True, text=True).stdout

    def close(self):
        stop(self.proc)
        self.dir.cleanup()


class RedisFailover:
    """A primary, one replica and Sentinel, all on free loopback ports, for
    failover tests and fault injection. The processor and the tools find
    the primary through the sentinels (ews_env: redis.sentinels and
    redis.master.name), so it can stand wherever a Redis does:

        f = RedisFailover()            # started, replica in sync
        proc = processor(names, broker, f)
        f.kill_primary()               # SIGKILL; returns the killed Redis
        f.wait_promoted()              # a sentinel names the replica, which
                                       # answers ROLE master
        f.rejoin()                     # the killed one back, as a replica of
                                       # the new primary, so that the next
                                       # failover has somewhere to go
        f.close()

    primary and replica are the Redis objects in those roles now; port and
    cli() are the primary's (a plain client sees the current primary);
    sentinel_addrs and master_name are what the processor is given.
    sentinels=3 with quorum 2 is a real Sentinel deployment; sentinels=1
    with quorum 1 fails over without the sentinels first finding each
    other. extra: arguments of both data nodes (e.g. an AOF)."""

    def __init__(self, sentinels=3, master_name="ews", down_after_ms=1000,
                 failover_timeout_ms=2000, extra=()):
        self.master_name = master_name
        # a full sync starts at once (Redis waits 5 s for more replicas)
        self.extra = ["--repl-diskless-sync-delay", "0", *extra]
        self.sentinels = []
        self.failovers = 0
        self.primary = Redis(extra=self.extra)
        self.replica = None
        self.down = None  # the killed one, until rejoin()
        try:
            self.replica = Redis(extra=[*self.extra, *self._replicaof()])
            quorum = sentinels // 2 + 1
            for _ in range(sentinels):
                self.sentinels.append(Sentinel(
                    master_name, self.primary.port, quorum, down_after_ms,
                    failover_timeout_ms))
            self.wait_healthy()
        except BaseException:
            self.close()
            raise

    @property
    def sentinel_addrs(self):
        return [s.addr for s in self.sentinels]

    @property
    def port(self):
        return self.primary.port

    def cli(self, *args):
        return self.primary.cli(*args)

    def ews_env(self):
        return {"EWS_REDIS_SENTINELS": ",".join(self.sentinel_addrs),
                "EWS_REDIS_MASTER_NAME": self.master_name}

    def _replicaof(self):
        return ["--replicaof", "127.0.0.1", str(self.primary.port)]

    def named_primary(self, sentinel):
        """host:port the sentinel names, or None."""
        reply = sentinel.cli("SENTINEL", "get-master-addr-by-name",
                             self.master_name).split()
        return f"{reply[0]}:{reply[1]}" if len(reply) == 2 else None

    def _healthy(self):
        want = f"127.0.0.1:{self.primary.port}"
        if self.replica is None or "master_link_status:up" not in \
                self.replica.cli("INFO", "replication"):
            return False
        for s in self.sentinels:
            if self.named_primary(s) != want:
                return False
            replicas = s.cli("SENTINEL", "replicas", self.master_name)
            if f"\n{self.replica.port}\n" not in f"\n{replicas}" or \
                    "s_down" in replicas or "disconnected" in replicas:
                return False
            others = s.cli("SENTINEL", "sentinels", self.master_name)
            if others.count("\nname\n") + others.startswith("name\n") < \
                    len(self.sentinels) - 1:
                return False
        return True

    def wait_healthy(self, timeout=30):
        """Until the replica is in sync and every sentinel names the
        primary, sees the replica up and knows the other sentinels: a
        failover can happen."""
        wait_for(self._healthy, timeout, "Sentinel and a replica in sync")

    def stall_replication(self):
        """The replica stops receiving from the primary (pointed at a
        closed port), as a replica that has fallen behind: what the primary
        writes from now on is what a failover loses. Sentinel still sees
        the replica up and promotes it when the primary goes; while the
        primary is up, the sentinels point the replica back at it after
        failover_timeout_ms."""
        self.replica.cli("REPLICAOF", "127.0.0.1", str(free_port()))
        wait_for(lambda: "master_link_status:down" in
                 self.replica.cli("INFO", "replication"), 5,
                 "the replica's link down")

    def kill_primary(self):
        """SIGKILL of the primary; returns it (see rejoin())."""
        self.primary.proc.kill()
        self.primary.proc.wait()
        self.down = self.primary
        return self.down

    def wait_promoted(self, timeout=30):
        """Until a sentinel names the replica and the replica answers ROLE
        as the master; then primary is it. Returns the seconds waited."""
        if self.replica is None:
            raise RuntimeError("no replica to promote: rejoin() first")
        start = time.monotonic()
        want = f"127.0.0.1:{self.replica.port}"

        def promoted():
            return any(self.named_primary(s) == want
                       for s in self.sentinels) and \
                self.replica.cli("ROLE").split("\n", 1)[0] == "master"
        wait_for(promoted, timeout, "the replica promoted")
        self.primary, self.replica = self.replica, None
        self.failovers += 1
        return time.monotonic() - start

    def rejoin(self, timeout=30):
        """Starts the killed one again, empty, as a replica of the new
        primary, and waits until Sentinel could fail over again."""
        old, self.down = self.down, None
        args = old.args
        if "--replicaof" in args:
            i = args.index("--replicaof")
            args = args[:i] + args[i + 3:]
        old.args = [*args, *self._replicaof()]
        old.start()
        self.replica = old
        self.wait_healthy(timeout)

    def close(self):
        for s in self.sentinels:
            s.close()
        for r in (self.primary, self.replica, self.down):
            if r is not None:
                r.close()


class Broker:
    """ews-devbroker, the Kafka-protocol mock cluster in its own process.
    brokers: how many; control: open its control channel (control())."""

    def __init__(self, topics=(), port=None, extra=(), brokers=1,
                 control=False):
        self.dir = tempfile.TemporaryDirectory(prefix="ews-broker-")
        addr_file = os.path.join(self.dir.name, "bootstrap")
        args = [os.path.join(BUILD, "ews-devbroker"), "--addr-file", addr_file,
                *extra]
        if port is not None:
            args += ["--port", str(port)]
        if brokers != 1:
            args += ["--brokers", str(brokers)]
        self.control_path = None
        if control:
            self.control_path = os.path.join(self.dir.name, "control")
            args += ["--control", self.control_path]
        self._control = None
        for name, partitions in topics:
            args += ["--topic", f"{name}:{partitions}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(addr_file), 10, "ews-devbroker")
        with open(addr_file) as f:
            self.bootstrap = f.read().strip()

    def control(self, command, timeout=10):
        """Sends one command line on the control channel; its answer
        ("ok" or "error <why>")."""
        if self._control is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(self.control_path)
            self._control = (sock, sock.makefile("r"))
        sock, reader = self._control
        sock.sendall(command.encode() + b"\n")
        answer = reader.readline()
        if not answer:
            raise ConnectionError("ews-devbroker closed its control channel")
        return answer.rstrip("\n")

    def close(self):
        if self._control is not None:
            self._control[1].close()
            self._control[0].close()
            self._control = None
        stop(self.proc)
        self.dir.cleanup()


class Names:
    """Topic, group and key-prefix names of one scenario, so that scenarios
    share a broker and a Redis without seeing each other."""

    def __init__(self, tag):
        self.usage = f"{tag}-usage"
        self.campaign = f"{tag}-campaign"
        self.alerts = f"{tag}-alerts"
        self.dlq = f"{tag}-dlq"
        self.group = f"{tag}-group"
        self.prefix = f"{tag}:"

    def env(self, broker, redis):
        env = dict(os.environ)
        env.update({
            "EWS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "EWS_KAFKA_GROUP_ID": self.group,
            "EWS_TOPICS_USAGE": self.usage,
            "EWS_TOPICS_CAMPAIGN": self.campaign,
            "EWS_TOPICS_ALERTS": self.alerts,
            "EWS_TOPICS_DLQ": self.dlq,
            "EWS_REDIS_PREFIX": self.prefix,
            "EWS_DECODE_SCHEMA_DIR": SCHEMAS,
            "EWS_HTTP_PORT": str(free_port()),
            # Generated scenarios lie in the past: event time alone
            # decides, as in a replay (tests of the idle clock say auto).
            "EWS_TIME_MODE": "event",
        })
        # a Redis by its port, a RedisFailover through its sentinels
        env.update(redis.ews_env() if hasattr(redis, "ews_env")
                   else {"EWS_REDIS_PORT": str(redis.port)})
        return env


# Settings that make a test broker answer quickly: an empty fetch waits
# fetch.wait.max.ms, and a lost member is noticed after session.timeout.ms.
FAST_CONSUMER = ["-X", "fetch.wait.max.ms=50", "-X", "session.timeout.ms=6000",
                 "-X", "heartbeat.interval.ms=500"]


def processor(names, broker, redis, args=(), env_extra=None, **kw):
    """Starts the processor; the caller waits or stops it."""
    # EWS_WRAP: a command the processor runs under (make valgrind)
    cmd = [*shlex.split(os.environ.get("EWS_WRAP", "")),
           os.path.join(BUILD, "ews-processor"), "-c",
           os.path.join(ROOT, "config", "ews.yaml"), *FAST_CONSUMER, *args]
    env = names.env(broker, redis)
    env.update(env_extra or {})
    return subprocess.Popen(cmd, env=env, text=True, **kw)


def run_processor_to_end(names, broker, redis, args=(), timeout=120,
                         env_extra=None):
    """Runs the processor over everything produced so far; returns stderr."""
    proc = processor(names, broker, redis, ["--exit-at-end", *args],
                     env_extra=env_extra, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError("processor did not reach the end:\n" + err[-4000:])
    if proc.returncode != 0:
        raise AssertionError(f"processor exit {proc.returncode}:\n" + err[-4000:])
    return err


def scrape(port):
    """The processor's /metrics as {'name{labels}': value}; {} if down."""
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                    timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and line[0] != "#"}


def inspect(names, broker, redis, kind, subject):
    """A subject's state as ews-inspect prints it, or None when absent."""
    proc = subprocess.run([os.path.join(BUILD, "ews-inspect"), kind, subject],
                          env=names.env(broker, redis), capture_output=True,
                          text=True)
    if proc.returncode == 1 and "no " + kind in proc.stderr:
        return None
    if proc.returncode != 0:
        raise AssertionError(f"ews-inspect: {proc.stderr}")
    return json.loads(proc.stdout)


# ews-gen dates its events near now unless told a start: the tests' and the
# demo's scenarios keep theirs at 2026-01-01T00:00:00Z (the same stream,
# byte for byte, for the same flags).
GEN_START = ["--start-ms", "1767225600000"]


def run_gen(names, broker, truth, args=()):
    """Produces a generated scenario; returns the truth records."""
    cmd = [os.path.join(BUILD, "ews-gen"), "-b", broker.bootstrap,
           "--usage-topic", names.usage, "--campaign-topic", names.campaign,
           "--schemas", SCHEMAS, "--truth", truth,
           *([] if "--start-ms" in args else GEN_START), *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    with open(truth) as f:
        return [json.loads(line) for line in f if line.strip()]


def schema(name):
    with open(os.path.join(SCHEMAS, name)) as f:
        return avro.schema.parse(f.read())


def avro_decode(sch, data):
    return avro.io.DatumReader(sch).read(avro.io.BinaryDecoder(io.BytesIO(data)))


def avro_encode(sch, datum):
    buf = io.BytesIO()
    avro.io.DatumWriter(sch).write(datum, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def millis(dt):
    return int(dt.timestamp() * 1000)


def utc(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)


def consume_records(broker, topic, timeout=20):
    """Every record of topic from the start, as dicts of partition, offset,
    timestamp, key, value and headers (name -> bytes)."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": broker.bootstrap,
                         "group.id": f"reader-{topic}-{time.monotonic_ns()}",
                         "enable.partition.eof": True,
                         "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            return []
        consumer.assign([TopicPartition(topic, p, 0)
                         for p in meta.partitions])
        pending, out = set(meta.partitions), []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                pending.discard(m.partition())
                continue
            out.append({"partition": m.partition(), "offset": m.offset(),
                        "timestamp": m.timestamp()[1], "key": m.key(),
                        "value": m.value(), "headers": dict(m.headers() or [])})
        return out
    finally:
        consumer.close()


def consume_all(broker, topic, timeout=20):
    """Every message of topic from the start: (key, value, headers)."""
    return [(r["key"], r["value"], r["headers"])
            for r in consume_records(broker, topic, timeout)]


def produce(broker, topic, messages):
    """messages: (key, value) pairs, or (key, value, partition) to choose
    the partition, produced in order and flushed."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": broker.bootstrap,
                         "enable.idempotence": True})
    for key, value, *partition in messages:
        producer.produce(topic, key=key, value=value,
                         **({"partition": partition[0]} if partition else {}))
    assert producer.flush(30) == 0


class Alertmanager:
    """prometheus-alertmanager on a free loopback port (or the one given),
    clustering off, its storage in its own temporary directory. Its one
    receiver sends nowhere: tests read what it holds through its API."""

    CONFIG = ("route:\n  receiver: nowhere\n"
              "receivers:\n  - name: nowhere\n")

    def __init__(self, port=None, start=True):
        self.dir = tempfile.TemporaryDirectory(prefix="ews-alertmanager-")
        self.config = os.path.join(self.dir.name, "alertmanager.yml")
        with open(self.config, "w") as f:
            f.write(self.CONFIG)
        self.proc = None
        self.fixed = port is not None
        self.port = port if self.fixed else free_port()
        if start:
            self.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        """Starts (again) on its port; a new free one if it was taken and
        none was given. Its alerts live in memory: a restart loses them."""
        for _ in range(1 if self.fixed else 5):
            args = ["prometheus-alertmanager",
                    f"--config.file={self.config}",
                    f"--storage.path={os.path.join(self.dir.name, 'data')}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address="]
            self.log = open(os.path.join(self.dir.name, "log"), "a")
            self.proc = subprocess.Popen(args, stdout=self.log,
                                         stderr=subprocess.STDOUT)
            try:
                wait_for(self.ready, 15, "prometheus-alertmanager")
                return
            except TimeoutError:
                self.stop()
                self.port = self.port if self.fixed else free_port()
        raise RuntimeError("prometheus-alertmanager did not start")

    def ready(self):
        import urllib.request
        if self.proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def alerts(self):
        """GET /api/v2/alerts: the alerts it holds and that have not ended
        (an alert whose endsAt has passed is left out)."""
        import urllib.request
        with urllib.request.urlopen(self.url + "/api/v2/alerts",
                                    timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        stop(self.proc)
        if getattr(self, "log", None):
            self.log.close()

    def close(self):
        self.stop()
        self.dir.cleanup()
