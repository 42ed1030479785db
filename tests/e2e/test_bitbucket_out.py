"""Bitbucket out: commit build statuses from `tyk-gitops run` and Code Insights
reports from `tyk-gitops report`, against a real Tyk Gateway, real git
repositories and a Bitbucket REST API peer (tests/e2e/bitbucket.py,
BitbucketApi) that answers in Atlassian's documented shapes."""
import base64
import json
import os
import statistics
import subprocess
import time

import pytest

from bitbucket import BitbucketApi, Controller, http, metric, sync, wait_for
from conftest import BIN, keyless_api, policy

TOKEN = "bb-token-1"


@pytest.fixture
def controllers():
    made = []
    yield made
    codes = [c.stop() for c in made]
    assert all(rc in (0, None) for rc in codes), codes


@pytest.fixture
def peers():
    made = []
    yield made
    for p in made:
        p.stop()


def token_file(tmp_path, value=TOKEN, name="bb-token"):
    p = tmp_path / name
    p.write_text(value + "\n")
    return str(p)


def cloud(peer, tmp_path, **more):
    b = {"api": "cloud", "url": peer.url, "workspace": peer.owner, "repo_slug": peer.slug,
         "token_file": token_file(tmp_path), "timeout": "2s"}
    b.update(more)
    return b


def states(peer, sha):
    return [r["body"]["state"] for r in peer.statuses(sha)]


def wait_state(peer, sha, state, timeout=30):
    return wait_for(lambda: state in states(peer, sha) and peer.statuses(sha), timeout,
                    "%s on %s (got %r)" % (state, sha[:12], states(peer, sha)))


# ---- statuses ------------------------------------------------------------------


def test_cloud_applied_commit_ends_successful_with_exact_requests(gateway, repo, upstream,
                                                                   tmp_path, controllers, peers):
    peer = BitbucketApi("cloud")
    peers.append(peer)
    repo.write("apis/echo.json", keyless_api("bb-echo", "/bb-echo/", upstream.url))
    sha = repo.commit("echo")
    c = Controller(str(tmp_path), [sync("prod", repo.url, gateway,
                                        bitbucket=cloud(peer, tmp_path))])
    controllers.append(c)
    c.wait_ready()
    assert gateway.request("/bb-echo/x")[0] == 200
    reqs = wait_state(peer, sha, "SUCCESSFUL")
    assert states(peer, sha) == ["INPROGRESS", "SUCCESSFUL"]
    want_path = "/2.0/repositories/acme/gateway-config/commit/%s/statuses/build" % sha
    link = "http://127.0.0.1:%d/api/v1/syncs/prod" % c.port
    for r in reqs:
        assert r["method"] == "POST" and r["path"] == want_path
        assert r["headers"]["authorization"] == "Bearer " + TOKEN
        assert r["headers"]["content-type"] == "application/json"
        assert r["headers"]["accept"] == "application/json"
    assert reqs[0]["body"] == {"key": "tyk-gitops-prod", "state": "INPROGRESS",
                               "name": "tyk-gitops prod", "url": link,
                               "description": "applying the commit to the gateway"}
    assert reqs[1]["body"] == {"key": "tyk-gitops-prod", "state": "SUCCESSFUL",
                               "name": "tyk-gitops prod", "url": link,
                               "description": "1 created, 0 updated, 0 deleted, 0 unchanged"}
    m = c.metrics()
    assert metric(m, "tyk_gitops_bitbucket_requests_total", api="cloud", result="ok") == 2
    # A drift pass of the same commit changes nothing and posts nothing.
    code, _, _ = c.post("/api/v1/syncs/prod/reconcile?wait=true")
    assert code == 200
    time.sleep(0.5)
    assert states(peer, sha) == ["INPROGRESS", "SUCCESSFUL"]
    assert TOKEN not in c.logs()


