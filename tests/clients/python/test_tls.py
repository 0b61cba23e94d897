"""redis-py over TLS (`ssl=True`) against a damselfly node serving a plain and
a TLS port. Certificates are made here with the openssl tool (a missing
tool fails the tests rather than letting them pass unchecked)."""

import os
import shutil
import ssl
import subprocess
import tempfile
import time

import pytest
import redis

from conftest import _free_port, binary, START_TIMEOUT


def _openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs():
    if shutil.which("openssl") is None:
        pytest.fail("the openssl tool is not installed (Debian package openssl; scripts/test installs it)")
    d = tempfile.TemporaryDirectory(prefix="damselfly-tls-")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(d.name, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test ca")
    with open(os.path.join(d.name, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
                "basicConstraints=CA:FALSE\n")
    for name in ("server", "client"):
        _openssl(d.name, "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        _openssl(d.name, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", "ext.cnf")
    yield d.name
    d.cleanup()


@pytest.fixture(scope="module")
def tls_node(certs):
    data = tempfile.TemporaryDirectory(prefix="damselfly-node-")
    for _ in range(5):
        port, tls_port = _free_port(), _free_port()
        if port == tls_port:
            continue
        proc = subprocess.Popen(
            [binary(), "--port", str(port), "--bind", "127.0.0.1", "--loglevel", "warn", "--dir", data.name,
             "--tls-port", str(tls_port),
             "--tls-cert-file", os.path.join(certs, "server.crt"),
             "--tls-key-file", os.path.join(certs, "server.key"),
             "--tls-ca-cert-file", os.path.join(certs, "ca.crt")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping():
                    yield port, tls_port
                    proc.kill()
                    proc.wait(timeout=10)
                    data.cleanup()
                    return
            except (OSError, redis.RedisError):
                time.sleep(0.02)
        proc.kill()
        proc.wait(timeout=10)
    raise RuntimeError("damselfly with a TLS port did not start")


def tls_client(certs, tls_port, cert=True, **kwargs):
    kw = dict(host="127.0.0.1", port=tls_port, ssl=True, ssl_ca_certs=os.path.join(certs, "ca.crt"),
              decode_responses=True, socket_timeout=10)
    if cert:
        kw.update(ssl_certfile=os.path.join(certs, "client.crt"), ssl_keyfile=os.path.join(certs, "client.key"))
    kw.update(kwargs)
    return redis.Redis(**kw)


def test_commands_pipeline_and_pubsub_over_tls(certs, tls_node):
    port, tls_port = tls_node
    r = tls_client(certs, tls_port)
    assert r.ping()
    assert r.set("tls:k", "v")
    assert r.get("tls:k") == "v"
    pipe = r.pipeline(transaction=True)
    for i in range(100):
        pipe.incr("tls:counter")
    assert pipe.execute()[-1] == 100
    big = "x" * 1_000_000
    r.set("tls:big", big)
    assert r.get("tls:big") == big
    # The plain port sees the same data.
    plain = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    assert plain.get("tls:counter") == "100"
    p = r.pubsub()
    p.subscribe("tls:ch")
    assert p.get_message(timeout=5)["type"] == "subscribe"
    plain.publish("tls:ch", "hello")
    msg = None
    deadline = time.monotonic() + 10
    while msg is None and time.monotonic() < deadline:
        msg = p.get_message(timeout=1)
    assert msg is not None and msg["data"] == "hello"
    p.close()
    r.close()


def test_hostname_checked_against_the_certificate(certs, tls_node):
    _, tls_port = tls_node
    r = tls_client(certs, tls_port, ssl_check_hostname=True, host="localhost")
    assert r.ping()


def test_client_without_certificate_is_refused(certs, tls_node):
    port, tls_port = tls_node
    r = tls_client(certs, tls_port, cert=False)
    with pytest.raises((redis.ConnectionError, ssl.SSLError, OSError)):
        r.ping()
    plain = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    assert plain.config_set("tls-auth-clients", "no")
    try:
        assert tls_client(certs, tls_port, cert=False).ping()
    finally:
        plain.config_set("tls-auth-clients", "yes")
