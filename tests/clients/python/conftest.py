"""Fixtures: real damselfly processes on random free loopback ports.

Every process a fixture starts is stopped by that fixture. The binary is
`$DAMSELFLY_BIN` (scripts/test points it at the freshly built one)."""

import os
import signal
import socket
import subprocess
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

    def start(self):
        for _ in range(5):
            port = _free_port()
            proc = subprocess.Popen(
                [binary(), "--port", str(port), "--bind", "127.0.0.1", "--loglevel", "warn"],
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
