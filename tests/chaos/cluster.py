"""The processes of one chaos run: a dev broker with its control channel, a
Redis with an append-only file (and the history of that file's size, so
that a crash can lose what the last fraction of a second wrote), and the
processors of the group, each in a slot ("A", "B") that outlives its
restarts. What the faults need to see of the store (fences, outboxes, the
leader's queues and lease) is read here, by key."""

import os
import signal
import subprocess
import threading
import time

import redis as redis_py

import ewsenv

# The topics of a run, with their partitions (one broker per run).
USAGE_PARTITIONS = 4
CAMPAIGN_PARTITIONS = 2


class AofHistory(threading.Thread):
    """The AOF's size every 2 ms since redis-server last started, so that a
    crash can cut the file back to the size it had a moment before."""

    def __init__(self, node):
        """node: a function giving the ewsenv.Redis to follow (the
        primary, where there is a replica)."""
        super().__init__(daemon=True)
        self.node = node
        self.lock = threading.Lock()
        self.samples = []
        self.paused = True
        self.done = False

    def run(self):
        while not self.done:
            if not self.paused:
                try:
                    size = self.node().aof_size()
                except (OSError, IndexError, ValueError):
                    size = None
                now = time.monotonic()
                with self.lock:
                    if size is not None and not self.paused:
                        self.samples.append((now, size))
            time.sleep(0.002)

    def resume(self):
        """Redis (re)started: the history begins again."""
        with self.lock:
            self.samples = []
            self.paused = False

    def pause(self):
        with self.lock:
            self.paused = True

    def size_at(self, moment):
        """The size sampled last at or before moment; the first one since
        the start when there is none that old."""
        with self.lock:
            older = [size for at, size in self.samples if at <= moment]
            if older:
                return older[-1]
            return self.samples[0][1] if self.samples else None

    def close(self):
        self.done = True


class ChaosRedis:
    """redis-server with an AOF (appendfsync everysec or always) whose
    crashes and stalls the faults model."""

    AOF = ["--appendonly", "yes",
           # one increment file for the whole run: no rewrite switches it
           "--auto-aof-rewrite-percentage", "0"]

    def __init__(self, appendfsync):
        self.appendfsync = appendfsync
        self.node = ewsenv.Redis(extra=self.aof())
        self.history = AofHistory(lambda: self.server)
        self.history.start()
        self.history.resume()
        self.stopped = None

    def aof(self):
        return [*self.AOF, "--appendfsync", self.appendfsync]

    @property
    def server(self):
        """The ewsenv.Redis the processors write to."""
        return self.node

    @property
    def port(self):
        return self.server.port

    def ews_env(self):
        """How the processors and the tools reach it (ewsenv.Names.env)."""
        return {"EWS_REDIS_PORT": str(self.port)}

    def crash(self, lose_seconds):
        """SIGKILL; with everysec, the AOF then cut back to the size it had
        lose_seconds before (what a machine crash may lose); with always,
        nothing is cut. Returns (bytes before, bytes kept)."""
        killed_at = time.monotonic()
        self.history.pause()
        self.crashed = self.server
        self.crashed.crash()
        before = self.crashed.aof_size()
        kept = before
        if self.appendfsync == "everysec":
            kept = self.history.size_at(killed_at - lose_seconds)
            if kept is not None and kept < before:
                os.truncate(self.crashed.aof_incr(), kept)
            else:
                kept = before
        return before, kept

    def start(self):
        """The crashed server again, from its AOF."""
        self.crashed.start()
        self.history.resume()

    def stall(self):
        self.stopped = self.server
        os.kill(self.stopped.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.stopped.proc.pid, signal.SIGCONT)
        self.stopped = None

    def close(self):
        self.history.close()
        if self.stopped:
            self.resume()
        self.node.close()


