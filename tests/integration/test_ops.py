"""What operators run EWS with: HTTP endpoints, Prometheus, readiness through
a Redis outage, a clean SIGTERM, configuration errors."""

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import redis as redis_py

import ewsenv
from test_state import BACKLOG, watermarks_settled


def http(port, path, method="GET", token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None, ""


def running(names, broker, redis, extra=None, args=()):
    port = ewsenv.free_port()
    env = {"EWS_HTTP_PORT": str(port)}
    env.update(extra or {})
    proc = ewsenv.processor(names, broker, redis, args, env_extra=env,
                            stderr=subprocess.PIPE)
    ewsenv.wait_for(lambda: http(port, "/healthz")[0] == 200, 30, "/healthz")
    return proc, port


def stop(proc, timeout=30):
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def applied(client, names):
    return sum(int(client.hget(k, "offset") or 0)
               for k in client.scan_iter(f"{names.prefix}p:*"))


def test_every_endpoint_over_http(broker, redis, names, tmp_path):
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                           ["--campaigns", "2", "--days", "5"])
    events = next(t for t in truth if t["kind"] == "summary")["events"]
    user = next(t for t in truth if t["kind"] == "user")
    client = redis_py.Redis(port=redis.port)
    proc, port = running(names, broker, redis, {"EWS_HTTP_TOKEN": "s3cret"})
    try:
        ewsenv.wait_for(lambda: applied(client, names) == events, 60,
                        "all events")
        ewsenv.wait_for(lambda: http(port, "/readyz")[0] == 200, 30, "ready")
        status, text = http(port, "/metrics")
        assert status == 200
        check = subprocess.run(["promtool", "check", "metrics"], input=text,
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert (f'ews_events_consumed_total{{topic="{names.usage}"}}' in text)
        assert "ews_redis_commit_duration_seconds_bucket" in text
        assert "ews_ready 1" in text

        assert http(port, f"/v1/users/{user['id']}")[0] == 401
        assert http(port, f"/v1/users/{user['id']}", token="wrong")[0] == 401
        status, body = http(port, f"/v1/users/{user['id']}", token="s3cret")
        assert status == 200
        state = json.loads(body)
        assert state == ewsenv.inspect(names, broker, redis, "user",
                                       user["id"])
        status, body = http(port, f"/v1/accounts/{user['account']}",
                            token="s3cret")
        assert status == 200 and json.loads(body)["users"] >= 1
        status, body = http(port, f"/v1/campaigns/{user['campaign']}",
                            token="s3cret")
        assert status == 200 and json.loads(body)["signups"] == 40
        assert http(port, "/v1/users/nobody", token="s3cret")[0] == 404
        assert http(port, "/nothing")[0] == 404

        # erasure: gone from the store, and a new event starts afresh
        status, body = http(port, f"/v1/users/{user['id']}", "DELETE",
                            token="s3cret")
        assert status == 200 and json.loads(body)["erased"] is True
        assert http(port, f"/v1/users/{user['id']}", token="s3cret")[0] == 404
        assert ewsenv.inspect(names, broker, redis, "user", user["id"]) is None
        sch = ewsenv.schema("usage_event.avsc")
        later = {"event_id": "after-erasure", "user_id": user["id"],
                 "account_id": None, "event_type": "login", "product": None,
                 "value": None, "campaign_id": None,
                 "occurred_at": ewsenv.utc(user["last_event_ms"] + 1000),
                 "attributes": {}}
        ewsenv.produce(broker, names.usage,
                       [(user["id"].encode(), ewsenv.avro_encode(sch, later))])
        ewsenv.wait_for(lambda: (ewsenv.inspect(names, broker, redis, "user",
                                                user["id"]) or {}).get(
                                                    "events") == 1,
                        30, "the user's new event")
    finally:
        code, err = stop(proc)
    assert code == 0, err[-2000:]


def test_prometheus_scrapes_ews(broker, redis, names, tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                   ["--campaigns", "1", "--days", "3"])
    proc, port = running(names, broker, redis)
    prom_port = ewsenv.free_port()
    with open(tmp_path / "prometheus.yml", "w") as f:
        f.write("global: {scrape_interval: 1s}\n"
                "scrape_configs:\n"
                f"  - job_name: ews\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{port}']\n")
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path}/prometheus.yml",
         f"--storage.tsdb.path={tmp_path}/data",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        query = ("/api/v1/query?query=sum(ews_events_consumed_total)")

        def consumed():
            status, body = http(prom_port, query)
            if status != 200:
                return 0
            result = json.loads(body)["data"]["result"]
            return float(result[0]["value"][1]) if result else 0

        ewsenv.wait_for(lambda: consumed() > 0, 60, "Prometheus to scrape")
    finally:
        ewsenv.stop(prom)
        stop(proc)


