"""Gateway client against faults injected in front of a real gateway."""
import json
import time

import pytest

from conftest import keyless_api, policy
from faultproxy import FaultProxy
from peers import Gateway


@pytest.fixture
def proxy(gateway):
    p = FaultProxy(gateway.port)
    yield p
    p.stop()


def through(controller, proxy):
    """Points the controller at the proxy instead of the gateway."""
    controller.gateway_url = proxy.url
    real_args = controller.args

    def args(command, *extra):
        a = real_args(command, *extra)
        a[a.index("--gateway") + 1] = proxy.url
        return a
    controller.args = args


def test_transient_5xx_on_writes_are_retried(controller, repo, gateway, upstream, proxy):
    through(controller, proxy)
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.write("policies/p.json", policy("p", ["echo"]))
    repo.commit()
    proxy.add("status", 2, status=503, methods=("POST",))
    p = controller.run("sync")
    assert p.returncode == 0, p.stderr
    assert "2 created" in p.stdout
    assert sum(1 for s in proxy.seen if s[2] == "status 503") == 2
    assert gateway.request("/echo/x")[0] == 200


def test_writes_answered_503_halve_the_window_and_all_land(controller, repo, gateway, upstream,
                                                         proxy):
    """Adaptive concurrency (the default): 503s from a gateway shedding load
    halve the writes in flight, once per round, and every write still lands
    through the retries."""
    through(controller, proxy)
    for i in range(40):
        repo.write("apis/a%d.json" % i, keyless_api("a%d" % i, "/a%d/" % i, upstream.url))
    repo.commit()
    proxy.add("status", 6, status=503, methods=("POST",))
    p = controller.run("sync", "--log-level", "debug")
    assert p.returncode == 0, p.stderr
    assert "40 created" in p.stdout
    halved = [line for line in p.stderr.splitlines() if "write window halved" in line]
    assert halved and len(halved) < 6, p.stderr
    assert "after HTTP 503" in halved[0]
    assert gateway.request("/a39/x")[0] == 200


def test_dropped_connections_are_retried(controller, repo, gateway, upstream, proxy):
    through(controller, proxy)
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    proxy.add("drop", 2)
    p = controller.run("sync")
    assert p.returncode == 0, p.stderr
    assert gateway.request("/echo/x")[0] == 200


def test_a_list_reply_cut_off_is_read_again_and_counts_once(controller, repo, gateway, upstream,
                                                           proxy):
    """The lists are read as they arrive: a classic list cut off halfway (long
    enough that some of its elements were handled before the cut) is read
    again from the start, and each API counts once."""
    through(controller, proxy)
    for i in range(60):
        repo.write("apis/a%d.json" % i, keyless_api("a%d" % i, "/a%d/" % i, upstream.url))
    repo.commit()
    assert controller.run("sync").returncode == 0
    status, body = gateway.api("GET", "/tyk/apis")
    assert status == 200 and len(json.dumps(body)) > 2 * 64 * 1024
    proxy.add("cut", 1, methods=("GET",), path="/tyk/apis")
    p = controller.run("sync")
    assert p.returncode == 0, p.stderr
    assert "0 created, 0 updated, 0 deleted, 60 unchanged" in p.stdout, p.stdout
    assert [s for s in proxy.seen if s[2] == "cut"] == [("GET", "/tyk/apis", "cut")]


def test_a_list_reply_the_scanner_refuses_after_letting_go_is_read_again_whole(
        controller, repo, gateway, upstream, proxy):
    """Elements read as they arrive are let go of; a reply the scanner then
    refuses (bytes after the list) is read again whole to be parsed, and
    the pass goes on from that."""
    through(controller, proxy)
    for i in range(60):
        repo.write("apis/a%d.json" % i, keyless_api("a%d" % i, "/a%d/" % i, upstream.url))
    repo.commit()
    assert controller.run("sync").returncode == 0
    proxy.add("trailing", 1, methods=("GET",), path="/tyk/apis")
    # Answered late, the reply arrives after the pass has loaded its commit
    # and handed its feeds over: its elements are handled, and let go, as
    # they arrive.
    proxy.after("/tyk/apis", lambda: time.sleep(1.0))
    proxy.seen.clear()
    p = controller.run("sync")
    assert p.returncode == 0, p.stderr
    assert "0 created, 0 updated, 0 deleted, 60 unchanged" in p.stdout, p.stdout
    lists = [s[2] for s in proxy.seen if s[:2] == ("GET", "/tyk/apis")]
    assert lists == ["trailing", "forwarded 200", "forwarded 200"], proxy.seen


def test_lists_that_arrive_before_the_commit_is_loaded_are_read_through_the_cache(
        controller, repo, gateway, upstream):
    """A pass asks for the gateway's lists before it fetches git: with a git
    server that takes 1.5 s to answer, the lists are in long before the
    commit is loaded, and their elements are still handled through the
    verified cache once it is (none parsed), not lost."""
    from faultproxy import SlowTcp
    from gitpeers import GitDaemon
    daemon = GitDaemon(repo.dir)
    slow = SlowTcp(daemon.port)
    try:
        repo.url = "git://127.0.0.1:%d/remote.git" % slow.port
        for i in range(60):
            repo.write("apis/a%d.json" % i, keyless_api("a%d" % i, "/a%d/" % i, upstream.url))
        repo.commit()
        assert controller.run("sync").returncode == 0
        slow.delay = 1.5
        start = time.time()
        p = controller.run("sync", "--log-level", "debug")
        assert p.returncode == 0, p.stderr
        assert time.time() - start >= 1.5
        assert "0 created, 0 updated, 0 deleted, 60 unchanged" in p.stdout, p.stdout
        assert "60 list elements known in sync, 0 parsed" in p.stderr, p.stderr
    finally:
        slow.stop()
        daemon.stop()


