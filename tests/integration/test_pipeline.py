"""The first slice end to end: generated trial cohorts through the real
broker, Redis and processor, checked against the generator's truth."""

import json
import os
import re
import signal
import subprocess
import time

import redis as redis_py

import ewsenv
import groundtruth


def alerts_of(broker, names):
    sch = ewsenv.schema("alert.avsc")
    return [ewsenv.avro_decode(sch, value)
            for _, value, _ in ewsenv.consume_all(broker, names.alerts)]


def test_quiet_users_get_exactly_one_alert(broker, redis, names, tmp_path):
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                           ["--seed", "7"])
    users = {t["id"]: t for t in truth if t["kind"] == "user"}
    summary = next(t for t in truth if t["kind"] == "summary")
    by = groundtruth.by_behaviour(users)
    quiet = by["quiet"]
    fading = groundtruth.expected_disengaged(users)[0] - quiet - by["returning"]
    assert len(quiet) >= 20 and by["returning"] and fading, \
        "the scenario must have users going quiet in each way"
    assert {t["id"] for t in truth if t["kind"] == "campaign" and t["poor"]}

    err = ewsenv.run_processor_to_end(names, broker, redis)
    assert f"consumed={summary['events']} " in err, err[-2000:]

    alerts = alerts_of(broker, names)
    assert groundtruth.problems(truth, alerts) == []
    disengaged = [a for a in alerts if a["rule"] == "USER_DISENGAGED"]
    for a in disengaged:
        if a["status"] != "FIRING":
            continue
        user = users[a["subject_id"]]
        if user["behaviour"] == "fading":
            # the score stopped rising: caught by the drop, not inactivity
            assert a["values"]["score_drop"] == 1, a["reason"]
        else:
            # fires 72h of event time after the last activity
            last = user["quiet_from_ms"] or user["last_event_ms"]
            assert ewsenv.millis(a["event_time"]) == last + 72 * 3600 * 1000
            assert a["values"]["threshold_seconds"] == 72 * 3600

    # ews-alerts reads the same alerts as the independent decoder
    printed = subprocess.run(
        [f"{ewsenv.BUILD}/ews-alerts", "-b", broker.bootstrap, "-t",
         names.alerts, "--schemas", ewsenv.SCHEMAS, "--json", "-e"],
        capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    ours = sorted((j["alert_id"], j["event_time"], j["reason"])
                  for j in map(json.loads, printed.stdout.splitlines()))
    theirs = sorted((a["alert_id"], ewsenv.millis(a["event_time"]),
                     a["reason"]) for a in alerts)
    assert ours == theirs

    for a in alerts:
        assert a["alert_id"] == f"{a['episode_id']}:{a['seq']}"
        if a["subject_type"] != "USER":
            continue
        user = users[a["subject_id"]]
        assert a["campaign_id"] == user["campaign"]
        assert a["account_id"] == user["account"]

    # the state is in Redis: every user, with its score and stage
    stored = ewsenv.stored_user_ids(redis, names.prefix)
    assert stored == set(users)
    for uid in sorted(quiet)[:5]:
        state = ewsenv.inspect(names, broker, redis, "user", uid)
        assert state["stage"] in ("trial", "activated", "sales_ready")
        assert state["disengaged_since"] is not None
        assert state["engagement"]["score"] > 0


def test_restart_applies_nothing_twice(broker, redis, names, tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "3", "--campaigns", "2", "--days", "8"])
    ewsenv.run_processor_to_end(names, broker, redis)

    def snapshot():
        keys = sorted(redis.cli("--scan", "--pattern",
                                f"{names.prefix}[uca]:*").split())
        return {k: redis.cli("--no-raw", "DUMP", k) for k in keys}

    before, alerts_before = snapshot(), len(alerts_of(broker, names))
    # a new group has no committed offsets and starts from the earliest
    # offset: the store's fences must keep every event from counting twice
    names.group += "-again"
    err = ewsenv.run_processor_to_end(names, broker, redis)
    assert "decoded=0 " in err, err[-2000:]
    assert snapshot() == before
    assert len(alerts_of(broker, names)) == alerts_before


