"""redis-py's standalone client against one damselfly process: every data
type the server has, pipelines, WATCH transactions, RESP3."""

import pytest
import redis

from conftest import require


def test_strings(r):
    assert r.set("greeting", "hello") is True
    assert r.get("greeting") == "hello"
    assert r.append("greeting", " world") == 11
    assert r.getrange("greeting", 0, 4) == "hello"
    assert r.strlen("greeting") == 11
    assert r.set("greeting", "x", nx=True) is None
    assert r.set("missing", "x", xx=True) is None
    assert r.incr("counter") == 1
    assert r.incrby("counter", 41) == 42
    assert r.decr("counter") == 41
    assert r.incrbyfloat("price", 2.5) == 2.5
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "b", "nope") == ["1", "2", None]
    assert r.set("session", "s", ex=100) is True
    assert 0 < r.ttl("session") <= 100
    assert r.set("short", "s", px=50_000) is True
    assert 0 < r.pttl("short") <= 50_000
    assert r.getdel("a") == "1"
    assert r.exists("a", "b") == 1
    assert r.delete("b", "greeting") == 2
    assert r.get("b") is None


def test_bytes_roundtrip(server):
    raw = server.client(decode_responses=False)
    value = bytes(range(256)) * 4
    assert raw.set(b"bin\x00key", value)
    assert raw.get(b"bin\x00key") == value
    raw.close()


def test_keys_and_scan(r):
    r.mset({f"user:{i}": str(i) for i in range(300)})
    r.set("other", "1")
    assert sorted(r.scan_iter(match="user:*", count=50)) == sorted(f"user:{i}" for i in range(300))
    assert r.type("user:1") == "string"
    assert r.expire("user:1", 100) is True
    assert r.persist("user:1") is True
    assert r.ttl("user:1") == -1
    assert r.rename("user:1", "user:one") is True
    assert r.get("user:one") == "1"
    dumped = r.dump("user:2")
    r.restore("copy", 0, dumped)
    assert r.get("copy") == "2"
    assert r.dbsize() == 302


def test_hashes(r):
    assert r.hset("order:1", mapping={"user": "42", "total": "59.90", "status": "new"}) == 3
    assert r.hget("order:1", "status") == "new"
    assert r.hset("order:1", "status", "paid") == 0
    assert r.hgetall("order:1") == {"user": "42", "total": "59.90", "status": "paid"}
    assert r.hmget("order:1", ["user", "nope"]) == ["42", None]
    assert r.hincrby("order:1", "items", 3) == 3
    assert r.hincrbyfloat("order:1", "total", 0.1) == pytest.approx(60.0)
    assert r.hexists("order:1", "user") is True
    assert r.hdel("order:1", "user", "nope") == 1
    assert sorted(r.hkeys("order:1")) == ["items", "status", "total"]
    assert r.hlen("order:1") == 3
    assert r.hsetnx("order:1", "status", "x") == 0
    fields = dict(r.hscan_iter("order:1"))
    assert fields["status"] == "paid"


def test_json(r):
    doc = {"user": 42, "items": [{"sku": "a", "qty": 2}], "total": 59.9, "paid": False}
    assert r.json().set("order:j", "$", doc) is True
    assert r.json().get("order:j") == doc
    assert r.json().get("order:j", "$.items[0].qty") == [2]
    assert r.json().set("order:j", "$.paid", True) is True
    assert r.json().numincrby("order:j", "$.items[0].qty", 3) == [5]
    assert r.json().arrappend("order:j", "$.items", {"sku": "b", "qty": 1}) == [2]
    assert r.json().arrlen("order:j", "$.items") == [2]
    assert r.json().type("order:j", "$.total") == ["number"]
    assert sorted(r.json().objkeys("order:j", "$")[0]) == ["items", "paid", "total", "user"]
    assert r.json().delete("order:j", "$.total") == 1
    assert r.json().get("order:j") == {
        "user": 42,
        "items": [{"sku": "a", "qty": 5}, {"sku": "b", "qty": 1}],
        "paid": True,
    }
    r.json().set("order:k", "$", {"user": 7})
    assert r.json().mget(["order:j", "order:k"], "$.user") == [[42], [7]]