def test_redis_outage_pauses_and_changes_nothing(broker, names, tmp_path):
    """Redis stops mid-run and comes back (with its data: AOF); readiness
    goes false and back; the end state equals a run without the outage."""
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                           ["--seed", "4", "--campaigns", "2", "--days", "6"])
    events = next(t for t in truth if t["kind"] == "summary")["events"]
    users = [t["id"] for t in truth if t["kind"] == "user"]

    reference = ewsenv.Redis()
    try:
        ewsenv.run_processor_to_end(names, broker, reference)
        want = {u: ewsenv.inspect(names, broker, reference, "user", u)
                for u in users}
    finally:
        reference.close()

    redis = ewsenv.Redis(extra=["--appendonly", "yes",
                                "--appendfsync", "always"])
    client = redis_py.Redis(port=redis.port)
    try:
        proc, port = running(names, broker, redis,
                             {"EWS_KAFKA_BATCH_MAX": "20", **BACKLOG})
        ewsenv.wait_for(lambda: applied(client, names) > events // 4, 60,
                        "some progress")
        redis.proc.send_signal(signal.SIGTERM)
        redis.proc.wait()
        ewsenv.wait_for(lambda: http(port, "/readyz")[0] == 503, 30,
                        "not ready")
        time.sleep(2)
        assert proc.poll() is None, "the processor must wait, not exit"
        redis.start()
        ewsenv.wait_for(lambda: http(port, "/readyz")[0] == 200, 60,
                        "ready again")
        ewsenv.wait_for(lambda: applied(client, names) == events, 60,
                        "the rest")
        ewsenv.wait_for(lambda: watermarks_settled(client, names), 30,
                        "the watermarks at their end")
        ewsenv.wait_for(lambda: ewsenv.scrape(port).get(
            "ews_redis_reconnects_total", 0) >= 1, 10, "a reconnect counted")
        code, err = stop(proc)
        assert code == 0, err[-2000:]
        got = {u: ewsenv.inspect(names, broker, redis, "user", u)
               for u in users}
        assert got == want
    finally:
        redis.close()


def test_sigterm_is_clean_and_loses_nothing(broker, redis, names, tmp_path):
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                           ["--seed", "9", "--campaigns", "2", "--days", "6"])
    events = next(t for t in truth if t["kind"] == "summary")["events"]
    client = redis_py.Redis(port=redis.port)
    proc, _ = running(names, broker, redis, {"EWS_KAFKA_BATCH_MAX": "20"})
    ewsenv.wait_for(lambda: applied(client, names) > events // 3, 60,
                    "some progress")
    started = time.monotonic()
    code, err = stop(proc)
    took = time.monotonic() - started
    assert code == 0, err[-2000:]
    assert took < 15, f"stop took {took:.1f}s"
    assert "stopping" in err and "revoked" in err
    ewsenv.run_processor_to_end(names, broker, redis)
    assert applied(client, names) == events
    usage_events = next(t for t in truth
                        if t["kind"] == "summary")["usage_events"]
    counted = sum(ewsenv.inspect(names, broker, redis, "user",
                                 t["id"])["events"]
                  for t in truth if t["kind"] == "user")
    assert counted == usage_events


BAD_CONFIGS = [
    ("redis:\n  port: 70000\n", 2, "redis.port"),
    ("redis:\n  hots: localhost\n", 2, "redis.hots"),
    ("kafka:\n  batch.max: lots\n", 2, "kafka.batch.max"),
    ("time:\n  allowed.lateness: 3 weeks\n", 2, "time.allowed.lateness"),
    ("scoring:\n  weights:\n    login: [1]\n", 3, "scoring.weights.login"),
    ("scoring:\n  fit:\n    - {attribute: x, points: 1}\n", 3,
     "scoring.fit[0]"),
    ("log:\n  level: chatty\n", 2, "log.level"),
    ("decode:\n  usage.format: xml\n", 2, "decode.usage.format"),
    ("redis: [1]\n", 1, "redis"),
    ("http:\n  port: -1\n", 2, "http.port"),
]