def test_dc_invalid_commit_ends_failed_with_the_problem(gateway, repo, upstream, tmp_path,
                                                        controllers, peers):
    peer = BitbucketApi("dc", owner="PLAT", slug="gateway-config", token="dc-http-token")
    peers.append(peer)
    repo.write("apis/good.json", keyless_api("bb-good", "/bb-good/", upstream.url))
    good = repo.commit("good")
    bb = {"api": "datacenter", "url": peer.url + "/", "project": "PLAT",
          "repo_slug": "gateway-config", "token_file": token_file(tmp_path, "dc-http-token"),
          "status_url": "https://gitops.example.com/api/v1/syncs/prod"}
    c = Controller(str(tmp_path), [sync("prod", repo.url, gateway, bitbucket=bb)])
    controllers.append(c)
    c.wait_ready()
    wait_state(peer, good, "SUCCESSFUL")
    bad_api = keyless_api("bb-good", "/bb-other/", upstream.url)
    del bad_api["api_id"]
    repo.write("apis/good.json", bad_api)
    bad = repo.commit("drop the id")
    code, text, _ = c.post("/api/v1/syncs/prod/reconcile?wait=true")
    assert code == 422, text
    reqs = wait_state(peer, bad, "FAILED")
    assert states(peer, bad) == ["INPROGRESS", "FAILED"]
    r = reqs[-1]
    assert r["path"] == "/rest/api/latest/projects/PLAT/repos/gateway-config/commits/%s/builds" % bad
    assert r["headers"]["authorization"] == "Bearer dc-http-token"
    assert r["body"]["key"] == "tyk-gitops-prod" and r["body"]["name"] == "tyk-gitops prod"
    assert r["body"]["url"] == "https://gitops.example.com/api/v1/syncs/prod"
    desc = r["body"]["description"]
    assert desc.startswith("commit %s is invalid (1 problem(s)); nothing was applied: "
                           "apis/good.json:1:1: " % bad[:12]), desc
    assert "api_id" in desc and len(desc) <= 255
    # The last good commit stays live, and its status stays SUCCESSFUL.
    assert gateway.request("/bb-good/x")[0] == 200
    assert states(peer, good) == ["INPROGRESS", "SUCCESSFUL"]
    assert metric(c.metrics(), "tyk_gitops_bitbucket_requests_total", api="datacenter",
                  result="ok") == 4


def test_retries_429_after_retry_after_and_5xx_then_gives_up(gateway, repo, upstream, tmp_path,
                                                             controllers, peers):
    peer = BitbucketApi("cloud", email="ops@example.com")
    peers.append(peer)
    peer.faults = [429, 503]  # INPROGRESS: rate limited, then a server error, then 201
    repo.write("apis/r.json", keyless_api("bb-retry", "/bb-retry/", upstream.url))
    sha = repo.commit("retry")
    c = Controller(str(tmp_path), [sync("prod", repo.url, gateway,
                                        bitbucket=cloud(peer, tmp_path, email="ops@example.com"))])
    controllers.append(c)
    c.wait_ready()
    wait_state(peer, sha, "SUCCESSFUL")
    reqs = peer.statuses(sha)
    # Basic auth with the account email and API token (no app password).
    want = "Basic " + base64.b64encode(b"ops@example.com:" + TOKEN.encode()).decode()
    assert all(r["headers"]["authorization"] == want for r in reqs)
    # The newer SUCCESSFUL replaced the INPROGRESS still waiting for its retry,
    # or followed it: never the other way round.
    got = states(peer, sha)
    assert got[-1] == "SUCCESSFUL" and got.count("SUCCESSFUL") == 1, got
    # Retry-After: 1 was honoured.
    assert reqs[1]["time"] - reqs[0]["time"] >= 0.9
    m = c.metrics()
    assert metric(m, "tyk_gitops_bitbucket_requests_total", api="cloud", result="rate_limited") == 1
    assert metric(m, "tyk_gitops_bitbucket_requests_total", api="cloud", result="server_error") == 1

    # Five server errors in a row: dropped and counted, and the pass is fine.
    peer.faults = [502] * 5
    repo.write("apis/r2.json", keyless_api("bb-retry2", "/bb-retry2/", upstream.url))
    sha2 = repo.commit("retry 2")
    code, text, _ = c.post("/api/v1/syncs/prod/reconcile?wait=true")
    assert code == 200, text
    wait_for(lambda: metric(c.metrics(), "tyk_gitops_bitbucket_requests_total", api="cloud",
                            result="dropped") >= 1, 40, "a dropped status")
    assert "bitbucket status dropped" in c.logs()
    wait_state(peer, sha2, "SUCCESSFUL")


