#!/usr/bin/env python3
"""Replication benchmark: damselfly and redis-server side by side (see
bench/replication.sh for how to run it and what it measures)."""

import multiprocessing
import os
import socket
import subprocess
import tempfile
import time

from benchlib import free_port, resp

BIN = os.environ.get("DAMSELFLY_BIN", "target/release/damselfly")
REQUESTS = int(os.environ.get("REQUESTS", "2000000"))
RANGE = int(os.environ.get("RANGE", "1000000"))
VALUE = int(os.environ.get("VALUE", "100"))
RATE = int(os.environ.get("RATE", "50000"))
SECONDS = float(os.environ.get("SECONDS", "20"))
KINDS = ("damselfly", "redis-server")


class Conn:
    """A blocking connection reading one reply at a time."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def call(self, *args):
        self.s.sendall(resp(*args))
        line = self._line()
        if line[:1] != b"$":
            return line.decode()
        n = int(line[1:])
        if n < 0:
            return None
        while len(self.buf) < n + 2:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data.decode()


def info(port, field):
    text = Conn(port).call("INFO", "replication")
    for line in text.split("\r\n"):
        if line.startswith(field + ":"):
            return line.split(":", 1)[1]
    return None


class Server:
    def __init__(self, kind, replicaof=None):
        self.kind = kind
        self.dir = tempfile.TemporaryDirectory(prefix="bench-repl-")
        self.port = free_port()
        follow = ["--replicaof", "127.0.0.1", str(replicaof)] if replicaof else []
        if kind == "damselfly":
            cmd = [BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--loglevel", "warn", "--save", "",
                   "--dir", self.dir.name, "--repl-diskless-sync-delay", "0", *follow]
        else:
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--dir", self.dir.name, "--loglevel", "warning", "--daemonize", "no",
                   "--repl-diskless-sync-delay", "0", *follow]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                if Conn(self.port).call("PING") in ("+PONG",):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start")
            time.sleep(0.01)

    def wait_link(self):
        deadline = time.monotonic() + 120
        while info(self.port, "master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} replica did not sync")
            time.sleep(0.02)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.dir.cleanup()


def start(kind, replicas):
    primary = Server(kind)
    reps = [Server(kind, replicaof=primary.port) for _ in range(replicas)]
    for r in reps:
        r.wait_link()
    return primary, reps


def thread_ticks(pid):
    """CPU ticks (user + system) of each thread of process `pid`, by
    thread id: (thread name, ticks)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[tid] = (name, int(fields[11]) + int(fields[12]))
    return out


def serving(name):
    """Whether a primary's thread serves clients: damselfly's shard threads,
    redis-server's main thread (its other threads are background I/O)."""
    return name.startswith("shard-") or name == "redis-server"


def throughput(primary):
    """SET ops/s on `primary`, and its CPU per request in microseconds: of
    the threads that serve clients, and of the whole process. The first is
    what decides the primary's throughput when the replicas and the load
    generator have cores of their own, which this benchmark's machine may
    not give them."""
    before = thread_ticks(primary.proc.pid)
    out = subprocess.run(
        ["redis-benchmark", "-p", str(primary.port), "-t", "set", "-P", "16", "-c", "50", "-n", str(REQUESTS),
         "-r", str(RANGE), "-d", str(VALUE), "--csv"],
        capture_output=True, text=True, check=True).stdout
    after = thread_ticks(primary.proc.pid)
    used = {tid: t - before.get(tid, (name, 0))[1] for tid, (name, t) in after.items()}
    us = 1e6 / os.sysconf("SC_CLK_TCK") / REQUESTS
    serve = sum(t for tid, t in used.items() if serving(after[tid][0])) * us
    total = sum(used.values()) * us
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells[0] == "SET":
            return float(cells[1]), serve, total
    raise RuntimeError(f"no SET row in {out!r}")


