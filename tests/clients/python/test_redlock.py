"""RedLock across independent standalone damselfly nodes with pottery's
Redlock: a lock is only as safe as a majority of independent primaries."""

import subprocess
import sys
import threading
import time

import pytest
from redis.backoff import NoBackoff
from redis.retry import Retry
from pottery import ReleaseUnlockedLock, Redlock, TooManyExtensions

from conftest import require

SCRIPTS = "pottery's Redlock extends and releases with Lua scripts"


def majority(flags):
    flags = list(flags)
    return sum(flags) > len(flags) // 2


@pytest.fixture(params=[3, 5], ids=["3-nodes", "5-nodes"])
def cluster_of_masters(request, start_nodes):
    """n independent nodes and one redis-py client per node."""
    nodes = start_nodes(request.param)
    # No retries and short timeouts: a lock client must not hang on a dead
    # node (redis-py would otherwise retry each failed call with backoff).
    clients = [node.client(retry=Retry(NoBackoff(), 0), socket_connect_timeout=1) for node in nodes]
    yield nodes, clients
    for c in clients:
        c.close()


def test_mutual_exclusion_no_lost_updates(cluster_of_masters):
    nodes, clients = cluster_of_masters
    require(clients[0], "eval", SCRIPTS)
    counter = clients[0]  # the shared resource lives on one node
    counter.set("counter", 0)
    contenders, rounds = 20, 3
    inside, most_inside = 0, 0
    guard = threading.Lock()
    errors = []

    def contender():
        try:
            lock = Redlock(key="counter", masters=set(clients), auto_release_time=10)
            for _ in range(rounds):
                with lock:
                    nonlocal inside, most_inside
                    with guard:
                        inside += 1
                        most_inside = max(most_inside, inside)
                    value = int(counter.get("counter"))  # read ...
                    time.sleep(0.001)  # ... widen the race window ...
                    counter.set("counter", value + 1)  # ... write back
                    with guard:
                        inside -= 1
        except Exception as e:  # reported below, with the thread's failure
            errors.append(e)

    threads = [threading.Thread(target=contender) for _ in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "contenders did not finish in time"
    assert errors == []
    assert most_inside == 1
    assert int(counter.get("counter")) == contenders * rounds
    # released: a fresh contender gets it at once
    last = Redlock(key="counter", masters=set(clients), auto_release_time=10)
    assert last.acquire(blocking=False)
    last.release()


def test_extension(cluster_of_masters):
    nodes, clients = cluster_of_masters
    require(clients[0], "eval", SCRIPTS)
    lock = Redlock(key="ext", masters=set(clients), auto_release_time=1.0, num_extensions=2)
    rival = Redlock(key="ext", masters=set(clients), auto_release_time=1.0)
    assert lock.acquire(blocking=False)
    time.sleep(0.6)
    lock.extend()
    assert lock.locked() > 0.8
    time.sleep(0.6)  # past the first lease: only the extension keeps it
    assert rival.acquire(blocking=False) is False
    assert lock.locked() > 0
    lock.extend()
    with pytest.raises(TooManyExtensions):
        lock.extend()
    lock.release()
    assert rival.acquire(blocking=False) is True
    rival.release()


def test_release_by_owner_only(cluster_of_masters):
    nodes, clients = cluster_of_masters
    require(clients[0], "eval", SCRIPTS)
    owner = Redlock(key="own", masters=set(clients), auto_release_time=10)
    other = Redlock(key="own", masters=set(clients), auto_release_time=10)
    assert owner.acquire(blocking=False)
    tokens = [c.get("redlock:own") for c in clients]
    assert majority(t is not None for t in tokens)
    with pytest.raises(ReleaseUnlockedLock):
        other.release()
    # no node that held the owner's value lost it (acquire may return once a
    # majority voted, with the last votes still landing), and the lock still
    # excludes
    after = [c.get("redlock:own") for c in clients]
    for before_value, after_value in zip(tokens, after):
        if before_value is not None:
            assert after_value == before_value
    assert all(v is None or v in tokens for v in after)
    assert other.acquire(blocking=False) is False
    assert owner.locked() > 0
    owner.release()
    assert other.acquire(blocking=False) is True
    other.release()


HOLDER = """
import sys, time
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from pottery import Redlock
ports = [int(p) for p in sys.argv[1:]]
masters = {redis.Redis(host="127.0.0.1", port=p) for p in ports}
lock = Redlock(key="job", masters=masters, auto_release_time=1.0)
assert lock.acquire(blocking=False)
print("held", flush=True)
time.sleep(60)  # never releases, never extends: killed by the test
"""


def test_auto_expiry_after_holder_dies(cluster_of_masters):
    # Runs without scripting: acquiring is SET NX PX, and the lock must
    # disappear by itself when its holder is gone.
    nodes, clients = cluster_of_masters
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, *[str(n.port) for n in nodes]],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        held_since = time.monotonic()
        assert majority(0 < c.pttl("redlock:job") <= 1000 for c in clients)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    waiter = Redlock(key="job", masters=set(clients), auto_release_time=5)
    assert waiter.acquire(blocking=False) is False
    assert waiter.acquire(timeout=5) is True
    waited = time.monotonic() - held_since
    assert 0.9 <= waited < 5
    assert majority(c.pttl("redlock:job") > 1000 for c in clients)  # the waiter's lease


def test_keeps_working_with_a_minority_killed(cluster_of_masters):
    nodes, clients = cluster_of_masters
    require(clients[0], "eval", SCRIPTS)
    for node in nodes[: (len(nodes) - 1) // 2]:  # 1 of 3, 2 of 5
        node.kill()
    alive = [c for n, c in zip(nodes, clients) if n.alive()]
    masters = set(clients)  # clients still list the dead nodes, as in production
    counter = alive[0]
    counter.set("counter", 0)

    def contender():
        lock = Redlock(key="survive", masters=masters, auto_release_time=10)
        for _ in range(3):
            with lock:
                counter.set("counter", int(counter.get("counter")) + 1)

    threads = [threading.Thread(target=contender) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert int(counter.get("counter")) == 15

    a = Redlock(key="solo", masters=masters, auto_release_time=10)
    b = Redlock(key="solo", masters=masters, auto_release_time=10)
    assert a.acquire(blocking=False)
    assert b.acquire(blocking=False) is False
    a.extend()
    a.release()
    assert b.acquire(blocking=False)
    b.release()
