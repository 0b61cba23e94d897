"""redis-py RedisCluster, redis-cli -c / --cluster check and
redis-benchmark --cluster against a 3-node damselfly cluster."""

import shutil
import subprocess

import pytest
import redis
from redis.cluster import key_slot

from conftest import _wait


@pytest.fixture
def rc(cluster):
    client = cluster.client()
    client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    yield client
    client.close()


def owner_port(cluster, slot):
    for start, end, *nodes in cluster.nodes[0].client().execute_command("CLUSTER SLOTS"):
        if start <= slot <= end:
            return int(nodes[0][1])
    raise AssertionError(f"slot {slot} not served")


def test_strings_spread_over_every_node(cluster, rc):
    for i in range(200):
        rc.set(f"key:{i}", i)
    for i in range(200):
        assert rc.get(f"key:{i}") == str(i)
    assert rc.incrby("key:7", 5) == 12
    # The keys really are spread: every node holds some of them.
    sizes = [n.client().dbsize() for n in cluster.nodes]
    assert all(s > 0 for s in sizes) and sum(sizes) == 200, sizes
    # Explicit targets: redis-py 8 takes a command's fan-out from the tips in
    # the server's COMMAND reply, and ours lists none yet (see README).
    assert rc.dbsize(target_nodes=redis.RedisCluster.PRIMARIES) == 200
    # Multi-key commands across slots are split by the client.
    rc.mset_nonatomic({"a": "1", "b": "2", "c": "3"})
    assert rc.mget_nonatomic(["a", "b", "c"]) == ["1", "2", "3"]
    # One slot through hash tags: native MSET/MGET.
    rc.mset({"{user:1}name": "ann", "{user:1}city": "oslo"})
    assert rc.mget("{user:1}name", "{user:1}city") == ["ann", "oslo"]
    assert rc.delete("{user:1}name", "{user:1}city") == 2
    with pytest.raises(redis.RedisClusterException):
        rc.mget("a", "b")
    rc.set("ttl", "x", ex=100)
    assert 0 < rc.ttl("ttl") <= 100


def test_hashes(rc):
    for i in range(50):
        rc.hset(f"order:{i}", mapping={"user": f"u{i}", "total": i * 10, "status": "new"})
    assert rc.hgetall("order:3") == {"user": "u3", "total": "30", "status": "new"}
    assert rc.hincrby("order:3", "total", 5) == 35
    assert rc.hmget("order:49", ["user", "missing"]) == ["u49", None]
    assert rc.hdel("order:49", "status") == 1
    assert rc.hlen("order:49") == 2


def test_sorted_sets(rc):
    for user in range(20):
        key = f"rank:{{user{user}}}"
        rc.zadd(key, {"books": 3, "games": 1, "music": 2})
        rc.zincrby(key, 5, "games")
        assert rc.zrevrange(key, 0, -1, withscores=True) == [("games", 6.0), ("books", 3.0), ("music", 2.0)]
        assert rc.zscore(key, "music") == 2.0
        assert rc.zrank(key, "books") == 1


def test_json(rc):
    for i in range(20):
        rc.json().set(f"cart:{i}", "$", {"user": i, "items": [{"sku": "a", "qty": 1}]})
        rc.json().arrappend(f"cart:{i}", "$.items", {"sku": "b", "qty": 2})
    assert rc.json().get("cart:5", "$.items[*].sku") == ["a", "b"]
    assert rc.json().numincrby("cart:5", "$.items[1].qty", 3) == [5]
    assert rc.json().get("cart:5") == {"user": 5, "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 5}]}


def test_script_with_hash_tagged_keys(rc):
    move = rc.register_script(
        """
        local have = tonumber(redis.call('GET', KEYS[1]) or '0')
        local n = tonumber(ARGV[1])
        if have < n then return -1 end
        redis.call('DECRBY', KEYS[1], n)
        return redis.call('INCRBY', KEYS[2], n)
        """
    )
    for user in range(10):
        src, dst = f"{{acct{user}}}:checking", f"{{acct{user}}}:savings"
        rc.set(src, 100)
        assert move(keys=[src, dst], args=[30]) == 30
        assert move(keys=[src, dst], args=[30]) == 60
        assert move(keys=[src, dst], args=[50]) == -1
        assert rc.mget(src, dst) == ["40", "60"]


def test_pipeline(cluster, rc):
    with rc.pipeline() as pipe:
        for i in range(100):
            pipe.set(f"p:{i}", i)
            pipe.incr(f"p:{i}")
        replies = pipe.execute()
    assert len(replies) == 200
    assert replies[0::2] == [True] * 100
    assert replies[1::2] == [i + 1 for i in range(100)]
    with rc.pipeline() as pipe:
        for i in range(100):
            pipe.get(f"p:{i}")
        assert pipe.execute() == [str(i + 1) for i in range(100)]


def test_topology_refresh_after_slots_move(cluster, rc):
    # Slot moves do not carry data yet, so move a slot that holds no keys.
    key = "moving-key"
    slot = key_slot(key.encode())
    assert rc.cluster_countkeysinslot(slot) == 0
    old = owner_port(cluster, slot)
    new_node = next(n for n in cluster.nodes if n.port != old)
    rc.get(key)  # the client's slot map now points at the old owner
    cluster.admin("assign-slots", new_node.addr(), str(slot))
    _wait("every node to see the new owner", 20,
          lambda: all(owner_port_from(n, slot) == new_node.port for n in cluster.nodes))
    # The old owner answers MOVED; the client follows it and refreshes its map.
    with pytest.raises(redis.exceptions.MovedError) as moved:
        cluster.nodes[[n.port for n in cluster.nodes].index(old)].client().get(key)
    assert str(moved.value) == f"{slot} 127.0.0.1:{new_node.port}"
    rc.set(key, "after-move")
    assert rc.get(key) == "after-move"
    assert rc.get_node_from_key(key).port == new_node.port
    assert new_node.client().get(key) == "after-move"
    # Move it back (it holds a key now, so delete it first).
    rc.delete(key)
    cluster.admin("assign-slots", f"127.0.0.1:{old}", str(slot))
    _wait("every node to see the slot back", 20,
          lambda: all(owner_port_from(n, slot) == old for n in cluster.nodes))
    rc.set(key, "back")
    assert rc.get_node_from_key(key).port == old
    assert rc.get(key) == "back"


def owner_port_from(node, slot):
    for start, end, *nodes in node.client().execute_command("CLUSTER SLOTS"):
        if start <= slot <= end:
            return int(nodes[0][1])
    return None


def tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian package redis-tools; scripts/test installs it)")
    return path