def test_the_fetcher_is_woken_after_batches_of_a_backlog(broker, redis,
                                                        names, tmp_path):
    """kafka.fetch.wake: a batch taken from a backlog (the consumer's queue
    had reached queued.min.messages) is followed by a query of the
    leaders' end offsets, which wakes librdkafka 2.0.2's fetcher
    (tests/bench/README.md has what it buys), at most every 50 ms. Off,
    there is none; either way the same events give the same alerts."""
    gen = ["--seed", "5", "--campaigns", "2", "--days", "8"]
    small = {"EWS_KAFKA_BATCH_MAX": "50",
             "EWS_KAFKA_CONSUMER_QUEUED_MIN_MESSAGES": "50"}
    off = ewsenv.Names(names.prefix.rstrip(":") + "-off")
    ids, wakes = {}, {}
    for run, switch in ((names, "true"), (off, "false")):
        truth = ewsenv.run_gen(run, broker, str(tmp_path / f"{switch}.jsonl"),
                               gen)
        events = next(t for t in truth if t["kind"] == "summary")["events"]
        err = ewsenv.run_processor_to_end(
            run, broker, redis,
            env_extra=dict(small, EWS_KAFKA_FETCH_WAKE=switch))
        assert f"consumed={events} " in err, err[-2000:]
        wakes[switch] = int(re.search(r"fetch_wakes=(\d+)", err).group(1))
        alerts = alerts_of(broker, run)
        assert groundtruth.problems(truth, alerts) == []
        ids[switch] = sorted(a["alert_id"] for a in alerts)
    # some of the batches of 50, no more than one a batch
    assert 1 <= wakes["true"] <= events // 50 + 1, (wakes, events)
    assert wakes["false"] == 0
    assert ids["true"] == ids["false"] and ids["true"]


def users_exported(names, broker, redis):
    """Every user's events and E, as ews-inspect export writes them."""
    out = subprocess.run([os.path.join(ewsenv.BUILD, "ews-inspect"),
                          "export"], env=names.env(broker, redis),
                         check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[-1]["kind"] == "end"
    return {r["id"]: (r["state"]["events"], r["state"]["engagement"])
            for r in rows if r["kind"] == "user"}


def test_a_round_fenced_while_the_next_batch_came_in(broker, redis, names,
                                                     tmp_path):
    """kafka.batch.overlap: from a backlog the next batch is taken in while
    Redis runs the last one's round. When that round is fenced off (the
    fences' epochs bumped by hand while the processor runs, as another
    owner's claim would), its partitions go back to their fences and the
    share of the batch taken in meanwhile is read again, not applied over
    the lost one: the same users' state and alerts as a run left alone."""
    gen = ["--seed", "5", "--campaigns", "2", "--days", "8"]
    small = {"EWS_KAFKA_BATCH_MAX": "20",
             "EWS_KAFKA_CONSUMER_QUEUED_MIN_MESSAGES": "20"}
    calm = ewsenv.Names(names.prefix.rstrip(":") + "-calm")
    truth = ewsenv.run_gen(calm, broker, str(tmp_path / "calm.jsonl"), gen)
    events = next(t for t in truth if t["kind"] == "summary")["events"]
    err = ewsenv.run_processor_to_end(calm, broker, redis, env_extra=small)
    assert f"consumed={events} " in err, err[-2000:]
    assert int(re.search(r"overlapped=(\d+)", err).group(1)) >= 1, err[-2000:]
    want_ids = sorted(a["alert_id"] for a in alerts_of(broker, calm))
    want_users = users_exported(calm, broker, redis)

    client = redis_py.Redis(port=redis.port)

    def fenced_offsets(run):
        keys = list(client.scan_iter(f"{run.prefix}p:{run.usage}:*"))
        return keys, sum(int(client.hget(k, "offset") or 0) for k in keys)

    end = fenced_offsets(calm)[1]

    def bumped(run):
        """A run whose fences are claimed by another owner as soon as they
        exist and each time they moved on, through the first half of the
        input (the end of a bounded run is left be): its exit line."""
        truth = ewsenv.run_gen(run, broker, str(tmp_path / "bumped.jsonl"),
                               gen)
        with open(tmp_path / "err.log", "w") as log:
            proc = ewsenv.processor(run, broker, redis, ["--exit-at-end"],
                                    env_extra=small, stderr=log)
            last, deadline = -1, time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
                keys, done = fenced_offsets(run)
                if keys and last < done < end // 2:
                    for key in keys:
                        client.hincrby(key, "epoch", 1)
                    last = done
            assert proc.wait(timeout=10) == 0
        report = re.search(r"ews-processor: consumed=.*",
                           (tmp_path / "err.log").read_text()).group(0)
        alerts = list({a["alert_id"]: a
                       for a in alerts_of(broker, run)}.values())
        # whatever the race gave, nothing lost and nothing twice
        assert groundtruth.problems(truth, alerts) == [], report
        assert sorted(a["alert_id"] for a in alerts) == \
            sorted(set(want_ids)), report
        assert users_exported(run, broker, redis) == want_users, report
        return report

    # a busy machine can run the first half between two looks: again then
    for attempt in range(3):
        run = ewsenv.Names(f"{names.prefix.rstrip(':')}-{attempt}")
        report = bumped(run)
        print(report)
        fenced = int(re.search(r"fenced=(\d+)", report).group(1))
        overlapped = int(re.search(r"overlapped=(\d+)", report).group(1))
        if fenced and overlapped:
            break
    assert fenced >= 1 and overlapped >= 1, report


def test_a_stop_mid_backlog_leaves_no_alert_in_the_outbox(broker, redis,
                                                          names, tmp_path):
    """SIGTERM while a backlog drains, a round in flight (batches of 20):
    that round is finished before the alerts are flushed, so every alert
    it committed goes out and leaves its outbox, as those before it."""
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "5", "--campaigns", "2", "--days", "8"])
    small = {"EWS_KAFKA_BATCH_MAX": "20",
             "EWS_KAFKA_CONSUMER_QUEUED_MIN_MESSAGES": "20"}
    client = redis_py.Redis(port=redis.port)
    with open(tmp_path / "err.log", "w") as log:
        proc = ewsenv.processor(names, broker, redis, env_extra=small,
                                stderr=log)
        ewsenv.wait_for(
            lambda: sum(int(client.hget(k, "offset") or 0) for k in
                        client.scan_iter(f"{names.prefix}p:{names.usage}:*"))
            >= 200, 60, "some of the backlog")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    report = re.search(r"ews-processor: consumed=.*",
                       (tmp_path / "err.log").read_text()).group(0)
    produced = int(re.search(r"produced=(\d+)", report).group(1))
    assert produced and f"delivered={produced} " in report, report
    assert int(re.search(r"overlapped=(\d+)", report).group(1)) >= 1, report
    left = {k: client.hlen(k) for k in client.scan_iter(f"{names.prefix}o:*")}
    assert not any(left.values()), (left, report)


