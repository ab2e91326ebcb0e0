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
                         *extra]
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

    def close(self):
        stop(self.proc)
        self.dir.cleanup()


class Broker:
    """ews-devbroker, the Kafka-protocol mock cluster in its own process.
    brokers: how many; control: open its control channel (control())."""

    def __init__(self, topics=(), port=None, brokers=1, control=False):
        self.dir = tempfile.TemporaryDirectory(prefix="ews-broker-")
        addr_file = os.path.join(self.dir.name, "bootstrap")
        args = [os.path.join(BUILD, "ews-devbroker"), "--addr-file", addr_file]
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
            "EWS_REDIS_PORT": str(redis.port),
            "EWS_REDIS_PREFIX": self.prefix,
            "EWS_DECODE_SCHEMA_DIR": SCHEMAS,
            "EWS_HTTP_PORT": str(free_port()),
            # Generated scenarios lie in the past: event time alone
            # decides, as in a replay (tests of the idle clock say auto).
            "EWS_TIME_MODE": "event",
        })
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
