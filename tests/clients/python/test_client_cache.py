"""Client-side caching through redis-py as RESP2 caches use it: a pub/sub
connection subscribed to `__redis__:invalidate` receives the invalidations
of a tracking connection that redirects to it (CLIENT TRACKING ... REDIRECT),
one message per changed key and a null one after a flush; BCAST with a
prefix reports every changed key under it. RESP2 on both (redis-py 8
speaks RESP3 by default, where the invalidations are pushes its pub/sub
reader hands to its own cache machinery).

redis-py's own cache (`cache_config`) refuses servers that report a version
below 7.4 in HELLO, and this server reports 7.2.4, so it is not used here."""

import itertools

TIMEOUT = 10.0


def invalidations(pubsub, n):
    """The next `n` invalidation messages' data (keys, or None)."""
    got = []
    while len(got) < n:
        m = pubsub.get_message(ignore_subscribe_messages=True, timeout=TIMEOUT)
        assert m is not None, f"no invalidation after {got}"
        assert m["channel"] == "__redis__:invalidate"
        got.append(m["data"])
    return got


NAMES = itertools.count()


def tracking_pair(server, *options):
    """A subscriber to the invalidation channel, and a tracking connection
    redirecting to it; and the subscriber's client id."""
    name = f"cc-listener-{next(NAMES)}"
    listener = server.client(client_name=name, protocol=2).pubsub()
    listener.subscribe("__redis__:invalidate")
    assert listener.get_message(timeout=TIMEOUT)["type"] == "subscribe"
    listener_id = [c["id"] for c in server.client().client_list() if c["name"] == name][0]
    cache = server.client(single_connection_client=True, protocol=2)
    assert cache.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", listener_id, *options) == "OK"
    assert cache.execute_command("CLIENT", "GETREDIR") == int(listener_id)
    return listener, cache, int(listener_id)


def test_redirected_invalidations_reach_the_subscriber(server):
    listener, cache, _ = tracking_pair(server)
    other = server.client()
    other.mset({"cc:a": "1", "cc:b": "2"})
    assert cache.mget("cc:a", "cc:b") == ["1", "2"]
    assert other.info("stats")["tracking_total_keys"] >= 2
    other.set("cc:a", "3")
    assert invalidations(listener, 1) == [["cc:a"]]
    other.delete("cc:b")
    assert invalidations(listener, 1) == [["cc:b"]]
    assert cache.get("cc:a") == "3"
    other.flushall()
    assert invalidations(listener, 1) == [None]
    cache.close()
    listener.close()


def test_bcast_reports_every_key_under_its_prefix(server):
    listener, cache, listener_id = tracking_pair(server, "BCAST", "PREFIX", "user:")
    other = server.client()
    other.set("order:1", "x")
    other.set("user:1", "x")
    assert invalidations(listener, 1) == [["user:1"]]
    info = cache.execute_command("CLIENT", "TRACKINGINFO")
    assert info == ["flags", ["on", "bcast"], "redirect", listener_id, "prefixes", ["user:"]]
    cache.close()
    listener.close()
