"""ews-inspect export: every subject as JSON lines, between the fences it
was read at and a trailer with the counts."""

import json
import os
import random
import subprocess

import redis as redis_py

import ewsenv


def store_fences(client, names):
    """The fences as Redis holds them, in the export header's shape."""
    out = {}
    for topic in (names.usage, names.campaign):
        count = int(client.get(f"{names.prefix}m:{topic}") or 0)
        for k in range(count):
            h = client.hgetall(f"{names.prefix}p:{topic}:{k}")
            if not h:
                continue
            out.setdefault(topic, {})[str(k)] = {
                f: int(h[f.encode()]) if f.encode() in h else None
                for f in ("epoch", "offset", "watermark")}
    return out


def export(names, broker, redis, *args):
    proc = subprocess.run(
        [os.path.join(ewsenv.BUILD, "ews-inspect"), "export", *args],
        env=names.env(broker, redis), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_export_is_every_subject_as_inspect_has_it(broker, redis, names,
                                                   tmp_path):
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                           ["--seed", "7", "--campaigns", "2", "--days", "5"])
    ewsenv.run_processor_to_end(names, broker, redis)
    client = redis_py.Redis(port=redis.port)

    out = tmp_path / "export.jsonl"
    assert export(names, broker, redis, "--out", str(out)) == []
    with open(out) as f:
        lines = [json.loads(line) for line in f]

    header, subjects, trailer = lines[0], lines[1:-1], lines[-1]
    assert header["kind"] == "fences"
    assert header["fences"] == store_fences(client, names)
    assert header["fences"][names.usage], "no usage fences read"

    assert trailer["kind"] == "end"
    seen = {}
    for s in subjects:
        assert s["kind"] in ("user", "account", "campaign"), s
        key = s["kind"], s["id"]
        assert key not in seen, f"{key} exported twice"
        seen[key] = s["state"]
    for kind in ("user", "account", "campaign"):
        assert trailer[kind + "s"] == sum(1 for k, _ in seen if k == kind)

    want = set()
    for t in truth:
        if t["kind"] == "user":
            want.add(("user", t["id"]))
            if t.get("account"):
                want.add(("account", t["account"]))
        elif t["kind"] == "campaign":
            want.add(("campaign", t["id"]))
    assert want, "the generator made nothing"
    missing = want - seen.keys()
    assert not missing, sorted(missing)[:10]

    # a sample of every kind: the exported state is what ews-inspect prints
    rng = random.Random(3)
    by_kind = {}
    for k in seen:
        by_kind.setdefault(k[0], []).append(k)
    sample = []
    for kind, keys in sorted(by_kind.items()):
        keys.sort()
        sample += rng.sample(keys, min(len(keys), 10))
    assert len(sample) >= 20 and len(by_kind) == 3, by_kind.keys()
    for kind, sid in sample:
        state = ewsenv.inspect(names, broker, redis, kind, sid)
        # a campaign's trials against the activation definition: ews-inspect
        # walks every user for it, export does not
        if kind == "campaign":
            assert state.pop("activation")["of"]["trials"] > 0
        assert state == seen[kind, sid], (kind, sid)

    # one kind alone, to stdout; the header still first, the trailer last
    only = export(names, broker, redis, "--kind", "campaign")
    assert only[0]["kind"] == "fences" and only[-1]["kind"] == "end"
    assert {(s["kind"], s["id"]) for s in only[1:-1]} == \
        {k for k in seen if k[0] == "campaign"}
    assert only[-1] == {"kind": "end", "users": 0, "accounts": 0,
                        "campaigns": len(only) - 2}


def test_export_usage_and_redis_errors(broker, redis, names):
    inspect = os.path.join(ewsenv.BUILD, "ews-inspect")
    env = names.env(broker, redis)
    for args in (["export", "--kind", "nobody"], ["export", "extra"],
                 ["user", "u1", "--out", "x"]):
        assert subprocess.run([inspect, *args], env=env,
                              capture_output=True).returncode == 2, args
    helptext = subprocess.run([inspect, "--help"], capture_output=True,
                              text=True).stdout
    assert any(line.split()[:1] == ["export"] for line in helptext.splitlines())
    env["EWS_REDIS_PORT"] = str(ewsenv.free_port())
    proc = subprocess.run([inspect, "export"], env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 1, proc.stderr
