"""An operator's first hour: the README's manual path prints alerts in the
default time.mode (auto), and a start that waits says why on /readyz."""

import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import ewsenv

TOPICS = [("product-usage", 4), ("campaign-events", 2), ("ews-alerts", 2),
          ("ews-dlq", 1)]

# The alert lines of the log: only published alerts say FIRING/RESOLVED.
ALERT_LINE = re.compile(r"alert: [A-Z_]+ (FIRING|RESOLVED) \S+: ")


def user_env(**extra):
    """The environment of a user's shell: no EWS_ keys of the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EWS_")}
    env.update(extra)
    return env


def get(port, path):
    """(status, body) of GET path; (None, error) when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


def total(metrics, name):
    return sum(v for k, v in metrics.items()
               if k == name or k.startswith(name + "{"))


def test_readme_manual_path_prints_alerts(tmp_path):
    """README "By hand": the processor with config/ews.yaml (time.mode
    auto), ews-gen with its defaults, ews-alerts: alerts are printed, the
    log's alert lines and ews_alerts_total count the published ones, the
    held-back ones are counted apart and said why."""
    broker = ewsenv.Broker(TOPICS)
    redis = ewsenv.Redis()
    http_port = ewsenv.free_port()
    env = user_env(EWS_REDIS_PORT=str(redis.port),
                   EWS_HTTP_PORT=str(http_port))
    bins, root = ewsenv.BUILD, ewsenv.ROOT
    schemas = os.path.join(root, "schemas")
    log = open(tmp_path / "processor.log", "w+")
    proc = alerts = None
    try:
        proc = subprocess.Popen(
            [os.path.join(bins, "ews-processor"), "-c",
             os.path.join(root, "config", "ews.yaml"),
             "-X", f"bootstrap.servers={broker.bootstrap}",
             "-X", "session.timeout.ms=6000"],
            env=env, cwd=tmp_path, stderr=log, text=True)
        gen = subprocess.run(
            [os.path.join(bins, "ews-gen"), "-b", broker.bootstrap,
             "--schemas", schemas],
            env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=120)
        assert gen.returncode == 0, gen.stderr
        events = int(re.search(r"events=(\d+)", gen.stderr).group(1))
        alerts = subprocess.Popen(
            [os.path.join(bins, "ews-alerts"), "-b", broker.bootstrap,
             "--schemas", schemas],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)

        # every event consumed and every published alert delivered
        def settled():
            m = ewsenv.scrape(http_port)
            return (total(m, "ews_events_consumed_total") >= events and
                    total(m, "ews_outbox_records") == 0 and
                    total(m, "ews_alerts_total") > 0)
        try:
            ewsenv.wait_for(settled, 120, "the processor to publish alerts")
        except TimeoutError:
            m = ewsenv.scrape(http_port)
            raise AssertionError(
                "no alert published: consumed "
                f"{total(m, 'ews_events_consumed_total')} of {events}, "
                f"ews_alerts_total {total(m, 'ews_alerts_total')}, "
                "ews_alerts_suppressed_total "
                f"{total(m, 'ews_alerts_suppressed_total')}")
        time.sleep(2)
        metrics = ewsenv.scrape(http_port)
        published = total(metrics, "ews_alerts_total")
        held = total(metrics, "ews_alerts_suppressed_total")
    finally:
        ewsenv.stop(proc)
        ewsenv.stop(alerts, timeout=5)
        broker.close()
        redis.close()
    printed = [line for line in alerts.stdout.read().splitlines() if line]
    log.seek(0)
    text = log.read()
    log.close()
    assert printed, "ews-alerts printed nothing"
    # ews_alerts_total counts what was written to be published: the
    # alerts printed (the outbox is empty) and the log's alert lines
    assert len(printed) == published, (len(printed), published)
    assert len(ALERT_LINE.findall(text)) == published
    # three simulated weeks ending at the last midnight: the first two and
    # more are older than time.max.alert.age, held back and said so, at
    # most once a rule a minute
    assert held > 0
    lines = [line for line in text.splitlines() if "held back" in line]
    assert lines, text[-3000:]
    assert "time.max.alert.age" in lines[0]
    rules = [re.search(r"alert: ([A-Z_]+) ", line).group(1) for line in lines]
    assert len(rules) == len(set(rules)), lines


def test_readyz_says_waiting_for_brokers(tmp_path, redis):
    """A broker down at start: /healthz answers at once and /readyz says
    what the start waits for, as the log does."""
    closed = ewsenv.free_port()  # nothing listens there
    http_port = ewsenv.free_port()
    env = user_env(EWS_REDIS_PORT=str(redis.port),
                   EWS_HTTP_PORT=str(http_port),
                   EWS_DECODE_SCHEMA_DIR=ewsenv.SCHEMAS)
    proc = subprocess.Popen(
        [os.path.join(ewsenv.BUILD, "ews-processor"), "-c",
         os.path.join(ewsenv.ROOT, "config", "ews.yaml"),
         "-X", f"bootstrap.servers=127.0.0.1:{closed}"],
        env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        ewsenv.wait_for(lambda: get(http_port, "/healthz")[0] == 200, 5,
                        "/healthz")
        status, body = get(http_port, "/readyz")
        assert (status, body) == (503, "waiting for brokers\n")
        time.sleep(3)  # still waiting, still saying so
        assert get(http_port, "/readyz") == (503, "waiting for brokers\n")
        assert get(http_port, "/healthz")[0] == 200
    finally:
        ewsenv.stop(proc)
    err = proc.stderr.read()
    assert "not ready: waiting for brokers" in err, err[-2000:]