def test_bad_input_goes_to_the_dead_letter_topic(broker, redis, names):
    sch = ewsenv.schema("usage_event.avsc")
    t0 = 1767225600000

    def event(i, user, etype):
        return ewsenv.avro_encode(sch, {
            "event_id": f"e-{i}", "user_id": user, "account_id": None,
            "event_type": etype, "product": None, "value": None,
            "campaign_id": None, "occurred_at": ewsenv.utc(t0 + i * 60000),
            "attributes": {}})

    messages = [(b"u-1", event(0, "u-1", "trial_started")),
                (b"u-1", b"\x02a\xff\xff\xff\xff\x0f"),  # negative length
                (b"u-1", event(1, "u-1", "login")[:-3]),  # truncated
                (b"u-1", b""),
                (b"u-1", event(2, "u-1", "login"))]
    ewsenv.produce(broker, names.usage, messages)
    err = ewsenv.run_processor_to_end(names, broker, redis)
    assert "decoded=2 dead_letters=3 " in err, err[-2000:]

    dead = ewsenv.consume_all(broker, names.dlq)
    reasons = sorted(h["ews.error.reason"].decode() for _, _, h in dead)
    assert reasons == ["bad_length", "empty", "truncated"]
    for key, value, headers in dead:
        assert key == b"u-1"
        assert headers["ews.source.topic"].decode() == names.usage
        assert int(headers["ews.source.offset"]) in (1, 2, 3)
        assert value in (messages[1][1], messages[2][1], b"")
    # the valid events around them were scored
    assert ewsenv.inspect(names, broker, redis, "user", "u-1")["events"] == 2


def test_refuses_redis_that_may_evict(broker, names):
    lru = ewsenv.Redis(policy="allkeys-lru")
    try:
        proc = ewsenv.processor(names, broker, lru, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert "maxmemory-policy is allkeys-lru; EWS needs noeviction" in err
    finally:
        lru.close()
