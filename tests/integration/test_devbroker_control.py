"""ews-devbroker's control channel: each command line is answered `ok` or
`error <why>`, and what it asks reaches the clients of the broker."""

import os
import socket
import subprocess
import time

import pytest

import ewsenv


@pytest.fixture
def ctl_broker():
    b = ewsenv.Broker([("ctl", 1)], brokers=2, control=True)
    yield b
    b.close()


def produce_one(broker, value, timeout=10):
    """One message produced with no retries; its delivery error name or
    None."""
    from confluent_kafka import Producer
    got = []
    producer = Producer({"bootstrap.servers": broker.bootstrap,
                         "retries": 0, "message.timeout.ms": timeout * 1000,
                         "log_level": 0})
    producer.produce("ctl", key=b"k", value=value, partition=0,
                     on_delivery=lambda err, msg: got.append(err))
    producer.flush(timeout + 5)
    assert len(got) == 1, got
    return got[0].name() if got[0] else None


def broker_ports(broker):
    return [int(a.rsplit(":", 1)[1]) for a in broker.bootstrap.split(",")]


def connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def test_each_command_is_answered(ctl_broker):
    ok = ["ping", "errors Produce 1 NOT_LEADER_OR_FOLLOWER",
          "errors offsetcommit 2 not_coordinator", "errors 12 1 -195",
          "broker-errors 2 Heartbeat 1 NOT_COORDINATOR 50", "clear Produce",
          "clear OffsetCommit", "clear Heartbeat", "rtt all 0", "down 2",
          "up 2", "leader ctl 0 1", "coordinator group g 1"]
    for command in ok:
        assert ctl_broker.control(command) == "ok", command
    errors = {
        "bogus": "error unknown command 'bogus'",
        "ping twice": "error usage: ping",
        "errors Nope 1 NOT_COORDINATOR": "error unknown API 'Nope'",
        "errors Produce 0 NOT_COORDINATOR": "error COUNT takes 1 to",
        "errors Produce 1 NO_SUCH_ERROR": "error unknown error 'NO_SUCH_ERROR'",
        "errors Produce 1": "error usage: errors API COUNT ERROR",
        "down 3": "error no broker '3' (1 to 2, or all)",
        "broker-errors 0 Fetch 1 _TRANSPORT": "error no broker '0'",
        "rtt 1 -5": "error MS takes 0 to",
        "coordinator queue k 1": "error coordinator of 'group' or",
    }
    for command, answer in errors.items():
        assert ctl_broker.control(command).startswith(answer), command
    # a fresh connection, several lines at once: answers in order
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(ctl_broker.control_path)
        s.sendall(b"ping\n\nbogus\nping\n")
        s.shutdown(socket.SHUT_WR)
        got = s.makefile().read().splitlines()
    assert got[0] == "ok" and got[1].startswith("error unknown command") \
        and got[2] == "ok" and len(got) == 3, got


def test_pushed_errors_reach_the_clients(ctl_broker):
    assert produce_one(ctl_broker, b"before") is None
    # cluster-wide: the next Produce request fails, the one after does not
    assert ctl_broker.control("errors Produce 1 TOPIC_AUTHORIZATION_FAILED") \
        == "ok"
    assert produce_one(ctl_broker, b"refused") == "TOPIC_AUTHORIZATION_FAILED"
    assert produce_one(ctl_broker, b"after") is None
    # on the partition's leader only
    assert ctl_broker.control("leader ctl 0 2") == "ok"
    assert ctl_broker.control("broker-errors 2 Produce 1 INVALID_RECORD") \
        == "ok"
    assert produce_one(ctl_broker, b"refused") == "INVALID_RECORD"
    assert produce_one(ctl_broker, b"again") is None
    values = [r["value"] for r in ewsenv.consume_records(ctl_broker, "ctl")]
    assert values == [b"before", b"after", b"again"]


def test_a_broker_goes_down_and_up(ctl_broker):
    first, second = broker_ports(ctl_broker)
    assert connects(first) and connects(second)
    assert ctl_broker.control("down 1") == "ok"
    assert not connects(first) and connects(second)
    assert ctl_broker.control("up 1") == "ok"
    assert connects(first)
    assert ctl_broker.control("down all") == "ok"
    assert not connects(first) and not connects(second)
    assert ctl_broker.control("up all") == "ok"
    assert produce_one(ctl_broker, b"up again") is None


def test_round_trip_time_delays_every_answer(ctl_broker):
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": ctl_broker.bootstrap.split(
        ",")[0]})

    def metadata_seconds():
        start = time.monotonic()
        admin.list_topics("ctl", timeout=10)
        return time.monotonic() - start

    metadata_seconds()  # connected
    assert metadata_seconds() < 0.4
    assert ctl_broker.control("rtt all 600") == "ok"
    assert metadata_seconds() >= 0.55
    assert ctl_broker.control("rtt all 0") == "ok"
    assert metadata_seconds() < 0.4


def test_control_path_that_is_not_a_socket_is_refused(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("keep me")
    proc = subprocess.run([os.path.join(ewsenv.BUILD, "ews-devbroker"),
                           "--control", str(plain)], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 1
    assert f"cannot listen on {plain}" in proc.stderr
    assert plain.read_text() == "keep me"
