"""Automatic failover as redis-py's RedisCluster sees it: 3 primaries with
a replica each; counters are INCRed through the cluster client's routing,
each INCR followed by WAIT 1 on the same connection; a random primary is
killed with SIGKILL five times over, and brought back (empty) each time.
Every INCR that WAIT confirmed is there at the end, no counter is above
the INCRs attempted, every slot is served, and the killed nodes rejoin as
replicas."""

import random

import pytest
import redis

from conftest import ClusterNode, Cluster, _wait

KILLS = 5
COUNTERS = 10_000
# INCRs per round while every primary has its replica, and while the
# killed one's slots move (its promoted replica has no replica of its own
# until the victim is back, so WAIT gives up after WAIT_MS there).
INCRS_PER_ROUND = 1_500
INCRS_IN_FAILOVER = 300
WAIT_MS = 100


def _nodes_lines(node):
    return str(node.client().execute_command("CLUSTER", "NODES"))


def _primary_ports(node):
    text = _nodes_lines(node)
    ports = set()
    for line in text.splitlines():
        f = line.split()
        if len(f) > 7 and "master" in f[2] and "fail" not in f[2] and len(f) > 8:
            ports.add(int(f[1].split("@")[0].rsplit(":", 1)[1]))
    return ports


@pytest.fixture
def replicated(tmp_path_factory):
    nodes = []
    try:
        for i in range(6):
            nodes.append(ClusterNode(str(tmp_path_factory.mktemp(f"failover-node{i}"))).start("--save", ""))
        c = Cluster(nodes[:3])
        c.admin("create", *[n.addr() for n in nodes[:3]])
        c.wait_ok()
        for primary, replica in zip(nodes[:3], nodes[3:]):
            c.admin("add-replica", replica.addr(), "--of", primary.addr())
        _wait("the replicas to sync", 30,
              lambda: all("connected" in str(n.client().execute_command("ROLE")) for n in nodes[3:]))
        c.nodes = nodes
        yield c
    finally:
        for n in nodes:
            n.stop()


def test_killed_primaries_fail_over_without_losing_confirmed_writes(replicated):
    c = replicated
    rng = random.Random()
    rc = c.client(socket_timeout=5)
    attempts = [0] * COUNTERS
    confirmed = [0] * COUNTERS
    order = list(range(COUNTERS))
    rng.shuffle(order)
    cursor = [0]

    def incr_round(n=INCRS_PER_ROUND):
        for _ in range(n):
            i = order[cursor[0] % COUNTERS]
            cursor[0] += 1
            key = f"counter:{i}"
            try:
                # The cluster client's routing; INCR and WAIT on one
                # connection of that node (WAIT counts the connection's
                # own writes).
                node = rc.get_node_from_key(key)
                pipe = node.redis_connection.pipeline(transaction=False)
                pipe.incr(key)
                pipe.execute_command("WAIT", 1, WAIT_MS)
                attempts[i] += 1
                incr, acked = pipe.execute(raise_on_error=False)
                if isinstance(incr, int) and isinstance(acked, int) and acked >= 1:
                    confirmed[i] += 1
                if not isinstance(incr, int):
                    # MOVED, CLUSTERDOWN, ...: learn the slots again.
                    rc.nodes_manager.initialize()
            except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterDownError, redis.ResponseError):
                try:
                    rc.nodes_manager.initialize()
                except redis.RedisError:
                    pass

    by_port = {n.port: n for n in c.nodes}
    for round_ in range(KILLS):
        incr_round()
        live = [n for n in c.nodes if n.proc.poll() is None]
        primaries = _primary_ports(live[0])
        assert len(primaries) == 3, f"round {round_}: primaries {primaries}"
        victim = by_port[rng.choice(sorted(primaries))]
        victim_id = str(victim.client().execute_command("CLUSTER", "MYID"))
        victim.stop()
        live = [n for n in c.nodes if n is not victim]
        # Writes go on (and fail for a while) during the failover.
        incr_round(INCRS_IN_FAILOVER)
        _wait(f"round {round_}: every slot served by the survivors", 30,
              lambda: all(_parse(n.client().execute_command("CLUSTER", "INFO")).get("cluster_state") == "ok" for n in live)
              and all(victim.port not in _primary_ports(n) and len(_primary_ports(n)) == 3 for n in live))
        # The victim comes back empty and rejoins as a replica.
        victim.restart("--save", "")
        _wait(f"round {round_}: the victim to rejoin as a replica", 30,
              lambda: "connected" in str(victim.client().execute_command("ROLE"))
              and all(_line(n, victim_id).split()[2].find("slave") >= 0 and "fail" not in _line(n, victim_id).split()[2]
                      for n in c.nodes))
        rc.nodes_manager.initialize()
    incr_round()

    for i in range(COUNTERS):
        v = int(rc.get(f"counter:{i}") or 0)
        assert v >= confirmed[i], f"counter:{i} is {v}, but {confirmed[i]} INCRs were confirmed by WAIT"
        assert v <= attempts[i], f"counter:{i} is {v}, above the {attempts[i]} INCRs attempted"
    total_attempts, total_confirmed = sum(attempts), sum(confirmed)
    print(f"{total_attempts} INCRs attempted, {total_confirmed} confirmed by WAIT, {KILLS} primaries killed")
    assert total_confirmed > total_attempts // 2, f"too few writes confirmed: {total_confirmed}/{total_attempts}"


def _parse(info):
    if isinstance(info, dict):
        return info
    return dict(line.split(":", 1) for line in info.splitlines() if ":" in line)


def _line(node, node_id):
    for line in _nodes_lines(node).splitlines():
        if line.startswith(node_id):
            return line
    return "- - -"
