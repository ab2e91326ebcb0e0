"""ews-calibrate against a generated history on the dev broker.

The scenario: half the trial users are engaged. On their first day
everyone logs in and uses a feature; an engaged user sends an invite
(invite_sent) four times in five, a casual one in ten; anyone downloads
content (content_download) by a coin toss. After the one-day cut-off the
engaged ones come back for four sessions and activate; the casual ones come
back once and do not. Half the engaged users and three in a hundred casual
ones convert on day six. So invite_sent predicts both outcomes and
content_download neither.

The configuration judged is deliberately wrong: content_download at 12
points, invite_sent at 1. Activation is what that configuration counts (E
reaching 40 points within 3 days); the scenario keeps every casual user
below 40 and every engaged one above it, however the points fall.
"""

import json
import os
import random
import subprocess

import pytest

import ewsenv

T0 = 1767225600000  # 2026-01-01T00:00:00Z
MIN, HOUR, DAY = 60000, 3600000, 86400000
CALIBRATE = os.path.join(ewsenv.BUILD, "ews-calibrate")

WRONG_CONFIG = """\
kafka:
  bootstrap.servers: {bootstrap}
topics:
  usage: {usage}
decode:
  schema.dir: {schemas}
scoring:
  half.life: 7d
  weights:
    trial_started: 5
    login: 1
    feature_used: 3
    invite_sent: 1
    content_download: 12
  activation.points: 40
  activation.window: 3d
"""


def scenario(users=600, seed=16):
    """The events, in no particular order, as usage_event.avsc records."""
    rng = random.Random(seed)
    events = []

    def event(user, n, kind, t):
        events.append({"event_id": f"{user}-{n}", "user_id": user,
                       "account_id": None, "event_type": kind,
                       "product": None, "value": None, "campaign_id": None,
                       "occurred_at": t, "attributes": {}})

    for i in range(users):
        user = f"u-{i:04d}"
        start = T0 + rng.randrange(12) * DAY + rng.randrange(8, 18) * HOUR
        engaged = rng.random() < 0.5
        day0 = [("trial_started", 0), ("login", 5 * MIN),
                ("feature_used", 10 * MIN)]
        if rng.random() < 0.5:
            day0.append(("feature_used", 15 * MIN))
        if rng.random() < (0.8 if engaged else 0.1):
            day0.append(("invite_sent", 30 * MIN))
        if rng.random() < 0.5:
            day0.append(("content_download", 40 * MIN))
        later = []
        for session in ([36, 42, 48, 60] if engaged else [40]):
            at = session * HOUR
            later.append(("login", at))
            later += [("feature_used", at + k * MIN)
                      for k in (range(1, 4) if engaged else [1])]
        if rng.random() < (0.5 if engaged else 0.03):
            later.append(("converted", 6 * DAY))
        for n, (kind, dt) in enumerate(day0 + later):
            event(user, n, kind, start + dt)
    rng.shuffle(events)  # the replay must go by event time
    return events


def calibrate(config, *args):
    proc = subprocess.run(
        [CALIBRATE, "-c", config, "--from", "2026-01-01", "--to",
         str(T0 + 30 * DAY), "--json", *args],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def columns(outcome):
    return {c["event_type"]: c for c in outcome["columns"]
            if "event_type" in c}


@pytest.fixture
def history(broker, names, tmp_path):
    """The scenario on the broker (Avro, as producers write it) and in a
    file (JSON lines); the wrong configuration naming both."""
    events = scenario()
    sch = ewsenv.schema("usage_event.avsc")
    ewsenv.produce(broker, names.usage,
                   [(e["user_id"].encode(), ewsenv.avro_encode(
                       sch, {**e, "occurred_at": ewsenv.utc(e["occurred_at"])}))
                    for e in events])
    path = tmp_path / "events.jsonl"
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps({k: v for k, v in e.items()
                                if v is not None and v != {}}) + "\n")
    config = tmp_path / "wrong.yaml"
    config.write_text(WRONG_CONFIG.format(
        bootstrap=broker.bootstrap, usage=names.usage,
        schemas=ewsenv.SCHEMAS))
    return str(config), str(path), len(events)


