"""The operations endpoint under abuse: slow clients and connection bursts
leave /healthz answering; erasure takes only a well-formed id, and says who
asked."""

import re
import resource
import socket
import threading
import time
import urllib.error
import urllib.request

import ewsenv
from test_ops import running, stop


def probe(port, path="/healthz", timeout=1.0):
    """(status or None, seconds): one request on a new connection."""
    start = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=timeout) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except OSError:
        status = None
    return status, time.monotonic() - start


def connect(port, source, timeout=1.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    return s


def slow_clients(port, stop_at, count=200, sources=8):
    """count connections from 127.0.0.2.. each sending a header a byte a
    second, never finishing it, until stop_at (monotonic)."""
    socks = [connect(port, f"127.0.0.{2 + i % sources}") for i in range(count)]
    socks = [s for s in socks if s]
    for s in socks:
        s.setblocking(False)
    line = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 64
    sent = 0
    while time.monotonic() < stop_at and sent < len(line):
        for s in socks:
            try:
                s.send(line[sent:sent + 1])
            except OSError:
                pass
        sent += 1
        time.sleep(min(1.0, max(0.0, stop_at - time.monotonic())))
    for s in socks:
        s.close()


def burst(port, stop_at, count=500, rounds=3):
    """count connections from 127.0.0.20 opened, then all closed, a few
    times."""
    for _ in range(rounds):
        if time.monotonic() >= stop_at:
            return
        socks = [connect(port, "127.0.0.20", 0.5) for _ in range(count)]
        for s in socks:
            if s:
                s.close()
        time.sleep(1)


def test_slow_clients_and_bursts_leave_health_answering(broker, redis, names):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    proc, port = running(names, broker, redis)
    try:
        stop_at = time.monotonic() + 10
        threads = [threading.Thread(target=slow_clients, args=(port, stop_at)),
                   threading.Thread(target=burst, args=(port, stop_at))]
        for t in threads:
            t.start()
        time.sleep(0.5)  # the slow clients are connected
        probes = []
        for _ in range(45):  # every 0.2 s while the abuse lasts
            if time.monotonic() >= stop_at:
                break
            probes.append(probe(port))
            time.sleep(0.2)
        for t in threads:
            t.join(timeout=30)
        bad = [p for p in probes if p[0] != 200 or p[1] >= 1.0]
        assert not bad, f"{len(bad)} of {len(probes)} probes failed: {bad[:5]}"
        assert len(probes) >= 30
        assert probe(port, "/metrics")[0] == 200
    finally:
        code, err = stop(proc)
    assert code == 0, err[-2000:]


def test_erasure_takes_a_clean_id_and_is_logged(broker, redis, names,
                                                tmp_path):
    truth = ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                           ["--campaigns", "1", "--days", "2"])
    user = next(t for t in truth if t["kind"] == "user")["id"]
    proc, port = running(names, broker, redis, {"EWS_HTTP_TOKEN": "s3cret"})

    def call(path, method="GET"):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     method=method)
        req.add_header("Authorization", "Bearer s3cret")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    try:
        ewsenv.wait_for(lambda: call(f"/v1/users/{user}")[0] == 200, 60,
                        "the user")
        for tail in ("%00anything", "%00", "%0a", "%ff", "%c3%28"):
            status, body = call(f"/v1/users/{user}{tail}", "DELETE")
            assert status == 400 and "id" in body, (tail, status, body)
            assert call(f"/v1/users/{user}")[0] == 200, tail
        status, _ = call(f"/v1/users/{user}", "DELETE")
        assert status == 200
        assert call(f"/v1/users/{user}")[0] == 404
    finally:
        code, err = stop(proc)
    assert code == 0, err[-2000:]
    assert re.search(rf"INFO.*erase.*127\.0\.0\.1.*{re.escape(user)}|"
                     rf"INFO.*{re.escape(user)}.*127\.0\.0\.1", err,
                     re.I), err[-2000:]
