"""make chaos, short: two runs through every kind of fault, nothing lost or
counted twice; and the comparison itself, on states made to differ."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)

import chaos  # noqa: E402
import compare  # noqa: E402
import faults  # noqa: E402

USER = {"user_id": "u1", "stage": "activated", "events": 12,
        "activated_at": "2026-01-02T00:00:00.000Z",
        "engagement": {"score": 41.5, "as_of": "2026-01-03T00:00:00.000Z",
                       "peak": 44.0},
        "interest": [{"name": "crm", "score": 3.0},
                     {"name": "analytics", "score": 1.0}]}
FENCES = {"usage": {"0": {"epoch": 3, "offset": 100, "watermark": 5}}}


def export_of(**subjects):
    return FENCES, {("user", k): v for k, v in subjects.items()}


def changed(state, path, value):
    """A deep copy of state with path ("a.b") set to value."""
    import copy
    out = copy.deepcopy(state)
    *parents, leaf = path.split(".")
    node = out
    for p in parents:
        node = node[p]
    node[leaf] = value
    return out


def test_equal_states_differ_in_nothing():
    want = export_of(u1=USER)
    got = export_of(u1=changed(USER, "engagement.score", 41.5 * (1 + 1e-12)))
    got[0]["usage"]["0"]["epoch"] = 9  # bookkeeping: left out
    v = compare.compare_state(want, got)
    assert (v.lost, v.double_counted, v.details) == (0, 0, [])


def test_below_is_lost_above_is_double_counted():
    want = export_of(u1=USER, u2=USER)
    got = export_of(u1=changed(changed(USER, "events", 11),
                               "engagement.peak", 45.0))
    v = compare.compare_state(want, got)
    assert v.lost == 2 and v.double_counted == 1, v.details
    assert ("lost", "user u2", "present", "missing") in v.details
    assert ("lost", "user u1.events", 12, 11) in v.details
    assert ("double_counted", "user u1.engagement.peak", 44.0, 45.0) in \
        v.details
    # a subject only the chaos run has, a time later, a text changed, an
    # interest by name, a value where the fault-free run has none
    odd = changed(changed(changed(USER, "activated_at", None), "stage",
                          "trial"), "engagement.as_of",
                  "2026-01-03T00:00:00.001Z")
    odd["interest"] = [{"name": "analytics", "score": 1.0},
                       {"name": "crm", "score": 2.0}]
    v = compare.compare_state(export_of(u1=USER),
                              export_of(u1=odd, u3=USER))
    assert sorted((d[0], d[1]) for d in v.details) == [
        ("double_counted", "user u1.engagement.as_of"),
        ("double_counted", "user u3"),
        ("lost", "user u1.activated_at"),
        ("lost", "user u1.interest[crm].score"),
        ("lost", "user u1.stage")]


def test_fences_are_compared_without_epochs():
    want = export_of(u1=USER)
    got = (({"usage": {"0": {"epoch": 1, "offset": 90, "watermark": 5}}}),
           want[1])
    v = compare.compare_state(want, got)
    assert v.details == [("lost", "fence usage:0.offset", 100, 90)]


def test_alerts_missing_extra_and_duplicates():
    def alert(i, **kw):
        return {"alert_id": i, "emitted_at": 1, "values": {"e": 1.0}, **kw}
    want = {"a": [alert("a")], "b": [alert("b")], "c": [alert("c")]}
    got = {"b": [alert("b", emitted_at=7)] * 3,
           "c": [alert("c", values={"e": 2.0})], "d": [alert("d")]}
    missing, extra, duplicates, differing = compare.compare_alerts(want, got)
    assert (missing, extra, duplicates) == (["a"], ["d"], 2)
    assert differing == {"c": [(".values.e", 1.0, 2.0)]}


def test_a_run_is_planned_from_its_seed_alone():
    def plan(seed, number):
        run = chaos.Run(seed, number, faults.KINDS, 6, False, "/nonexistent")
        return run.plan_text(), [s.params for s in run.steps]
    assert plan(7, 3) == plan(7, 3)
    assert plan(7, 3) != plan(8, 3)
    # two runs in a row go through every kind
    kinds = set(chaos.kinds_of_run(7, faults.KINDS, 1, 6) +
                chaos.kinds_of_run(7, faults.KINDS, 2, 6))
    assert kinds == set(faults.KINDS)


def test_two_runs_lose_nothing():
    """The short version of `make chaos` (make chaos RUNS=2 SEED=1)."""
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "chaos.py"), "--runs", "2",
         "--seed", "1"], capture_output=True, text=True, timeout=900)
    out = proc.stdout.strip().splitlines()
    assert out and out[-1].startswith("chaos: runs="), \
        proc.stdout[-6000:] + proc.stderr[-3000:]
    counts = {k: int(v) for k, v in
              (w.split("=") for w in out[-1].split()[1:])}
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert counts["runs"] == 2
    for k in ("lost", "double_counted", "alerts_missing", "alerts_extra"):
        assert counts[k] == 0, proc.stdout[-8000:]
    # every kind came up once in the two runs
    assert counts["kills"] >= 3 and counts["rebalances"] >= 2, out[-1]
    assert counts["redis_restarts"] >= 1 and counts["failovers"] >= 1, \
        out[-1]
    assert counts["broker_faults"] >= 4, out[-1]
