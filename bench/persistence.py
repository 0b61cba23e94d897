#!/usr/bin/env python3
"""Snapshot benchmark: damselfly and redis-server side by side (see
bench/persistence.sh for how to run it and what it measures)."""

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import free_port, resp, rss

BIN = os.environ.get("DAMSELFLY_BIN", "target/release/damselfly")
KEYS = int(os.environ.get("KEYS", "1000000"))
VALUE = int(os.environ.get("VALUE", "100"))
MEMBERS = int(os.environ.get("MEMBERS", "1000000"))
REQUESTS = int(os.environ.get("REQUESTS", "2000000"))
SAVE_ROUNDS = int(os.environ.get("SAVE_ROUNDS", "3"))


def call(port, *args):
    """One command over a fresh connection; the reply as text."""
    with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
        s.sendall(resp(*args))
        data = b""
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
            if data[:1] in (b"+", b"-", b":") and data.endswith(b"\r\n"):
                break
            if data[:1] == b"$":
                head, _, rest = data.partition(b"\r\n")
                n = int(head[1:])
                if n < 0 or len(rest) >= n + 2:
                    break
        return data.decode(errors="replace")


def info(port, field):
    text = call(port, "INFO", "everything")
    for line in text.split("\r\n"):
        if line.startswith(field + ":"):
            return line.split(":", 1)[1]
    return None


class Server:
    def __init__(self, kind, workdir, fsync=None):
        """`fsync`: run with the append-only journal and this appendfsync."""
        self.kind, self.dir = kind, workdir
        self.port = free_port()
        aof = ["--appendonly", "yes", "--appendfsync", fsync] if fsync else ["--appendonly", "no"]
        if kind == "damselfly":
            cmd = [BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--loglevel", "warn", "--save", "", "--dir", workdir]
            cmd += aof if fsync else []
        else:
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *aof,
                   "--dir", workdir, "--loglevel", "warning", "--daemonize", "no"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if not call(self.port, "PING").startswith("-ERR"):
                    break
            except OSError:
                pass
            time.sleep(0.01)
        else:
            raise RuntimeError(f"{kind} did not start")

    def wait_loaded(self):
        while info(self.port, "loading") != "0":
            time.sleep(0.01)
        return time.monotonic() - self.started

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def fill(port):
    """KEYS strings of VALUE bytes, and one sorted set of MEMBERS members."""
    value = b"v" * VALUE
    buf = bytearray()
    for i in range(KEYS):
        # redis-benchmark's key names (-r), so its SETs overwrite these.
        buf += resp(b"SET", b"key:%012d" % i, value)
    for i in range(0, MEMBERS, 1000):
        args = [b"ZADD", b"zset"]
        for j in range(i, min(i + 1000, MEMBERS)):
            args += [b"%d" % (j * 7 % 1000003), b"member:%d" % j]
        buf += resp(*args)
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=bytes(buf), stdout=subprocess.DEVNULL, check=True)


def bgsave(port):
    """Runs one BGSAVE and waits for it; returns its seconds."""
    while info(port, "rdb_bgsave_in_progress") != "0":
        time.sleep(0.005)
    t = time.monotonic()
    r = call(port, "BGSAVE")
    assert "started" in r, r
    while info(port, "rdb_bgsave_in_progress") != "0":
        time.sleep(0.005)
    assert info(port, "rdb_last_bgsave_status") == "ok"
    return time.monotonic() - t


def benchmark(port, during_saves):
    """SET/GET -P 16 on the snapshot's keys; returns {test: (rps, p99 ms)},
    with BGSAVEs back to back meanwhile when asked."""
    stop = threading.Event()

    def saver():
        while not stop.is_set():
            bgsave(port)

    t = threading.Thread(target=saver) if during_saves else None
    if t:
        t.start()
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", str(REQUESTS), "-c", "50", "-P", "16",
                          "-r", str(KEYS), "-d", str(VALUE), "--csv"], capture_output=True, text=True, check=True).stdout
    stop.set()
    if t:
        t.join()
    res = {}
    for line in out.splitlines()[1:]:
        f = [x.strip('"') for x in line.split(",")]
        res[f[0]] = (float(f[1]), float(f[6]))
    return res