class SentinelRedis(ChaosRedis):
    """A primary and a replica, both with an AOF, and three sentinels
    (ewsenv.RedisFailover); the processors and the tools find the primary
    through the sentinels. Crashes and stalls hit the primary for less than
    the sentinels' down-after (3 s), so only failover() fails over."""

    DOWN_AFTER_MS = 3000

    def __init__(self, appendfsync):
        self.appendfsync = appendfsync
        self.stopped = None
        self.failovers = ewsenv.RedisFailover(
            down_after_ms=self.DOWN_AFTER_MS, extra=self.aof())
        self.history = AofHistory(lambda: self.server)
        self.history.start()
        self.history.resume()

    @property
    def server(self):
        return self.failovers.primary

    def ews_env(self):
        return self.failovers.ews_env()

    def start(self):
        """The crashed primary again, from its AOF, as the primary it
        still is to the sentinels (a promoted replica's own arguments name
        its old primary)."""
        args = self.crashed.args
        if "--replicaof" in args:
            i = args.index("--replicaof")
            self.crashed.args = args[:i] + args[i + 3:]
        super().start()

    def failover(self, stall_replication):
        """The primary SIGKILLed and the replica promoted; stall_replication
        first stops the replica receiving, so that the last writes are on
        the primary alone and lost with it. The killed one then rejoins as
        the new primary's replica. Returns the seconds until the promotion."""
        self.history.pause()
        if stall_replication:
            self.failovers.stall_replication()
            time.sleep(0.3)
        self.failovers.kill_primary()
        took = self.failovers.wait_promoted(30)
        self.history.resume()
        self.failovers.rejoin(60)
        return took

    def close(self):
        self.history.close()
        if self.stopped:
            self.resume()
        self.failovers.close()


# The run's Redis by what its faults require (faults.py): a set of
# requirements -> the class.
REDIS = {frozenset(): ChaosRedis, frozenset({"sentinel"}): SentinelRedis}


class Instance:
    """A processor slot of the group; its log accumulates over restarts."""

    def __init__(self, cluster, slot):
        self.cluster = cluster
        self.slot = slot
        self.proc = None
        self.starts = 0
        self.wanted = False  # should be running (a kill restarts it)
        self.log_path = os.path.join(cluster.workdir, f"processor-{slot}.log")

    def start(self):
        self.wanted = True
        self.started_at = time.monotonic()
        with open(self.log_path, "a") as log:
            log.write(f"--- start {self.starts + 1} at "
                      f"{time.monotonic() - self.cluster.t0:.3f}s\n")
            log.flush()
            self.proc = ewsenv.processor(
                self.cluster.names, self.cluster.broker, self.cluster.redis,
                self.cluster.processor_args, env_extra=self.cluster.env,
                stdout=subprocess.DEVNULL, stderr=log)
        self.starts += 1

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid if self.proc else None

    def kill(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self, timeout=45):
        """SIGTERM and wait: the exit code (None when it was not running).
        A process started a moment ago is given 2 s first: a SIGTERM before
        its handlers are in place would end it as a signal does."""
        self.wanted = False
        if not self.running():
            return None
        time.sleep(max(0.0, self.started_at + 2 - time.monotonic()))
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "hung"


