#!/usr/bin/python3
"""make chaos: seeded runs of a generated workload through real processes,
faults injected at moments drawn from the seed, each run compared with a
fault-free run of the same input (README, "make chaos").

    chaos.py [--runs N] [--seed S] [--run K] [--cooperative-runs N]
             [--faults-per-run N] [--kinds k1,k2] [--workdir DIR] [--keep]

A run is planned from (seed, run number) alone: the workload (ews-gen's
seed and size, 5% redelivered, 5% late by up to 47 h, produced live at a
rate that spreads it over 10-16 s), the processors' batch size, Redis's
appendfsync, and each fault's kind, point in the stream and parameters.
`--run K` does run K of the seed alone, as it was in the series.

The last line is the summary:
chaos: runs=... kills=... rebalances=... redis_restarts=... failovers=...
broker_faults=... lost=... double_counted=... alerts_missing=...
alerts_extra=... duplicate_deliveries=...
Exit 1 when lost, double_counted, alerts_missing or alerts_extra is not 0
(eager runs; the cooperative-sticky runs are reported on a line of their
own and do not decide it), 2 on bad arguments, 3 when a run could not be
carried out (a process that would not start, a tool that failed).
"""

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)

import ewsenv  # noqa: E402
import cluster as clusters  # noqa: E402
import compare  # noqa: E402
import faults  # noqa: E402

SUMMARY = ["runs", "kills", "rebalances", "redis_restarts", "failovers",
           "broker_faults", "lost", "double_counted", "alerts_missing",
           "alerts_extra", "duplicate_deliveries"]
VERDICT = ["lost", "double_counted", "alerts_missing", "alerts_extra"]
LATE_MAX_MS = 47 * 3600 * 1000
REDIS_TIMEOUT = 1.0  # s, the processors' redis.timeout in a run
STALL_SECONDS = 60  # fences standing still this long while behind: stuck


class RunFailed(Exception):
    """The run could not be carried out (not a finding about the
    processor)."""


def kinds_of_run(seed, kinds, number, per_run):
    """The fault kinds of run `number` (from 1): the series goes through
    the kinds in seeded shuffles, one after the other, so that every kind
    comes up once in each stretch of len(kinds) faults."""
    rng = random.Random(f"{seed}/kinds")
    seq = []
    while len(seq) < number * per_run:
        order = list(kinds)
        rng.shuffle(order)
        seq += order
    return seq[(number - 1) * per_run:number * per_run]


