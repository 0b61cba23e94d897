#!/usr/bin/env python3
"""RDB interoperability of JSON keys with the real RedisJSON module.

Damselfly writes JSON documents as RedisJSON's module type `ReJSON-RL`
(encoding version 3, the document as one JSON text). This script checks
that against redis-server 7.0 with the RedisJSON module loaded:

  scripts/redisjson-rdb.py check
      both directions, live: a dump.rdb saved by damselfly loads into
      redis-server+RedisJSON with the same documents, expiries and
      databases, and a dump.rdb saved by redis-server+RedisJSON loads into
      damselfly the same way. Exit 0 when both hold, 1 when one does not,
      2 when a tool is missing (the module above all: nothing is checked
      then, and the script says so).

  scripts/redisjson-rdb.py fixture [dir]
      regenerates the fixture the CI test loads without the module
      (tests/e2e/rdb_interop.rs): redis-server+RedisJSON writes the data
      set below to <dir>/dump.rdb (default tests/data/redisjson) and its
      own view of every key to <dir>/expected.tsv (database, key, PEXPIRETIME,
      JSON.GET of the root), one line each.

Environment: REDISJSON_SO (a librejson.so; default bench/redisjson-build.sh's
output, target/redisjson/RedisJSON/target/release/librejson.so),
DAMSELFLY_BIN (default target/release/damselfly, else target/debug/damselfly).
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = os.environ.get("REDISJSON_SO", os.path.join(ROOT, "target/redisjson/RedisJSON/target/release/librejson.so"))
MISSING = 2

# (database, key, JSON text, absolute expiry in ms or None)
BIG = "[" + ",".join('{"id":%d,"name":"item-%d","tags":["a","b"],"price":%d.5}' % (i, i, i) for i in range(100)) + "]"
DOCS = [
    (0, "doc:object", '{"name":"damselfly","nested":{"a":{"b":"\\u00fc \\u2603 \\"quoted\\" \\\\ \\n"}},"empty":{},"ea":[],"t":true,"f":false,"n":null}', None),
    (0, "doc:numbers", "[0,-1,42,9007199254740993,-9223372036854775808,9223372036854775807,3.25,-0.5,1e300,1.5e-7,100.0]", None),
    (0, "doc:string", '"just a string"', None),
    (0, "doc:int", "12345", None),
    (0, "doc:float", "2.5", None),
    (0, "doc:true", "true", None),
    (0, "doc:null", "null", None),
    (0, "doc:big", BIG, None),
    (0, "doc:ttl", '{"expires":"later"}', 4102444800123),
    (3, "doc:in-db-3", '{"db":3,"list":[1,[2,[3,[4]]]]}', None),
]
# A plain string beside them: the file mixes module values and Redis types.
PLAIN = (0, "plain", "not json")


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.s.makefile("rb")

    def call(self, *args):
        self.s.sendall(resp(*args))
        return self.reply()

    def reply(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b":"):
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise RuntimeError(f"unexpected reply {line!r}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A server on a free port in `workdir`, loading `dump.rdb` there if any."""

    def __init__(self, kind, workdir):
        self.port = free_port()
        if kind == "redis":
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--dir", workdir, "--loadmodule", MODULE, "--daemonize", "no", "--loglevel", "warning"]
        else:
            cmd = [damselfly_bin(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir,
                   "--loglevel", "warn"]
        self.log = open(os.path.join(workdir, f"{kind}.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.conn = Conn(self.port)
                if self.conn.call("PING") == "PONG":
                    break
            except (OSError, RuntimeError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start: {open(self.log.name).read()[-2000:]}")
            time.sleep(0.05)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def damselfly_bin():
    b = os.environ.get("DAMSELFLY_BIN")
    if b:
        return b
    for p in ("target/release/damselfly", "target/debug/damselfly"):
        if os.path.exists(os.path.join(ROOT, p)):
            return os.path.join(ROOT, p)
    return "damselfly"


def write_data(c):
    for db, key, text, at in DOCS:
        c.call("SELECT", db)
        c.call("JSON.SET", key, "$", text)
        if at:
            c.call("PEXPIREAT", key, at)
    c.call("SELECT", PLAIN[0])
    c.call("SET", PLAIN[1], PLAIN[2])


def view(c):
    """Every data-set key as this server shows it: (db, key) -> (type,
    PEXPIRETIME, JSON.GET of the root or GET)."""
    out = {}
    for db, key, _, _ in DOCS + [PLAIN + (None,)]:
        c.call("SELECT", db)
        kind = c.call("TYPE", key)
        value = c.call("GET", key) if kind == "string" else c.call("JSON.GET", key)
        out[(db, key)] = (kind, c.call("PEXPIRETIME", key), value)
    return out


def save(kind, workdir):
    """A server of `kind` writes the data set to workdir/dump.rdb; returns
    its view of the data."""
    s = Proc(kind, workdir)
    try:
        write_data(s.conn)
        want = view(s.conn)
        assert s.conn.call("SAVE") == "OK"
    finally:
        s.stop()
    return want


def load(kind, workdir):
    s = Proc(kind, workdir)
    try:
        # damselfly answers -LOADING while it reads the file.
        deadline = time.monotonic() + 60
        while True:
            try:
                return view(s.conn)
            except RuntimeError as e:
                if not str(e).startswith("LOADING") or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        s.stop()


def compare(what, want, got):
    bad = [(k, want[k], got.get(k)) for k in want if got.get(k) != want[k]]
    for k, w, g in bad:
        print(f"  {what}: db {k[0]} key {k[1]!r}: written as {w!r}, loaded as {g!r}")
    print(f"{what}: {'OK' if not bad else 'MISMATCH'} ({len(want) - len(bad)}/{len(want)} keys the same)")
    return not bad


def module_missing():
    if not os.path.exists(MODULE):
        print(f"redisjson-rdb: NOT CHECKED: the RedisJSON module is not available (no {MODULE}); "
              "build it with bench/redisjson-build.sh or set REDISJSON_SO", file=sys.stderr)
        return True
    if not shutil.which("redis-server"):
        print("redisjson-rdb: NOT CHECKED: redis-server is not on PATH", file=sys.stderr)
        return True
    return False


def check():
    if module_missing():
        return MISSING
    ok = True
    with tempfile.TemporaryDirectory() as d:
        want = save("damselfly", d)
        ok &= compare("damselfly's dump.rdb loaded by redis-server+RedisJSON", want, load("redis", d))
    with tempfile.TemporaryDirectory() as d:
        want = save("redis", d)
        ok &= compare("redis-server+RedisJSON's dump.rdb loaded by damselfly", want, load("damselfly", d))
    return 0 if ok else 1


def fixture(out):
    if module_missing():
        return MISSING
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        want = save("redis", d)
        shutil.copy(os.path.join(d, "dump.rdb"), os.path.join(out, "dump.rdb"))
    with open(os.path.join(out, "expected.tsv"), "w") as f:
        for (db, key), (kind, at, value) in sorted(want.items()):
            f.write(f"{db}\t{key}\t{kind}\t{at}\t{value}\n")
    print(f"wrote {out}/dump.rdb and {out}/expected.tsv ({len(want)} keys)")
    return 0


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "check":
        return check()
    if cmd == "fixture":
        return fixture(sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tests/data/redisjson"))
    print(__doc__, file=sys.stderr)
    return MISSING


if __name__ == "__main__":
    sys.exit(main())
