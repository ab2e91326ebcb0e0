"""Alerts in the Schema Registry's wire format (alerts.format: confluent):
the alert schema registered under <topic>-value at start, each alert framed
with that id, read by a stock registry client and a stock Avro reader."""

import io
import os
import re
import struct
import subprocess

import avro.io
import avro.schema
from confluent_kafka.schema_registry import SchemaRegistryClient

import ewsenv
from registry import Registry


def test_alerts_in_the_wire_format_read_with_stock_tools(broker, redis, names,
                                                         tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth.jsonl"),
                   ["--seed", "11", "--campaigns", "3", "--poor-campaigns",
                    "1", "--days", "14"])
    registry = Registry({})
    sales = names.alerts + "-sales"
    try:
        err = ewsenv.run_processor_to_end(names, broker, redis, env_extra={
            "EWS_ALERTS_FORMAT": "confluent",
            "EWS_DECODE_REGISTRY_URL": registry.url,
            "EWS_RULES_SALES_READY_TOPIC": sales})
        report = err.strip().splitlines()[-1]
        published = {rule: int(f) + int(r) for rule, f, r in
                     re.findall(r" ([A-Z_]+)=(\d+)/(\d+)", report)}
        # registered at start, under each alert topic's subject
        assert set(registry.subjects) == {f"{names.alerts}-value",
                                          f"{sales}-value"}, registry.subjects

        client = SchemaRegistryClient({"url": registry.url})
        with open(os.path.join(ewsenv.SCHEMAS, "alert.avsc")) as f:
            ours = avro.schema.parse(f.read())
        rules = {}
        for topic in (names.alerts, sales):
            registered = client.get_latest_version(f"{topic}-value")
            writer = avro.schema.parse(
                client.get_schema(registered.schema_id).schema_str)
            assert writer == ours  # what was registered is alert.avsc
            for _, value, _ in ewsenv.consume_all(broker, topic):
                # the wire format: magic byte 0, the registered id
                magic, sid = struct.unpack(">bI", value[:5])
                assert (magic, sid) == (0, registered.schema_id), value[:5]
                a = avro.io.DatumReader(writer, ours).read(
                    avro.io.BinaryDecoder(io.BytesIO(value[5:])))
                rules.setdefault(topic, {})[a["alert_id"]] = a["rule"]
        assert set(rules[sales].values()) == {"SALES_READY"}
        assert "SALES_READY" not in rules[names.alerts].values()
        for rule in published:
            got = sum(r == rule for t in rules.values() for r in t.values())
            assert got == published[rule], (rule, report)

        # our own tools read the wire format too
        proc = subprocess.run(
            [os.path.join(ewsenv.BUILD, "ews-alerts"), "-b", broker.bootstrap,
             "-t", sales, "--schemas", ewsenv.SCHEMAS, "-e", "--json"],
            capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == len(rules[sales])

        # a registry that refuses the schema stops the start: exit 1
        registry.refuse.add(f"{names.alerts}-value")
        proc = ewsenv.processor(names, broker, redis, ["--exit-at-end"],
                                env_extra={
                                    "EWS_ALERTS_FORMAT": "confluent",
                                    "EWS_DECODE_REGISTRY_URL": registry.url,
                                    "EWS_REDIS_PREFIX": names.prefix + "x:"},
                                stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert (f"alerts.format confluent: the alert schema for "
                f"{names.alerts}-value: registry ") in err, err
        assert "HTTP 409: Schema being registered is incompatible" in err, err
    finally:
        registry.close()
