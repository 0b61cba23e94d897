"""Fixtures: real damselfly processes on random free loopback ports.

Every process a fixture starts is stopped by that fixture. The binary is
`$DAMSELFLY_BIN` (scripts/test points it at the freshly built one)."""

import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import redis

START_TIMEOUT = 10.0


def binary():
    path = os.environ.get("DAMSELFLY_BIN")
    if not path:
        raise RuntimeError("set DAMSELFLY_BIN to the damselfly binary (scripts/test does)")
    return path


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One standalone damselfly process."""

    def __init__(self):
        self.proc = None
        self.port = None
        # Snapshots land in a directory of the node's own, never in the
        # working directory (where the next node would load them).
        self._dir = tempfile.TemporaryDirectory(prefix="damselfly-node-")

    def start(self):
        for _ in range(5):
            port = _free_port()
            proc = subprocess.Popen(
                [binary(), "--port", str(port), "--bind", "127.0.0.1", "--loglevel", "warn",
                 "--dir", self._dir.name],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(16).startswith(b"+PONG"):
                            self.proc, self.port = proc, port
                            return self
                except OSError:
                    time.sleep(0.02)
            # the port was probably taken in between: try another one
            proc.kill()
            proc.wait(timeout=10)
        raise RuntimeError("damselfly did not start")

    def kill(self):
        """Stops the process abruptly (SIGKILL), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kwargs):
        kwargs.setdefault("decode_responses", True)
        kwargs.setdefault("socket_timeout", 30)
        kwargs.setdefault("socket_connect_timeout", 5)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)


@pytest.fixture(scope="session")
def server():
    node = Node().start()
    yield node
    node.kill()


@pytest.fixture
def r(server):
    client = server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def start_nodes():
    """Starts `n` independent standalone nodes; all are stopped afterwards."""
    started = []

    def start(n):
        nodes = [Node().start() for _ in range(n)]
        started.extend(nodes)
        return nodes

    yield start
    for node in started:
        node.kill()


_support = {}


def supports(client, command):
    """Whether the server knows `command` (asked once per command via COMMAND
    INFO, which answers nil for an unknown command)."""
    if command not in _support:
        # One argument "COMMAND INFO" keeps redis-py from parsing the reply
        # (its parser does not expect the nil entry of an unknown command).
        info = client.execute_command("COMMAND INFO", command)
        known = bool(info) and info[0] is not None
        _support[command] = known
    return _support[command]


def require(client, command, what):
    if not supports(client, command):
        pytest.skip(f"{what}: the server answers unknown command for {command.upper()}")


def cluster_admin():
    """target/debug/cluster-admin, next to the damselfly binary."""
    path = os.path.join(os.path.dirname(binary()), "cluster-admin")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} not found: build it first (cargo build -p cluster-admin)")
    return path


def _wait(what, timeout, check):
    """Polls `check` every 50 ms until it is true; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, redis.RedisError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


class ClusterNode:
    """One `damselfly --cluster` process; client and gRPC ports both free."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.proc = None
        self.port = None
        self.grpc_port = None

    def start(self, *extra):
        for _ in range(5):
            port, grpc = _free_port(), _free_port()
            if port == grpc:
                continue
            proc = subprocess.Popen(
                [binary(), "--port", str(port), "--bind", "127.0.0.1", "--loglevel", "warn",
                 "--dir", self.data_dir, "--cluster", "--cluster-grpc-port", str(grpc), *extra],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
            try:
                _wait("the node to answer PING", START_TIMEOUT,
                      lambda: proc.poll() is None and redis.Redis(
                          host="127.0.0.1", port=port, socket_timeout=1).ping())
                self.proc, self.port, self.grpc_port = proc, port, grpc
                return self
            except RuntimeError:
                # a port was probably taken in between: try others
                proc.kill()
                proc.wait(timeout=10)
        raise RuntimeError("damselfly --cluster did not start")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self, *extra):
        """Starts the node again on its ports with its directory."""
        self.proc = subprocess.Popen(
            [binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--loglevel", "warn",
             "--dir", self.data_dir, "--cluster", "--cluster-grpc-port", str(self.grpc_port), *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        _wait("the restarted node to answer PING", START_TIMEOUT,
              lambda: self.proc.poll() is None and redis.Redis(
                  host="127.0.0.1", port=self.port, socket_timeout=1).ping())
        return self

    def addr(self):
        return f"127.0.0.1:{self.port}"

    def client(self, **kwargs):
        kwargs.setdefault("decode_responses", True)
        kwargs.setdefault("socket_timeout", 10)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)


class Cluster:
    """A 3-node cluster formed by cluster-admin create."""

    def __init__(self, nodes):
        self.nodes = nodes

    def admin(self, *args, check=True):
        out = subprocess.run(
            [cluster_admin(), "--seed", self.nodes[0].addr(), *args],
            capture_output=True, text=True, timeout=60,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"cluster-admin {' '.join(args)} failed: {out.stdout}{out.stderr}")
        return out

    def wait_ok(self, timeout=30):
        """Every node says cluster_state:ok with all slots at the same epoch."""
        def ok():
            infos = [n.client().execute_command("CLUSTER INFO") for n in self.nodes]
            infos = [i if isinstance(i, dict) else _parse_info(i) for i in infos]
            return all(i.get("cluster_state") == "ok" and
                       str(i.get("cluster_slots_assigned")) == "16384" for i in infos) and \
                len({str(i.get("cluster_current_epoch")) for i in infos}) == 1
        _wait("cluster_state:ok on every node", timeout, ok)

    def client(self, **kwargs):
        kwargs.setdefault("decode_responses", True)
        kwargs.setdefault("socket_timeout", 10)
        return redis.RedisCluster(host="127.0.0.1", port=self.nodes[0].port, **kwargs)


def _parse_info(text):
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """3 `damselfly --cluster` nodes formed with cluster-admin; stopped afterwards."""
    nodes = []
    try:
        for i in range(3):
            nodes.append(ClusterNode(str(tmp_path_factory.mktemp(f"cluster-node{i}"))).start())
        c = Cluster(nodes)
        c.admin("create", *[n.addr() for n in nodes])
        c.wait_ok()
        yield c
    finally:
        for n in nodes:
            n.stop()