def test_401_and_404_are_final_and_counted(gateway, repo, upstream, tmp_path, controllers, peers):
    peer = BitbucketApi("cloud", token="the-right-token")
    peers.append(peer)
    repo.write("apis/a.json", keyless_api("bb-auth", "/bb-auth/", upstream.url))
    sha = repo.commit("a")
    tf = token_file(tmp_path, "a-wrong-token")
    other = sync("other", repo.url, gateway,
                 bitbucket=cloud(peer, tmp_path, repo_slug="not-a-repo",
                                 token_file=token_file(tmp_path, "the-right-token", "t2")))
    other["repo"]["path"] = "nowhere-else"  # a failing pass: its statuses go to a 404
    c = Controller(str(tmp_path), [
        sync("prod", repo.url, gateway, bitbucket=cloud(peer, tmp_path, token_file=tf)), other])
    controllers.append(c)
    c.wait_ready()
    m = wait_for(lambda: (lambda t: metric(t, "tyk_gitops_bitbucket_requests_total", api="cloud",
                                           result="unauthorized") >= 2 and
                          metric(t, "tyk_gitops_bitbucket_requests_total", api="cloud",
                                 result="not_found") >= 1 and t)(c.metrics()),
                 20, "401s and 404s counted")
    time.sleep(1.5)  # no retry of a final answer
    m = c.metrics()
    assert metric(m, "tyk_gitops_bitbucket_requests_total", api="cloud", result="unauthorized") == 2
    assert metric(m, "tyk_gitops_bitbucket_requests_total", api="cloud", result="dropped") == 0
    assert "bitbucket refused the status" in c.logs()
    assert "a-wrong-token" not in c.logs()
    # Rotation: the file is read again when it changes.
    with open(tf, "w") as f:
        f.write("the-right-token\n")
    repo.write("apis/b.json", keyless_api("bb-auth2", "/bb-auth2/", upstream.url))
    sha2 = repo.commit("b")
    assert c.post("/api/v1/syncs/prod/reconcile?wait=true")[0] == 200
    wait_state(peer, sha2, "SUCCESSFUL")
    assert sha != sha2


def pass_durations(c, n):
    out = []
    for _ in range(n):
        code, text, _ = c.post("/api/v1/syncs/prod/reconcile?wait=true")
        assert code == 200, text
        out.append(json.loads(text)["duration_seconds"])
    return out


def test_a_hanging_bitbucket_costs_the_passes_nothing(gateway, repo, upstream, tmp_path,
                                                      controllers, peers):
    repo.write("apis/h.json", keyless_api("bb-hang", "/bb-hang/", upstream.url))
    repo.commit("h")
    results = {}
    for mode in ("answering", "hanging"):
        peer = BitbucketApi("cloud")
        peers.append(peer)
        if mode == "hanging":
            peer.faults = ["hang"] * 100
        d = tmp_path / mode
        d.mkdir()
        c = Controller(str(d), [sync("prod", repo.url, gateway,
                                     bitbucket=cloud(peer, d, timeout="30s"))])
        controllers.append(c)
        c.wait_ready()
        durations, walls = [], []
        for i in range(6):
            # Each pass applies a new commit: INPROGRESS and a final state each.
            repo.write("apis/h.json", keyless_api("bb-hang", "/bb-hang-%s-%d/" % (mode, i),
                                                  upstream.url))
            repo.commit("%s %d" % (mode, i))
            t0 = time.monotonic()
            durations += pass_durations(c, 1)
            walls.append(time.monotonic() - t0)
        results[mode] = (statistics.median(durations), statistics.median(walls))
        c.stop()
    print("\npass duration median: answering %.3fs, hanging %.3fs; request round trip "
          "median: answering %.3fs, hanging %.3fs" % (results["answering"][0],
                                                        results["hanging"][0],
                                                        results["answering"][1],
                                                        results["hanging"][1]))
    # A hanging Bitbucket (30 s timeout) would add seconds to every pass if
    # it were in the pass's path; the gateway's reload dominates both.
    assert results["hanging"][0] < results["answering"][0] * 1.5 + 0.3, results
    assert results["hanging"][1] < results["answering"][1] * 1.5 + 0.3, results
