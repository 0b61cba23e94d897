#!/usr/bin/env python3
"""Failover benchmark driver (see bench/failover.sh): a cluster of 3
primaries with a replica each, all real processes on loopback.

kill: KILLS times, a primary is killed with SIGKILL; the time from the kill
  until a SET to one of its slots succeeds again (on whichever node the
  survivors' CLUSTER SLOTS names, polled every 5 ms) is recorded; the
  node is restarted empty and waited for as a replica before the next kill.
planned: PLANNED times, `cluster-admin failover` of a replica while a
  client INCRs a key of its primary's slots in a loop; the longest gap
  between two acknowledged INCRs is the write pause, and the counter must
  equal the number of acknowledged INCRs (nothing lost).

Standard library only. Prints one JSON object with the figures.
"""
import json, os, signal, socket, subprocess, sys, tempfile, time

from benchlib import free_port

BIN, ADMIN, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
KILLS = int(os.environ.get("KILLS", "10"))
PLANNED = int(os.environ.get("PLANNED", "5"))


class Conn:
    def __init__(self, port, timeout=2.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self.read()

    def read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("closed")
        t, rest = line[:1], line[1:-2]
        if t in (b"+", b"-"):
            return (t + rest).decode()
        if t == b":":
            return int(rest)
        if t in (b"$", b"="):
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode(errors="replace")
        if t in (b"*", b"~", b">"):
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        if t == b"%":
            return [[self.read(), self.read()] for _ in range(int(rest))]
        raise ValueError(line)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def ask(port, *args, timeout=2.0):
    c = Conn(port, timeout)
    try:
        return c.cmd(*args)
    finally:
        c.close()


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def slot(key):
    return crc16(key.encode()) % 16384


def wait(what, f, limit=60.0):
    end = time.time() + limit
    while time.time() < end:
        try:
            if f():
                return
        except (OSError, ConnectionError, ValueError):
            pass
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}")


nodes = {}  # port -> (process, dir)
bus = {}  # port -> cluster bus (gRPC) port
work = tempfile.mkdtemp(prefix="failover-bench-")


def start(port, d):
    log = open(os.path.join(OUT, f"node-{port}.log"), "ab")
    bus.setdefault(port, free_port())
    p = subprocess.Popen([BIN, "--cluster", "--port", str(port), "--cluster-grpc-port", str(bus[port]), "--bind", "127.0.0.1",
                          "--dir", d, "--save", "", "--loglevel", "warning"], stdout=log, stderr=log)
    nodes[port] = (p, d)
    wait(f"node {port}", lambda: ask(port, "PING") == "+PONG")


def admin(seed, *args):
    r = subprocess.run([ADMIN, "--seed", f"127.0.0.1:{seed}", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"cluster-admin {args}: {r.stdout}{r.stderr}")


def owners(port):
    """slot -> client port, per node `port`'s CLUSTER SLOTS."""
    own = {}
    for r in ask(port, "CLUSTER", "SLOTS"):
        for s in range(r[0], r[1] + 1):
            own[s] = r[2][1]
    return own


def primaries(port):
    return sorted(set(owners(port).values()))


def ok_everywhere():
    for p in nodes:
        if "cluster_state:ok" not in ask(p, "CLUSTER", "INFO"):
            return False
    return True


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


try:
    ports = [free_port() for _ in range(6)]
    for i, p in enumerate(ports):
        d = os.path.join(work, f"n{i}")
        os.makedirs(d)
        start(p, d)
    admin(ports[0], "create", *[f"127.0.0.1:{p}" for p in ports[:3]])
    wait("cluster ok", lambda: all("cluster_state:ok" in ask(p, "CLUSTER", "INFO") for p in ports[:3]))
    for r, p in zip(ports[3:], ports[:3]):
        admin(ports[0], "add-replica", f"127.0.0.1:{r}", "--of", f"127.0.0.1:{p}")
    wait("replicas synced", lambda: all("connected" in str(ask(r, "ROLE")) for r in ports[3:]))

    kill_ms = []
    for k in range(KILLS):
        live = list(nodes)
        prim = primaries(live[0])
        victim = prim[k % len(prim)]
        key = next(f"k{i}" for i in range(100000) if owners(live[0])[slot(f"k{i}")] == victim)
        survivor = next(p for p in live if p != victim)
        proc, d = nodes.pop(victim)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = None
        while done is None and time.monotonic() - t0 < 30:
            try:
                target = owners(survivor)[slot(key)]
                if target != victim and ask(target, "SET", key, "x", timeout=0.5) == "+OK":
                    done = time.monotonic()
                    break
            except (OSError, ConnectionError, ValueError, KeyError):
                pass
            time.sleep(0.005)
        if done is None:
            raise SystemExit(f"kill {k}: writes did not resume within 30 s")
        kill_ms.append((done - t0) * 1000)
        print(f"kill {k + 1}/{KILLS}: writes to the killed primary's slots resumed after {kill_ms[-1]:.0f} ms", file=sys.stderr)
        start(victim, d)
        wait("the killed node back as a connected replica", lambda: "connected" in str(ask(victim, "ROLE")) and ok_everywhere())

    pause_ms, lost = [], 0
    for k in range(PLANNED):
        live = list(nodes)
        own = owners(live[0])
        replicas = [p for p in live if p not in set(own.values())]
        replica = replicas[k % len(replicas)]
        role = ask(replica, "ROLE")
        primary = role[2]
        key = next(f"p{i}" for i in range(100000) if own[slot(f"p{i}")] == primary)
        ask(primary, "DEL", key)
        proc = subprocess.Popen([ADMIN, "--seed", f"127.0.0.1:{live[0]}", "failover", f"127.0.0.1:{replica}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        c, port, acked, last, gap = Conn(primary, 10), primary, 0, time.monotonic(), 0.0
        while True:
            r = c.cmd("INCR", key)
            now = time.monotonic()
            if isinstance(r, int):
                acked += 1
                gap = max(gap, now - last)
                last = now
                if port == replica and proc.poll() is not None:
                    break
            elif isinstance(r, str) and r.startswith("-MOVED"):
                port = int(r.split()[2].rsplit(":", 1)[1])
                c.close()
                c = Conn(port, 10)
            else:
                raise SystemExit(f"planned {k}: INCR answered {r}")
        if proc.wait() != 0:
            raise SystemExit(f"planned {k}: cluster-admin failover failed: {proc.stderr.read().decode()}")
        value = int(ask(replica, "GET", key))
        lost += acked - value
        pause_ms.append(gap * 1000)
        print(f"planned {k + 1}/{PLANNED}: longest write gap {pause_ms[-1]:.0f} ms, {acked} INCRs acknowledged, counter {value}",
              file=sys.stderr)
        wait("the old primary back as a connected replica", lambda: "connected" in str(ask(primary, "ROLE")) and ok_everywhere())

    result = {"kills": len(kill_ms)}
    if kill_ms:
        result["kill_to_writes_ms"] = {"p50": round(pct(kill_ms, 50)), "p99": round(pct(kill_ms, 99)), "max": round(max(kill_ms)),
                                       "all": [round(x) for x in kill_ms]}
    if pause_ms:
        result["planned"] = {"runs": len(pause_ms), "write_pause_ms": {"p50": round(pct(pause_ms, 50)), "max": round(max(pause_ms))},
                             "acknowledged_writes_lost": lost}
    print(json.dumps(result))
finally:
    for p, (proc, _) in nodes.items():
        proc.kill()
        proc.wait()
    subprocess.run(["rm", "-rf", work])
