"""redis-py's views of what operators look at: MONITOR, CLIENT, LATENCY,
INFO and COMMAND, parsed by the library's own reply callbacks (the shapes
its tests expect from Redis)."""

import threading
import time

import pytest


def wait_until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


def test_monitor(server, r):
    with r.monitor() as m:
        other = server.client()
        other.set("mon:key", 'va"l')
        other.eval("return redis.call('get', KEYS[1])", 1, "mon:key")
        other.close()
        # (The connection's handshake, HELLO and CLIENT SETINFO, comes
        # first.)
        cmd = m.next_command()
        while not cmd["command"].startswith("SET"):
            cmd = m.next_command()
        assert cmd["command"] == 'SET mon:key va"l'
        assert cmd["db"] == 0 and cmd["client_type"] == "tcp"
        assert isinstance(cmd["time"], float) and cmd["client_port"].isdigit()
        evalcmd = m.next_command()
        assert evalcmd["command"].startswith("EVAL return redis.call")
        inner = m.next_command()
        assert inner["client_type"] == "lua" and inner["command"] == "get mon:key"


def test_client_list_info_and_settings(r):
    assert r.client_setname("obs-client") is True
    me = r.client_info()
    assert me["name"] == "obs-client" and me["db"] == 0 and me["cmd"] == "client|info"
    for field in ("id", "addr", "laddr", "fd", "age", "idle", "flags", "sub", "psub", "ssub", "multi",
                  "qbuf", "qbuf-free", "argv-mem", "multi-mem", "obl", "oll", "omem", "tot-mem",
                  "events", "user", "redir", "resp"):
        assert field in me, field
    listed = r.client_list(_type="normal")
    assert any(c["name"] == "obs-client" for c in listed)
    assert r.client_list(client_id=[me["id"]])[0]["id"] == str(me["id"])
    assert r.client_getredir() == -1
    assert r.client_no_evict("on") == "OK"
    assert "e" in r.client_info()["flags"]
    assert r.client_no_touch("on") == "OK"
    assert r.client_no_evict("off") == "OK"
    assert r.client_no_touch("off") == "OK"


def test_client_pause_and_unblock(server, r):
    blocked = server.client()
    blocked_id = blocked.client_id()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("v", blocked.blpop(["obs:list"], timeout=0)))
    t.start()
    wait_until(lambda: "b" in [c for c in r.client_list(client_id=[blocked_id])][0]["flags"])
    assert r.client_unblock(blocked_id) == 1
    t.join()
    assert result["v"] is None
    assert r.client_unblock(blocked_id, error=True) == 0
    # A paused writer waits, then goes on.
    assert r.client_pause(100_000, all=False) is True
    writer = server.client()
    writer_id = writer.client_id()
    done = threading.Event()
    threading.Thread(target=lambda: (writer.set("obs:paused", "1"), done.set())).start()
    wait_until(lambda: "b" in r.client_list(client_id=[writer_id])[0]["flags"])
    assert r.get("obs:paused") is None
    assert r.client_unpause() in (True, "OK")
    assert done.wait(10)
    assert r.get("obs:paused") == "1"
    blocked.close()
    writer.close()


def test_latency(r):
    assert r.config_set("latency-monitor-threshold", 1)
    try:
        r.eval("local s=redis.call('time') local t=s[1]*1000000+s[2] "
               "while true do local n=redis.call('time') if n[1]*1000000+n[2]-t > 3000 then break end end", 0)
        latest = r.latency_latest()
        assert latest[0][0] == "command" and latest[0][2] >= 3 and latest[0][3] >= latest[0][2]
        history = r.latency_history("command")
        assert len(history) == 1 and history[0][1] == latest[0][2]
        assert r.latency_reset("command") == 1
        assert r.latency_latest() == []
    finally:
        r.config_set("latency-monitor-threshold", 0)


def test_info(r):
    r.set("obs:ttl", "v", ex=100)
    info = r.info()
    assert info["redis_version"] and info["connected_clients"] >= 1
    assert info["blocked_clients"] == 0 and info["role"] == "master"
    assert info["db0"]["keys"] >= 1 and 0 < info["db0"]["avg_ttl"] <= 100_000
    assert "cmdstat_set" not in info
    everything = r.info("everything")
    assert everything["cmdstat_set"]["calls"] >= 1
    assert "p50" in r.info("latencystats")["latency_percentiles_usec_set"]
    assert set(r.info("server", "cpu")) >= {"redis_version", "used_cpu_sys"}


def test_command_introspection(r):
    assert r.command_getkeys("MSET", "a", "1", "b", "2") == ["a", "b"]
    assert sorted(r.command_list(category="hyperloglog")) == ["pfadd", "pfcount", "pfdebug", "pfmerge", "pfselftest"]
    assert "client|pause" in r.command_list(pattern="client|p*")
    assert r.command_count() > 200
