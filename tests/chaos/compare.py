"""A chaos run against the fault-free run of the same input: the state as
`ews-inspect export` writes it, and the alerts delivered.

State, field by field (README, "make chaos"):
  - a subject (user, account, campaign) the fault-free run has and the
    chaos run has not counts 1 in lost; one only the chaos run has counts
    1 in double_counted;
  - a number (or a time) below the fault-free run's counts 1 in lost,
    above it 1 in double_counted; floats are equal within 1e-9 relative,
    counts and times (milliseconds) only when they are the same;
  - a value the fault-free run has where the chaos run has none (null, or
    the field or list entry missing) counts in lost, the other way round
    in double_counted; a differing text (a stage, a status) counts in
    lost;
  - lists of {"name", "score"} (interest, top contributors) are compared
    by name; the partition fences (offset and watermark) like a subject's
    fields; epochs are bookkeeping and left out.
Alerts, by alert_id: missing (the fault-free run delivered it, the chaos
run never did), extra (the other way round), and duplicate deliveries
(copies of an id beyond its first, in the chaos run).
"""

import calendar
import datetime
import json
import math
import os
import subprocess

import ewsenv

REL_TOL = 1e-9
EXCLUDED = {"epoch"}


def export(names, broker, redis, path):
    """Runs ews-inspect export into path; (fences, {(kind, id): state})."""
    proc = subprocess.run(
        [os.path.join(ewsenv.BUILD, "ews-inspect"), "export", "--out", path],
        env=names.env(broker, redis), capture_output=True, text=True,
        timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ews-inspect export: {proc.stderr.strip()}")
    fences, subjects, trailer = None, {}, None
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if rec["kind"] == "fences":
                fences = rec["fences"]
            elif rec["kind"] == "end":
                trailer = rec
            else:
                subjects[rec["kind"], rec["id"]] = rec["state"]
    if fences is None or trailer is None:
        raise RuntimeError(f"ews-inspect export: {path} is truncated")
    return fences, subjects


def _time_ms(text):
    """Milliseconds of "YYYY-MM-DDTHH:MM:SS.mmmZ", or None if it is not
    one."""
    try:
        d = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except (TypeError, ValueError):
        return None
    return calendar.timegm(d.timetuple()) * 1000 + d.microsecond // 1000


def flatten(value, path="", out=None):
    """{path: leaf}: dicts by key, lists of named entries by name, other
    lists by index; excluded keys left out."""
    if out is None:
        out = {}
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in EXCLUDED:
                flatten(v, f"{path}.{k}", out)
    elif isinstance(value, list):
        named = all(isinstance(v, dict) and "name" in v for v in value)
        for i, v in enumerate(value):
            if named:
                rest = {k: x for k, x in v.items() if k != "name"}
                flatten(rest, f"{path}[{v['name']}]", out)
            else:
                flatten(v, f"{path}[{i}]", out)
    else:
        out[path] = value
    return out


def _number(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        return _time_ms(value)
    return None


def field_verdict(want, got):
    """None when equal, else "lost" or "double_counted"."""
    if want == got:
        return None
    if want is None:
        return "double_counted"
    if got is None:
        return "lost"
    a, b = _number(want), _number(got)
    if a is not None and b is not None:
        # floats within the tolerance; counts and times exactly
        if (isinstance(want, float) or isinstance(got, float)) and \
                math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12):
            return None
        if a == b:
            return None
        return "lost" if b < a else "double_counted"
    return "lost"


class Verdict:
    def __init__(self):
        self.lost = 0
        self.double_counted = 0
        self.details = []  # (verdict, what, want, got)

    def add(self, verdict, what, want, got):
        setattr(self, verdict, getattr(self, verdict) + 1)
        self.details.append((verdict, what, want, got))


def compare_state(want, got):
    """want, got: what export() returned for the fault-free and the chaos
    run."""
    verdict = Verdict()
    (want_fences, want_subjects), (got_fences, got_subjects) = want, got
    fence_want = {("fence", f"{t}:{p}"): f for t, parts in want_fences.items()
                  for p, f in parts.items()}
    fence_got = {("fence", f"{t}:{p}"): f for t, parts in got_fences.items()
                 for p, f in parts.items()}
    for side_want, side_got in ((fence_want, fence_got),
                                (want_subjects, got_subjects)):
        for key in sorted(side_want.keys() | side_got.keys()):
            what = f"{key[0]} {key[1]}"
            if key not in side_got:
                verdict.add("lost", what, "present", "missing")
                continue
            if key not in side_want:
                verdict.add("double_counted", what, "missing", "present")
                continue
            a, b = flatten(side_want[key]), flatten(side_got[key])
            for path in sorted(a.keys() | b.keys()):
                v = field_verdict(a.get(path), b.get(path))
                if v:
                    verdict.add(v, what + path, a.get(path), b.get(path))
    return verdict


def alerts(broker, topic):
    """{alert_id: [decoded alert, ...]} of every alert on the topic."""
    schema = ewsenv.schema("alert.avsc")
    out = {}
    for rec in ewsenv.consume_records(broker, topic, timeout=60):
        alert = ewsenv.avro_decode(schema, rec["value"])
        out.setdefault(alert["alert_id"], []).append(alert)
    return out


def alert_differences(a, b):
    """[(field, fault-free, chaos)] of two deliveries of one alert id, its
    emitted_at (the wall clock) left out."""
    fa = flatten({k: v for k, v in a.items() if k != "emitted_at"})
    fb = flatten({k: v for k, v in b.items() if k != "emitted_at"})
    return [(p, fa.get(p), fb.get(p)) for p in sorted(fa.keys() | fb.keys())
            if field_verdict(fa.get(p), fb.get(p))]


def compare_alerts(want, got):
    """want, got: alerts() of the fault-free and the chaos run. Returns
    (missing ids, extra ids, duplicate deliveries, {id: differences} of the
    ids whose content differs)."""
    missing = sorted(want.keys() - got.keys())
    extra = sorted(got.keys() - want.keys())
    duplicates = sum(len(v) - 1 for v in got.values())
    differing = {}
    for i in sorted(want.keys() & got.keys()):
        diff = alert_differences(want[i][0], got[i][0])
        if diff:
            differing[i] = diff
    return missing, extra, duplicates, differing