class Run:
    def __init__(self, seed, number, kinds, per_run, cooperative, workdir):
        self.seed = seed
        self.number = number
        self.cooperative = cooperative
        self.workdir = workdir
        rng = random.Random(f"{seed}/{number}" +
                            ("/cooperative" if cooperative else ""))
        self.gen_args = [
            "--seed", str(rng.randrange(1, 2 ** 31)),
            "--campaigns", str(rng.randint(3, 5)),
            "--users-per-campaign", str(rng.randint(30, 50)),
            "--days", str(rng.randint(10, 16)),
            "--duplicates", "0.05", "--late", "0.05",
            "--late-max-ms", str(LATE_MAX_MS), *ewsenv.GEN_START]
        self.stream_seconds = round(rng.uniform(10, 16), 1)
        self.backlog_seconds = rng.choice([0, 0, 1, 3])
        self.batch_max = rng.choice([5, 20, 100, 1000])
        self.appendfsync = rng.choice(["everysec", "everysec", "always"])
        self.steps = []
        for kind in kinds_of_run(seed, kinds, number, per_run):
            # one in ten once the whole stream is applied, the input idle
            point = 1.0 if rng.random() < 0.1 else rng.uniform(0.03, 0.95)
            self.steps += kind.plan(rng, round(point, 3))
        self.steps.sort(key=lambda s: s.point)
        self.requires = {r for step in self.steps
                         for r in step.kind.requires}
        # with a replica: half the runs WAIT for it after each commit
        self.wait_replicas = rng.choice([0, 1]) \
            if "sentinel" in self.requires else 0
        self.counts = collections.Counter()
        self.notes = []
        self.redis_timeout = REDIS_TIMEOUT
        self.cluster = None
        self.t0 = None
        self.extra_procs = []

    # for the faults
    def count(self, counter, n=1):
        self.counts[counter] += n

    def aim(self, hit):
        self.counts["aimed_hit" if hit else "aimed_missed"] += 1

    def log(self, text):
        stamp = time.monotonic() - self.t0 if self.t0 else 0.0
        with open(os.path.join(self.workdir, "steps.log"), "a") as f:
            f.write(f"{stamp:8.3f} {text}\n")

    def note(self, text):
        self.notes.append(text)
        self.log("note: " + text)

    def title(self):
        kind = " cooperative-sticky" if self.cooperative else ""
        return f"run {self.number}{kind} (seed {self.seed})"

    def plan_text(self):
        redis = "Sentinel, a primary and a replica, " \
            f"redis.wait.replicas {self.wait_replicas}, " \
            if "sentinel" in self.requires else ""
        return (f"ews-gen {' '.join(self.gen_args[:8])} over "
                f"{self.stream_seconds}s, batch.max {self.batch_max}, "
                f"{redis}appendfsync {self.appendfsync}; faults: " +
                ", ".join(repr(s) for s in self.steps))

    def gen(self, names, broker, extra):
        cmd = [os.path.join(ewsenv.BUILD, "ews-gen"), "--schemas",
               ewsenv.SCHEMAS, "--usage-topic", names.usage,
               "--campaign-topic", names.campaign, *self.gen_args, *extra]
        if broker:
            cmd += ["-b", broker.bootstrap]
        return cmd

    def messages(self, names):
        proc = subprocess.run(self.gen(names, None, ["--count-only"]),
                              capture_output=True, text=True, timeout=60)
        for word in proc.stderr.split():
            if word.startswith("messages="):
                return int(word.split("=")[1])
        raise RunFailed(f"ews-gen --count-only: {proc.stderr.strip()}")

    def check_instances(self):
        """A processor that should run and exited by itself is noted and
        started again."""
        for slot, inst in sorted(self.cluster.instances.items()):
            if inst.wanted and not inst.running():
                self.note(f"processor {slot} exited by itself "
                          f"(exit {inst.proc.returncode})")
                self.counts["unplanned_exits"] += 1
                inst.start()

    def wait_end(self, stall_seconds=STALL_SECONDS):
        """Until every fence is at the end of its partition's input. A
        partition still behind once the fences stood still for
        stall_seconds is stuck: it counts in lost (the final run then
        applies the rest, and the state is compared as usual)."""
        if self.wait_progress(self.total, stall_seconds):
            return
        self.clear_broker()
        ends = self.cluster.end_offsets()
        fences = self.cluster.fences() or [0] * len(ends)
        for (topic, k), fence, end in zip(self.cluster.partitions, fences,
                                          ends):
            if fence < end:
                self.counts["stuck"] += 1
                self.note(f"stuck: {topic} [{k}] fence {fence}, input end "
                          f"{end}, {stall_seconds}s after the fences last "
                          "moved")

    def wait_progress(self, target, stall_seconds=STALL_SECONDS):
        """Until the fences add up to target; False when they stopped
        moving for stall_seconds first."""
        last, since = None, time.monotonic()
        while True:
            now = self.cluster.progress()
            if now is not None and now >= target:
                return True
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since > stall_seconds:
                return False
            self.check_instances()
            time.sleep(0.005)

    def clear_broker(self):
        for command in ("up all", "rtt all 0"):
            self.cluster.control(command)
        apis = set(faults.REQUEST_ERRORS) | set(faults.COORDINATOR_ERRORS)
        for api in sorted(apis):
            self.cluster.control(f"clear {api}")

    def execute(self):
        """The run: faults while the stream arrives, then the end of it, the
        fault-free run, and the comparison. Returns the verdict counts."""
        os.makedirs(self.workdir, exist_ok=True)
        self.t0 = time.monotonic()
        names = ewsenv.Names("chaos")
        ref = ewsenv.Names("ref")
        ref.usage, ref.campaign = names.usage, names.campaign
        topics = [(names.usage, clusters.USAGE_PARTITIONS),
                  (names.campaign, clusters.CAMPAIGN_PARTITIONS),
                  (names.alerts, 2), (names.dlq, 1), (ref.alerts, 2),
                  (ref.dlq, 1)]
        env = {"EWS_KAFKA_BATCH_MAX": str(self.batch_max),
               "EWS_REDIS_TIMEOUT": f"{int(REDIS_TIMEOUT * 1000)}ms",
               "EWS_LEADER_LEASE": "3s",
               "EWS_OUTBOX_RESEND_INTERVAL": "2s"}
        if self.wait_replicas:
            env.update({"EWS_REDIS_WAIT_REPLICAS": str(self.wait_replicas),
                        "EWS_REDIS_WAIT_TIMEOUT": "200ms"})
        args = ["-X", "session.timeout.ms=3000"]
        if self.cooperative:
            args += ["-X", "partition.assignment.strategy=cooperative-sticky"]
        total = self.total = self.messages(names)
        rate = max(1, int(total / self.stream_seconds))
        self.log(self.plan_text() + f"; {total} messages at {rate}/s")
        self.cluster = clusters.Cluster(self.workdir, names, topics,
                                        self.appendfsync, env, args,
                                        requires=self.requires)
        ref_redis = None
        gen = None
        try:
            with open(os.path.join(self.workdir, "ews-gen.log"), "w") as log:
                gen = subprocess.Popen(
                    self.gen(names, self.cluster.broker,
                             ["--rate", str(rate)]),
                    stdout=subprocess.DEVNULL, stderr=log)
            time.sleep(self.backlog_seconds)
            self.cluster.instance("A").start()
            for step in self.steps:
                if not self.wait_progress(step.point * total):
                    self.counts["stuck"] += 1
                    self.note(f"stuck: the fences stood still at "
                              f"{self.cluster.progress()}/{total} for "
                              f"{STALL_SECONDS}s before {step!r}")
                step.description = step.kind.inject(self, step)
                self.log(f"{step!r}: {step.description}")
            if gen.wait(120) != 0:
                raise RunFailed(f"ews-gen exit {gen.returncode} (see "
                                f"{self.workdir}/ews-gen.log)")
            self.wait_end()
            self.clear_broker()
            for slot, inst in sorted(self.cluster.instances.items()):
                rc = inst.stop()
                if rc not in (0, None):
                    self.note(f"processor {slot}: SIGTERM, exit {rc}")
            self.log("the end: final and fault-free runs")
            ref_redis = ewsenv.Redis()
            finals = [self.run_to_end(names, self.cluster.redis, "final"),
                      self.run_to_end(ref, ref_redis, "reference")]
            for name, proc in finals:
                self.extra_procs.append(proc)
            for name, proc in finals:
                try:
                    rc = proc.wait(180)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    rc = "timeout"
                if rc != 0 and name == "reference":
                    raise RunFailed(f"the fault-free run: exit {rc} (see "
                                    f"{self.workdir}/processor-reference.log)")
                if rc != 0:
                    self.note(f"{name} run: exit {rc}")
            boxes = self.cluster.outboxes()
            if boxes and any(boxes):
                self.note(f"outbox records left after the end: {boxes}")
            return self.judge(names, ref, ref_redis)
        finally:
            for proc in [gen, *self.extra_procs]:
                if proc and proc.poll() is None:
                    proc.kill()
                    proc.wait()
            self.cluster.close()
            if ref_redis:
                ref_redis.close()

    def run_to_end(self, names, redis, name):
        """The final run (name "final") or the fault-free one, which has
        no replica to WAIT for."""
        env = dict(self.cluster.env)
        if name == "reference":
            env.pop("EWS_REDIS_WAIT_REPLICAS", None)
            env.pop("EWS_REDIS_WAIT_TIMEOUT", None)
        log = open(os.path.join(self.workdir, f"processor-{name}.log"), "w")
        with log:
            return name, ewsenv.processor(
                names, self.cluster.broker, redis,
                [*self.cluster.processor_args, "--exit-at-end"],
                env_extra=env, stdout=subprocess.DEVNULL, stderr=log)

    def judge(self, names, ref, ref_redis):
        want = compare.export(ref, self.cluster.broker, ref_redis,
                              os.path.join(self.workdir, "reference.jsonl"))
        got = compare.export(names, self.cluster.broker, self.cluster.redis,
                             os.path.join(self.workdir, "chaos.jsonl"))
        state = compare.compare_state(want, got)
        ref_alerts = compare.alerts(self.cluster.broker, ref.alerts)
        got_alerts = compare.alerts(self.cluster.broker, names.alerts)
        missing, extra, duplicates, differing = compare.compare_alerts(
            ref_alerts, got_alerts)
        self.counts.update({"runs": 1,
                            "lost": state.lost + self.counts["stuck"],
                            "double_counted": state.double_counted,
                            "alerts_missing": len(missing),
                            "alerts_extra": len(extra),
                            "duplicate_deliveries": duplicates,
                            "alerts_differing": len(differing),
                            "subjects": len(want[1]),
                            "alerts": len(ref_alerts)})
        with open(os.path.join(self.workdir, "report.json"), "w") as f:
            json.dump({"run": self.number, "seed": self.seed,
                       "plan": self.plan_text(),
                       "steps": [f"{s!r}: {s.description}"
                                 for s in self.steps],
                       "notes": self.notes,
                       "state": [list(map(str, d)) for d in state.details],
                       "alerts_missing": missing, "alerts_extra": extra,
                       "alerts_differing": {
                           i: [list(map(str, d)) for d in diff]
                           for i, diff in differing.items()}}, f, indent=1)
        return state, missing, extra, differing


