"""Operations, hardened: ews-redrive keeps its position on the dead-letter
topic (what it sent that fails again is not sent twice over), and the
tools' --help and argument errors. The help and argument tests need no
broker or Redis."""

import json
import os
import re
import subprocess
import time

import pytest

import ewsenv
from test_redrive import redrive

TOOLS = os.path.join(ewsenv.ROOT, "processor", "tools")


def tool(name):
    return os.path.join(ewsenv.BUILD, name)


def options(source):
    """The long options of a tool's getopt_long() table and the short ones
    of its option string, read from its source."""
    with open(os.path.join(TOOLS, source)) as f:
        text = f.read()
    longs = re.findall(r'\{"([a-z][a-z-]*)",\s*(?:no|required)_argument',
                       text)
    shorts = re.search(r'getopt_long\(argc, argv, ":?([^"]*)"', text).group(1)
    assert longs and shorts, source
    return (["--" + o for o in longs] +
            ["-" + c for c in shorts.replace(":", "")])


HELP = [("ews-inspect", "ews_inspect.c"), ("ews-alerts", "ews_alerts.c"),
        ("ews-redrive", "ews_redrive.c"),
        ("ews-calibrate", "ews_calibrate.c"),
        ("ews-alertmanager", "ews_alertmanager.c")]


