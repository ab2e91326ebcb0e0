"""The generator's truth against the alerts the processor published: what
each kind of user and campaign must, and must not, have raised."""

import collections


def by_behaviour(users):
    by = collections.defaultdict(set)
    for uid, t in users.items():
        by[t["behaviour"]].add(uid)
    return by


def expected_disengaged(users):
    """(users that must fire once, users that must resolve once)."""
    by = by_behaviour(users)
    fading = {u for u in by["fading"] if users[u]["drop_ms"] is not None}
    return by["quiet"] | by["returning"] | fading, by["returning"]


def problems(truth, alerts):
    """Every way alerts differ from truth, as short sentences; [] if none."""
    users = {t["id"]: t for t in truth if t["kind"] == "user"}
    out = []
    must_fire, must_resolve = expected_disengaged(users)
    disengaged = [a for a in alerts if a["rule"] == "USER_DISENGAGED"]
    for status, want in (("FIRING", must_fire), ("RESOLVED", must_resolve)):
        got = collections.Counter(a["subject_id"] for a in disengaged
                                  if a["status"] == status)
        missed, false = want - set(got), set(got) - want
        if missed:
            out.append(f"{status} missed for {len(missed)}: "
                       f"{sorted(missed)[:5]}")
        for uid in sorted(false)[:5]:
            out.append(f"{status} for {users[uid]['behaviour']} user {uid}")
        twice = [u for u, n in got.items() if n > 1]
        if twice:
            out.append(f"{status} more than once for {sorted(twice)[:5]}")

    flagged = {a["subject_id"] for a in alerts
               if a["rule"] == "CAMPAIGN_UNDERPERFORMING"
               and a["status"] == "FIRING"}
    poor = {t["id"] for t in truth if t["kind"] == "campaign" and t["poor"]}
    if flagged - poor:
        out.append(f"healthy campaigns flagged: {sorted(flagged - poor)}")
    if poor - flagged:
        out.append(f"poor campaigns missed: {sorted(poor - flagged)}")
    return out