def test_fitted_points_find_the_predictive_type(history):
    config, _, event_cnt = history
    report = calibrate(config)
    assert report["events_read"] == event_cnt
    assert report["undecodable"] == 0
    assert report["users"] == 600

    act = report["outcomes"]["activation"]
    assert act["fitted"], act["why_not"]
    assert act["better"] and not act["few_outcomes"]
    # nobody reaches 40 points by the cut-off, and --to leaves no one
    # too recent to know
    assert act["decided_at_cutoff"] == 0 and act["censored"] == 0
    assert act["train"]["users"] + act["test"]["users"] == 600
    assert act["test"]["users"] == 180  # the later 30%
    cols = columns(act)
    invite, content = cols["invite_sent"], cols["content_download"]
    assert invite["fitted"] and content["fitted"]
    # the predictive type weighs clearly more than the one that is not
    assert invite["coef"] > 2.0, cols
    assert abs(content["coef"]) < invite["coef"] / 4, cols
    assert invite["proposed"] > 4 * abs(content["proposed"]), cols
    # login and trial_started come once to everyone, at the same time
    # after the start: nothing to learn from them
    assert not cols["trial_started"]["fitted"]
    assert cols["trial_started"]["proposed"] == 5
    # and the fitted model ranks the later signups better than the
    # points that overweight content downloads
    assert act["auc"]["fitted"] > act["auc"]["configured"] + 0.1, act["auc"]
    assert act["auc"]["fitted"] > 0.75, act["auc"]
    # the top tenth: by either score, mostly users who sent an invite (the
    # configured point for it breaks the ties of the rest), so both near
    # the 8 in 9 of those who activate
    assert act["precision_top"]["users"] == 18
    assert act["precision_top"]["fitted"] > 0.6, act["precision_top"]
    # the proposal is YAML for scoring.weights, with the new points
    assert "scoring:\n  weights:\n" in act["yaml"]
    assert f"    invite_sent: {invite['proposed']:g}\n" in act["yaml"]

    conv = report["outcomes"]["conversion"]
    assert conv["fitted"], conv["why_not"]
    cols = columns(conv)
    assert cols["invite_sent"]["coef"] > 1.0, cols
    assert abs(cols["content_download"]["coef"]) < cols["invite_sent"]["coef"] / 2
    # converted is an outcome, never a feature
    assert "converted" not in cols


def test_a_file_gives_what_the_topic_gives(history):
    config, path, event_cnt = history
    from_topic = calibrate(config)
    from_file = calibrate(config, "--file", path)
    assert from_file["source"] == path
    from_topic.pop("source")
    from_file.pop("source")
    assert from_file == from_topic


def test_text_report_and_outcome_choice(history):
    config, path, _ = history
    proc = subprocess.run([CALIBRATE, "-c", config, "--file", path,
                           "--to", str(T0 + 30 * DAY),
                           "--outcome", "activation"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "\nactivation: E reached 40 points within 3 d" in text
    assert "\nconversion:" not in text
    assert "    fitted model " in text and "    configured points " in text
    assert "  scoring:\n    weights:\n      trial_started: 5\n" in text


@pytest.mark.parametrize("args,message", [
    (["--cutoff-days", "3"], "the cut-off (3 days) is not before the end of "
                             "the activation window (3 days)"),
    (["--test-share", "1"], "--test-share wants a share between 0 and 1, "
                            "not '1'"),
    (["--outcome", "churn"], "--outcome wants activation or conversion, not "
                             "'churn'"),
    (["--from", "yesterday"], "a time is 2026-01-05, 2026-01-05T09:30:00Z or "
                              "ms, not 'yesterday'"),
    (["--from", "2026-02-01", "--to", "2026-01-01"],
     "--from must come before --to"),
    (["extra"], "unexpected argument 'extra'"),
])
def test_bad_usage_exits_2(args, message):
    proc = subprocess.run([CALIBRATE, *args], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert f"ews-calibrate: {message}" in proc.stderr, proc.stderr


def test_nothing_to_fit_exits_1(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"event_id": "e1", "user_id": "u-1",
                                "event_type": "trial_started",
                                "occurred_at": T0}) + "\n")
    proc = subprocess.run([CALIBRATE, "--file", str(path), "--to",
                           str(T0 + 30 * DAY)],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ,
                               "EWS_DECODE_SCHEMA_DIR": ewsenv.SCHEMAS})
    assert proc.returncode == 1, proc.stderr
    assert "not fitted: the training users (1) are all negative" in \
        proc.stdout
    assert "ews-calibrate: no outcome could be fitted" in proc.stderr


def test_outcomes_agree_with_the_generators_truth(broker, names, tmp_path):
    """ews-gen's truth scores its users with the shipped points on its own:
    the users the tool counts activated (by the cut-off or after it) and
    converted within 14 days are the ones the truth says."""
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                           ["--no-campaign-events"])
    users = [t for t in truth if t["kind"] == "user"]
    proc = subprocess.run(
        [CALIBRATE, "-c", os.path.join(ewsenv.ROOT, "config", "ews.yaml"),
         "-b", broker.bootstrap, "--json"],
        env={**os.environ, "EWS_TOPICS_USAGE": names.usage},
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["users"] == len(users) and report["undecodable"] == 0
    act, conv = (report["outcomes"][o] for o in ("activation", "conversion"))
    assert act["censored"] == conv["censored"] == 0
    assert (act["train"]["positive"] + act["test"]["positive"] +
            act["decided_at_cutoff"]) == sum(u["activated"] for u in users)
    assert (conv["train"]["positive"] + conv["test"]["positive"] +
            conv["decided_at_cutoff"]) == sum(
        1 for u in users if u["converted_ms"] is not None and
        u["converted_ms"] - u["signup_ms"] <= 14 * DAY)
    assert act["fitted"] and conv["fitted"]