def line(prefix, counts):
    return prefix + " " + " ".join(f"{k}={counts[k]}" for k in SUMMARY)


def report_run(run, took, verdict):
    state, missing, extra, differing = verdict
    c = run.counts
    print(f"chaos: {run.title()}: {run.plan_text()}", flush=True)
    for step in run.steps:
        print(f"  {step!r}: {step.description}")
    for text in run.notes:
        print(f"  note: {text}")
    print(f"  {c['subjects']} subjects, {c['alerts']} alerts: "
          f"lost={c['lost']} double_counted={state.double_counted} "
          f"alerts_missing={len(missing)} alerts_extra={len(extra)} "
          f"duplicate_deliveries={c['duplicate_deliveries']} "
          f"alerts_differing={len(differing)} ({took:.0f}s)")
    for d in state.details[:20]:
        print(f"  {d[0]}: {d[1]}: fault-free {d[2]!r}, chaos {d[3]!r}")
    for i in missing[:10]:
        print(f"  alert missing: {i}")
    for i in extra[:10]:
        print(f"  alert extra: {i}")
    for i in list(differing)[:3]:
        print(f"  alert differing: {i}: " + ", ".join(
            f"{f} {a!r} -> {b!r}" for f, a, b in differing[i][:4]
            if f != ".reason"))
    sys.stdout.flush()


