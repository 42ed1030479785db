"""Bitbucket webhooks (`POST /hooks/bitbucket`) against the real daemon, a
real Tyk Gateway and real git servers: Cloud and Data Center payloads in
Atlassian's documented shapes, signed and forged."""
import json
import os
import socket
import time
import uuid

import pytest

from bitbucket import (Controller, cloud_push, dc_push, deliver, http, metric, sign, sync,
                       wait_for)
from conftest import keyless_api
from gitpeers import GitDaemon, Repo

SECRET = "whsec-8f1c2e7a9b3d4c5e6f708192a3b4c5d6"
REPO_UUID = "{4b0c5c9e-1f1e-4f7a-9f3d-2c3b1a0e9d8c}"
FULL = "acme/gateway-config"


@pytest.fixture
def secret_file(tmp_path):
    p = tmp_path / "webhook-secret"
    p.write_text(SECRET + "\n")
    return str(p)


@pytest.fixture
def controllers():
    made = []
    yield made
    # A clean exit on SIGTERM; under ASan, also no leak.
    codes = [c.stop() for c in made]
    assert all(rc in (0, None) for rc in codes), codes


def live(gateway, path):
    return gateway.request(path)[0] == 200


def test_cloud_push_goes_live_fast_with_provenance(gateway, repo, upstream, tmp_path, secret_file,
                                                   controllers):
    repo.write("apis/first.json", keyless_api("first", "/first/", upstream.url))
    first = repo.commit("first")
    c = Controller(str(tmp_path), [sync("prod", repo.url, gateway,
                                        webhook={"secret_file": secret_file, "repository": FULL})])
    controllers.append(c)
    c.wait_ready()
    assert live(gateway, "/first/x")
    passes = c.status("prod")["passes"]

    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    sha = repo.commit("echo")
    t0 = time.monotonic()
    code, body, took = deliver(c.base, cloud_push(FULL, REPO_UUID, [("branch", "main", sha, first)]),
                               SECRET, delivery="{11111111-2222-4333-8444-555555555555}")
    assert code == 202, body
    assert body["triggered"] == ["prod"] and body["result"] == "triggered"
    assert body["delivery"] == "{11111111-2222-4333-8444-555555555555}"
    assert took < 0.25, "webhook accepted in %.0f ms" % (took * 1000)
    wait_for(lambda: live(gateway, "/echo/x"), 10, "the pushed API on the gateway")
    push_to_live = time.monotonic() - t0
    print("webhook accept %.1f ms, push-to-live %.0f ms" % (took * 1000, push_to_live * 1000))
    assert push_to_live < 5

    st = c.wait_passes("prod", passes + 1)
    res = st["last_result"]
    assert res["trigger"] == "webhook" and res["commit"] == sha
    assert "delivery={11111111-2222-4333-8444-555555555555}" in res["actor"]
    assert "user={d2a6f0b8-7e4c-4d0a-9b1e-5f6a7b8c9d0e}" in res["actor"]
    ident = res["identities"][0]
    assert ident["kind"] == "webhook" and ident["source"] == "bitbucket-cloud"
    assert ident["user_name"] == "Ada Tester" and ident["repository"] == FULL
    assert ident["ref"] == {"type": "branch", "name": "main", "commit": sha}
    # The audit trail names the pusher and the delivery for every change.
    rec = [r for r in c.audit() if r.get("id") == "echo" and r["phase"] == "outcome"]
    assert rec and rec[-1]["trigger"] == "webhook" and "delivery=" in rec[-1]["actor"]
    m = c.metrics()
    assert metric(m, "tyk_gitops_webhook_requests_total", result="triggered") == 1
    assert metric(m, "tyk_gitops_triggers_total", sync="prod", trigger="webhook") == 1