def run(*args, timeout=120, stdin=None):
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=stdin)
    return out.returncode, out.stdout, out.stderr


def test_redis_cli_follows_redirects(cluster):
    cli = tool("redis-cli")
    first = cluster.nodes[0]
    # Keys owned by every node, all through the first one.
    keys = {}
    i = 0
    while len(set(keys.values())) < 3:
        k = f"cli:{i}"
        keys[k] = owner_port(cluster, key_slot(k.encode()))
        i += 1
    for k in keys:
        code, out, err = run(cli, "-c", "-p", str(first.port), "SET", k, f"v-{k}")
        assert code == 0 and out.strip() == "OK", out + err
    for k, port in keys.items():
        code, out, err = run(cli, "-c", "-p", str(first.port), "GET", k)
        assert code == 0 and out.strip() == f"v-{k}", out + err
        node = next(n for n in cluster.nodes if n.port == port)
        assert node.client().get(k) == f"v-{k}"
    # Without -c the redirect is shown as the node's reply.
    other = next(k for k, p in keys.items() if p != first.port)
    code, out, err = run(cli, "-p", str(first.port), "GET", other)
    assert "MOVED" in out + err, out + err


def test_redis_cli_cluster_check(cluster):
    cli = tool("redis-cli")
    code, out, err = run(cli, "--cluster", "check", cluster.nodes[1].addr())
    assert code == 0, out + err
    assert "[OK] All nodes agree about slots configuration." in out, out
    assert "[OK] All 16384 slots covered." in out, out
    assert "3 masters" in out or out.count("M: ") == 3, out


def test_redis_benchmark_cluster(cluster, rc):
    bench = tool("redis-benchmark")
    code, out, err = run(bench, "--cluster", "-h", "127.0.0.1", "-p", str(cluster.nodes[0].port),
                         "-t", "set,get,incr", "-n", "3000", "-c", "10", "-q", timeout=120)
    assert code == 0, out + err
    text = out + err
    assert "error" not in text.lower(), text
    for test in ("SET", "GET", "INCR"):
        assert f"{test}:" in text, text
    assert rc.dbsize(target_nodes=redis.RedisCluster.PRIMARIES) > 0


def test_transaction_in_one_slot(rc):
    with rc.pipeline(transaction=True) as pipe:
        pipe.set("{cart:9}total", 10)
        pipe.incrby("{cart:9}total", 5)
        pipe.hset("{cart:9}items", "sku-1", 2)
        # redis-py's cluster transactions hand SET's +OK back as "OK"
        # (its standalone ones as True): the server's reply is the same.
        ok, total, added = pipe.execute()
        assert ok in (True, "OK") and (total, added) == (15, 1)
    assert rc.get("{cart:9}total") == "15"
    # WATCH: a change by someone else aborts the transaction.
    with rc.pipeline(transaction=True) as pipe:
        pipe.watch("{cart:9}total")
        rc.set("{cart:9}total", 99)
        pipe.multi()
        pipe.set("{cart:9}total", 0)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert rc.get("{cart:9}total") == "99"