def test_bad_configuration_names_file_line_and_key(tmp_path):
    for i, (text, line, key) in enumerate(BAD_CONFIGS):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        proc = subprocess.run([os.path.join(ewsenv.BUILD, "ews-processor"),
                               "-c", str(path)], capture_output=True,
                              text=True, timeout=10)
        assert proc.returncode == 2, (text, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        where = f"{path}:{line}: {key}:" if line else f"{path}: {key}:"
        assert lines[0].startswith(f"ews-processor: {where}"), (lines[0],
                                                                 where)


def test_check_config_works_from_any_directory(tmp_path):
    """Paths in the file are relative to the file, not to the current
    directory; and schemas that are not there are found by the check."""
    config = os.path.join(ewsenv.ROOT, "config", "ews.yaml")
    base = {k: v for k, v in os.environ.items()
            if k != "EWS_DECODE_SCHEMA_DIR"}
    proc = subprocess.run([os.path.join(ewsenv.BUILD, "ews-processor"), "-c",
                           config, "--check-config"], capture_output=True,
                          text=True, timeout=10, cwd=tmp_path, env=base)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines()
                if line.startswith("decode.schema.dir:"))
    schema_dir = line.split(":", 1)[1].strip().strip('"')
    assert os.path.isabs(schema_dir), line
    assert os.path.exists(os.path.join(schema_dir, "usage_event.avsc"))

    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "ews.yaml"
    bad.write_text("decode:\n  schema.dir: empty\n")
    proc = subprocess.run([os.path.join(ewsenv.BUILD, "ews-processor"), "-c",
                           str(bad), "--check-config"], capture_output=True,
                          text=True, timeout=10, cwd="/", env=base)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"ews-processor: {bad}: decode.schema.dir: ")
    assert str(empty / "usage_event.avsc") in lines[0]


# What a start would refuse, --check-config refuses too: (file, env, args,
# the start of the line after "ews-processor: ").
REFUSED = [
    ("kafka:\n  bootstrap.servers: ''\n", {}, [],
     "{path}: kafka.bootstrap.servers: must not be empty"),
    ("", {"EWS_KAFKA_BOOTSTRAP_SERVERS": ""}, [],
     "{path}: kafka.bootstrap.servers: must not be empty"),
    ("topics:\n  campaign: ''\n", {}, [],
     "{path}: topics.campaign: must not be empty"),
    ("topics:\n  alerts: x\n  usage: x\n", {}, [],
     "{path}: topics.usage: must differ from topics.alerts"),
    ("topics:\n  dlq: x\n  campaign: x\n", {}, [],
     "{path}: topics.campaign: must differ from topics.dlq"),
    ("redis:\n  host: a\n  port: 1\n  host: b\n", {}, [],
     "{path}:4: redis.host: duplicate key (first at line 2)"),
    ("", {"EWS_REDIS_HOSTNAME": "h"}, [],
     "environment: EWS_REDIS_HOSTNAME: names no configuration key"),
    ("", {"EWS_SCORING_FIT": "x"}, [],
     "EWS_SCORING_FIT: scoring.fit: cannot be set from the environment"),
    ("", {}, ["-X", "no.such.property=1"],
     "-X: no.such.property: No such configuration property"),
    ("", {}, ["-X", "session.timeout.ms=soon"],
     "-X: session.timeout.ms: Invalid value"),
    ("kafka:\n  producer:\n    acks: some\n", {}, [],
     "{path}:3: kafka.producer.acks: Invalid value"),
    ("", {"EWS_KAFKA_CONSUMER_NO_SUCH": "1"}, [],
     "EWS_KAFKA_CONSUMER_NO_SUCH: kafka.consumer.no.such: No such"),
]


def test_check_config_refuses_what_a_start_would(tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("EWS_")
            or k == "EWS_BUILD"}  # EWS_BUILD is the harness', not a key
    base["EWS_DECODE_SCHEMA_DIR"] = ewsenv.SCHEMAS
    for i, (text, env, args, want) in enumerate(REFUSED):
        path = tmp_path / f"refused{i}.yaml"
        path.write_text(text)
        for check in (["--check-config"], []):
            # a start refuses as the check does, before connecting (there
            # is no broker here: it would wait for it)
            proc = subprocess.run([os.path.join(ewsenv.BUILD, "ews-processor"),
                                   "-c", str(path), *args, *check],
                                  capture_output=True, text=True, timeout=10,
                                  env={**base, **env})
            assert proc.returncode == 2, (i, check, proc.stderr)
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1, (i, proc.stderr)
            assert lines[0].startswith(
                "ews-processor: " + want.format(path=path)), (i, lines[0])
    # map keys from the environment are keys
    proc = subprocess.run([os.path.join(ewsenv.BUILD, "ews-processor"),
                           "--check-config"], capture_output=True, text=True,
                          timeout=10, env={**base,
                                           "EWS_SCORING_WEIGHTS_LOGIN": "3"})
    assert proc.returncode == 0, proc.stderr
    assert "scoring.weights.login: 3\n" in proc.stdout


