#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora, tests/fuzz/corpus/<target>/.

Valid events of every kind, with and without their optional fields and at
the limits the decoder enforces, encoded by python3-avro (an encoder that
is not ours), and malformed variants of them. Every input is a selector
byte, then the message (tests/fuzz/fuzz_common.h): bit 0 picks the stream
(0 usage, 1 campaign), bit 1 is the target's own.

Deterministic. Each corpus directory is rewritten whole: add hand-made
cases to tests/fuzz/regressions/<target>/ instead. Run with Debian's
interpreter, where python3-avro lives:

    /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import io
import json
import os
import struct

import avro.io
import avro.schema

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(FUZZ))

T0 = 1767225600000  # 2026-01-01T00:00:00Z, as fuzz_common.h
NOW = T0 + 3600000
MAX_FUTURE = 24 * 3600000
MIN_TIME = 946684800000  # 2000-01-01: anything before is rejected

USAGE, CAMPAIGN, ALT = 0, 1, 2  # selector bits


def load_schema(path):
    """The schema without logical types, so that times are written as the
    plain longs the decoder sees."""

    def strip(node):
        if isinstance(node, dict):
            node.pop("logicalType", None)
            for v in node.values():
                strip(v)
        elif isinstance(node, list):
            for v in node:
                strip(v)

    with open(os.path.join(ROOT, path)) as f:
        doc = json.load(f)
    strip(doc)
    return avro.schema.parse(json.dumps(doc))


SCHEMAS = {
    "usage": load_schema("schemas/usage_event.avsc"),
    "campaign": load_schema("schemas/campaign_event.avsc"),
    "usage_v2": load_schema("tests/fuzz/schemas/usage_event_v2.avsc"),
    "usage_value_union": load_schema(
        "tests/fuzz/schemas/usage_event_value_union.avsc"),
    "usage_no_product": load_schema(
        "tests/fuzz/schemas/usage_event_no_product.avsc"),
    "campaign_v2": load_schema("tests/fuzz/schemas/campaign_event_v2.avsc"),
    "usage_narrow": load_schema("tests/fuzz/schemas/usage_event_narrow.avsc"),
}


