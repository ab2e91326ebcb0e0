"""The kinds of fault a chaos run injects.

A kind is a class with a name, the summary counter it adds to, and two
methods:

  plan(rng, point) -> [Step]   drawn when the run is planned, from the run's
                               seed alone: where in the stream (a share of
                               its messages, consumed) and with what
                               parameters. A kind may plan a later step too
                               (a member that joins, then leaves).
  inject(run, step) -> str     does it to the running cluster and says what
                               it did, in a few words.

To add a kind, write the class and add it to KINDS. A kind that needs more
than one redis-server with an AOF names what in `requires`: a failover
requires "sentinel", and cluster.Cluster builds the run's Redis from the
requirements of the kinds planned in it (cluster.REDIS: a class with
ChaosRedis's methods, here SentinelRedis with its failover()).
"""

import time


class Step:
    def __init__(self, kind, point, **params):
        self.kind = kind
        self.point = point
        self.params = params
        self.description = None

    def __repr__(self):
        return f"{self.kind.name}@{self.point:.2f}"


class Fault:
    name = ""
    counter = None
    requires = ()

    def plan(self, rng, point):
        return [Step(self, point)]

    def inject(self, run, step):
        raise NotImplementedError


def _kill(run, slot, why):
    """SIGKILL the slot's processor; restart it at once."""
    run.cluster.instance(slot).kill()
    run.count("kills")
    run.cluster.instance(slot).start()
    return f"kill {slot} {why}"


class Kill(Fault):
    """SIGKILL of a processor at a random point, and its restart."""
    name = "kill"
    counter = "kills"

    def plan(self, rng, point):
        return [Step(self, point, pick=rng.random(),
                     pause=rng.choice([0, 0, 0.5, 1.5]))]

    def inject(self, run, step):
        slots = run.cluster.running() or ["A"]
        slot = slots[int(step.params["pick"] * len(slots))]
        run.cluster.instance(slot).kill()
        run.count("kills")
        time.sleep(step.params["pause"])
        run.cluster.instance(slot).start()
        return f"kill {slot}"


class KillAfterCommit(Fault):
    """SIGKILL between a commit in Redis and its delivery reports: the
    moment a partition's fence moved and its outbox grew (the commit's
    alerts are in Redis, Kafka has not acknowledged them, the offset is not
    stored). When no commit with alerts comes within a few seconds, right
    after a fence moved."""
    name = "kill-after-commit"
    counter = "kills"

    def plan(self, rng, point):
        return [Step(self, point, pick=rng.random())]

    def inject(self, run, step):
        cluster = run.cluster
        slots = cluster.running() or ["A"]
        slot = slots[int(step.params["pick"] * len(slots))]
        prev = None
        start = time.monotonic()
        while time.monotonic() - start < 15:
            seen = cluster.fences_and_outboxes()
            if seen is None or prev is None:
                prev = seen
                continue
            moved = [k for k in range(len(seen[0]))
                     if seen[0][k] != prev[0][k]]
            if any(seen[1][k] > prev[1][k] for k in moved):
                run.aim(True)
                return _kill(run, slot, "between a commit and its "
                             "delivery reports")
            if moved and time.monotonic() - start > 8:
                run.aim(True)
                return _kill(run, slot, "right after a commit (without "
                             "alerts)")
            prev = seen
        run.aim(False)
        return _kill(run, slot, "(no commit seen: missed)")