def test_no_client_warns_of_the_other_clients_properties(broker, redis, names,
                                                         tmp_path):
    """-X consumer properties (ewsenv.FAST_CONSUMER) go to the consumer only:
    the producer logged a CONFWARN for each."""
    ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                   ["--campaigns", "1", "--users-per-campaign", "2",
                    "--days", "1"])
    err = ewsenv.run_processor_to_end(names, broker, redis,
                                      ["-X", "linger.ms=10"])
    assert "CONFWARN" not in err, err[-4000:]


def test_sighup_reloads_scoring_and_keeps_state(broker, redis, names,
                                                tmp_path):
    config = tmp_path / "ews.yaml"
    base = open(os.path.join(ewsenv.ROOT, "config", "ews.yaml")).read()
    config.write_text(base)
    t0 = 1767225600000

    def login(i):
        return ("u-h", json.dumps({"event_id": f"h-{i}", "user_id": "u-h",
                                   "event_type": "login",
                                   "occurred_at": t0}).encode())

    client = redis_py.Redis(port=redis.port)
    proc, _ = running(names, broker, redis,
                      {"EWS_DECODE_USAGE_FORMAT": "json"},
                      ["-c", str(config)])
    try:
        ewsenv.produce(broker, names.usage, [login(1)])
        ewsenv.wait_for(lambda: applied(client, names) == 1, 30, "event 1")
        config.write_text(base.replace("    login: 1\n", "    login: 100\n"))
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)  # the main loop takes it between batches
        ewsenv.produce(broker, names.usage, [login(2)])
        ewsenv.wait_for(lambda: applied(client, names) == 2, 30, "event 2")
        state = ewsenv.inspect(names, broker, redis, "user", "u-h")
        assert state["events"] == 2
        assert state["engagement"]["score"] == 101  # same time: 1 + 100
        # the half-life is the model's identity: no reload changes it
        config.write_text(base.replace("half.life: 7d", "half.life: 3d"))
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
    finally:
        code, err = stop(proc)
    assert code == 0
    assert "reloaded the scoring and rule sections" in err
    assert "reload refused: scoring.half.life changed" in err


def test_inspect_erases_a_user(broker, redis, names, tmp_path):
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                           ["--campaigns", "1", "--users-per-campaign", "3",
                            "--days", "2"])
    ewsenv.run_processor_to_end(names, broker, redis)
    first = next(t for t in truth if t["kind"] == "user")
    user = first["id"]
    assert ewsenv.inspect(names, broker, redis, "user", user) is not None
    account = ewsenv.inspect(names, broker, redis, "account", first["account"])
    client = redis_py.Redis(port=redis.port, decode_responses=True)
    segments = list(client.scan_iter(f"{names.prefix}sg*"))
    assert any(client.zscore(k, user) is not None for k in segments)
    erased = ewsenv.inspect(names, broker, redis, "erase", user)
    assert erased == {"user_id": user, "erased": True}
    assert ewsenv.inspect(names, broker, redis, "user", user) is None
    # out of its segment too
    assert all(client.zscore(k, user) is None for k in segments)
    # the account keeps the score it summed, without the user
    after = ewsenv.inspect(names, broker, redis, "account", first["account"])
    assert after["engagement"]["as_of"] == account["engagement"]["as_of"]
    assert abs(after["engagement"]["score"] -
               account["engagement"]["score"]) <= \
        1e-9 * abs(account["engagement"]["score"])
    assert after["users"] == account["users"] - 1


def test_redis_auth(broker, names, tmp_path):
    ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                   ["--campaigns", "1", "--users-per-campaign", "2",
                    "--days", "1"])
    locked = ewsenv.Redis(extra=["--requirepass", "pw-1"])
    try:
        locked.cli_args = ["-a", "pw-1", "--no-auth-warning"]
        err = ewsenv.run_processor_to_end(
            names, broker, locked, env_extra={"EWS_REDIS_PASSWORD": "pw-1"})
        assert "commits=" in err and "store_errors=0" in err, err[-1500:]
        proc = ewsenv.processor(names, broker, locked,
                                env_extra={"EWS_REDIS_PASSWORD": "wrong"},
                                stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert "redis AUTH" in err, err[-1500:]
    finally:
        locked.close()
