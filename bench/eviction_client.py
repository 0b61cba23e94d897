#!/usr/bin/env python3
"""Client side of bench/eviction.sh (standard library only, RESP over sockets).

  run HOST:PORT PID --keys K --value V --ops N --warmup W --procs P --depth D
      A cache workload: each process draws keys from a Zipfian distribution
      (skew --skew, default 0.99) over K keys, GETs them in pipelined rounds
      of D, and SETs a V-byte value for every miss (cache-aside). The first W
      operations per process warm the cache and are not counted. Prints one
      JSON object: hits, misses, hit_ratio, ops (GETs), seconds, ops_per_sec,
      peak_rss (the server's VmRSS, sampled every round by process 0).

Keys are "c:<n>" where n is the Zipf rank scrambled over the key space, so
the hot keys spread over hash slots.
"""

import bisect
import json
import multiprocessing
import random
import socket
import sys
import time

from benchlib import rss


def zipf_cdf(n, s):
    acc, cdf = 0.0, []
    for i in range(1, n + 1):
        acc += 1.0 / (i ** s)
        cdf.append(acc)
    return [c / acc for c in cdf]


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, cmds):
        out = []
        for args in cmds:
            out.append(b"*%d\r\n" % len(args))
            for a in args:
                out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def reply(self):
        line = self._line()
        kind = line[:1]
        if kind == b"$":
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.s.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"-":
            raise RuntimeError(line.decode())
        return line


def worker(args):
    host, port, pid, keys, value_len, ops, warmup, depth, skew, seed, report_rss = args
    rnd = random.Random(seed)
    cdf = zipf_cdf(keys, skew)
    value = b"v" * value_len
    c = Conn(host, port)
    hits = misses = 0
    peak = 0
    done = 0
    start = None
    total = warmup + ops
    while done < total:
        if start is None and done >= warmup:
            start = time.time()
            hits = misses = 0
        names = [b"c:%d" % ((bisect.bisect_left(cdf, rnd.random()) * 2654435761) % keys) for _ in range(depth)]
        c.send([[b"GET", k] for k in names])
        missed = [k for k in names if c.reply() is None]
        if missed:
            c.send([[b"SET", k, value] for k in missed])
            for _ in missed:
                c.reply()
        hits += depth - len(missed)
        misses += len(missed)
        done += depth
        if report_rss:
            peak = max(peak, rss(pid))
    return hits, misses, time.time() - (start or time.time()), peak


def main():
    if len(sys.argv) < 4 or sys.argv[1] != "run":
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    host, port = sys.argv[2].rsplit(":", 1)
    pid = int(sys.argv[3])
    opts = {"--keys": 500000, "--value": 1000, "--ops": 200000, "--warmup": 200000, "--procs": 2, "--depth": 16, "--skew": 0.99}
    rest = sys.argv[4:]
    for i in range(0, len(rest), 2):
        opts[rest[i]] = type(opts[rest[i]])(rest[i + 1])
    procs = opts["--procs"]
    per = opts["--ops"] // procs
    warm = opts["--warmup"] // procs
    jobs = [(host, int(port), pid, opts["--keys"], opts["--value"], per, warm, opts["--depth"], opts["--skew"], 1000 + i, i == 0) for i in range(procs)]
    with multiprocessing.Pool(procs) as pool:
        results = pool.map(worker, jobs)
    hits = sum(r[0] for r in results)
    misses = sum(r[1] for r in results)
    secs = max(r[2] for r in results)
    ops = hits + misses
    print(json.dumps({
        "hits": hits,
        "misses": misses,
        "hit_ratio": hits / ops if ops else 0.0,
        "ops": ops,
        "seconds": secs,
        "ops_per_sec": ops / secs if secs else 0.0,
        "peak_rss": max(r[3] for r in results),
    }))


if __name__ == "__main__":
    main()
