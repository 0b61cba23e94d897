"""The metrics endpoint (`--metrics-port`) read with the Prometheus
project's own text parser (prometheus_client), as a scraper reads it:
every family parses, redis_exporter's names are there with their types,
and the figures move with a workload driven through redis-py."""

import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import _free_port, binary

START_TIMEOUT = 10.0


@pytest.fixture
def node():
    """A standalone node with the endpoint on: (redis client, metrics port)."""
    import redis

    with tempfile.TemporaryDirectory(prefix="damselfly-metrics-") as d:
        for _ in range(5):
            port, mport = _free_port(), _free_port()
            proc = subprocess.Popen(
                [binary(), "--port", str(port), "--bind", "127.0.0.1", "--loglevel", "warn", "--dir", d,
                 "--save", "", "--metrics-port", str(mport), "--shards", "2"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            )
            r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=30)
            deadline = time.monotonic() + START_TIMEOUT
            up = False
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    up = r.ping() and scrape(mport) is not None
                    break
                except (OSError, redis.ConnectionError, urllib.error.URLError):
                    time.sleep(0.02)
            if up:
                try:
                    yield r, mport
                finally:
                    r.close()
                    proc.kill()
                    proc.wait(timeout=10)
                return
            proc.kill()
            proc.wait(timeout=10)
        raise RuntimeError("damselfly with a metrics port did not start")


def scrape(mport):
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=30) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(families, name, **labels):
    """The sample `name` (the family's name, or a sample's full name such as
    `x_total`) whose labels include `labels`."""
    for f in families.values():
        for s in f.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_families_parse_with_exporter_names_and_types(node):
    r, mport = node
    r.set("a", "1")
    fams = scrape(mport)
    # Counters are named without _total as families, as the parser does.
    expected = {
        "redis_up": "gauge",
        "redis_commands": "counter",
        "redis_commands_duration_seconds": "counter",
        "redis_memory_used_bytes": "gauge",
        "redis_memory_max_bytes": "gauge",
        "redis_memory_used_lua_bytes": "gauge",
        "redis_connected_clients": "gauge",
        "redis_blocked_clients": "gauge",
        "redis_keyspace_hits": "counter",
        "redis_keyspace_misses": "counter",
        "redis_expired_keys": "counter",
        "redis_evicted_keys": "counter",
        "redis_db_keys": "gauge",
        "redis_db_keys_expiring": "gauge",
        "redis_net_input_bytes": "counter",
        "redis_net_output_bytes": "counter",
        "redis_slowlog_length": "gauge",
        "redis_rdb_last_save_timestamp_seconds": "gauge",
        "redis_rdb_changes_since_last_save": "gauge",
        "redis_uptime_in_seconds": "gauge",
        "damselfly_command_latency_seconds": "histogram",
        "damselfly_shard_queue_depth": "gauge",
        "damselfly_shard_busy_seconds": "counter",
        "damselfly_shard_hops": "counter",
        "damselfly_shard_lock_waits": "counter",
    }
    for name, kind in expected.items():
        assert name in fams, name
        assert fams[name].type == kind, (name, fams[name].type)
    # No replicas: no replication metric rather than a made-up 0.
    assert "redis_connected_slaves" not in fams


def test_figures_move_with_the_workload(node):
    r, mport = node
    before = scrape(mport)
    assert value(before, "redis_up") == 1
    pipe = r.pipeline(transaction=False)
    for i in range(100):
        pipe.set(f"key:{i}", i)
    pipe.execute()
    r.set("ttl", "x", ex=1000)
    assert r.get("key:1") == "1"
    assert r.get("nope") is None
    r.set("short", "x", px=1)
    deadline = time.monotonic() + 10
    while r.dbsize() != 101 and time.monotonic() < deadline:
        time.sleep(0.01)
    after = scrape(mport)
    assert value(after, "redis_commands_total", cmd="set") - (value(before, "redis_commands_total", cmd="set") or 0) == 102
    assert value(after, "redis_db_keys", db="db0") == 101
    assert value(after, "redis_db_keys_expiring", db="db0") == 1
    assert value(after, "redis_expired_keys_total") >= 1
    assert value(after, "redis_keyspace_hits_total") - value(before, "redis_keyspace_hits_total") == 1
    assert value(after, "redis_keyspace_misses_total") - value(before, "redis_keyspace_misses_total") == 1
    # The histogram's +Inf bucket and count are the calls.
    calls = value(after, "redis_commands_total", cmd="set")
    assert value(after, "damselfly_command_latency_seconds_count", cmd="set") == calls
    assert value(after, "damselfly_command_latency_seconds_bucket", cmd="set", le="+Inf") == calls
    info = r.info("everything")
    assert value(after, "redis_keyspace_hits_total") == info["keyspace_hits"]
    assert value(after, "redis_expired_keys_total") == info["expired_keys"]
    shards = {s.labels["shard"] for s in after["damselfly_shard_keys"].samples}
    assert shards == {"0", "1"}
    assert sum(s.value for s in after["damselfly_shard_keys"].samples) == 101
    # The Lua heap: what a script leaves in a library shows, as in INFO.
    r.function_load(
        "#!lua name=keeper\nlocal kept = {}\n"
        "redis.register_function{function_name='keep', callback=function(keys, args) "
        "for i = 1, 20000 do kept[#kept + 1] = string.rep('y', 100) .. i end return #kept end, flags={'no-writes'}}",
        replace=True,
    )
    lua_before = value(scrape(mport), "redis_memory_used_lua_bytes")
    assert r.fcall("keep", 0) == 20000
    lua_after = value(scrape(mport), "redis_memory_used_lua_bytes")
    assert lua_after > lua_before + 2_000_000
    assert lua_after == r.info("memory")["used_memory_lua"]