class KillLeader(Fault):
    """SIGKILL of the lease holder while it decides campaigns and accounts:
    right after one of its decisions moved the cohort queues (or left
    alerts in its outbox), when more of that tick's are likely due."""
    name = "kill-leader"
    counter = "kills"

    def inject(self, run, step):
        cluster = run.cluster
        deadline = time.monotonic() + 6
        first = cluster.cohort_queues()
        boxes = cluster.outboxes()
        waiting = boxes[-1] if boxes else 0
        why = None
        while time.monotonic() < deadline:
            queues = cluster.cohort_queues()
            boxes = cluster.outboxes()
            if first is None:
                first = queues
            elif queues is not None and queues != first:
                why = "right after a decision"
                break
            if boxes and boxes[-1] > waiting:
                why = "with decided alerts not yet acknowledged"
                break
        slot = cluster.leader_slot()
        if slot is None:
            run.aim(False)
            slots = cluster.running() or ["A"]
            return _kill(run, slots[0], "(no leader found: missed)")
        run.aim(why is not None)
        return _kill(run, slot, f"(the leader) {why or '(no decision seen)'}")


class Rebalance(Fault):
    """A second instance joins the group, and leaves it (SIGTERM) later:
    at a later point of the stream, and no sooner than `hold` seconds after
    it started, so that it did join (a first join takes about 3 s)."""
    name = "rebalance"
    counter = "rebalances"

    def plan(self, rng, point):
        leave = min(point + rng.uniform(0.1, 0.35), 1.0)
        return [Step(self, point, action="join"),
                Step(self, leave, action="leave",
                     hold=round(rng.uniform(3, 8), 1))]

    def inject(self, run, step):
        inst = run.cluster.instance("B")
        run.count("rebalances")
        if step.params["action"] == "join":
            if inst.running():
                return "B already in the group"
            inst.start()
            inst.joined_at = time.monotonic()
            return "B joins"
        wait = step.params["hold"] - (time.monotonic() -
                                      getattr(inst, "joined_at", 0))
        if wait > 0:
            time.sleep(wait)
        run.check_instances()  # one that exited by itself is noted
        rc = inst.stop()
        return f"B leaves (exit {rc})"


class RedisCrash(Fault):
    """redis-server SIGKILLed and restarted from its AOF. With appendfsync
    everysec the file is cut back to the size it had a random fraction of
    a second before the kill (what a machine crash may lose); with always,
    it is kept whole."""
    name = "redis-crash"
    counter = "redis_restarts"

    def plan(self, rng, point):
        return [Step(self, point, lose=round(rng.uniform(0.05, 1.0), 3),
                     down=rng.choice([0, 0.2, 1.0]))]

    def inject(self, run, step):
        redis = run.cluster.redis
        before, kept = redis.crash(step.params["lose"])
        time.sleep(step.params["down"])
        redis.start()
        run.count("redis_restarts")
        if redis.appendfsync == "everysec":
            return (f"redis crash, AOF cut to {step.params['lose']}s "
                    f"before ({before - kept} bytes lost), down "
                    f"{step.params['down']}s")
        return f"redis crash (appendfsync always), down {step.params['down']}s"


class RedisStall(Fault):
    """redis-server stopped (SIGSTOP) for longer than the processors'
    redis.timeout, then continued: the commit in flight has an unknown
    outcome."""
    name = "redis-stall"
    counter = "stalls"

    def plan(self, rng, point):
        return [Step(self, point, extra=round(rng.uniform(0.3, 1.5), 2))]

    def inject(self, run, step):
        seconds = run.redis_timeout + step.params["extra"]
        run.cluster.redis.stall()
        time.sleep(seconds)
        run.cluster.redis.resume()
        run.count("stalls")
        return f"redis stalled {seconds:.2f}s"


class Failover(Fault):
    """The Redis primary SIGKILLed and its replica promoted by Sentinel;
    the processors find the new primary through the sentinels. Half the
    time the replica first stops receiving, so that what the primary wrote
    last is certainly lost with it and must be replayed. The killed one
    comes back as the new primary's replica."""
    name = "failover"
    counter = "failovers"
    requires = ("sentinel",)

    def plan(self, rng, point):
        return [Step(self, point, stall=rng.random() < 0.5)]

    def inject(self, run, step):
        took = run.cluster.redis.failover(step.params["stall"])
        run.count("failovers")
        return (f"failover in {took:.1f}s" +
                (", the replica behind" if step.params["stall"] else ""))