def series(args, kinds, numbers, cooperative):
    total = collections.Counter({k: 0 for k in SUMMARY})
    for number in numbers:
        workdir = os.path.join(args.workdir, f"{args.seed}", f"run-{number}" +
                               ("-cooperative" if cooperative else ""))
        shutil.rmtree(workdir, ignore_errors=True)
        run = Run(args.seed, number, kinds, args.faults_per_run, cooperative,
                  workdir)
        start = time.monotonic()
        try:
            verdict = run.execute()
        except (RunFailed, RuntimeError, TimeoutError, OSError) as e:
            print(f"chaos: {run.title()} could not be carried out: {e} "
                  f"(logs in {workdir})", flush=True)
            sys.exit(3)
        report_run(run, time.monotonic() - start, verdict)
        total.update(run.counts)
        if any(run.counts[k] for k in VERDICT):
            print(f"  logs and report: {workdir}; again alone: make chaos "
                  f"SEED={args.seed} RUN={number}"
                  + (" (cooperative)" if cooperative else ""))
        elif run.notes or run.counts["aimed_missed"]:
            print(f"  logs: {workdir}")
        elif not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return total


def main(argv=None):
    sys.stdout.reconfigure(line_buffering=True)
    # a stopped series stops its processes too (the runs' finally blocks)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--run", type=int, default=0,
                   help="only run K of the series (from 1)")
    p.add_argument("--cooperative-runs", type=int, default=None,
                   help="cooperative-sticky runs after the eager ones "
                        "(default: one for every ten eager runs, none below "
                        "five)")
    p.add_argument("--faults-per-run", type=int, default=6)
    p.add_argument("--kinds", default="",
                   help="comma-separated fault kinds (default: all)")
    p.add_argument("--workdir", default=os.path.join(ewsenv.BUILD, "chaos"))
    p.add_argument("--keep", action="store_true",
                   help="keep every run's logs, not only a failing one's")
    args = p.parse_args(argv)
    try:
        kinds = faults.by_name(args.kinds.split(",")) if args.kinds \
            else faults.KINDS
    except ValueError as e:
        p.error(str(e))
    if args.runs < 1 or args.faults_per_run < 1 or args.run < 0:
        p.error("--runs and --faults-per-run take 1 or more")
    coop = args.cooperative_runs
    if coop is None:
        coop = 0 if args.runs < 5 else (args.runs + 9) // 10
    numbers = [args.run] if args.run else range(1, args.runs + 1)
    if args.run:
        coop = 0
    if coop:
        total = series(args, kinds, range(1, coop + 1), True)
        print(line("chaos (cooperative-sticky, librdkafka 2.0.2's known bugs "
                   "there: not in the exit status):", total), flush=True)
    total = series(args, kinds, numbers, False)
    print("chaos: faults: " + " ".join(
        f"{k}={total[k]}" for k in ("stalls", "aimed_hit", "aimed_missed",
                                    "stuck", "unplanned_exits",
                                    "alerts_differing")))
    print(line("chaos:", total), flush=True)
    return 1 if any(total[k] for k in VERDICT) else 0


if __name__ == "__main__":
    sys.exit(main())