def peak_rss_during_save(server):
    """Peak RSS above the start while a BGSAVE runs under a SET load on the
    same keys (damselfly: the process; redis-server: the child's
    copy-on-write size as it reports it)."""
    port = server.port
    load = subprocess.Popen(["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(REQUESTS * 10), "-c", "50", "-P", "16",
                             "-r", str(KEYS), "-d", str(VALUE), "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    base = rss(server.proc.pid)
    peak = base
    call(port, "BGSAVE")
    while info(port, "rdb_bgsave_in_progress") != "0":
        peak = max(peak, rss(server.proc.pid))
        time.sleep(0.01)
    load.kill()
    load.wait()
    if server.kind == "redis":
        return int(info(port, "rdb_last_cow_size") or 0)
    return peak - base


def journal_throughput():
    """SET at -P 1 and -P 16 with the append-only journal, per appendfsync,
    as ops/s and the ratio damselfly / redis-server: ROUNDS rounds, the two
    servers alternating, each ratio taken within its round; the median
    round is reported (the others after it)."""
    rounds = int(os.environ.get("ROUNDS", "1"))
    for fsync in ("everysec", "always"):
        for pipeline in (1, 16):
            results = []
            for _ in range(rounds):
                rps = {}
                for kind in ("damselfly", "redis"):
                    with tempfile.TemporaryDirectory() as d:
                        s = Server(kind, d, fsync)
                        s.wait_loaded()
                        n = REQUESTS // (8 if pipeline == 1 else 2)
                        out = subprocess.run(["redis-benchmark", "-p", str(s.port), "-t", "set", "-n", str(n), "-c", "50",
                                              "-P", str(pipeline), "-r", str(KEYS), "-d", str(VALUE), "--csv"],
                                             capture_output=True, text=True, check=True).stdout
                        rps[kind] = float(out.splitlines()[1].split(",")[1].strip('"'))
                        s.stop()
                results.append((rps["damselfly"] / rps["redis"], rps))
            results.sort(key=lambda r: r[0])
            ratio, rps = results[(len(results) - 1) // 2]
            others = "" if rounds == 1 else " (rounds: " + ", ".join(f"{r:.2f}x" for r, _ in results) + ")"
            print(f"appendonly yes, appendfsync {fsync}, SET -P {pipeline}: damselfly {rps['damselfly']:.0f} rps, "
                  f"redis-server {rps['redis']:.0f} rps ({ratio:.2f}x){others}")


def main():
    if os.environ.get("ONLY") == "journal":
        return journal_throughput()
    print(f"dataset: {KEYS} strings of {VALUE} B, one sorted set of {MEMBERS} members")
    for kind in ("damselfly", "redis"):
        with tempfile.TemporaryDirectory() as d:
            s = Server(kind, d)
            fill(s.port)
            used = int(info(s.port, "used_memory"))
            secs = bgsave(s.port)
            size = os.path.getsize(os.path.join(d, "dump.rdb"))
            print(f"{kind}: used_memory {used/1e6:.0f} MB; BGSAVE {secs:.2f} s, file {size/1e6:.0f} MB, {size/1e6/secs:.0f} MB/s")
            # Quiet and busy runs alternate, SAVE_ROUNDS pairs: one quiet
            # run alone varies by +-10% here. Medians of each.
            runs = [(benchmark(s.port, False), benchmark(s.port, True)) for _ in range(SAVE_ROUNDS)]
            for test in runs[0][0]:
                med = lambda xs: statistics.median(xs)
                r0, p0 = med([q[test][0] for q, _ in runs]), med([q[test][1] for q, _ in runs])
                r1, p1 = med([b[test][0] for _, b in runs]), med([b[test][1] for _, b in runs])
                print(f"{kind}: {test} -P 16: {r0:.0f} rps, p99 {p0:.2f} ms; during BGSAVEs {r1:.0f} rps ({r1/r0:.2f}x), p99 {p1:.2f} ms ({p1/p0:.2f}x)"
                      f" (medians of {SAVE_ROUNDS})")
            extra = peak_rss_during_save(s)
            print(f"{kind}: extra memory during a BGSAVE under SET load: {extra/1e6:.1f} MB ({100*extra/used:.1f}% of used_memory)")
            s.stop()
            s = Server(kind, d)
            secs = s.wait_loaded()
            print(f"{kind}: start-up load of the file: {secs:.2f} s")
            s.stop()
    journal_throughput()


if __name__ == "__main__":
    sys.exit(main())
