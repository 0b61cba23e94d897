"""The e-commerce flows end to end with redis-py: order caching, per-user
category rankings, a flash sale, and a lock-protected purchase."""

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import redis

from conftest import require

BUYERS = 500
UNITS = 100
WORKERS = 50  # threads, each borrowing one of at most 50 pooled connections

ORDER = {"id": 1001, "user": 42, "items": [{"sku": "sku-123", "qty": 2, "price": 29.95}], "total": 59.9}


def pool_client(server):
    pool = redis.BlockingConnectionPool(
        host="127.0.0.1", port=server.port, max_connections=WORKERS, timeout=30, decode_responses=True
    )
    return redis.Redis(connection_pool=pool)


def test_order_cache_as_string_hash_and_json(r):
    # string: the serialized order with a TTL
    assert r.set("order:1001", json.dumps(ORDER), ex=3600)
    assert json.loads(r.get("order:1001")) == ORDER
    assert 3590 <= r.ttl("order:1001") <= 3600
    # hash: the fields a page shows, updated in place
    r.hset("order:1001:h", mapping={"user": 42, "total": "59.90", "status": "new"})
    r.hset("order:1001:h", "status", "paid")
    assert r.hgetall("order:1001:h") == {"user": "42", "total": "59.90", "status": "paid"}
    # JSON: the document, read and updated by path
    assert r.json().set("order:1001:j", "$", ORDER)
    r.json().set("order:1001:j", "$.status", "paid")
    r.json().numincrby("order:1001:j", "$.items[0].qty", 1)
    assert r.json().get("order:1001:j", "$.items[0].qty", "$.status") == {
        "$.items[0].qty": [3],
        "$.status": ["paid"],
    }
    r.expire("order:1001:j", 3600)
    # a cache miss reads the source of truth and fills the cache
    assert r.get("order:2002") is None
    r.set("order:2002", json.dumps({"id": 2002}), ex=3600, nx=True)
    assert json.loads(r.get("order:2002")) == {"id": 2002}


def test_per_user_category_rankings(r):
    require(r, "zincrby", "category rankings use sorted sets")
    views = [("books", 3), ("games", 5), ("books", 4), ("garden", 1), ("games", 1)]
    for category, n in views:
        r.zincrby("user:42:categories", n, category)
    assert r.zrevrange("user:42:categories", 0, 1, withscores=True) == [("books", 7.0), ("games", 6.0)]
    assert r.zrevrange("user:42:categories", 0, -1) == ["books", "games", "garden"]


def test_flash_sale_with_decr(server, r):
    r.set("stock:flash", UNITS)
    shop = pool_client(server)

    def buy(buyer):
        left = shop.decr("stock:flash")
        if left >= 0:
            shop.hset("flash:orders", f"buyer:{buyer}", 1)
            return True
        shop.incr("stock:flash")  # sold out: give the unit back
        return False

    with ThreadPoolExecutor(max_workers=WORKERS) as ex:
        results = list(ex.map(buy, range(BUYERS), timeout=120))
    shop.close()
    assert results.count(True) == UNITS
    assert r.hlen("flash:orders") == UNITS
    assert r.get("stock:flash") == "0"


SELL_ONE = """
local stock = tonumber(redis.call('GET', KEYS[1]) or '0')
if stock <= 0 then
  return 0
end
redis.call('DECR', KEYS[1])
redis.call('HSET', KEYS[2], ARGV[1], 1)
return 1
"""


def test_flash_sale_with_lua_never_oversells(server, r):
    require(r, "eval", "the Lua flash sale")
    r.set("stock:lua", UNITS)
    shop = pool_client(server)
    sell = shop.register_script(SELL_ONE)

    def buy(buyer):
        return sell(keys=["stock:lua", "lua:orders"], args=[f"buyer:{buyer}"]) == 1

    with ThreadPoolExecutor(max_workers=WORKERS) as ex:
        results = list(ex.map(buy, range(BUYERS), timeout=120))
    shop.close()
    assert results.count(True) == UNITS
    assert r.hlen("lua:orders") == UNITS
    assert r.get("stock:lua") == "0"  # never below zero


def test_lock_set_nx_ex(server, r):
    other = server.client()
    token = str(uuid.uuid4())
    assert r.set("lock:checkout:42", token, nx=True, ex=1) is True
    assert other.set("lock:checkout:42", "someone-else", nx=True, ex=1) is None
    assert r.get("lock:checkout:42") == token
    assert 0 < r.pttl("lock:checkout:42") <= 1000
    # a holder that never releases loses the lock when it expires
    deadline = time.monotonic() + 5
    while other.set("lock:checkout:42", "someone-else", nx=True, ex=10) is None:
        assert time.monotonic() < deadline, "lock did not expire"
        time.sleep(0.05)
    assert r.get("lock:checkout:42") == "someone-else"
    other.close()


RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def test_lock_protected_purchase(server, r):
    require(r, "eval", "the compare-and-delete release")
    r.set("stock:last", 5)
    shop = pool_client(server)
    release = shop.register_script(RELEASE)
    bought, inside, most_inside = [], 0, 0
    guard = threading.Lock()

    def purchase(buyer):
        nonlocal inside, most_inside
        token = str(uuid.uuid4())
        deadline = time.monotonic() + 60
        while not shop.set("lock:sku:last", token, nx=True, ex=10):
            assert time.monotonic() < deadline
            time.sleep(0.002)
        try:
            with guard:
                inside += 1
                most_inside = max(most_inside, inside)
            stock = int(shop.get("stock:last"))
            if stock > 0:
                shop.set("stock:last", stock - 1)
                with guard:
                    bought.append(buyer)
            with guard:
                inside -= 1
        finally:
            assert release(keys=["lock:sku:last"], args=[token]) == 1

    with ThreadPoolExecutor(max_workers=20) as ex:
        list(ex.map(purchase, range(40), timeout=120))
    assert most_inside == 1
    assert len(bought) == 5
    assert r.get("stock:last") == "0"

    # only the owner's token releases the lock
    assert shop.set("lock:sku:last", "mine", nx=True, ex=10)
    assert release(keys=["lock:sku:last"], args=["not-mine"]) == 0
    assert r.get("lock:sku:last") == "mine"
    assert release(keys=["lock:sku:last"], args=["mine"]) == 1
    assert r.exists("lock:sku:last") == 0
    shop.close()
