#!/usr/bin/env python3
"""Side-by-side with redis-server: what one hostile or careless client costs
everyone else.

For each server (a release damselfly and redis-server on free loopback
ports), a bystander sends PING every millisecond while another client
  1. writes a 100 MB value (first write of a fresh large allocation),
  2. writes a second 100 MB value,
and the script reports the bystander's worst PING round trip and the
server's peak RSS; then 5,000 idle connections are opened and the RSS they
cost per connection is reported, and finally the RSS after the big values
are deleted and the node has been idle for 3 s.

Usage: bench/hostile.py [path/to/damselfly]   (default target/release/damselfly,
       or $CARGO_TARGET_DIR/release/damselfly)
Only python3's standard library and redis-server are needed.
"""
import os, socket, subprocess, sys, threading, time

from benchlib import free_port


def cmd(s, *args):
    s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    return s.recv(1 << 16)


def run(name, argv):
    port = free_port()
    p = subprocess.Popen(argv + ["--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                c = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.02)
        rss = lambda: int(open(f"/proc/{p.pid}/statm").read().split()[1]) * 4096
        peak = [0]
        pinger = socket.create_connection(("127.0.0.1", port))
        stop, lat = [False], []

        def bystander():
            while not stop[0]:
                t = time.perf_counter()
                cmd(pinger, b"PING")
                lat.append(time.perf_counter() - t)
                peak[0] = max(peak[0], rss())
                time.sleep(0.001)

        th = threading.Thread(target=bystander)
        th.start()
        v = b"x" * (100 << 20)
        for k in (b"big1", b"big2"):
            cmd(c, b"SET", k, v)
        time.sleep(0.2)
        stop[0] = True
        th.join()
        base = rss()
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(5000)]
        cmd(c, b"PING")
        time.sleep(1)
        per_conn = (rss() - base) / 5000
        for s in conns:
            s.close()
        cmd(c, b"DEL", b"big1", b"big2")
        time.sleep(3)
        print(f"{name:10} worst PING during 100 MB SETs {max(lat) * 1000:7.1f} ms | peak RSS {peak[0] >> 20:4d} MB | "
              f"idle connection {per_conn:6.0f} B | RSS after idle {rss() >> 20:4d} MB")
    finally:
        p.kill()
        p.wait()


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
    bin_ = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "release", "damselfly")
    run("damselfly", [bin_, "--bind", "127.0.0.1", "--loglevel", "warn"])
    run("redis", ["redis-server", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])


if __name__ == "__main__":
    main()