@pytest.mark.parametrize("name,source", HELP)
def test_help_names_every_flag_and_exit_code(name, source):
    proc = subprocess.run([tool(name), "--help"], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    lines = text.splitlines()
    for flag in options(source):
        # each flag starts a line of the list: the flag, then its meaning
        assert any(re.match(rf"\s+(?:-\w, )?{re.escape(flag)}\b.*\S\s+\S",
                            line) or
                   re.match(rf"\s+{re.escape(flag)}, --[a-z-]+\b", line)
                   for line in lines), (name, flag, text)
    flat = " ".join(text.split())
    assert "Exit codes: 0 " in flat, text
    for code in (" 1 ", " 2 bad usage"):
        assert code in flat, (name, code, text)


def test_inspect_help_lists_every_command():
    text = subprocess.run([tool("ews-inspect"), "--help"],
                          capture_output=True, text=True).stdout
    commands = {line.split()[0] for line in text.splitlines()
                if line.startswith("  ") and not line.split()[0][0] == "-"}
    assert {"user", "account", "campaign", "erase", "export",
            "outbox"} <= commands, text
    assert "EWS_REDIS_HOST" in text and "redis.host" in text


@pytest.mark.parametrize("cmd,message", [
    (["ews-alerts", "-b", "localhost:1", "foo"],
     "ews-alerts: unexpected argument 'foo'"),
    (["ews-alerts", "-b", "localhost:1", "--nope"],
     "ews-alerts: unknown option '--nope'"),
    (["ews-alerts", "-b", "localhost:1", "--idle-exit-ms", "x"],
     "ews-alerts: --idle-exit-ms wants a number >= 1, not 'x'"),
    (["ews-alerts"], "ews-alerts: -b ADDR is required"),
    (["ews-redrive", "-b", "localhost:1", "foo"],
     "ews-redrive: unexpected argument 'foo'"),
    (["ews-redrive", "-b", "localhost:1", "-Z"],
     "ews-redrive: unknown option '-Z'"),
    (["ews-redrive", "-b", "localhost:1", "--from-offset"],
     "ews-redrive: missing value for option '--from-offset'"),
    (["ews-redrive", "-b", "localhost:1", "-X", "nonsense"],
     "ews-redrive: -X wants key=value, not 'nonsense'"),
    (["ews-redrive"], "ews-redrive: -b ADDR is required"),
    (["ews-alertmanager"], "ews-alertmanager: -b ADDR is required"),
    (["ews-alertmanager", "-b", "localhost:1", "foo"],
     "ews-alertmanager: unexpected argument 'foo'"),
    (["ews-alertmanager", "-b", "localhost:1", "--resend-interval", "1y"],
     "ews-alertmanager: --resend-interval wants a duration such as 60s, "
     "not '1y'"),
    (["ews-alertmanager", "-b", "localhost:1", "--url"],
     "ews-alertmanager: missing value for option '--url'"),
    (["ews-inspect", "user", "u-1", "foo"],
     "ews-inspect: unexpected argument 'foo'"),
    (["ews-inspect", "export", "foo"],
     "ews-inspect: unexpected argument 'foo'"),
    (["ews-inspect", "users", "u-1"], "ews-inspect: unknown command 'users'"),
    (["ews-inspect", "erase"], "ews-inspect: missing ID after 'erase'"),
    (["ews-inspect", "--nope", "user", "u-1"],
     "ews-inspect: unknown option '--nope'"),
    (["ews-inspect", "export", "--kind", "nobody"],
     "ews-inspect: --kind wants user, account or campaign, not 'nobody'"),
    (["ews-inspect", "outbox", "retry"],
     "ews-inspect: an id or --all after 'retry'"),
    (["ews-inspect", "outbox", "drop", "x", "--all"],
     "ews-inspect: --all or an id, not both: 'x'"),
    (["ews-inspect", "outbox", "resend", "x"],
     "ews-inspect: outbox takes retry or drop, not 'resend'"),
    (["ews-inspect", "user", "u-1", "--all"],
     "ews-inspect: --all is for outbox, not 'user'"),
])
def test_argument_errors_say_what_was_wrong(cmd, message):
    proc = subprocess.run([tool(cmd[0]), *cmd[1:]], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[0] == message, proc.stderr
    assert proc.stdout == ""


def test_inspect_refused_redis_names_the_keys():
    env = dict(os.environ, EWS_REDIS_HOST="127.0.0.1",
               EWS_REDIS_PORT=str(ewsenv.free_port()))
    proc = subprocess.run([tool("ews-inspect"), "user", "u-1"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1, proc.stderr
    for key in ("redis.host", "redis.port", "EWS_REDIS_HOST",
                "EWS_REDIS_PORT"):
        assert key in proc.stderr, proc.stderr


def test_redrive_does_not_double_what_fails_again(broker, redis, names):
    """The cause is still there: every run's records are dead-lettered
    again. Each run reads only what arrived since the last one."""
    now = int(time.time() * 1000)
    json_env = {"EWS_DECODE_USAGE_FORMAT": "json"}
    ewsenv.produce(broker, names.usage,
                   [(b"u-1", b'{"event_id": "x", "user_id"'),
                    (b"u-2", json.dumps({
                        "event_id": "e-2", "user_id": "u-2",
                        "event_type": "login",
                        "occurred_at": now + 3 * 86400000}).encode())])
    err = ewsenv.run_processor_to_end(names, broker, redis,
                                      env_extra=json_env)
    assert "decoded=0 dead_letters=2 " in err, err[-1500:]

    sent = []
    for _ in range(3):
        rc, _, counts, err = redrive(broker, names, "--reason", "bad_json")
        assert rc == 0, err
        err = ewsenv.run_processor_to_end(names, broker, redis,
                                          env_extra=json_env)
        again = re.search(r"decoded=0 dead_letters=(\d+) ", err)
        sent.append((counts["read"], counts["sent"],
                     int(again.group(1)) if again else err[-1500:]))
    # the first run reads both letters; the next ones only the one that
    # came back (not 1, 2, 4 sent)
    # (read, sent, dead-lettered again) by run
    assert sent == [(2, 1, 1), (1, 1, 1), (1, 1, 1)], sent

    # A dry run reads from the group's position and moves nothing.
    for _ in range(2):
        rc, out, counts, err = redrive(broker, names, "--reason", "bad_json",
                                       "--dry-run")
        assert rc == 0, err
        assert counts["read"] == 1 and out.split()[-1] == "u-1", out
    # Another selection has its own group; --from-offset 0 reads it all.
    rc, _, counts, err = redrive(broker, names, "--dry-run")
    assert counts["read"] == 5, err
    rc, _, counts, err = redrive(broker, names, "--reason", "bad_json",
                                 "--from-offset", "0", "--dry-run")
    assert counts == {"read": 5, "sent": 0, "skipped": 1, "failed": 0}, err
    # So does a named group.
    rc, _, counts, err = redrive(broker, names, "--group",
                                 f"{names.dlq}-mine", "--reason",
                                 "future_timestamp")
    assert rc == 0 and counts["sent"] == 1, err
    rc, _, counts, err = redrive(broker, names, "--group",
                                 f"{names.dlq}-mine", "--reason",
                                 "future_timestamp")
    assert rc == 0 and counts["read"] == 0, err
