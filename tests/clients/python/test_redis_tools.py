"""redis-cli and redis-benchmark (Debian's redis-tools) against damselfly."""

import shutil
import subprocess

import pytest


@pytest.fixture(autouse=True)
def redis_tools_installed():
    """A missing tool fails the tests rather than letting them pass unchecked."""
    for name in ("redis-cli", "redis-benchmark"):
        if shutil.which(name) is None:
            pytest.fail(f"{name} is not installed (Debian package redis-tools; scripts/test installs it)")


def cli(server, *args, stdin=None):
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(server.port), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_commands(r, server):
    assert cli(server, "PING") == "PONG\n"
    assert cli(server, "SET", "order:1001", '{"user":42}', "EX", "3600") == "OK\n"
    assert cli(server, "GET", "order:1001") == '{"user":42}\n'
    assert cli(server, "HSET", "order:1002", "user", "42", "status", "paid") == "2\n"
    assert cli(server, "HGET", "order:1002", "status") == "paid\n"
    assert cli(server, "INCRBY", "stock", "5") == "5\n"
    assert cli(server, "GET", "nope") == "\n"
    assert "ERR" in cli(server, "INCR", "order:1001")  # errors print, exit 0
    # commands from standard input, one per line
    assert cli(server, stdin="SET a 1\nINCR a\nGET a\n") == "OK\n2\n2\n"
    # RESP3
    # a RESP3 map: redis-cli prints one "field value" line per entry
    assert cli(server, "-3", "HGETALL", "order:1002").splitlines() == ["user 42", "status paid"]
    assert r.get("stock") == "5"


def test_pipe_bulk_load_and_scan(r, server):
    n = 5000
    lines = "".join(f"SET bulk:{i} {i}\r\n" for i in range(n))
    lines += "".join(f"HSET bulkh:{i} f {i}\r\n" for i in range(100))
    out = cli(server, "--pipe", stdin=lines)
    assert f"errors: 0, replies: {n + 100}" in out
    assert r.dbsize() == n + 100
    assert r.get("bulk:4999") == "4999"
    scanned = cli(server, "--scan", "--pattern", "bulk:*", "-i", "0").split()
    assert sorted(scanned) == sorted(f"bulk:{i}" for i in range(n))
    assert len(cli(server, "--scan").split()) == n + 100


def test_benchmark(r, server):
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port),
         "-t", "set,get,incr,hset", "-n", "2000", "-c", "10", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    assert "error" not in text.lower(), text
    lines = [l for l in out.stdout.replace("\r", "\n").splitlines() if "requests per second" in l]
    assert sorted(l.split(":")[0] for l in lines) == ["GET", "HSET", "INCR", "SET"], out.stdout
    assert r.get("counter:__rand_int__") == "2000"  # every INCR landed
