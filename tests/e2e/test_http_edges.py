"""The daemon's HTTP edges against hostile clients: smuggling, NUL bytes,
cross-site requests, DNS rebinding, floods of slow connections, port theft."""
import os
import socket
import subprocess
import time

import pytest

from conftest import BIN, keyless_api
from peers import free_port
from test_daemon import Daemon, daemons, http, sync_spec, wait_for  # noqa: F401 (fixture)


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


@pytest.fixture
def strict_daemon(gateway, repo, upstream, tmp_path, daemons):
    """A daemon whose requests must arrive within 2 s (http.request_timeout)."""
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    d = Daemon(str(tmp_path), [sync_spec("test", repo, gateway, interval="1h", drift="1h")],
               extra_cfg="http: {request_timeout: 2s, connection_timeout: 30s}")
    daemons.append(d)
    d.wait_ready()
    return d


# How long a connection may be held past the 2 s request timeout before the
# test calls it unbounded: generous, because a loaded machine (sanitizers,
# other builds) delays the cut and the close; without the deadline the server
# held it until the client gave up (30 s).
HELD_MAX = 10.0


def held_for(port, first, dribble=b"", every=0.5, give_up=30):
    """Sends first, then dribbles one byte every `every` seconds (never idle
    for long, so an idle timeout never fires) until the server closes; returns
    how long the server kept the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=give_up)
    t0 = time.monotonic()
    try:
        s.sendall(first)
        s.settimeout(every)
        i = 0
        while time.monotonic() - t0 < give_up:
            try:
                if s.recv(65536) == b"":
                    break
            except socket.timeout:
                pass
            except OSError:
                break
            if dribble:
                try:
                    s.sendall(dribble[i % len(dribble):i % len(dribble) + 1])
                except OSError:
                    break
                i += 1
        return time.monotonic() - t0
    finally:
        s.close()


def cut_count(d):
    _, body = d.get("/metrics")
    for line in body.splitlines():
        if line.startswith('tyk_gitops_http_requests_cut_total{listener="main"}'):
            return float(line.split()[-1])
    raise AssertionError("no cut counter in /metrics")


def test_a_slowly_dribbled_request_head_is_cut_at_the_request_timeout(strict_daemon):
    # Before: the 30 s idle timeout never fired for a client sending a byte
    # every 0.5 s, so such a client held its slot for as long as it liked.
    before = cut_count(strict_daemon)
    held = held_for(strict_daemon.port, b"GET /api/v1/syncs HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                    dribble=b"X-Slow: aaaaaaaaaaaaaaaaaaaa\r\n")
    assert 1.5 < held < HELD_MAX, "connection held %.1f s with a 2 s request timeout" % held
    # Counted just after the cut the client saw: give the counter a moment.
    wait_for(lambda: cut_count(strict_daemon) >= before + 1, 10, "the cut to be counted")


def test_a_garbage_request_line_is_cut_at_the_request_timeout(strict_daemon):
    held = held_for(strict_daemon.port, bytes(range(1, 200)), dribble=b"\x01\x02\x03")
    assert held < HELD_MAX, "garbage request line held the connection %.1f s" % held


def test_a_slow_body_is_cut_and_a_prompt_request_is_not(strict_daemon):
    head = (b"POST /api/v1/syncs/test/reconcile HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    held = held_for(strict_daemon.port, head, dribble=b" ")
    assert held < HELD_MAX, "a slow body held the connection %.1f s" % held
    # A request that arrives in time is answered, however long the answer
    # takes: ?wait holds the connection past the request timeout.
    t0 = time.monotonic()
    code, _ = http("POST", strict_daemon.base + "/api/v1/syncs/test/reconcile?wait=true",
                   timeout=30)
    assert code == 200, code
    assert time.monotonic() - t0 < 30


def test_an_idle_keep_alive_connection_is_closed_after_the_request_timeout(strict_daemon):
    req = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", strict_daemon.port), timeout=HELD_MAX + 5)
    try:
        s.sendall(req)
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first[:40]
        # A second request on the same connection within the limit is served.
        s.sendall(req)
        second = s.recv(65536)
        assert second.startswith(b"HTTP/1.1 200"), second[:40]
        t0 = time.monotonic()
        rest = s.recv(65536)  # nothing sent: the server closes at the deadline
        assert rest == b""
        assert time.monotonic() - t0 < HELD_MAX
    finally:
        s.close()