def writer(port, rate, stop_at, counter):
    """Sends `rate` SETs/s as one pipelined batch every 10 ms; counts replies."""
    per_batch = max(1, rate // 100)
    batches = []
    for b in range(50):
        batches.append(b"".join(resp(b"SET", b"key:%012d" % ((b * per_batch + i) * 7919 % RANGE), b"v" * VALUE)
                                for i in range(per_batch)))
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    sent = replies = 0
    next_at = time.monotonic()
    pending = b""
    i = 0
    while time.monotonic() < stop_at:
        now = time.monotonic()
        if now >= next_at:
            pending += batches[i % len(batches)]
            i += 1
            sent += per_batch
            next_at += 0.01
        if pending:
            try:
                n = s.send(pending)
                pending = pending[n:]
            except BlockingIOError:
                pass
        try:
            data = s.recv(1 << 20)
            replies += data.count(b"\r\n")
        except BlockingIOError:
            pass
        if not pending:
            time.sleep(max(0.0, min(0.001, next_at - time.monotonic())))
    counter.value = replies


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def lag(kind):
    primary, (replica,) = start(kind, 1)
    try:
        stop_at = time.monotonic() + SECONDS + 2
        counter = multiprocessing.Value("q", 0)
        w = multiprocessing.Process(target=writer, args=(primary.port, RATE, stop_at, counter))
        w.start()
        time.sleep(2)  # the load reaches its rate first
        p, r = Conn(primary.port), Conn(replica.port)
        lags, polls, n = [], 0, 0
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            n += 1
            value = str(n)
            t0 = time.perf_counter()
            p.call("SET", "lagprobe", value)
            while r.call("GET", "lagprobe") != value:
                polls += 1
            lags.append(time.perf_counter() - t0)
            time.sleep(0.02)
        w.join()
        rate = counter.value / (SECONDS + 2)
        return {"p50": percentile(lags, 0.5), "p99": percentile(lags, 0.99), "max": max(lags),
                "samples": len(lags), "polls": polls / len(lags), "rate": rate}
    finally:
        replica.stop()
        primary.stop()


def main():
    print(f"replication benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores")
    print(f"SET -P 16, 50 clients, {REQUESTS} requests, {RANGE} keys, {VALUE}-byte values")
    rps, cpu = {}, {}
    for replicas in (0, 1, 2):
        for kind in KINDS:
            primary, reps = start(kind, replicas)
            try:
                ops, serve, total = throughput(primary)
                rps[(kind, replicas)], cpu[(kind, replicas)] = ops, (serve, total)
            finally:
                for r in reps:
                    r.stop()
                primary.stop()
    print(f"{'replicas':>8}  {'damselfly ops/s':>15}  {'vs 0':>6}  {'redis ops/s':>12}  {'vs 0':>6}  {'damselfly/redis':>15}")
    for replicas in (0, 1, 2):
        d, r = rps[("damselfly", replicas)], rps[("redis-server", replicas)]
        print(f"{replicas:>8}  {d:>15.0f}  {d / rps[('damselfly', 0)]:>6.2f}  {r:>12.0f}  {r / rps[('redis-server', 0)]:>6.2f}  {d / r:>15.2f}")
    print("\nprimary CPU per SET (us): serving threads / whole process; 'keeps' = serving CPU without replicas")
    print("over serving CPU with them, the share of throughput a primary whose replicas run on other cores keeps")
    print(f"{'replicas':>8}  {'damselfly':>15}  {'keeps':>6}  {'redis-server':>15}  {'keeps':>6}")
    for replicas in (0, 1, 2):
        (ds, dt), (rs, rt) = cpu[("damselfly", replicas)], cpu[("redis-server", replicas)]
        dk, rk = cpu[("damselfly", 0)][0] / ds, cpu[("redis-server", 0)][0] / rs
        print(f"{replicas:>8}  {ds:>6.2f} / {dt:>6.2f}  {dk:>6.2f}  {rs:>6.2f} / {rt:>6.2f}  {rk:>6.2f}")
    print(f"\nreplication lag, 1 replica, load {RATE} SET/s for {SECONDS:.0f} s, a probe every 20 ms")
    print(f"{'server':>12}  {'load ops/s':>10}  {'p50 ms':>7}  {'p99 ms':>7}  {'max ms':>7}  {'probes':>6}  {'GETs/probe':>10}")
    for kind in KINDS:
        l = lag(kind)
        print(f"{kind:>12}  {l['rate']:>10.0f}  {l['p50'] * 1e3:>7.3f}  {l['p99'] * 1e3:>7.3f}  {l['max'] * 1e3:>7.3f}  "
              f"{l['samples']:>6}  {l['polls']:>10.1f}")


if __name__ == "__main__":
    main()