class Cluster:
    """Broker, Redis and processors of one run. names: the chaos group's
    topics, group and prefix; env: the processors' extra environment."""

    def __init__(self, workdir, names, topics, appendfsync, env,
                 processor_args, brokers=3, requires=frozenset()):
        self.workdir = workdir
        self.names = names
        self.env = dict(env)
        self.processor_args = list(processor_args)
        self.t0 = time.monotonic()
        self.broker = None
        self.redis = None
        self.instances = {}
        try:
            self.broker = ewsenv.Broker(topics, brokers=brokers,
                                        control=True)
            self.brokers = brokers
            if frozenset(requires) not in REDIS:
                raise RuntimeError("no Redis topology offers " +
                                   ", ".join(sorted(requires)))
            self.redis = REDIS[frozenset(requires)](appendfsync)
            self._client = None
        except BaseException:
            self.close()
            raise
        p = names.prefix
        self.partitions = [(names.usage, k) for k in range(USAGE_PARTITIONS)] \
            + [(names.campaign, k) for k in range(CAMPAIGN_PARTITIONS)]
        self.fence_keys = [f"{p}p:{names.usage}:{k}"
                           for k in range(USAGE_PARTITIONS)] + \
            [f"{p}p:{names.campaign}:{k}" for k in range(CAMPAIGN_PARTITIONS)]
        self.outbox_keys = [f"{p}o:{names.usage}:{k}"
                            for k in range(USAGE_PARTITIONS)] + \
            [f"{p}o:{names.campaign}:{k}" for k in range(CAMPAIGN_PARTITIONS)]

    @property
    def client(self):
        """A client of the current primary (a failover moves it)."""
        if self._client is None or \
                self._client.connection_pool.connection_kwargs["port"] != \
                self.redis.port:
            self._client = redis_py.Redis(port=self.redis.port,
                                          socket_timeout=0.5,
                                          socket_connect_timeout=0.5)
        return self._client

    def instance(self, slot):
        if slot not in self.instances:
            self.instances[slot] = Instance(self, slot)
        return self.instances[slot]

    def running(self):
        return sorted(s for s, i in self.instances.items() if i.running())

    def control(self, command):
        answer = self.broker.control(command)
        if answer != "ok":
            raise RuntimeError(f"ews-devbroker: {command}: {answer}")

    # What the store shows; None while Redis does not answer.
    def fences(self):
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in self.fence_keys:
                pipe.hget(key, "offset")
            return [int(v or 0) for v in pipe.execute()]
        except redis_py.RedisError:
            return None

    def progress(self):
        fences = self.fences()
        return None if fences is None else sum(fences)

    def fences_and_outboxes(self):
        """Both, read at once: ([offset per partition], [records waiting
        per partition]); None while Redis does not answer."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in self.fence_keys:
                pipe.hget(key, "offset")
            for key in self.outbox_keys:
                pipe.hlen(key)
            got = pipe.execute()
        except redis_py.RedisError:
            return None
        n = len(self.fence_keys)
        return [int(v or 0) for v in got[:n]], got[n:]

    def end_offsets(self):
        """The broker's end of each input partition, in fences() order."""
        from confluent_kafka import Consumer, TopicPartition
        consumer = Consumer({"bootstrap.servers": self.broker.bootstrap,
                             "group.id": "chaos-ends", "log_level": 0})
        try:
            return [consumer.get_watermark_offsets(
                TopicPartition(topic, k), timeout=10)[1]
                for topic, k in self.partitions]
        finally:
            consumer.close()

    def outboxes(self):
        """Records waiting in each partition's outbox, then the leader's."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in self.outbox_keys:
                pipe.hlen(key)
            pipe.hlen(f"{self.names.prefix}o:leader")
            return pipe.execute()
        except redis_py.RedisError:
            return None

    def cohort_queues(self):
        """The leader's queues (campaigns and accounts -> first undecided
        day): they move when it decides."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.zrange(f"{self.names.prefix}cq", 0, -1, withscores=True)
            pipe.zrange(f"{self.names.prefix}aq", 0, -1, withscores=True)
            return tuple(tuple(r) for r in pipe.execute())
        except redis_py.RedisError:
            return None

    def leader_slot(self):
        """The slot whose process holds the lease ("<host>:<pid>:<ns>
        <token>"), or None."""
        try:
            lease = self.client.get(f"{self.names.prefix}leader")
        except redis_py.RedisError:
            return None
        if not lease:
            return None
        try:
            pid = int(lease.decode().split(" ")[0].split(":")[-2])
        except (ValueError, IndexError):
            return None
        for slot, inst in self.instances.items():
            if inst.running() and inst.pid() == pid:
                return slot
        return None

    def close(self):
        for inst in self.instances.values():
            inst.kill()
        if self.redis:
            self.redis.close()
        if self.broker:
            self.broker.close()
