#!/usr/bin/env python3
"""What a user costs in Redis under two layouts, measured with redis-server
alone: a string key a user with PX (the store's layout), and a field a user
in N hashes kept as listpacks. Random 201-byte values, the size of a packed
user at 100,000 users; used_memory before and after, so the dictionaries'
and the expiries' entries count. Starts its own redis-server on a free
loopback port and stops it.

    tests/bench/user_layout.py [--users 100000] [--value 201]
"""
import argparse
import os
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=100000)
    p.add_argument("--value", type=int, default=201)
    args = p.parse_args()
    port = str(free_port())
    server = subprocess.Popen(
        ["redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--hash-max-listpack-value", "1024"],
        stdout=subprocess.DEVNULL)
    cli = ["redis-cli", "-p", port]
    try:
        for _ in range(50):
            if subprocess.run(cli + ["ping"], capture_output=True).stdout:
                break
            time.sleep(0.1)

        def used():
            info = subprocess.run(cli + ["info", "memory"], capture_output=True,
                                  text=True).stdout
            return int(info.split("used_memory:")[1].split()[0])

        def load(cmds):
            subprocess.run(cli + ["--pipe"], input=b"".join(cmds),
                           capture_output=True, check=True)

        n = args.users
        before = used()
        load(resp("SET", f"u:user-{i:06d}", os.urandom(args.value), "PX",
                  "7776000000") for i in range(n))
        print(f"string key a user, PX: {(used() - before) / n:.1f} bytes a user")
        for buckets in (8192, 4096, 1024):
            subprocess.run(cli + ["flushall"], capture_output=True)
            before = used()
            load(resp("HSET", f"u:{i % buckets}", f"user-{i:06d}",
                      os.urandom(args.value)) for i in range(n))
            enc = subprocess.run(cli + ["object", "encoding", "u:1"],
                                 capture_output=True, text=True).stdout.strip()
            print(f"field in {buckets} hashes ({enc}): "
                  f"{(used() - before) / n:.1f} bytes a user")
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