# Request errors a client retries or recovers from (librdkafka 2.0.2), per
# request: what a broker under load, a leader moving or a connection
# dropping does. Each answer of a pushed error is used once.
REQUEST_ERRORS = {
    "Produce": ["NOT_LEADER_OR_FOLLOWER", "REQUEST_TIMED_OUT",
                "NOT_ENOUGH_REPLICAS", "_TRANSPORT"],
    "Fetch": ["NOT_LEADER_OR_FOLLOWER", "_TRANSPORT"],
    "ListOffsets": ["NOT_LEADER_OR_FOLLOWER", "_TRANSPORT"],
    "Metadata": ["_TRANSPORT"],
}
COORDINATOR_ERRORS = {
    "OffsetCommit": ["NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE",
                     "REQUEST_TIMED_OUT"],
    "OffsetFetch": ["NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS"],
    "JoinGroup": ["NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS"],
    "SyncGroup": ["NOT_COORDINATOR", "REBALANCE_IN_PROGRESS"],
    "Heartbeat": ["NOT_COORDINATOR", "REBALANCE_IN_PROGRESS",
                  "UNKNOWN_MEMBER_ID"],
    "FindCoordinator": ["COORDINATOR_NOT_AVAILABLE"],
}


class BrokerErrors(Fault):
    """The next few requests of one kind fail (cluster-wide)."""
    name = "broker-errors"
    counter = "broker_faults"
    table = REQUEST_ERRORS

    def plan(self, rng, point):
        api = rng.choice(sorted(self.table))
        return [Step(self, point, api=api, error=rng.choice(self.table[api]),
                     count=rng.randint(1, 5))]

    def inject(self, run, step):
        p = step.params
        run.cluster.control(f"errors {p['api']} {p['count']} {p['error']}")
        run.count("broker_faults")
        return f"{p['count']} x {p['api']} {p['error']}"


class CoordinatorErrors(BrokerErrors):
    """The group coordinator's answers fail: commits, joins, heartbeats.
    Those left when the run ends are cleared before the final run."""
    name = "coordinator-errors"
    table = COORDINATOR_ERRORS


class BrokerDown(Fault):
    """One broker (or all of them) down for a while, then up."""
    name = "broker-down"
    counter = "broker_faults"

    def plan(self, rng, point):
        return [Step(self, point, broker=rng.choice([1, 2, 3, "all"]),
                     seconds=round(rng.uniform(0.5, 3), 2))]

    def inject(self, run, step):
        p = step.params
        run.cluster.control(f"down {p['broker']}")
        time.sleep(p["seconds"])
        run.cluster.control(f"up {p['broker']}")
        run.count("broker_faults")
        return f"broker {p['broker']} down {p['seconds']}s"


class BrokerRtt(Fault):
    """Every answer of one broker (or all) late for a while."""
    name = "broker-rtt"
    counter = "broker_faults"

    def plan(self, rng, point):
        return [Step(self, point, broker=rng.choice([1, 2, 3, "all"]),
                     ms=rng.choice([50, 200, 500, 1500]),
                     seconds=round(rng.uniform(1, 3), 2))]

    def inject(self, run, step):
        p = step.params
        run.cluster.control(f"rtt {p['broker']} {p['ms']}")
        time.sleep(p["seconds"])
        run.cluster.control(f"rtt {p['broker']} 0")
        run.count("broker_faults")
        return f"broker {p['broker']} rtt {p['ms']}ms for {p['seconds']}s"


KINDS = [Kill(), KillAfterCommit(), KillLeader(), Rebalance(), RedisCrash(),
         RedisStall(), Failover(), BrokerErrors(), CoordinatorErrors(),
         BrokerDown(), BrokerRtt()]


def by_name(names):
    known = {k.name: k for k in KINDS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown fault kind(s) {', '.join(unknown)}; "
                         f"known: {', '.join(known)}")
    return [known[n] for n in names]
