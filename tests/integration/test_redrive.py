"""ews-redrive: dead letters go back through decoding once their cause is
fixed. Events are dead-lettered by a configuration that does not fit them,
redriven after the configuration is fixed, and then scored like any other;
nothing new reaches the dead-letter topic."""

import json
import os
import re
import subprocess
import time

import ewsenv

DAY = 86400000
JSON = {"EWS_DECODE_USAGE_FORMAT": "json"}


def usage_json(event_id, user, occurred_at):
    return json.dumps({"event_id": event_id, "user_id": user,
                       "event_type": "login",
                       "occurred_at": occurred_at}).encode()


def redrive(broker, names, *args):
    """Runs ews-redrive on the scenario's dead-letter topic: (exit, stdout,
    the summary's counters)."""
    proc = subprocess.run([os.path.join(ewsenv.BUILD, "ews-redrive"),
                           "-b", broker.bootstrap, "-t", names.dlq, *args],
                          capture_output=True, text=True, timeout=120)
    m = re.search(r"^ews-redrive: read=(\d+) sent=(\d+) skipped=(\d+) "
                  r"failed=(\d+)", proc.stderr, re.M)
    counts = dict(zip(("read", "sent", "skipped", "failed"),
                      map(int, m.groups()))) if m else None
    return proc.returncode, proc.stdout, counts, proc.stderr


def records(broker, topic, timeout=20):
    """Every record of topic with where it is, headers decoded."""
    out = ewsenv.consume_records(broker, topic, timeout)
    for r in out:
        r["headers"] = {k: v.decode() for k, v in r["headers"].items()}
    return out


def events(names, broker, redis, user):
    state = ewsenv.inspect(names, broker, redis, "user", user)
    return state["events"] if state else 0


def test_redrive_after_the_cause_is_fixed(broker, redis, names):
    now = int(time.time() * 1000)
    # Producers write JSON while the processor still expects Avro: every
    # one of these is dead-lettered.
    wrong_format = [("u-1", "a-1"), ("u-1", "a-2"), ("u-2", "a-3"),
                    ("u-3", "a-4")]
    ewsenv.produce(broker, names.usage,
                   [(u.encode(), usage_json(e, u, now - 2 * DAY))
                    for u, e in wrong_format])
    err = ewsenv.run_processor_to_end(
        names, broker, redis, env_extra={"EWS_DECODE_USAGE_FORMAT": "avro"})
    assert "decoded=0 dead_letters=4 " in err, err[-1500:]

    # The format is fixed. Events stamped three days ahead by a client
    # clock are beyond decode.max.future (1d), and one message is not JSON.
    ewsenv.produce(broker, names.usage,
                   [(b"u-4", usage_json("f-1", "u-4", now + 3 * DAY)),
                    (b"u-5", usage_json("f-2", "u-5", now + 3 * DAY)),
                    (b"u-6", b'{"event_id": "x", "user_id"')])
    err = ewsenv.run_processor_to_end(names, broker, redis, env_extra=JSON)
    assert "decoded=0 dead_letters=3 " in err, err[-1500:]

    letters = records(broker, names.dlq)
    reasons = {r["key"]: r["headers"]["ews.error.reason"] for r in letters}
    assert len(letters) == 7
    wrong_reason = reasons[b"u-1"]
    assert {reasons[k] for k in (b"u-1", b"u-2", b"u-3")} == {wrong_reason}
    assert wrong_reason not in ("future_timestamp", "bad_json")
    assert reasons[b"u-4"] == reasons[b"u-5"] == "future_timestamp"
    assert reasons[b"u-6"] == "bad_json"
    originals = {r["value"]: r for r in records(broker, names.usage)}
    assert len(originals) == 7

    # A dry run prints what it would send and sends nothing.
    rc, out, counts, err = redrive(broker, names, "--dry-run")
    assert rc == 0, err
    assert counts == {"read": 7, "sent": 0, "skipped": 0, "failed": 0}
    want = sorted(f"{r['partition']} {r['offset']} "
                  f"{r['headers']['ews.error.reason']} {names.usage} "
                  f"{r['key'].decode()}" for r in letters)
    assert sorted(out.splitlines()) == want
    rc, out, counts, err = redrive(broker, names, "--dry-run", "--reason",
                                   "future_timestamp")
    assert rc == 0, err
    assert sorted(line.split()[-1] for line in out.splitlines()) == \
        ["u-4", "u-5"]
    assert counts["skipped"] == 5
    assert len(records(broker, names.usage)) == 7

    # Only the records of the fixed cause go back, then get scored.
    rc, out, counts, err = redrive(broker, names, "--reason", wrong_reason)
    assert rc == 0, err
    assert counts == {"read": 7, "sent": 4, "skipped": 3, "failed": 0}
    assert out == ""
    err = ewsenv.run_processor_to_end(names, broker, redis, env_extra=JSON)
    assert "decoded=4 dead_letters=0 " in err, err[-1500:]
    assert [events(names, broker, redis, u) for u in ("u-1", "u-2", "u-3")] \
        == [2, 1, 1]
    assert events(names, broker, redis, "u-4") == 0

    # The clock skew is accepted now: the future events go back too.
    later = dict(JSON, EWS_DECODE_MAX_FUTURE="7d")
    rc, _, counts, err = redrive(broker, names, "--reason",
                                 "future_timestamp", "--source-topic",
                                 names.usage)
    assert rc == 0, err
    assert counts == {"read": 7, "sent": 2, "skipped": 5, "failed": 0}
    err = ewsenv.run_processor_to_end(names, broker, redis, env_extra=later)
    assert "decoded=2 dead_letters=0 " in err, err[-1500:]
    for user, want_events in (("u-1", 2), ("u-2", 1), ("u-3", 1),
                              ("u-4", 1), ("u-5", 1)):
        assert events(names, broker, redis, user) == want_events, user

    # Each copy went to the partition of its original, with its timestamp.
    copies = [r for r in records(broker, names.usage)
              if r["offset"] != originals[r["value"]]["offset"] or
              r["partition"] != originals[r["value"]]["partition"]]
    assert len(copies) == 6
    for copy in copies:
        original = originals[copy["value"]]
        assert copy["key"] == original["key"]
        assert copy["partition"] == original["partition"]
        assert copy["timestamp"] == original["timestamp"]

    # The group of a selection keeps its position: the same run again
    # reads nothing new and sends nothing.
    rc, _, counts, err = redrive(broker, names, "--reason", wrong_reason)
    assert rc == 0, err
    assert counts == {"read": 0, "sent": 0, "skipped": 0, "failed": 0}

    # Another selection has its own group: it sends them all again, and
    # the processor counts each event id once per user.
    rc, _, counts, err = redrive(broker, names, "--reason", wrong_reason,
                                 "--reason", "future_timestamp")
    assert rc == 0, err
    assert counts == {"read": 7, "sent": 6, "skipped": 1, "failed": 0}
    err = ewsenv.run_processor_to_end(names, broker, redis, env_extra=later)
    assert "decoded=6 dead_letters=0 " in err, err[-1500:]
    for user, want_events in (("u-1", 2), ("u-2", 1), ("u-3", 1),
                              ("u-4", 1), ("u-5", 1)):
        assert events(names, broker, redis, user) == want_events, user
    assert len(records(broker, names.dlq)) == 7