def test_persistent_5xx_fails_clearly_and_applies_nothing(controller, repo, gateway, upstream, proxy):
    through(controller, proxy)
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    proxy.add("status", 1000, status=500, methods=("GET",))
    p = controller.run("sync")
    assert p.returncode == 1
    assert "HTTP 500" in p.stderr
    assert gateway.api("GET", "/tyk/apis/echo")[0] == 404


def test_hanging_gateway_times_out_within_bound(controller, repo, gateway, upstream, proxy, tmp_path):
    through(controller, proxy)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("syncs:\n  - name: test\n    gateway: {timeout: 1s}\n")
    controller.extra = ["--config", str(cfg)]
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    proxy.add("delay", 1000, delay=30)
    start = time.time()
    p = controller.run("sync")
    took = time.time() - start
    assert p.returncode == 1
    assert "did not answer" in p.stderr
    assert took < 15, took  # 1 s per try, 4 tries, backoff 0.1+0.2+0.4 s


def test_gateway_without_policy_path_is_explained(redis, repo, upstream, tmp_path):
    from conftest import Controller
    gw = Gateway(redis, policy_path=False)
    try:
        c = Controller(gw, repo, str(tmp_path))
        repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
        repo.write("policies/p.json", policy("p", ["echo"]))
        repo.commit()
        p = c.run("sync")
        assert p.returncode == 1
        assert "policy 'p' failed: not loaded after reload: is policies.policy_path set" in p.stderr
        # Tyk 4.x serves the API anyway; Tyk 5.x skips every API when its
        # policies fail to load, and the API's failure says so.
        if gw.request("/echo/x")[0] != 200:
            assert "api 'echo' failed: not loaded after reload: the gateway could not load " \
                   "the policies either" in p.stderr, p.stderr
    finally:
        gw.destroy()


def test_many_writes_are_read_back_through_the_lists_element_by_element(redis, repo, upstream,
                                                                         tmp_path):
    """Past 32 writes the read-back reads the three lists (each element judged
    and freed as it arrives): every API is found loaded, the policy the
    gateway could not load is named, and the next pass finds the APIs in
    sync without a write."""
    from conftest import Controller
    gw = Gateway(redis, policy_path=False)
    try:
        c = Controller(gw, repo, str(tmp_path))
        for i in range(40):
            repo.write("apis/a%d.json" % i, keyless_api("a%d" % i, "/a%d/" % i, upstream.url))
        repo.write("policies/p.json", policy("p", ["a0"]))
        repo.commit()
        p = c.run("sync")
        assert p.returncode == 1
        assert "policy 'p' failed: not loaded after reload: is policies.policy_path set" in p.stderr
        if gw.request("/a39/x")[0] == 200:  # Tyk 4.x serves the APIs anyway
            assert "api '" not in p.stderr, p.stderr
            p = c.run("diff")
            assert "api 'a" not in p.stdout, p.stdout
    finally:
        gw.destroy()


def test_rejected_api_keeps_its_policy_off_the_gateway(controller, repo, gateway, upstream):
    # The gateway's OAS validation rejects this document (no info.title),
    # which the controller's own checks do not require.
    repo.write("apis/bad.yaml", """
openapi: 3.0.3
info: {version: "1"}
paths: {}
x-tyk-api-gateway:
  info: {id: bad, name: Bad, state: {active: true}}
  upstream: {url: "%s"}
  server: {listenPath: {value: /bad/}}
""" % upstream.url)
    repo.write("apis/good.json", keyless_api("good", "/good/", upstream.url))
    repo.write("policies/uses-bad.json", policy("uses-bad", ["bad", "good"]))
    repo.write("policies/uses-good.json", policy("uses-good", ["good"]))
    repo.commit()
    p = controller.run("sync")
    assert p.returncode == 1
    assert "oas 'bad' failed" in p.stderr
    assert "policy 'uses-bad' failed: not applied: api 'bad'" in p.stderr
    assert gateway.api("GET", "/tyk/policies/uses-bad")[0] == 404
    assert gateway.api("GET", "/tyk/policies/uses-good")[0] == 200
    assert gateway.request("/good/x")[0] == 200


def test_gateway_over_tls_with_a_private_ca(redis, repo, upstream, tmp_path):
    from conftest import Controller
    gw = Gateway(redis, tls=True)
    try:
        c = Controller(gw, repo, str(tmp_path))
        repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
        repo.commit()
        p = c.run("sync")
        assert p.returncode == 1
        assert "certificate" in p.stderr.lower()
        cfg = tmp_path / "c.yaml"
        cfg.write_text("syncs:\n  - name: test\n    gateway: {tls: {ca_file: %s}}\n" % gw.ca_file)
        c.extra = ["--config", str(cfg)]
        p = c.run("sync")
        assert p.returncode == 0, p.stderr
        assert gw.request("/echo/x")[0] == 200
    finally:
        gw.destroy()

