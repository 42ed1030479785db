"""The daemon's HTTP edges against hostile clients: smuggling, NUL bytes,
cross-site requests, DNS rebinding, floods of slow connections, port theft."""
import os
import socket
import subprocess
import time

import pytest

from conftest import BIN, keyless_api
from peers import free_port
from test_daemon import Daemon, daemons, http, sync_spec  # noqa: F401 (fixture)


def raw(port, data, timeout=5):
    """Sends data as it is and returns everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        except socket.timeout:
            chunks.append(b"<timeout>")
    return b"".join(chunks)


@pytest.fixture
def daemon(gateway, repo, upstream, tmp_path, daemons):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    probe_port = free_port()
    d = Daemon(str(tmp_path), [sync_spec("test", repo, gateway, interval="1h", drift="1h")],
               extra_cfg="probe_listen: 127.0.0.1:%d" % probe_port)
    d.probe = "http://127.0.0.1:%d" % probe_port
    d.probe_port = probe_port
    daemons.append(d)
    d.wait_ready()
    return d


def test_content_length_with_transfer_encoding_is_refused_and_closed(daemon):
    smuggled = (b"POST /api/v1/syncs/test/suspend HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                b"POST /api/v1/syncs/test/suspend HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    out = raw(daemon.port, smuggled)
    assert out.startswith(b"HTTP/1.1 400"), out[:200]
    assert out.count(b"HTTP/1.1 ") == 1, out
    assert daemon.status("test")["suspended"] is False


def test_a_nul_in_the_path_does_not_cut_the_sync_name(daemon):
    code, _ = daemon.get("/api/v1/syncs/test%00anything")
    assert code in (400, 404)
    assert daemon.get("/api/v1/syncs/test")[0] == 200


def test_cross_site_posts_are_refused(daemon):
    for headers in ({"Content-Type": "application/x-www-form-urlencoded"},
                    {"Content-Type": "text/plain"},
                    {"Content-Type": "multipart/form-data; boundary=x"},
                    {"Origin": "http://evil.example"}):
        req = ("POST /api/v1/syncs/test/suspend HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Content-Length: 0\r\n%s\r\n" % (
                   daemon.port, "".join("%s: %s\r\n" % kv for kv in headers.items())))
        out = raw(daemon.port, req.encode() + b"", timeout=2)
        assert out.startswith(b"HTTP/1.1 403"), (headers, out[:200])
    assert daemon.status("test")["suspended"] is False
    # A tool's POST (no body, or JSON) still works.
    code, _ = http("POST", daemon.base + "/api/v1/syncs/test/suspend")
    assert code == 200
    assert daemon.status("test")["suspended"] is True


def test_a_rebound_host_name_is_refused_on_loopback(daemon):
    out = raw(daemon.port, b"GET /api/v1/syncs HTTP/1.1\r\nHost: evil.example:80\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 403"), out[:200]
    for host in (b"localhost", b"127.0.0.1:%d" % daemon.port, b"[::1]:80"):
        out = raw(daemon.port, b"GET /healthz HTTP/1.1\r\nHost: " + host +
                  b"\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200"), (host, out[:200])


def test_a_second_daemon_cannot_take_the_same_port(daemon, tmp_path):
    p = subprocess.run([BIN, "run", "--config", daemon.config], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert p.returncode != 0
    assert "cannot listen" in p.stdout + p.stderr


def test_probes_answer_during_a_flood_of_slow_connections(daemon):
    socks = []
    try:
        for _ in range(1000):
            try:
                s = socket.create_connection(("127.0.0.1", daemon.port), timeout=2)
                s.sendall(b"GET /api/v1/syncs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                socks.append(s)
            except OSError:
                pass  # refused past the connection limit: that is fine too
        worst = 0.0
        for _ in range(20):
            t0 = time.monotonic()
            code, _ = http("GET", daemon.probe + "/healthz", timeout=5)
            worst = max(worst, time.monotonic() - t0)
            assert code == 200
            code, body = http("GET", daemon.probe + "/metrics", timeout=5)
            assert code == 200 and "tyk_gitops_build_info" in body
        # The target is 100 ms; a sanitizer build runs several times slower.
        limit = 0.5 if os.environ.get("TG_SANITIZED") else 0.1
        assert worst < limit, "slowest /healthz took %.3f s" % worst
        # The probe port serves nothing else.
        assert http("GET", daemon.probe + "/api/v1/syncs", timeout=5)[0] == 404
    finally:
        for s in socks:
            s.close()
