"""Activation defined by behaviour, end to end: trials that invite a
colleague and use two products, but score below activation.points, are
activated under that definition (their campaign is not flagged) and not
under the score alone (it is)."""

import os

import ewsenv

DAY = 86400000
T0 = 1767225600000  # 2026-01-01T00:00:00Z
TRIALS = 24

BEHAVIOUR = """\
scoring:
  activation:
    points: 0
    conditions:
      - {event: invite_sent}
      - {products: 2}
"""


def usage(sch, user, i, etype, ms, campaign=None, product=None):
    return (user.encode(), ewsenv.avro_encode(sch, {
        "event_id": f"{user}-{i}", "user_id": user, "account_id": None,
        "event_type": etype, "product": product, "value": None,
        "campaign_id": campaign, "occurred_at": ewsenv.utc(ms),
        "attributes": {}}))


def scenario():
    """c-engaged: trials that invite and use two products (E = 5 + 8 + 3 +
    3 = 19, below 40); c-idle: trials that only log in. Then one event
    three days after maturity moves time on."""
    sch = ewsenv.schema("usage_event.avsc")
    out = []
    for n in range(TRIALS):
        t = T0 + n * 600000
        for campaign, steps in (
                ("c-engaged", [("invite_sent", None), ("feature_used", "crm"),
                               ("feature_used", "reports")]),
                ("c-idle", [("login", None)])):
            user = f"{campaign}-u{n:02d}"
            out.append(usage(sch, user, 0, "trial_started", t, campaign))
            for i, (etype, product) in enumerate(steps, 1):
                out.append(usage(sch, user, i, etype, t + i * 3600000,
                                 product=product))
    out.append(usage(sch, "u-later", 0, "login", T0 + 7 * DAY))
    return out


def campaign_alerts(broker, names):
    sch = ewsenv.schema("alert.avsc")
    return [a for a in (ewsenv.avro_decode(sch, value) for _, value, _ in
                        ewsenv.consume_all(broker, names.alerts))
            if a["rule"] == "CAMPAIGN_UNDERPERFORMING"]


def run(broker, redis, names, tag, config):
    replay = ewsenv.Names(f"{names.prefix[:-1]}-{tag}")
    replay.usage, replay.campaign = names.usage, names.campaign
    args = ["-c", config] if config else []
    ewsenv.run_processor_to_end(replay, broker, redis, args)
    return replay, campaign_alerts(broker, replay)


def inspect_campaign(broker, redis, names, config):
    import json
    import subprocess
    proc = subprocess.run(
        [os.path.join(ewsenv.BUILD, "ews-inspect"),
         *(["-c", config] if config else []), "campaign", "c-engaged"],
        env=names.env(broker, redis), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_behaviour_activates_where_the_score_does_not(broker, redis, names,
                                                      tmp_path):
    ewsenv.produce(broker, names.usage, scenario())
    config = str(tmp_path / "behaviour.yaml")
    with open(config, "w") as f:
        f.write(BEHAVIOUR)

    # by behaviour: c-engaged's trials are activated, c-idle's are not
    by_behaviour, alerts = run(broker, redis, names, "behaviour", config)
    assert {a["subject_id"] for a in alerts} == {"c-idle"}, alerts
    assert all(a["reason"].endswith(
        "; activated means all of invite_sent >= 1, 2 products within 3d")
        for a in alerts), alerts
    state = inspect_campaign(broker, redis, by_behaviour, config)
    assert state["activated"] == TRIALS
    assert state["activation"] == {
        "definition": "all of invite_sent >= 1, 2 products within 3d",
        "of": {"trials": TRIALS, "mature": TRIALS},
        "conditions": [
            {"condition": "invite_sent >= 1", "trials": TRIALS,
             "mature": TRIALS},
            {"condition": "2 products", "trials": TRIALS, "mature": TRIALS}],
        "met_all": {"trials": TRIALS, "mature": TRIALS}}

    # the same events, the score alone: both campaigns flagged
    by_score, alerts = run(broker, redis, names, "score", None)
    engaged = [a for a in alerts if a["subject_id"] == "c-engaged"]
    assert {a["subject_id"] for a in alerts} == {"c-engaged", "c-idle"}
    assert [a["status"] for a in engaged] == ["FIRING"]
    assert f"0 of {TRIALS} mature trials activated" in engaged[0]["reason"]
    assert engaged[0]["reason"].endswith(
        "; activated means engagement >= 40 within 3d")
    state = inspect_campaign(broker, redis, by_score, None)
    assert state["activated"] == 0
    assert state["activation"]["met_all"] == {"trials": 0, "mature": 0}
    assert state["activation"]["conditions"] == [
        {"condition": "engagement >= 40", "trials": 0, "mature": 0}]