def test_forged_missing_and_replayed_deliveries_trigger_nothing(gateway, repo, upstream, tmp_path,
                                                               secret_file, controllers):
    repo.write("apis/a.json", keyless_api("a", "/a/", upstream.url))
    first = repo.commit("a")
    c = Controller(str(tmp_path), [sync("prod", repo.url, gateway,
                                        webhook={"secret_file": secret_file, "repository": FULL})])
    controllers.append(c)
    c.wait_ready()
    passes = c.status("prod")["passes"]
    repo.write("apis/b.json", keyless_api("b", "/b/", upstream.url))
    sha = repo.commit("b")
    marker = "body-marker-%s" % uuid.uuid4().hex
    payload = cloud_push(FULL, REPO_UUID, [("branch", "main", sha, first)], actor_name=marker)

    # Wrong secret, no signature, a signature of another body, sha1.
    assert deliver(c.base, payload, "not-the-secret")[0] == 401
    code, body, _ = deliver(c.base, payload, None)
    assert code == 401 and "X-Hub-Signature" in body["error"]
    other = json.dumps(cloud_push(FULL, REPO_UUID, [("branch", "main", first, None)])).encode()
    assert deliver(c.base, payload, extra={"X-Hub-Signature": sign(SECRET, other)})[0] == 401
    assert deliver(c.base, payload, extra={"X-Hub-Signature": "sha1=" + "0" * 40})[0] == 401
    time.sleep(1)
    assert c.status("prod")["passes"] == passes
    assert gateway.request("/b/x")[0] == 404
    logs = c.logs()
    assert marker not in logs and SECRET not in logs
    assert metric(c.metrics(), "tyk_gitops_webhook_requests_total", result="unauthorized") == 4

    # The real one, then Bitbucket's retry of it with the same delivery id.
    code, body, _ = deliver(c.base, payload, SECRET, delivery="dup-1")
    assert code == 202
    c.wait_passes("prod", passes + 1)
    code, body, _ = deliver(c.base, payload, SECRET, delivery="dup-1")
    assert code == 200 and body["result"] == "duplicate" and body["triggered"] == []
    time.sleep(1)
    assert c.status("prod")["passes"] == passes + 1
    assert metric(c.metrics(), "tyk_gitops_webhook_requests_total", result="duplicate") == 1
    assert marker not in c.logs()

    # Malformed JSON and a payload without a repository: 400, signed or not
    # checked first (unsigned: 401).
    assert deliver(c.base, None, SECRET, raw=b"{not json")[0] == 400
    assert deliver(c.base, None, SECRET, raw=b"{\"push\":{\"changes\":[]}}")[0] == 400
    assert deliver(c.base, None, None, raw=b"{not json")[0] == 401
    # Over the body cap: refused before it is read.
    with socket.create_connection(("127.0.0.1", c.port), timeout=10) as sk:
        sk.sendall(b"POST /hooks/bitbucket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   b"X-Event-Key: repo:push\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 2097162\r\n\r\n")
        assert sk.recv(64).startswith(b"HTTP/1.1 413")
    # GET is not a delivery.
    assert c.get("/hooks/bitbucket")[0] == 405


def test_data_center_refs_changed_matches_clone_links_and_branches(gateway, upstream, tmp_path,
                                                                   secret_file, controllers):
    root = str(tmp_path / "git")
    os.makedirs(root)
    gd = GitDaemon(root)
    try:
        r = Repo(root, "gateway-config")
        first = r.commit({"apis/a.json": json.dumps(keyless_api("dca", "/dca/", upstream.url))})
        r.git("checkout", "-q", "-b", "develop")
        r.commit({"apis/d.json": json.dumps(keyless_api("dcd", "/dcd/", upstream.url))}, push=False)
        r.git("push", "-q", "origin", "develop")
        r.git("checkout", "-q", "main")
        url = gd.url(r)  # git://127.0.0.1:PORT/gateway-config.git
        hook = {"secret_file": secret_file}
        c = Controller(str(tmp_path), [
            sync("prod", url, gateway, webhook=hook),
            sync("staging", url, gateway, branch="develop", webhook=hook),
        ])
        controllers.append(c)
        c.wait_ready()
        p0, s0 = c.status("prod")["passes"], c.status("staging")["passes"]
        sha = r.commit({"apis/b.json": json.dumps(keyless_api("dcb", "/dcb/", upstream.url))})
        # Data Center names the repository by its clone links: the ssh link
        # has the same host, port and path as the sync's git:// URL.
        links = ["ssh://git@127.0.0.1:%d/gateway-config.git" % gd.port,
                 "https://bitbucket.example/scm/plat/gateway-config.git"]
        payload = dc_push("PLAT", "gateway-config", links, [("BRANCH", "main", sha, first)])
        code, body, _ = deliver(c.base, payload, SECRET, event="repo:refs_changed")
        assert code == 202 and body["triggered"] == ["prod"], body
        wait_for(lambda: live(gateway, "/dcb/x"), 10, "the pushed API")
        st = c.wait_passes("prod", p0 + 1)
        assert "bitbucket-data-center-webhook" in st["last_result"]["actor"]
        assert "user=jdoe" in st["last_result"]["actor"]
        time.sleep(0.5)
        assert c.status("staging")["passes"] == s0

        # A tag, another repository, a deleted branch nobody follows: nothing.
        for changes, links2 in (([("TAG", "v1", sha, None)], links),
                                ([("BRANCH", "main", sha, first)],
                                 ["ssh://git@127.0.0.1:%d/other.git" % gd.port]),
                                ([("BRANCH", "gone", None, first)], links)):
            code, body, _ = deliver(c.base, dc_push("PLAT", "gateway-config", links2, changes),
                                    SECRET, event="repo:refs_changed")
            assert code == 200 and body["result"] == "no_match" and body["triggered"] == []

        # Data Center's "Test connection": a signed ping that triggers nothing.
        code, body, _ = deliver(c.base, {"test": True}, SECRET, event="diagnostics:ping")
        assert code == 200 and body["result"] == "ping"
        assert deliver(c.base, {"test": True}, "wrong", event="diagnostics:ping")[0] == 401
        # Events that are not pushes are answered and ignored.
        code, body, _ = deliver(c.base, {"pullRequest": {}}, SECRET, event="pr:merged")
        assert code == 200 and body["result"] == "ignored"
        # Only staging follows develop.
        r.git("checkout", "-q", "develop")
        dsha = r.commit({"apis/e.json": json.dumps(keyless_api("dce", "/dce/", upstream.url))},
                        push=False)
        r.git("push", "-q", "origin", "develop")
        code, body, _ = deliver(c.base, dc_push("PLAT", "gateway-config", links,
                                                [("BRANCH", "develop", dsha, None)]),
                                SECRET, event="repo:refs_changed")
        assert code == 202 and body["triggered"] == ["staging"]
        c.wait_passes("staging", s0 + 1)
        m = c.metrics()
        assert metric(m, "tyk_gitops_webhook_requests_total", result="no_match") == 3
        assert metric(m, "tyk_gitops_webhook_requests_total", result="ping") == 1
        assert metric(m, "tyk_gitops_webhook_requests_total", result="ignored") == 1
    finally:
        gd.stop()


def test_secret_rotates_without_restart_with_an_overlap(gateway, repo, upstream, tmp_path,
                                                       secret_file, controllers):
    repo.write("apis/a.json", keyless_api("rot", "/rot/", upstream.url))
    sha = repo.commit("a")
    c = Controller(str(tmp_path), [sync("prod", repo.url, gateway, webhook={
        "secret_file": secret_file, "repository": REPO_UUID, "rotation_overlap": "2s"})])
    controllers.append(c)
    c.wait_ready()
    payload = cloud_push(FULL, REPO_UUID, [("branch", "main", sha, None)])
    assert deliver(c.base, payload, SECRET)[0] == 202
    new = "whsec-rotated-77c1d2e3f4a5b6c7d8e9"
    with open(secret_file, "w") as f:
        f.write(new + "\n")
    # Both during the overlap (Bitbucket may still sign with the old one)...
    assert deliver(c.base, payload, new)[0] == 202
    assert deliver(c.base, payload, SECRET)[0] == 202
    time.sleep(2.2)
    # ... then only the new one.
    assert deliver(c.base, payload, SECRET)[0] == 401
    assert deliver(c.base, payload, new)[0] == 202
    # A staged second line is accepted at once.
    with open(secret_file, "w") as f:
        f.write(new + "\nwhsec-next-one\n")
    assert deliver(c.base, payload, "whsec-next-one")[0] == 202
    # A secret file that disappears refuses deliveries (500: the fault is here).
    os.remove(secret_file)
    code, body, _ = deliver(c.base, payload, new)
    assert code == 500 and "secret" in body["error"]
    assert new not in c.logs() and SECRET not in c.logs()


def test_webhook_listen_serves_hooks_only_and_a_sync_without_secret_is_refused(
        gateway, repo, upstream, tmp_path, secret_file, controllers):
    from peers import free_port
    repo.write("apis/a.json", keyless_api("pub", "/pub/", upstream.url))
    sha = repo.commit("a")
    port = free_port()
    c = Controller(str(tmp_path), [sync("prod", repo.url, gateway,
                                        webhook={"secret_file": secret_file, "repository": FULL})],
                   extra={"webhook_listen": "127.0.0.1:%d" % port})
    controllers.append(c)
    c.wait_ready()
    pub = "http://127.0.0.1:%d" % port
    # Behind a proxy the Host is the public name: no rebinding refusal here.
    code, body, _ = deliver(pub, cloud_push(FULL, REPO_UUID, [("branch", "main", sha, None)]),
                            SECRET, extra={"Host": "hooks.acme.example"})
    assert code == 202, body
    for path in ("/metrics", "/api/v1/syncs", "/api/v1/syncs/prod", "/readyz"):
        assert http("GET", pub + path)[0] == 404, path
    assert http("GET", pub + "/healthz")[0] == 200
    # The API's POSTs are there, but never without a token.
    assert http("POST", pub + "/api/v1/syncs/prod/reconcile")[0] == 403

    # Without any webhook, /hooks/bitbucket does not exist.
    bad = dict(sync("x", repo.url, gateway), webhook={"repository": FULL})
    d = Controller(str(tmp_path / "bad"), [bad], start=False)
    rc, out = d.run_once()
    assert rc != 0 and "needs a secret_file" in out