def test_records_without_a_source_and_usage(broker, redis, names):
    target = f"{names.usage}-target"
    with_source = [("ews.error.reason", b"bad_json"),
                   ("ews.source.topic", target.encode()),
                   ("ews.source.timestamp", b"1767225600000")]
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce(names.dlq, key=b"k-1", value=b"v-1", partition=0)
    producer.produce(names.dlq, key=b"k-2", value=b"v-2", partition=0,
                     headers=with_source)
    producer.produce(names.dlq, key=b"k 3\n", value=b"v-3", partition=0,
                     headers=[("ews.source.topic", target.encode())])
    assert producer.flush(30) == 0

    rc, out, _, err = redrive(broker, names, "--dry-run")
    assert rc == 0, err
    assert out.splitlines() == [f"0 1 bad_json {target} k-2",
                                f"0 2 - {target} k\\x203\\x0a"]
    # Without ews.source.topic and --to-topic, there is nowhere to go.
    rc, _, counts, err = redrive(broker, names)
    assert rc == 0, err
    assert counts == {"read": 3, "sent": 2, "skipped": 1, "failed": 0}
    got = {r["key"]: r for r in records(broker, target)}
    assert sorted((k, r["value"]) for k, r in got.items()) == \
        [(b"k 3\n", b"v-3"), (b"k-2", b"v-2")]
    # the original timestamp, or the time of sending without one
    assert got[b"k-2"]["timestamp"] == 1767225600000
    assert got[b"k 3\n"]["timestamp"] > 1767225600000

    other = f"{names.usage}-other"
    rc, _, counts, err = redrive(broker, names, "--to-topic", other,
                                 "--from-offset", "1")
    assert rc == 0, err
    assert counts == {"read": 2, "sent": 2, "skipped": 0, "failed": 0}
    assert sorted(r["value"] for r in records(broker, other)) == \
        [b"v-2", b"v-3"]

    # A record that cannot be delivered fails the run.
    broken = f"{names.dlq}-broken"
    producer.produce(broken, key=b"k-4", value=b"v-4", partition=0,
                     headers=[("ews.source.topic", target.encode()),
                              ("ews.source.partition", b"99")])
    assert producer.flush(30) == 0
    rc, _, counts, err = redrive(broker, names, "-t", broken)
    assert rc == 1, err
    assert counts == {"read": 1, "sent": 0, "skipped": 0, "failed": 1}
    assert f"{target} [99]" in err

    for args in ([], ["--from-offset", "x"], ["-X", "nonsense"],
                 ["-X", "no.such.property=1"], ["extra"]):
        cmd = [os.path.join(ewsenv.BUILD, "ews-redrive"), *args]
        if args:
            cmd[1:1] = ["-b", broker.bootstrap]
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
    proc = subprocess.run([os.path.join(ewsenv.BUILD, "ews-redrive"), "-h"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "the next run of the group reads only what arrived since" in text
    assert "each selection has its own default group" in text
    assert "counts an event_id once per user within its dedup window" in text