def test_sorted_sets(r):
    require(r, "zadd", "sorted sets")
    assert r.zadd("board", {"ann": 10, "bob": 20, "cid": 15}) == 3
    assert r.zincrby("board", 7, "ann") == 17.0
    assert r.zrevrange("board", 0, -1, withscores=True) == [("bob", 20.0), ("ann", 17.0), ("cid", 15.0)]
    assert r.zrange("board", 0, 0) == ["cid"]
    assert r.zscore("board", "bob") == 20.0
    assert r.zrank("board", "bob") == 2
    assert r.zcard("board") == 3
    assert r.zrangebyscore("board", 16, 20) == ["ann", "bob"]
    assert r.zrem("board", "cid") == 1
    assert r.zcount("board", "-inf", "+inf") == 2


def test_scripts(r):
    require(r, "eval", "scripting")
    add = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert add(keys=["n"], args=[5]) == 5
    r.script_flush()  # the Script object reloads it on NOSCRIPT
    assert add(keys=["n"], args=[2]) == 7
    pipe = r.pipeline()
    add(keys=["n"], args=[1], client=pipe)
    add(keys=["n"], args=[1], client=pipe)
    assert pipe.execute() == [8, 9]


def test_pipeline_without_transaction(r):
    pipe = r.pipeline(transaction=False)
    for i in range(100):
        pipe.set(f"k{i}", i)
    pipe.incr("k0").hset("h", "f", "v").get("k99").get("nope")
    replies = pipe.execute()
    assert replies[:100] == [True] * 100
    assert replies[100:] == [1, 1, "99", None]


def test_pipeline_reports_errors_in_place(r):
    r.set("s", "text")
    pipe = r.pipeline(transaction=False)
    pipe.incr("s").set("t", "1").get("t")
    replies = pipe.execute(raise_on_error=False)
    assert isinstance(replies[0], redis.ResponseError)
    assert replies[1:] == [True, "1"]


def test_transactional_pipeline(r):
    with r.pipeline() as pipe:
        pipe.set("balance", 100).decrby("balance", 30).hset("audit", "last", "-30").get("balance")
        assert pipe.execute() == [True, 70, 1, "70"]


def test_watch_transaction_retries_on_conflict(r, server):
    r.set("stock", 10)
    other = server.client()
    attempts = 0

    def buy(pipe):
        nonlocal attempts
        attempts += 1
        stock = int(pipe.get("stock"))
        if attempts == 1:
            other.decr("stock")  # a concurrent write between WATCH and EXEC
        pipe.multi()
        pipe.set("stock", stock - 1)

    r.transaction(buy, "stock")
    assert attempts == 2
    assert r.get("stock") == "8"
    other.close()


def test_watch_abort_raises(r, server):
    r.set("k", "1")
    other = server.client()
    with r.pipeline() as pipe:
        pipe.watch("k")
        other.set("k", "2")
        pipe.multi()
        pipe.set("k", "3")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("k") == "2"
    other.close()


def test_resp3(server):
    r3 = server.client(protocol=3)
    r3.flushall()
    r3.hset("h", mapping={"a": "1", "b": "2"})
    assert r3.hgetall("h") == {"a": "1", "b": "2"}
    assert r3.set("f", "1.5") is True
    assert r3.incrbyfloat("f", 1) == 2.5
    assert r3.json().set("j", "$", {"x": [1, 2]}) is True
    assert r3.json().get("j", "$.x") == [[1, 2]]
    with r3.pipeline() as pipe:
        pipe.incr("c").incr("c").exists("c", "nope")
        assert pipe.execute() == [1, 2, 1]
    assert r3.execute_command("HELLO", 3)["proto"] == 3
    r3.close()


