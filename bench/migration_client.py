#!/usr/bin/env python3
"""Client side of bench/migration.sh (standard library only, RESP over sockets).

  load HOST:PORT N [--tag T]         SET N keys with 100-byte values, pipelined
  dbsize HOST:PORT                   print DBSIZE
  sample HOST:PORT ID OUT --n N ...  write-latency sampler (one connection),
                                     until SIGTERM; follows MOVED/ASK. Rows:
                                     start (unix s), latency us, redirects,
                                     errors, us until the first reply
  move OUT -- CMD...                 run cluster-admin move-slots, timestamping
                                     its stderr lines; result JSON to OUT
  verify HOST:PORT FILES...          GET every key a sampler last wrote and
                                     compare with its last acknowledged value
  report MOVE[,MOVE...] SAMPLES... [--baseline-until T] [--window-slack S]
                                     latency statistics as JSON
  owned HOST:PORT                    slots the node serves in its own view

Keys: "key:%07d" by default; with --tag T, "{T}:key:%07d" (one slot).
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

from benchlib import resp

VALUE_LEN = 100


def key_name(i, tag=None):
    return f"{{{tag}}}:key:{i:07d}" if tag else f"key:{i:07d}"


def value_for(prefix):
    return prefix.ljust(VALUE_LEN, "x")[:VALUE_LEN]


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


class Conn:
    """A blocking RESP connection with a read buffer."""

    def __init__(self, hostport, timeout=30.0):
        self.hostport = hostport
        self.sock = socket.create_connection(addr(hostport), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.pos = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("connection closed by server")
        if self.pos:
            self.buf = self.buf[self.pos:]
            self.pos = 0
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self._fill()

    def read(self):
        """One reply: str for simple strings, Exception-like tuple for
        errors ("ERR", text), int, bytes/None for bulk, list for arrays."""
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return ("ERR", rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            data = self.buf[self.pos:self.pos + n]
            self.pos += n + 2
            return data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError(f"unexpected reply line {line!r}")

    def call(self, *args):
        self.sock.sendall(resp(*args))
        return self.read()


def is_err(r):
    return isinstance(r, tuple) and r[0] == "ERR"


# ---------------------------------------------------------------- load

def cmd_load(argv):
    hostport, n = argv[0], int(argv[1])
    tag = argv[argv.index("--tag") + 1] if "--tag" in argv else None
    c = Conn(hostport, timeout=120)
    batch = 10000
    t0 = time.time()
    errors = 0
    for start in range(0, n, batch):
        end = min(n, start + batch)
        payload = b"".join(resp("SET", key_name(i, tag), value_for(f"{i:010d}:")) for i in range(start, end))
        c.sock.sendall(payload)
        for _ in range(end - start):
            r = c.read()
            if r != "OK":
                errors += 1
                if errors <= 3:
                    print(f"load: unexpected reply {r!r}", file=sys.stderr)
    dt = time.time() - t0
    print(json.dumps({"keys": n, "seconds": round(dt, 3), "errors": errors}))
    return 1 if errors else 0


def cmd_dbsize(argv):
    print(Conn(argv[0]).call("DBSIZE"))
    return 0


# ---------------------------------------------------------------- sampler

CRC_TABLE = []
for _b in range(256):
    _c = _b << 8
    for _ in range(8):
        _c = ((_c << 1) ^ 0x1021) if _c & 0x8000 else (_c << 1)
    CRC_TABLE.append(_c & 0xFFFF)


def key_slot(key):
    k = key.encode() if isinstance(key, str) else key
    s = k.find(b"{")
    if s >= 0:
        e = k.find(b"}", s + 1)
        if e > s + 1:
            k = k[s + 1:e]
    crc = 0
    for ch in k:
        crc = ((crc << 8) & 0xFFFF) ^ CRC_TABLE[((crc >> 8) ^ ch) & 0xFF]
    return crc % 16384


class Router:
    """Connections per node and the slot owners learned from MOVED."""

    def __init__(self, seed):
        self.seed = seed
        self.owner = {}
        self.conns = {}

    def refresh(self, hostport):
        """Learns every slot's owner from CLUSTER SLOTS (as cluster clients
        do after a MOVED); best effort."""
        try:
            r = self.conn(hostport).call("CLUSTER", "SLOTS")
        except (OSError, ConnectionError, ValueError):
            self.drop(hostport)
            return
        if not isinstance(r, list):
            return
        owner = {}
        for rng in r:
            first, last, node = rng[0], rng[1], rng[2]
            where = f"{node[0].decode()}:{node[1]}"
            for slot in range(first, last + 1):
                owner[slot] = where
        self.owner = owner

    def conn(self, hostport):
        c = self.conns.get(hostport)
        if c is None:
            c = Conn(hostport, timeout=30)
            self.conns[hostport] = c
        return c

    def drop(self, hostport):
        c = self.conns.pop(hostport, None)
        if c:
            c.close()

    def write(self, key, value):
        """SET key value, following redirects. Returns (redirects, errors);
        raises after too many attempts. Sets self.first_reply to when the
        first reply (the redirect, if any) arrived."""
        slot = key_slot(key)
        target = self.owner.get(slot, self.seed)
        redirects = errors = 0
        asking = False
        for _ in range(50):
            try:
                c = self.conn(target)
                if asking:
                    c.sock.sendall(resp("ASKING") + resp("SET", key, value))
                    c.read()
                    r = c.read()
                else:
                    r = c.call("SET", key, value)
            except (OSError, ConnectionError, ValueError):
                errors += 1
                self.drop(target)
                time.sleep(0.01)
                continue
            if not redirects and not errors:
                self.first_reply = time.perf_counter()
            asking = False
            if r == "OK":
                return redirects, errors
            if is_err(r):
                msg = r[1]
                if msg.startswith("MOVED "):
                    redirects += 1
                    target = msg.split()[2]
                    self.owner[slot] = target
                    continue
                if msg.startswith("ASK "):
                    redirects += 1
                    target = msg.split()[2]
                    asking = True
                    continue
                if msg.startswith("TRYAGAIN"):
                    errors += 1
                    time.sleep(0.005)
                    continue
            errors += 1
            print(f"sampler: unexpected reply {r!r}", file=sys.stderr)
            time.sleep(0.01)
        raise RuntimeError(f"SET {key} did not succeed after 50 attempts")


def cmd_sample(argv):
    seed, sid, out = argv[0], int(argv[1]), argv[2]
    opts = dict(zip(argv[3::2], argv[4::2]))
    n = int(opts.get("--n", "1000000"))
    tag = opts.get("--tag")
    threads = int(opts.get("--of", "1"))
    rate = float(opts.get("--rate", "1000"))
    stop = [False]

    def on_term(*_):
        stop[0] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    rng = random.Random(sid * 7919 + 1)
    # This sampler's keys: indexes congruent to sid modulo the sampler count,
    # so each key's last acknowledged value comes from one writer.
    mine = max(1, (n - sid + threads - 1) // threads)
    router = Router(seed)
    last = {}
    rows = []
    interval = 1.0 / rate if rate > 0 else 0.0
    nxt = time.perf_counter()
    seq = 0
    # Wall clock at start, monotonic deltas after: timestamps comparable
    # with the orchestrating script's `date`, latencies from perf_counter.
    wall0, mono0 = time.time(), time.perf_counter()
    # One unrecorded write first: the connect is not a write's latency.
    router.write(key_name(sid, tag), value_for(f"s{sid}-0:"))
    last[key_name(sid, tag)] = value_for(f"s{sid}-0:")
    while not stop[0]:
        if interval:
            now = time.perf_counter()
            if now < nxt:
                time.sleep(nxt - now)
            nxt = max(nxt + interval, time.perf_counter() - interval)
        i = sid + threads * rng.randrange(mine)
        key = key_name(i, tag)
        seq += 1
        value = value_for(f"s{sid}-{seq}:")
        t0 = time.perf_counter()
        redirects, errors = router.write(key, value)
        t1 = time.perf_counter()
        if redirects:
            # Untimed, as a cluster client refreshing its slot map.
            router.refresh(router.owner.get(key_slot(key), seed))
        last[key] = value
        first = router.first_reply if redirects else t1
        rows.append(f"{wall0 + (t0 - mono0):.6f} {(t1 - t0) * 1e6:.0f} {redirects} {errors} {(first - t0) * 1e6:.0f}\n")
    with open(out, "w") as f:
        f.writelines(rows)
    with open(out + ".last", "w") as f:
        json.dump(last, f)
    return 0


# ---------------------------------------------------------------- move

def cmd_move(argv):
    out = argv[0]
    cmd = argv[argv.index("--") + 1:]
    t_start = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in p.stderr:
        lines.append([round(time.time(), 6), line.rstrip("\n")])
        print(line, end="", file=sys.stderr)
    stdout = p.stdout.read()
    rc = p.wait()
    t_end = time.time()
    res = {"rc": rc, "start": t_start, "end": t_end, "wall_s": round(t_end - t_start, 3), "stderr": lines}
    try:
        res["moved"] = json.loads(stdout).get("moved")
    except ValueError:
        res["stdout"] = stdout
    cut = [t for t, l in lines if ": cut-over," in l]
    res["cutover_seen"] = cut[0] if cut else None
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    return rc


# ---------------------------------------------------------------- verify

def cmd_verify(argv):
    seed, files = argv[0], argv[1:]
    expect = {}
    for fn in files:
        with open(fn) as f:
            expect.update(json.load(f))
    router = Router(seed)
    bad = 0
    keys = list(expect)
    for j in range(0, len(keys), 1000):
        chunk = keys[j:j + 1000]
        c = router.conn(seed)
        c.sock.sendall(b"".join(resp("GET", k) for k in chunk))
        for k in chunk:
            r = c.read()
            if is_err(r) and r[1].startswith("MOVED "):
                r = router.conn(r[1].split()[2]).call("GET", k)
            if r != expect[k].encode():
                bad += 1
                if bad <= 3:
                    print(f"verify: {k}: got {r!r:.60}, last acknowledged {expect[k]:.30}", file=sys.stderr)
    print(json.dumps({"checked": len(keys), "mismatched": bad}))
    return 1 if bad else 0


# ---------------------------------------------------------------- report

def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def stats(rows):
    lat = sorted(r[1] for r in rows)
    ms = lambda v: None if v is None else round(v / 1000.0, 2)
    return {
        "writes": len(lat),
        "p50_ms": ms(pct(lat, 50)),
        "p99_ms": ms(pct(lat, 99)),
        "max_ms": ms(lat[-1] if lat else None),
        "redirected": sum(1 for r in rows if r[2]),
        "errors": sum(r[3] for r in rows),
    }


def cmd_report(argv):
    """MOVE may be several move files, comma separated: the windows are then
    the union of the moves' windows."""
    move_files = argv[0].split(",")
    opts = {}
    files = []
    it = iter(argv[1:])
    for a in it:
        if a.startswith("--"):
            opts[a] = next(it)
        else:
            files.append(a)
    rows = []
    for fn in files:
        with open(fn) as f:
            for line in f:
                t, lat, red, err = line.split()[:4]
                rows.append((float(t), int(lat), int(red), int(err)))
    slack = float(opts.get("--window-slack", "0.1"))
    moves, cuts = [], []
    for fn in move_files:
        with open(fn) as f:
            mv = json.load(f)
        t0, t1 = mv["start"], mv["end"]
        pause_s = (mv.get("moved") or {}).get("pause_ms", 0) / 1000.0
        # Cut-over window: from when the gate can have closed (the reported
        # pause before the end of the move, or the first progress line saying
        # cut-over if earlier), less a slack, to the end of the move.
        c0 = t1 - pause_s
        if mv.get("cutover_seen"):
            c0 = min(c0, mv["cutover_seen"])
        moves.append((t0, t1))
        cuts.append((c0 - slack, t1))

    # A write belongs to a window when its [start, end] interval overlaps it.
    def within(r, windows):
        return any(r[0] <= b and r[0] + r[1] / 1e6 >= a for a, b in windows)

    base_until = float(opts.get("--baseline-until", min(a for a, _ in moves)))
    last_end = max(b for _, b in moves)
    out = {
        "baseline": stats([r for r in rows if r[0] + r[1] / 1e6 < base_until]),
        "migration": stats([r for r in rows if within(r, moves)]),
        "cutover": stats([r for r in rows if within(r, cuts)]),
        "after": stats([r for r in rows if r[0] > last_end]),
        "all": stats(rows),
        "cutover_window_s": round(sum(b - a for a, b in cuts), 3),
    }
    print(json.dumps(out))
    return 0


def cmd_owned(argv):
    """Slots HOST:PORT assigns to itself in its own CLUSTER SLOTS."""
    hostport = argv[0]
    r = Conn(hostport).call("CLUSTER", "SLOTS")
    host, port = addr(hostport)
    n = 0
    for rng in r if isinstance(r, list) else []:
        if int(rng[2][1]) == port:
            n += rng[1] - rng[0] + 1
    print(n)
    return 0


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, argv = sys.argv[1], sys.argv[2:]
    f = {"load": cmd_load, "dbsize": cmd_dbsize, "sample": cmd_sample, "move": cmd_move, "verify": cmd_verify,
         "report": cmd_report, "owned": cmd_owned}.get(cmd)
    if f is None:
        print(__doc__, file=sys.stderr)
        return 2
    return f(argv)


if __name__ == "__main__":
    sys.exit(main())
