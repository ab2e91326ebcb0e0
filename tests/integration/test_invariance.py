"""The same events give the same alerts however the topics are partitioned
and however the stream is cut into batches.

One generated scenario is laid out over 1, 8 and 64 partitions, with one
partition made sparse around a day boundary: the users whose trials mature
on the day the poor campaign reaches its sample size share partition 0 in
every layout but the first, and send nothing from that day's start to 06:00
the day after. Their partition's watermark stands still over the boundary
while the others move on. Each layout is run with batches of 7 and of 5000
messages; every run must publish the same alerts (ids, days, reasons and
figures) for all four rules."""

import binascii
import collections
import os
import subprocess

import pytest

import ewsenv

DAY = 86400000
LAYOUTS = (1, 8, 64)
BATCHES = ("7", "5000")
GEN = ["--seed", "7", "--campaigns", "3", "--poor-campaigns", "1",
       "--users-per-campaign", "30", "--days", "14", "--signup-days", "4"]
MATURITY = 3 * DAY
MIN_SAMPLE = 20
# Short trailing days so that an account at risk shows in two weeks.
RULES = {"EWS_RULES_ACCOUNT_AT_RISK_TRAILING_DAYS": "4",
         "EWS_RULES_ACCOUNT_AT_RISK_MIN_LEVEL": "2"}


def sparse_users(truth):
    """The users whose trials mature on the day the poor campaign's
    matured signups first reach the sample size, and that day."""
    users = [t for t in truth if t["kind"] == "user"]
    poor = next(t["id"] for t in truth
                if t["kind"] == "campaign" and t["poor"])
    matured = sorted(u["signup_ms"] + MATURITY for u in users
                     if u["campaign"] == poor)
    day = matured[MIN_SAMPLE - 1] // DAY
    return {u["id"] for u in users
            if (u["signup_ms"] + MATURITY) // DAY == day}, day


def partition_of(key, sparse, n):
    if n == 1:
        return 0
    if key in sparse:
        return 0
    return 1 + binascii.crc32(key) % (n - 1)


def lay_out(broker, records, sparse, gap, n, usage, campaign):
    usage_msgs = [(r["key"], r["value"],
                   partition_of(r["key"], sparse, n))
                  for r in records["usage"]
                  if not (r["key"] in sparse and
                          gap[0] <= r["timestamp"] < gap[1])]
    ewsenv.produce(broker, usage, usage_msgs)
    ewsenv.produce(broker, campaign,
                   [(r["key"], r["value"], binascii.crc32(r["key"]) % n)
                    for r in records["campaign"]])
    return len(usage_msgs) + len(records["campaign"])


def published(broker, topic):
    sch = ewsenv.schema("alert.avsc")
    out = set()
    for _, value, _ in ewsenv.consume_all(broker, topic):
        a = ewsenv.avro_decode(sch, value)
        out.add((a["alert_id"], a["rule"], a["status"],
                 ewsenv.millis(a["event_time"]) // DAY, a["reason"],
                 tuple(sorted((k, round(v, 6))
                              for k, v in a["values"].items()))))
    return out


@pytest.fixture
def layout_broker():
    topics = [("stage-usage", 1), ("stage-campaign", 1)]
    for n in LAYOUTS:
        topics += [(f"l{n}-usage", n), (f"l{n}-campaign", n)]
    b = ewsenv.Broker(topics)
    yield b
    b.close()


def test_alerts_do_not_depend_on_partitions_or_batches(layout_broker, redis,
                                                       tmp_path):
    broker = layout_broker
    stage = ewsenv.Names("stage")
    stage.usage, stage.campaign = "stage-usage", "stage-campaign"
    truth = ewsenv.run_gen(stage, broker, str(tmp_path / "truth.jsonl"), GEN)
    records = {kind: ewsenv.consume_records(broker, f"stage-{kind}")
               for kind in ("usage", "campaign")}
    sparse, day = sparse_users(truth)
    sparse = {u.encode() for u in sparse}  # as the records' keys
    gap = (day * DAY, (day + 1) * DAY + 6 * 3600000)
    dropped = [r for r in records["usage"]
               if r["key"] in sparse and gap[0] <= r["timestamp"] < gap[1]]
    assert sparse and dropped

    runs = {}
    for n in LAYOUTS:
        events = lay_out(broker, records, sparse, gap, n, f"l{n}-usage",
                         f"l{n}-campaign")
        for batch in BATCHES:
            names = ewsenv.Names(f"inv-{n}-b{batch}")
            names.usage, names.campaign = f"l{n}-usage", f"l{n}-campaign"
            err = ewsenv.run_processor_to_end(
                names, broker, redis,
                env_extra={"EWS_KAFKA_BATCH_MAX": batch, **RULES})
            assert f"consumed={events} " in err, err.splitlines()[-1]
            runs[(n, batch)] = published(broker, names.alerts)

    base = runs[(1, "5000")]
    rules = collections.Counter(a[1] for a in base)
    assert set(rules) == {"USER_DISENGAGED", "CAMPAIGN_UNDERPERFORMING",
                          "SALES_READY", "ACCOUNT_AT_RISK"}, rules
    differ = {run: (sorted(alerts - base)[:3], sorted(base - alerts)[:3])
              for run, alerts in runs.items() if alerts != base}
    assert not differ, "\n".join(
        f"{run}: only here {here}, only in (1, 5000) {there}"
        for run, (here, there) in differ.items())
