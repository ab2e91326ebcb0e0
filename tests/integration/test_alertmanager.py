"""ews-alertmanager against a real Alertmanager (Debian's
prometheus-alertmanager on a loopback port): FIRING -> an active alert,
RESOLVED -> ended, one alert per episode however often it is posted, the
active alerts kept alive by resends and rebuilt after a restart, and
Alertmanager being down only delays."""

import datetime
import os
import signal
import subprocess
import time

import pytest

import ewsenv

T0 = 1767225600000  # 2026-01-01T00:00:00Z
HOUR = 3600000


def bridge(broker, am, topic, group, log, *args):
    """Starts ews-alertmanager; its log goes to the file log."""
    return subprocess.Popen(
        [os.path.join(ewsenv.BUILD, "ews-alertmanager"), "-b",
         broker.bootstrap, "-u", am.url, "-t", topic, "--group", group,
         "--schemas", ewsenv.SCHEMAS, *ewsenv.FAST_CONSUMER, *args],
        stdout=subprocess.DEVNULL, stderr=open(log, "a"))


def iso(when):
    """Alertmanager's time format, from ms or a datetime."""
    ms = when if isinstance(when, int) else ewsenv.millis(when)
    return (datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z")


def parse_iso(text):
    return datetime.datetime.strptime(
        text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def alert(rule, subject_type, subject, start, status="FIRING", at=None,
          account=None, campaign=None, reason="quiet for 72 h"):
    episode = f"{rule}:{subject}:{start}"
    seq = 1 if status == "FIRING" else 2
    return {"alert_id": f"{episode}:{seq}", "episode_id": episode,
            "seq": seq, "rule": rule, "status": status,
            "severity": "WARNING", "subject_type": subject_type,
            "subject_id": subject, "account_id": account,
            "campaign_id": campaign, "event_time": ewsenv.utc(at or start),
            "emitted_at": ewsenv.utc(T0 + 30 * 24 * HOUR), "reason": reason,
            "values": {"inactive_seconds": 259200.0},
            "top_contributors": [{"event_type": "login", "score": 12.5}],
            "last_activity_at": None}


def produce_alerts(broker, topic, alerts):
    sch = ewsenv.schema("alert.avsc")
    ewsenv.produce(broker, topic, [(a["subject_id"].encode(),
                                    ewsenv.avro_encode(sch, a))
                                   for a in alerts])


def by_episode(am):
    """Alertmanager's active alerts by their episode label; no episode
    twice (Alertmanager knows an alert by its label set)."""
    alerts = am.alerts()
    episodes = [a["labels"].get("episode") for a in alerts]
    assert len(episodes) == len(set(episodes)), episodes
    return {a["labels"]["episode"]: a for a in alerts}


def wait_episodes(am, expected, timeout=30):
    """Waits until Alertmanager's active episodes are exactly expected."""
    seen = {}

    def done():
        seen.update(current=set(by_episode(am)))
        return seen["current"] == set(expected)
    try:
        ewsenv.wait_for(done, timeout, f"episodes {sorted(expected)}")
    except TimeoutError:
        raise AssertionError(f"Alertmanager has {sorted(seen['current'])}, "
                             f"not {sorted(expected)}")
    return by_episode(am)


def test_fire_resolve_resend_and_restart(broker, names, tmp_path):
    log = str(tmp_path / "bridge.log")
    quiet = alert("USER_DISENGAGED", "USER", "u-1", T0 + HOUR,
                  account="a-1", campaign="c-7")
    ready = alert("SALES_READY", "USER", "u-2", T0 + 2 * HOUR,
                  account="a-1", reason="E reached 100")
    poor = alert("CAMPAIGN_UNDERPERFORMING", "CAMPAIGN", "c-7", T0 + 3 * HOUR,
                 campaign="c-7", reason="activation bound below target")
    produce_alerts(broker, names.alerts, [quiet, ready, poor])
    am = ewsenv.Alertmanager()
    proc = bridge(broker, am, names.alerts, names.group, log,
                  "--resend-interval", "1s")
    try:
        check_fire_resolve_resend(broker, am, names, proc, log,
                                  quiet, ready, poor)
    finally:
        am.close()


def check_fire_resolve_resend(broker, am, names, proc, log, quiet, ready,
                              poor):
    try:
        got = wait_episodes(am, {quiet["episode_id"], ready["episode_id"],
                                 poor["episode_id"]})
        a = got[quiet["episode_id"]]
        assert a["labels"] == {
            "alertname": "USER_DISENGAGED", "rule": "USER_DISENGAGED",
            "severity": "warning", "episode": quiet["episode_id"],
            "user": "u-1", "account": "a-1", "campaign": "c-7"}, a
        assert a["annotations"]["summary"] == "quiet for 72 h", a
        assert a["annotations"]["alert_id"] == quiet["alert_id"], a
        assert a["annotations"]["values"] == "inactive_seconds=259200", a
        assert a["annotations"]["top_contributors"] == "login=12.5", a
        assert a["startsAt"] == iso(quiet["event_time"]), a
        assert got[poor["episode_id"]]["labels"]["campaign"] == "c-7"
        assert "user" not in got[poor["episode_id"]]["labels"]
        assert got[ready["episode_id"]]["labels"]["user"] == "u-2"
        # ends four resend intervals ahead, and is kept alive by resends
        first_end = parse_iso(a["endsAt"])
        assert 2 < first_end - time.time() < 6, a["endsAt"]
        time.sleep(2.5)
        later = by_episode(am)[quiet["episode_id"]]
        assert parse_iso(later["endsAt"]) > first_end + 1, later

        # the same alert again (at least once): still one alert; then its
        # RESOLVED ends that very alert and no other
        resolved = alert("USER_DISENGAGED", "USER", "u-1", T0 + HOUR,
                         status="RESOLVED", at=T0 + 5 * HOUR, account="a-1",
                         campaign="c-7", reason="active again")
        produce_alerts(broker, names.alerts, [quiet, resolved])
        wait_episodes(am, {ready["episode_id"], poor["episode_id"]})
        # a late copy of the FIRING does not bring the episode back
        produce_alerts(broker, names.alerts, [quiet])
        time.sleep(2.5)
        assert set(by_episode(am)) == {ready["episode_id"],
                                       poor["episode_id"]}
    finally:
        ewsenv.stop(proc)
    assert proc.returncode == 0, open(log).read()

    try:
        # stopped, the bridge resends nothing: the alerts lapse
        wait_episodes(am, set(), timeout=15)
        # started again, it rebuilds the active ones from the topic's
        # history below its committed offsets, and posts them
        proc = bridge(broker, am, names.alerts, names.group, log,
                      "--resend-interval", "1s")
        got = wait_episodes(am, {ready["episode_id"], poor["episode_id"]})
        assert got[ready["episode_id"]]["startsAt"] == iso(ready["event_time"])
        time.sleep(2.5)
        assert set(by_episode(am)) == {ready["episode_id"],
                                       poor["episode_id"]}
    finally:
        ewsenv.stop(proc)
    text = open(log).read()
    assert "committed offset found: the records below it rebuild" in text, \
        text
    assert "2 active alerts known from the history; posting" in text, text


def test_alertmanager_down_delays_but_loses_nothing(broker, names, tmp_path):
    log = str(tmp_path / "bridge.log")
    am = ewsenv.Alertmanager(port=ewsenv.free_port(), start=False)
    quiet = alert("USER_DISENGAGED", "USER", "u-9", T0)
    produce_alerts(broker, names.alerts, [quiet])
    proc = bridge(broker, am, names.alerts, names.group, log)
    try:
        ewsenv.wait_for(lambda: "trying again in 2 s" in open(log).read(),
                        30, "a second failed post")
        am.start()
        wait_episodes(am, {quiet["episode_id"]})
    finally:
        ewsenv.stop(proc)
        am.close()
    text = open(log).read()
    assert "Failed to connect to 127.0.0.1" in text and "alerts waiting: 1;" in text, text
    assert "Alertmanager accepts alerts again, after" in text, text


def expected_active(records):
    """Episodes FIRING and not RESOLVED, folded in order, with their
    FIRING alert."""
    active, resolved = {}, set()
    for a in records:
        if a["status"] == "FIRING" and a["episode_id"] not in resolved:
            active[a["episode_id"]] = a
        elif a["status"] == "RESOLVED":
            resolved.add(a["episode_id"])
            active.pop(a["episode_id"], None)
    return active


@pytest.fixture(scope="module")
def scenario(broker, redis, tmp_path_factory):
    """The processor's alerts of a generated scenario in two halves, cut in
    event time at the last but one RESOLVED: a subject's alerts keep their
    order, and some episodes fire in the first half and resolve in the
    second."""
    names = ewsenv.Names("alertmanager-scenario")
    truth = tmp_path_factory.mktemp("scenario") / "truth.jsonl"
    ewsenv.run_gen(names, broker, str(truth),
                   ["--seed", "11", "--campaigns", "3", "--poor-campaigns",
                    "1", "--days", "14"])
    ewsenv.run_processor_to_end(names, broker, redis)
    sch = ewsenv.schema("alert.avsc")
    records = [(r["key"], r["value"], ewsenv.avro_decode(sch, r["value"]))
               for r in ewsenv.consume_records(broker, names.alerts)]
    cut = sorted(a["event_time"] for _, _, a in records
                 if a["status"] == "RESOLVED")[-2]
    return ([r for r in records if r[2]["event_time"] < cut],
            [r for r in records if r[2]["event_time"] >= cut])


@pytest.mark.parametrize("committed", [False, True],
                         ids=["uncommitted", "committed"])
def test_processor_alerts_through_a_killed_bridge(broker, names, tmp_path,
                                                  scenario, committed):
    """The processor's alerts handed to the bridge in two halves; the bridge
    is killed (SIGKILL) after the first and started again. Killed before
    its offsets were committed it posts everything again; after, it
    rebuilds the first half's active alerts from the history and posts the
    second half, whose RESOLVED end alerts the first half fired. Either
    way Alertmanager ends with exactly the episodes still FIRING, once
    each, with the FIRING's labels and start."""
    first = expected_active([a for _, _, a in scenario[0]])
    final = expected_active([a for _, _, a in scenario[0] + scenario[1]])
    assert set(first) - set(final), "no episode resolved across the kill"
    assert {a["rule"] for a in final.values()} >= {"USER_DISENGAGED",
                                                   "SALES_READY"}

    topic, log = names.alerts, str(tmp_path / "bridge.log")
    # committed within 100 ms, or not before the kill
    commit = ["-X", "auto.commit.interval.ms=" +
              ("100" if committed else "600000")]
    ewsenv.produce(broker, topic, [(k, v) for k, v, _ in scenario[0]])
    am = ewsenv.Alertmanager()
    proc = bridge(broker, am, topic, names.group, log, *commit)
    try:
        wait_episodes(am, first)
        time.sleep(1 if committed else 0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        ewsenv.produce(broker, topic, [(k, v) for k, v, _ in scenario[1]])
        proc = bridge(broker, am, topic, names.group, log)
        got = wait_episodes(am, final)
    finally:
        ewsenv.stop(proc)
        am.close()
    text = open(log).read()
    assert ("active alerts known from the history" in text) == committed, \
        text
    kinds = {"USER": "user", "ACCOUNT": "account", "CAMPAIGN": "campaign"}
    for episode, a in final.items():
        labels = got[episode]["labels"]
        assert labels["alertname"] == labels["rule"] == a["rule"], labels
        assert labels[kinds[a["subject_type"]]] == a["subject_id"], labels
        for name in ("account", "campaign"):
            if a[name + "_id"]:
                assert labels[name] == a[name + "_id"], labels
        assert got[episode]["startsAt"] == iso(a["event_time"]), got[episode]
        assert got[episode]["annotations"]["summary"] == a["reason"]
    # one active alert per rule and subject
    subjects = [(a["labels"]["rule"], a["labels"].get("user"),
                 a["labels"].get("account"), a["labels"].get("campaign"))
                for a in got.values()]
    assert len(subjects) == len(set(subjects)), subjects