def encode(schema, datum):
    buf = io.BytesIO()
    avro.io.DatumWriter(SCHEMAS[schema]).write(datum,
                                               avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def usage(event_id, event_type, user="u-1001", **fields):
    event = {
        "event_id": event_id,
        "user_id": user,
        "account_id": None,
        "event_type": event_type,
        "product": None,
        "value": None,
        "campaign_id": None,
        "occurred_at": T0,
        "attributes": {},
    }
    event.update(fields)
    return event


def campaign(event_id, kind, **fields):
    event = {
        "event_id": event_id,
        "campaign_id": "c-spring",
        "type": kind,
        "name": None,
        "channel": None,
        "target_activation_rate": None,
        "amount": None,
        "occurred_at": T0,
    }
    event.update(fields)
    return event


FIRMOGRAPHICS = {
    "company_size": "51-200",
    "industry": "software",
    "role": "marketing",
    "country": "DE",
    "email_domain": "acme.example",
}

USAGE_EVENTS = {
    "trial_started-full": usage("e-0001", "trial_started", account_id="acme",
                                product="crm", campaign_id="c-spring",
                                attributes=FIRMOGRAPHICS),
    "trial_started-bare": usage("e-0002", "trial_started"),
    "login": usage("e-0003", "login", occurred_at=T0 + 60000),
    "feature_used": usage("e-0004", "feature_used", account_id="acme",
                          product="analytics"),
    "page_view-pricing": usage("e-0005", "page_view",
                               attributes={"page_class": "pricing"}),
    "video_play": usage("e-0006", "video_play", product="crm", value=0.75),
    "content_download": usage("e-0007", "content_download", value=1.0),
    "invite_sent": usage("e-0008", "invite_sent", account_id="acme"),
    "identify": usage("e-0009", "identify",
                      attributes={"role": "cto", "country": "US"}),
    "converted": usage("e-0010", "converted", account_id="acme"),
    "trial_ended": usage("e-0011", "trial_ended"),
    "unsubscribed": usage("e-0012", "unsubscribed", value=-1.0),
    # at the limits: the longest ids, more attributes than slots, an
    # attribute value that just fits and one that does not, the oldest and
    # the latest accepted times
    "limits-ids": usage("e" * 127, "x" * 63, user="u" * 127,
                        account_id="a" * 127, product="p" * 63,
                        campaign_id="c" * 127),
    "limits-attributes": usage(
        "e-0013", "identify",
        attributes=dict({"k%02d" % i: "v" for i in range(20)},
                        long_value="v" * 127, too_long="v" * 128,
                        **{"k" * 63: "ok", "k" * 64: "cut"})),
    "limits-oldest": usage("e-0014", "login", occurred_at=MIN_TIME),
    "limits-latest": usage("e-0015", "login", occurred_at=NOW + MAX_FUTURE),
    "utf8": usage("e-0016", "page_view", user="jürgen@äöü.example",
                  attributes={"page_class": "intégrations"}),
}

CAMPAIGN_EVENTS = {
    "launched": campaign("ce-1", "LAUNCHED", name="Spring webinar",
                         channel="webinar", target_activation_rate=0.35),
    "spend": campaign("ce-2", "SPEND", amount=1250.5),
    "paused": campaign("ce-3", "PAUSED"),
    "ended": campaign("ce-4", "ENDED", name="Spring webinar",
                      channel="paid_search", target_activation_rate=0.0,
                      amount=0.0),
    "limits": campaign("c" * 127, "LAUNCHED", name="n" * 127,
                       channel="c" * 63, target_activation_rate=1.0),
}


def zigzag(n):
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def malformed_usage():
    """Variants of a valid usage event, each wrong in one way the decoder
    must reject (tests/unit/test_decode.c names the expected reasons)."""
    good = encode("usage", USAGE_EVENTS["trial_started-full"])
    bare = encode("usage", USAGE_EVENTS["trial_started-bare"])
    prefix = zigzag(6) + b"e-0001"  # the event_id field, as encoded
    assert good.startswith(prefix)
    rest = good[len(prefix):]
    yield "truncated", good[:-5]
    yield "trailing", good + b"\x00"
    yield "negative-length", zigzag(-6) + good[1:]
    yield "huge-length", zigzag(1 << 40) + good[1:]
    yield "long-varint", b"\xff" * 11 + good[1:]
    ids = zigzag(6) + b"e-0002" + zigzag(6) + b"u-1001"
    assert bare.startswith(ids)
    yield "union-index", bare[:len(ids)] + zigzag(5) + bare[len(ids) + 1:]
    yield "empty-id", zigzag(0) + rest
    yield "nul-in-id", zigzag(6) + b"e-\x00" + b"001" + rest
    yield "id-too-long", zigzag(200) + b"e" * 200 + rest
    yield "future", encode("usage", usage("e-b1", "login",
                                          occurred_at=NOW + MAX_FUTURE + 1))
    yield "seconds", encode("usage", usage("e-b2", "login",
                                           occurred_at=T0 // 1000))
    yield "nan", encode("usage", usage("e-b3", "video_play",
                                       value=float("nan")))
    yield "infinity", encode("usage", usage("e-b4", "video_play",
                                            value=float("inf")))
    # attributes as a block whose byte size claims more than there is
    head = encode("usage", USAGE_EVENTS["login"])[:-1]
    yield "map-bad-block-size", head + zigzag(-1) + zigzag(1000) + zigzag(
        1) + b"k" + zigzag(1) + b"v" + zigzag(0)
    yield "map-too-many", head + zigzag(1 << 30)
    yield "empty", b""


def malformed_campaign():
    good = encode("campaign", CAMPAIGN_EVENTS["launched"])
    ids = zigzag(4) + b"ce-1" + zigzag(8) + b"c-spring"
    yield "enum-index", ids + zigzag(7) + good[len(ids) + 1:]
    yield "enum-negative", ids + zigzag(-1) + good[len(ids) + 1:]
    yield "truncated", good[:-3]
    yield "target-above-1", encode("campaign", campaign(
        "ce-b1", "LAUNCHED", target_activation_rate=1.5))
    yield "amount-nan", encode("campaign", campaign(
        "ce-b2", "SPEND", amount=float("nan")))
    yield "missing-campaign", encode("campaign", campaign(
        "ce-b3", "PAUSED", campaign_id=""))


def write(target, files):
    path = os.path.join(FUZZ, "corpus", target)
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        os.remove(os.path.join(path, name))
    for name, data in files:
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
    print("%s: %d inputs" % (path, len(files)))


def sel(bits):
    return bytes([bits])


def corpus_avro():
    files = []
    for name, ev in USAGE_EVENTS.items():
        files.append(("usage-" + name, sel(USAGE) + encode("usage", ev)))
    for name, ev in CAMPAIGN_EVENTS.items():
        files.append(("campaign-" + name,
                      sel(CAMPAIGN) + encode("campaign", ev)))
    # valid, but not what python3-avro writes: attributes as a block with
    # a negative count and its size in bytes
    head = encode("usage", USAGE_EVENTS["login"])[:-1]
    files.append(("usage-map-sized-block", sel(USAGE) + head + zigzag(-1) +
                  zigzag(4) + zigzag(1) + b"k" + zigzag(1) + b"v" + zigzag(0)))
    # valid maps that python3-avro does not write, for the fast read of
    # our own schema to agree with avro-c's on (fuzz_avro.c): a key twice
    # (avro-c keeps its first place and its last value), a key and a value
    # holding a NUL (a key is read as a C string), two blocks, and more
    # entries than the fast read takes (avro-c reads those)
    def entry(k, v):
        return zigzag(len(k)) + k + zigzag(len(v)) + v

    files.append(("usage-map-key-twice", sel(USAGE) + head + zigzag(3) +
                  entry(b"role", b"cto") + entry(b"country", b"DE") +
                  entry(b"role", b"ceo") + zigzag(0)))
    files.append(("usage-map-nul", sel(USAGE) + head + zigzag(3) +
                  entry(b"ro\x00le", b"cto") + entry(b"ro", b"x") +
                  entry(b"page_class", b"pri\x00cing") + zigzag(0)))
    two = entry(b"a", b"1") + entry(b"b", b"2")
    files.append(("usage-map-two-blocks", sel(USAGE) + head + zigzag(-2) +
                  zigzag(len(two)) + two + zigzag(1) + entry(b"a", b"3") +
                  zigzag(0)))
    files.append(("usage-map-large", sel(USAGE) + head + zigzag(70) + b"".join(
        entry(b"k%02d" % (i % 66), b"v%d" % i) for i in range(70)) +
        zigzag(0)))
    for name, data in malformed_usage():
        files.append(("usage-bad-" + name, sel(USAGE) + data))
    for name, data in malformed_campaign():
        files.append(("campaign-bad-" + name, sel(CAMPAIGN) + data))
    # written with the evolved schemas, the decoder configured with them
    v2 = dict(session_id="s-77", tags=["beta", "mobile"])
    for name in ("trial_started-full", "login", "video_play"):
        ev = dict(USAGE_EVENTS[name], **v2)
        files.append(("usage-v2-" + name,
                      sel(USAGE | ALT) + encode("usage_v2", ev)))
    files.append(("usage-v2-bare", sel(USAGE | ALT) + encode(
        "usage_v2", dict(USAGE_EVENTS["login"], session_id=None, tags=[]))))
    for name in ("launched", "spend"):
        ev = dict(CAMPAIGN_EVENTS[name], currency="EUR")
        files.append(("campaign-v2-" + name,
                      sel(CAMPAIGN | ALT) + encode("campaign_v2", ev)))
    files.append(("campaign-v2-archived", sel(CAMPAIGN | ALT) + encode(
        "campaign_v2", campaign("ce-5", "ARCHIVED", currency=None))))
    return files


def confluent(schema_id, body):
    return b"\x00" + struct.pack(">i", schema_id) + body


def corpus_confluent():
    files = []
    for name in ("trial_started-full", "trial_started-bare", "video_play",
                 "limits-attributes"):
        files.append(("id1-usage-" + name, sel(USAGE) + confluent(
            1, encode("usage", USAGE_EVENTS[name]))))
    v2 = dict(USAGE_EVENTS["trial_started-full"], session_id="s-77",
              tags=["beta"])
    files.append(("id2-usage-v2", sel(USAGE) + confluent(
        2, encode("usage_v2", v2))))
    files.append(("id2-usage-v2-bare", sel(USAGE) + confluent(
        2, encode("usage_v2", dict(USAGE_EVENTS["login"], session_id=None,
                                   tags=[])))))
    files.append(("id3-usage-value-double", sel(USAGE) + confluent(
        3, encode("usage_value_union", USAGE_EVENTS["video_play"]))))
    files.append(("id3-usage-value-string", sel(USAGE) + confluent(
        3, encode("usage_value_union",
                  dict(USAGE_EVENTS["video_play"], value="0.75")))))
    no_product = dict(USAGE_EVENTS["login"])
    del no_product["product"]
    files.append(("id4-usage-no-product", sel(USAGE) + confluent(
        4, encode("usage_no_product", no_product))))
    for name in ("launched", "spend", "paused"):
        files.append(("id5-campaign-" + name, sel(CAMPAIGN) + confluent(
            5, encode("campaign", CAMPAIGN_EVENTS[name]))))
    files.append(("id6-campaign-v2", sel(CAMPAIGN) + confluent(
        6, encode("campaign_v2", dict(CAMPAIGN_EVENTS["spend"],
                                      currency="EUR")))))
    files.append(("id6-campaign-v2-archived", sel(CAMPAIGN) + confluent(
        6, encode("campaign_v2", campaign("ce-5", "ARCHIVED",
                                          currency=None)))))
    files.append(("id7-usage-narrow", sel(USAGE) + confluent(
        7, encode("usage_narrow", dict(USAGE_EVENTS["video_play"],
                                       account_id="acme")))))
    body = encode("usage", USAGE_EVENTS["login"])
    files += [
        ("bad-magic", sel(USAGE) + b"\x01" + confluent(1, body)[1:]),
        ("bad-short-header", sel(USAGE) + b"\x00\x00\x00"),
        ("bad-header-only", sel(USAGE) + confluent(1, b"")),
        ("bad-unknown-id", sel(USAGE) + confluent(99, body)),
        ("bad-negative-id", sel(USAGE) + confluent(-1, body)),
        ("bad-usage-id-on-campaign", sel(CAMPAIGN) + confluent(1, body)),
        ("bad-campaign-id-on-usage", sel(USAGE) + confluent(
            5, encode("campaign", CAMPAIGN_EVENTS["paused"]))),
        ("bad-truncated", sel(USAGE) + confluent(1, body[:-4])),
    ]
    return files


def as_json(event):
    return json.dumps(event, ensure_ascii=False).encode()


def corpus_json():
    files = []
    for name, ev in USAGE_EVENTS.items():
        files.append(("usage-" + name, sel(USAGE) + as_json(ev)))
    # absent rather than null optionals; times as ISO-8601 strings
    sparse = {"event_id": "e-j1", "user_id": "u-j1", "event_type": "login",
              "occurred_at": T0}
    files.append(("usage-sparse", sel(USAGE) + as_json(sparse)))
    for name, when in (("iso", "2026-01-01T00:00:00Z"),
                       ("iso-millis", "2026-01-01T00:59:59.123Z"),
                       ("iso-bad-offset", "2026-01-01T00:00:00+01:00"),
                       ("iso-bad-space", "2026-01-01 00:00:00Z"),
                       ("iso-bad-millis", "2026-01-01T00:00:00.1Z")):
        files.append(("usage-time-" + name,
                      sel(USAGE) + as_json(dict(sparse, occurred_at=when))))
    # attributes that are not strings are passed over, not refused
    files.append(("usage-attributes-not-strings", sel(USAGE) + as_json(
        dict(sparse, attributes={"page_class": 1, "role": None}))))
    files.append(("usage-unknown-fields", sel(USAGE) + as_json(
        dict(sparse, session_id="s-1", tags=["a"], nested={"x": [1, 2]}))))
    for name, ev in CAMPAIGN_EVENTS.items():
        files.append(("campaign-" + name, sel(CAMPAIGN) + as_json(ev)))
    bad = [
        ("not-object", b"[1, 2, 3]"),
        ("null", b"null"),
        ("truncated", as_json(sparse)[:-3]),
        ("trailing", as_json(sparse) + b" {}"),
        ("duplicate-key", b'{"event_id": "a", "event_id": "b", '
                          b'"user_id": "u", "event_type": "login", '
                          b'"occurred_at": 1767225600000}'),
        ("value-string", as_json(dict(sparse, value="0.5"))),
        ("time-float", as_json(dict(sparse, occurred_at=1767225600000.5))),
        ("time-seconds", as_json(dict(sparse, occurred_at=T0 // 1000))),
        ("time-huge", b'{"event_id": "a", "user_id": "u", "event_type": '
                      b'"login", "occurred_at": 9223372036854775807}'),
        ("nul-escape", b'{"event_id": "a\\u0000b", "user_id": "u", '
                       b'"event_type": "login", "occurred_at": '
                       b'1767225600000}'),
        ("id-too-long", as_json(dict(sparse, user_id="u" * 128))),
        ("deep", b"[" * 3000 + b"]" * 3000),
        ("empty", b""),
    ]
    files += [("usage-bad-" + n, sel(USAGE) + d) for n, d in bad]
    files.append(("campaign-bad-type", sel(CAMPAIGN) + as_json(dict(
        CAMPAIGN_EVENTS["paused"], type="ARCHIVED"))))
    files.append(("campaign-bad-type-long", sel(CAMPAIGN) + as_json(dict(
        CAMPAIGN_EVENTS["paused"], type="LAUNCHED_AND_MORE_THAN_16"))))
    files.append(("campaign-bad-type-missing", sel(CAMPAIGN) + as_json(
        {k: v for k, v in CAMPAIGN_EVENTS["paused"].items() if k != "type"})))
    return files


def varint(v):
    out = b""
    while v > 0x7f:
        out += bytes([(v & 0x7f) | 0x80])
        v >>= 7
    return out + bytes([v])


def short_str(s):
    return bytes([len(s)]) + s


def zz(n):
    """Zig-zag, as an unsigned 64-bit number."""
    return ((n << 1) ^ (n >> 63)) & (2 ** 64 - 1)


# The names dictionary fuzz_stored.c gives its decoder: name -> id.
STORED_NAMES = {b"login": 0, b"trial_started": 1, b"feature_used": 2,
                b"crm": 3, b"analytics": 4}


def packed_user(version, partition=3, account=b"a-1", campaign=b"c-1",
                reasons=((b"login", 2.5), (b"webinar", 10.0)),
                interests=((b"analytics", 4.0),), dedup=(1, 2, 3),
                met=0x7, counts=(1, 300), products=(0xcafef00d, 7),
                timer=T0 + 72 * 3600000, names=STORED_NAMES, funnel=0x3):
    """A user's value as processor/store/codec.h lays it out, in version 1,
    2, 3 or 4 (names: their ids in version 4, when the dictionary has
    them; timer: a time, 0 none or -1 not known; met, counts, products:
    the activation progress of versions 3 and 4; funnel: the stages
    counted, version 4)."""
    out = bytes([version, 1]) + varint(partition) + varint(42)
    times = [T0, T0, T0 + 60000, T0 - 86400000, 0, 0]
    if version >= 2:
        times += [0, T0 + 3600000, 0, T0 + 3 * 86400000]
    if version >= 4:
        ref = times.pop(1)
        out += varint(ref) + b"".join(
            varint(zz(t - ref) + 1 if t else 0) for t in times)
    else:
        out += b"".join(varint(t) for t in times)
    if version >= 2:
        out += struct.pack("<d", 55.5)  # rule peak
    out += struct.pack("<ddd", 50.0, 55.5, 12.0)
    out += varint(5) if version >= 4 else struct.pack("<I", 5)
    out += short_str(account) + short_str(campaign)
    for comps in (reasons, interests):
        out += bytes([len(comps)])
        for n, v in comps:
            if version >= 4:
                out += (varint(names[n] + 1) if n in names
                        else varint(0) + short_str(n))
            else:
                out += short_str(n)
            out += struct.pack("<d", v)
    out += bytes([len(dedup)]) + b"".join(
        struct.pack("<I", h) for h in dedup)
    if version >= 4:
        out += (varint(0) if timer == 0 else varint(1) if timer == -1
                else varint(3) + varint(zz(timer)) if timer < 0
                else varint(2) + varint(zz(timer - T0)))
        out += varint(20454) + bytes([1])  # the day, a member
    if version >= 3:
        out += varint(met) + bytes([len(counts)]) + b"".join(
            varint(c) for c in counts) + bytes([len(products)]) + b"".join(
            struct.pack("<I", h) for h in products)
    if version >= 4:
        out += bytes([funnel])
    return out


def outbox_record(kind, key, value, reason=b"", detail=b"", topic=b"",
                  partition=0, offset=0, timestamp=0):
    """An outbox record as processor/util/outbox.h lays it out."""
    return (bytes([1, kind]) + b"".join(
        struct.pack("<I", len(f)) + f
        for f in (key, value, reason, detail, topic)) +
        struct.pack("<qqq", partition, offset, timestamp))


def corpus_stored():
    user, box = sel(0), sel(1)
    v2 = packed_user(2)
    files = [
        ("user-v1", user + packed_user(1)),
        ("user-v2", user + v2),
        ("user-v2-empty", user + packed_user(2, account=b"", campaign=b"",
                                             reasons=(), interests=(),
                                             dedup=())),
        ("user-v2-long-id", user + packed_user(2, account=b"a" * 127)),
        ("user-bad-version", user + bytes([9]) + v2[1:]),
        ("user-bad-stage", user + v2[:1] + bytes([200]) + v2[2:]),
        ("user-truncated", user + v2[:-3]),
        ("user-trailing", user + v2 + b"\x00"),
        ("user-id-too-long", user + packed_user(2, account=b"a" * 200)),
        ("user-too-many-reasons", user + packed_user(
            2, reasons=tuple((b"r%d" % i, 1.0) for i in range(40)))),
        ("user-varint-unending", user + v2[:2] + b"\xff" * 12),
        ("user-v3", user + packed_user(3)),
        ("user-v3-no-progress", user + packed_user(3)[:len(v2)]),
        ("user-v3-too-many-counts", user + packed_user(
            3, counts=tuple(range(12)))),
        ("user-v3-count-too-big", user + packed_user(3, counts=(70000,))),
        ("user-v4", user + packed_user(4)),
        ("user-v4-no-progress", user + packed_user(
            4, met=0, counts=(), products=())),
        ("user-v4-timer-none", user + packed_user(4, timer=0)),
        ("user-v4-timer-unknown", user + packed_user(4, timer=-1)),
        ("user-v4-timer-far", user + packed_user(4, timer=-5)),
        ("user-v4-unknown-name", user + packed_user(
            4, names={**STORED_NAMES, b"webinar": 100})),
    ]
    alert = outbox_record(1, b"u-1", b"\x02avro-alert-bytes")
    dead = outbox_record(2, b"u-1", b"\xff\xff", b"bad_length",
                         b"negative length", b"product-usage", 3, 1234,
                         T0)
    files += [
        ("outbox-alert", box + alert),
        ("outbox-dead", box + dead),
        ("outbox-empty-fields", box + outbox_record(2, b"", b"")),
        ("outbox-bad-kind", box + alert[:1] + b"\x07" + alert[2:]),
        ("outbox-truncated", box + dead[:-5]),
        ("outbox-trailing", box + alert + b"x"),
        ("outbox-huge-length", box + alert[:2] + b"\xff\xff\xff\xff" +
         alert[6:]),
        ("outbox-partition-out-of-range", box + outbox_record(
            2, b"k", b"v", partition=1 << 40)),
    ]
    return files


def main():
    write("fuzz_avro", corpus_avro())
    write("fuzz_confluent", corpus_confluent())
    write("fuzz_json", corpus_json())
    write("fuzz_stored", corpus_stored())


if __name__ == "__main__":
    main()
