#!/usr/bin/env python3
"""Memory per value, type by type, side by side with redis-server.

For each shape (a type, how many keys, how many elements of what size) a
fresh server of each kind is started on a free loopback port, loaded
through pipelined commands, and its used_memory and VmRSS growth are
divided by the number of keys. Prints a Markdown table.

    bench/typemem.py [--binary PATH] [--only WORD[,WORD...]] [--scale F]

--binary  the damselfly binary (default: $CARGO_TARGET_DIR or target,
          release/damselfly)
--only    run only the shapes whose names contain one of these words
--scale   multiply every key count by F (0.1 for a quick check)

Needs redis-server on PATH. Both servers run without persistence, one at
a time, and are stopped at the end of each shape.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, resp, rss


class Conn:
    def __init__(self, port):
        for _ in range(200):
            try:
                self.s = socket.create_connection(("127.0.0.1", port))
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"typemem: nothing answers on port {port}")

    def pipeline(self, commands):
        """Sends the commands and reads their replies (integers, statuses
        or bulk strings: what the shapes' write commands answer); stops
        at an error."""
        self.s.sendall(b"".join(resp(*c) for c in commands))
        want, buf, skip = len(commands), b"", False
        while want:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise SystemExit("typemem: the server closed the connection")
            buf += chunk
            while want and b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                if skip:
                    # A bulk string's body.
                    skip = False
                    want -= 1
                elif line.startswith(b"-"):
                    raise SystemExit(f"typemem: {line.decode()}")
                elif line.startswith(b"$") and line != b"$-1":
                    skip = True
                else:
                    want -= 1

    def info(self, field):
        self.s.sendall(resp(b"INFO", b"memory"))
        buf = b""
        while not buf.endswith(b"\r\n\r\n") and buf.count(b"\r\n") < 3:
            buf += self.s.recv(1 << 16)
        head, _, rest = buf.partition(b"\r\n")
        size = int(head[1:])
        while len(rest) < size + 2:
            rest += self.s.recv(1 << 16)
        for line in rest.decode().split("\r\n"):
            if line.startswith(field + ":"):
                return int(line.split(":")[1])
        raise SystemExit(f"typemem: INFO has no {field}")


def text(prefix, i, size):
    """A string of exactly `size` bytes ending in the number i (never a
    valid integer, so no server stores it as one)."""
    tail = b"%d" % i
    return (prefix + b"x" * size)[: max(0, size - len(tail))] + tail


# name, keys, elements per key when the figure is per element (one big
# key) or 1, a function (key number) -> the commands that build that key
SHAPES = [
    ("string 16 B", 1_000_000, 1, lambda k: [[b"SET", b"s:%d" % k, text(b"v", k, 16)]]),
    ("hash 10 fields x 10 B", 100_000, 1,
     lambda k: [[b"HSET", b"h:%d" % k] + [x for f in range(10) for x in (text(b"f", f, 10), text(b"v", k + f, 10))]]),
    ("hash 1 key, 200k fields", 1, 200_000,
     lambda k: [[b"HSET", b"big"] + [x for f in range(j, j + 1000) for x in (text(b"f", f, 12), text(b"v", f, 12))]
                for j in range(0, 200_000, 1000)]),
    ("list 10 x 10 B", 100_000, 1, lambda k: [[b"RPUSH", b"l:%d" % k] + [text(b"e", k + e, 10) for e in range(10)]]),
    ("list 1 key, 1M x 29 B", 1, 1_000_000,
     lambda k: [[b"RPUSH", b"q"] + [text(b"order:", j + e, 29) for e in range(1000)] for j in range(0, 1_000_000, 1000)]),
    ("set 20 integers", 100_000, 1, lambda k: [[b"SADD", b"i:%d" % k] + [b"%d" % (k + 37 * e) for e in range(20)]]),
    ("set 5 x 10 B", 100_000, 1, lambda k: [[b"SADD", b"t:%d" % k] + [text(b"tag", e, 10) for e in range(5)]]),
    ("set 1 key, 1M x 10 B", 1, 1_000_000,
     lambda k: [[b"SADD", b"members"] + [text(b"m", j + e, 10) for e in range(1000)] for j in range(0, 1_000_000, 1000)]),
    ("zset 10 x 10 B", 100_000, 1,
     lambda k: [[b"ZADD", b"z:%d" % k] + [x for e in range(10) for x in (b"%d" % (k + e), text(b"p", e, 10))]]),
    ("zset 1 key, 1M x 10 B", 1, 1_000_000,
     lambda k: [[b"ZADD", b"rank"] + [x for e in range(j, j + 1000) for x in (b"%d" % e, text(b"u", e, 10))]
                for j in range(0, 1_000_000, 1000)]),
    ("stream 1 key, 200k x 2 fields", 1, 200_000,
     lambda k: [[b"XADD", b"events", b"*", b"sku", text(b"s", j, 8), b"qty", b"%d" % (j % 9)] for j in range(200_000)]),
]


def measure(kind, binary, keys, per, build):
    port = free_port()
    work = tempfile.mkdtemp(prefix="typemem-")
    if kind == "redis":
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", work]
    else:
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", work, "--loglevel", "warn"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        c = Conn(port)
        # The baseline once start-up allocations are done (a server may
        # still be setting up a few MB when it first answers).
        used0 = c.info("used_memory")
        for _ in range(25):
            time.sleep(0.2)
            used0, before = c.info("used_memory"), used0
            if used0 == before:
                break
        rss0 = rss(proc.pid)
        batch = []
        for k in range(keys):
            batch.extend(build(k))
            if len(batch) >= 200:
                c.pipeline(batch)
                batch = []
        if batch:
            c.pipeline(batch)
        time.sleep(0.3)
        n = keys * per
        return (c.info("used_memory") - used0) / n, (rss(proc.pid) - rss0) / n
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
    ap.add_argument("--binary", default=os.path.join(target, "release", "damselfly"))
    ap.add_argument("--only", default="")
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    if not os.access(a.binary, os.X_OK):
        sys.exit(f"typemem: {a.binary} is not an executable (cargo build --release -p damselfly)")
    only = [s for s in a.only.split(",") if s]
    print("| shape | per | redis-server used / RSS B | damselfly used / RSS B | used ratio |")
    print("|---|---|---:|---:|---:|")
    for name, keys, per, build in SHAPES:
        if only and not any(o in name for o in only):
            continue
        keys = max(1, int(keys * a.scale)) if keys > 1 else 1
        r_used, r_rss = measure("redis", None, keys, per, build)
        d_used, d_rss = measure("damselfly", a.binary, keys, per, build)
        unit = "key" if per == 1 else "element"
        print(f"| {name} | {unit} | {r_used:,.0f} / {r_rss:,.0f} | {d_used:,.0f} / {d_rss:,.0f} | {d_used / r_used:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
