"""Bitbucket out: commit build statuses from `tyk-gitops run` and Code Insights
reports from `tyk-gitops report`, against a real Tyk Gateway, real git
repositories and a Bitbucket REST API peer (tests/e2e/bitbucket.py,
BitbucketApi) that answers in Atlassian's documented shapes."""
import base64
import json
import os
import shutil
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
    # Counted once the answer is in, just after the peer recorded the request.
    wait_for(lambda: metric(c.metrics(), "tyk_gitops_bitbucket_requests_total", api="cloud",
                            result="ok") == 2, 5, "both statuses counted")
    # Who caused the change, in the terms Bitbucket maps to its accounts.
    rec = [r for r in c.audit() if r["id"] == "bb-echo" and r["phase"] == "outcome"][-1]
    assert (rec["commit"], rec["author_name"], rec["author_email"]) == (
        sha, "Ada Tester", "ada@example.com")
    last = c.status("prod")["last_result"]
    assert (last["author_name"], last["author_email"]) == ("Ada Tester", "ada@example.com")
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
    # The refusal comes milliseconds after the pass began: when INPROGRESS is
    # still queued then, FAILED replaces it in the queue (notifier.h), so
    # Bitbucket may see only the final state; never anything after it.
    assert states(peer, bad) in (["INPROGRESS", "FAILED"], ["FAILED"]), states(peer, bad)
    r = reqs[-1]
    assert r["path"] == "/rest/api/latest/projects/PLAT/repos/gateway-config/commits/%s/builds" % bad
    assert r["headers"]["authorization"] == "Bearer dc-http-token"
    assert r["headers"]["content-type"] == "application/json"
    desc = r["body"]["description"]
    assert r["body"] == {"key": "tyk-gitops-prod", "state": "FAILED", "name": "tyk-gitops prod",
                         "url": "https://gitops.example.com/api/v1/syncs/prod",
                         "description": desc}
    assert desc.startswith("commit %s is invalid (1 problem(s)); nothing was applied: "
                           "apis/good.json:1:1: " % bad[:12]), desc
    assert "api_id" in desc and len(desc) <= 255
    # The last good commit stays live, and its status stays SUCCESSFUL.
    assert gateway.request("/bb-good/x")[0] == 200
    assert states(peer, good) == ["INPROGRESS", "SUCCESSFUL"]
    # Counted once the answer is in, just after the peer recorded the request.
    wait_for(lambda: metric(c.metrics(), "tyk_gitops_bitbucket_requests_total",
                            api="datacenter", result="ok") == 2 + len(states(peer, bad)), 5,
             "every status counted")


def test_an_unsigned_commit_is_failed_with_the_reason(gateway, repo, upstream, tmp_path,
                                                      controllers, peers):
    # trusted_keys makes the git source refuse an unsigned head before any
    # checkout: the status goes on the refused commit, named by the git source.
    peer = BitbucketApi("cloud")
    peers.append(peer)
    key = str(tmp_path / "signer")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "signer@test", "-f",
                    key], check=True)
    with open(key + ".pub") as f:
        pub = f.read().strip()
    repo.write("apis/echo.json", keyless_api("bb-unsigned", "/bb-unsigned/", upstream.url))
    sha = repo.commit("unsigned")
    s = sync("prod", repo.url, gateway, bitbucket=cloud(peer, tmp_path))
    s["repo"]["trusted_keys"] = [pub]
    c = Controller(str(tmp_path), [s])
    controllers.append(c)
    reqs = wait_state(peer, sha, "FAILED")
    assert states(peer, sha) == ["FAILED"]
    assert reqs[-1]["body"]["description"].startswith(
        "refusing commit %s: it is not signed" % sha), reqs[-1]["body"]
    assert gateway.request("/bb-unsigned/x")[0] != 200


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

    # A Bitbucket that takes the request and never answers: a timeout
    # (2 s here), counted, retried, and the pass is not held up.
    peer.faults = ["hang"]
    repo.write("apis/r3.json", keyless_api("bb-retry3", "/bb-retry3/", upstream.url))
    sha3 = repo.commit("retry 3")
    code, text, _ = c.post("/api/v1/syncs/prod/reconcile?wait=true")
    assert code == 200 and json.loads(text)["duration_seconds"] < 2, text
    wait_for(lambda: metric(c.metrics(), "tyk_gitops_bitbucket_requests_total", api="cloud",
                            result="timeout") == 1, 20, "a timed-out request")
    wait_state(peer, sha3, "SUCCESSFUL")


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


# ---- tyk-gitops report -----------------------------------------------------------

SHA = "4f2a9c1e0b7d6a5f4e3d2c1b0a99887766554433"


def three_problems(root):
    """A config repository under root/env with three problems at known lines."""
    os.makedirs(os.path.join(root, "env", "apis"))
    os.makedirs(os.path.join(root, "env", "policies"))
    with open(os.path.join(root, "env", "apis", "broken.json"), "w") as f:
        f.write('{\n  "name": "broken",\n  "api_id": "broken",,\n  "org_id": "acme"\n}\n')
    with open(os.path.join(root, "env", "apis", "noid.yaml"), "w") as f:
        f.write("# an API without its id\nname: noid\norg_id: acme\nuse_keyless: true\n"
                "proxy:\n  listen_path: /noid/\n  target_url: http://127.0.0.1:1\n")
    with open(os.path.join(root, "env", "policies", "p.json"), "w") as f:
        f.write('{\n  "id": "p1",\n  "name": "p1",\n  "org_id": "acme",\n'
                '  "access_rights": {\n    "ghost": {"api_id": "ghost", "versions": ["Default"]}\n'
                '  }\n}\n')


def report(*args, env=None, cwd=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("BITBUCKET_")}
    e.update(env or {})
    return subprocess.run([BIN, "report", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=120, env=e, cwd=cwd)


def test_report_with_three_problems_has_three_annotations_at_their_lines(tmp_path, peers):
    peer = BitbucketApi("cloud")
    peers.append(peer)
    three_problems(str(tmp_path / "clone"))
    md = str(tmp_path / "plan.md")
    p = report("--dir", str(tmp_path / "clone"), "--path", "env", "--sha", SHA, "--api", "cloud",
               "--bitbucket-url", peer.url, "--workspace", "acme", "--repo-slug",
               "gateway-config", "--token-file", token_file(tmp_path), "--format", "markdown",
               "--output", md)
    assert p.returncode == 1, p.stdout + p.stderr  # as validate: invalid
    base = "/2.0/repositories/acme/gateway-config/commit/%s/reports/tyk-gitops-report" % SHA
    assert [(r["method"], r["path"]) for r in peer.requests] == [
        ("DELETE", base), ("PUT", base), ("POST", base + "/annotations")]
    for r in peer.requests:
        assert r["headers"]["authorization"] == "Bearer " + TOKEN
    put = peer.requests[1]
    assert put["headers"]["content-type"] == "application/json"
    assert put["body"] == {
        "title": "tyk-gitops: gateway plan",
        "details": "The repository is invalid: 3 error(s), 0 warning(s). Validated offline "
                   "(no gateway configured: no plan).",
        "reporter": "tyk-gitops", "report_type": "TEST", "result": "FAILED",
        "data": [{"title": t, "type": "NUMBER", "value": v} for t, v in
                 (("Created", 0), ("Updated", 0), ("Deleted", 0), ("Unchanged", 0),
                  ("Conflicts", 0), ("Problems", 3))]}
    ann = peer.reports[(SHA, "tyk-gitops-report")]["annotations"]
    assert len(ann) == 3
    assert [(a["path"], a["line"]) for a in ann] == [
        ("env/apis/broken.json", 3), ("env/apis/noid.yaml", 2), ("env/policies/p.json", 6)]
    assert ann[1] == {"external_id": "tyk-gitops-2", "annotation_type": "BUG",
                      "summary": "error: api_id: missing api id", "severity": "HIGH",
                      "result": "FAILED", "path": "env/apis/noid.yaml", "line": 2}
    assert all(a["severity"] == "HIGH" and a["result"] == "FAILED" for a in ann)
    text = open(md).read()
    assert "### tyk-gitops: plan failed" in text
    assert "- `env/policies/p.json:6` `error: access_rights.ghost: policy 'p1' grants access" in text
    # A rerun replaces the report: DELETE answers 204 now, 3 annotations again.
    p = report("--dir", str(tmp_path / "clone"), "--path", "env", "--sha", SHA, "--api", "cloud",
               "--bitbucket-url", peer.url, "--workspace", "acme", "--repo-slug",
               "gateway-config", "--token-file", token_file(tmp_path))
    assert p.returncode == 1
    assert len(peer.reports[(SHA, "tyk-gitops-report")]["annotations"]) == 3


def test_report_in_pipelines_goes_through_the_local_proxy_without_a_token(tmp_path, peers,
                                                                       upstream):
    proxy = BitbucketApi("cloud", owner="acme-ws", slug="gw", proxy=True)
    peers.append(proxy)
    clone = tmp_path / "clone"
    (clone / "apis").mkdir(parents=True)
    (clone / "apis" / "ok.json").write_text(json.dumps(keyless_api("ok", "/ok/", upstream.url)))
    p = report("--dir", str(clone), "--proxy", proxy.url,
               env={"BITBUCKET_COMMIT": SHA, "BITBUCKET_WORKSPACE": "acme-ws",
                    "BITBUCKET_REPO_SLUG": "gw"})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "report: PASSED, 0 annotation(s)" in p.stdout
    base = "/2.0/repositories/acme-ws/gw/commit/%s/reports/tyk-gitops-report" % SHA
    assert [(r["method"], r["host"], r["path"]) for r in proxy.requests] == [
        ("DELETE", "api.bitbucket.org", base), ("PUT", "api.bitbucket.org", base)]
    assert all("authorization" not in r["headers"] for r in proxy.requests)
    assert proxy.requests[1]["body"]["result"] == "PASSED"


def test_report_dc_with_a_gateway_annotates_every_planned_change(gateway, repo, upstream,
                                                                 tmp_path, peers):
    peer = BitbucketApi("dc", owner="PLAT", slug="gw-config", token="dc-tok")
    peers.append(peer)
    # What is live: one API this sync owns, applied by a real sync.
    repo.write("apis/keep.json", keyless_api("rp-keep", "/rp-keep/", upstream.url))
    repo.write("apis/gone.json", keyless_api("rp-gone", "/rp-gone/", upstream.url))
    repo.commit("live")
    cfg = tmp_path / "tyk-gitops.yaml"
    cfg.write_text(json.dumps({
        "cache_dir": str(tmp_path / "cache"),
        "syncs": [{"name": "prod", "repo": {"url": repo.url, "ref": {"branch": "main"}},
                   "gateway": {"url": gateway.url, "secret_file": gateway.secret_file},
                   "bitbucket": {"api": "datacenter", "url": peer.url, "project": "PLAT",
                                 "repo_slug": "gw-config",
                                 "token_file": token_file(tmp_path, "dc-tok")}}]}))
    s = subprocess.run([BIN, "sync", "--config", str(cfg)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    assert s.returncode == 0, s.stderr
    # The pull request: change one API, add one, remove one.
    repo.write("apis/keep.json", keyless_api("rp-keep", "/rp-keep-v2/", upstream.url))
    repo.write("apis/new.json", keyless_api("rp-new", "/rp-new/", upstream.url, name="New API"))
    repo.remove("apis/gone.json")
    # The pipeline's filesystem has no cache directory: report needs none.
    shutil.rmtree(str(tmp_path / "cache"))
    p = report("--config", str(cfg), "--dir", repo.work, "--sha", SHA)
    assert not (tmp_path / "cache").exists()
    assert p.returncode == 2, p.stdout + p.stderr  # as diff: changes
    base = "/rest/insights/1.0/projects/PLAT/repos/gw-config/commits/%s/reports/tyk-gitops-prod" % SHA
    assert [(r["method"], r["path"]) for r in peer.requests] == [
        ("DELETE", base), ("PUT", base), ("POST", base + "/annotations")]
    put = peer.requests[1]["body"]
    assert put["result"] == "PASS" and put["title"] == "tyk-gitops: prod"
    assert {d["title"]: d["value"] for d in put["data"]} == {
        "Created": 1, "Updated": 1, "Deleted": 1, "Unchanged": 0, "Conflicts": 0, "Problems": 0}
    assert "create 1, update 1 and delete 1" in put["details"]
    ann = {a["path"]: a for a in peer.requests[2]["body"]["annotations"]}
    assert set(ann) == {"apis/keep.json", "apis/new.json", "apis/gone.json"}
    assert ann["apis/new.json"]["message"] == "will create api 'rp-new' (New API)"
    assert ann["apis/new.json"]["line"] == 1 and ann["apis/new.json"]["severity"] == "LOW"
    assert ann["apis/keep.json"]["message"].startswith("will update api 'rp-keep' (rp-keep)\n")
    assert "proxy.listen_path" in ann["apis/keep.json"]["message"]
    assert ann["apis/gone.json"]["message"] == "will delete api 'rp-gone'"
    assert ann["apis/gone.json"]["severity"] == "MEDIUM" and "line" not in ann["apis/gone.json"]
    assert all(a["type"] == "CODE_SMELL" and a["externalId"].startswith("tyk-gitops-")
               for a in ann.values())


def test_report_cuts_annotations_at_bitbucket_limit_and_says_so(tmp_path, peers):
    peer = BitbucketApi("cloud")
    peers.append(peer)
    clone = tmp_path / "clone"
    (clone / "apis").mkdir(parents=True)
    docs = ["name: a%d\norg_id: acme\n" % i for i in range(1005)]  # 1005 APIs without an id
    (clone / "apis" / "many.yaml").write_text("---\n".join(docs))
    p = report("--dir", str(clone), "--sha", SHA, "--api", "cloud", "--bitbucket-url", peer.url,
               "--workspace", "acme", "--repo-slug", "gateway-config", "--token-file",
               token_file(tmp_path))
    assert p.returncode == 1
    assert "1000 annotation(s) (cut)" in p.stdout
    posts = [r for r in peer.requests if r["path"].endswith("/annotations")]
    assert [len(r["body"]) for r in posts] == [100] * 10
    assert len(peer.reports[(SHA, "tyk-gitops-report")]["annotations"]) == 1000
    assert "Showing 1000 of 1005 annotations" in peer.requests[1]["body"]["details"]


def test_report_annotates_guardrail_violations_with_their_rule(gateway, repo, upstream,
                                                               tmp_path, peers):
    # The sync's rules (issue 14) apply to the pull request as to an apply:
    # a keyless API breaks auth_required, which the report names at its line.
    peer = BitbucketApi("cloud")
    peers.append(peer)
    repo.write("apis/open.json", keyless_api("rp-open", "/rp-open/", upstream.url))
    repo.commit("keyless")
    cfg = tmp_path / "tyk-gitops.yaml"
    cfg.write_text(json.dumps({
        "cache_dir": str(tmp_path / "cache"),
        "syncs": [{"name": "prod", "repo": {"url": repo.url, "ref": {"branch": "main"}},
                   "gateway": {"url": gateway.url, "secret_file": gateway.secret_file},
                   "rules": {"auth_required": True},
                   "bitbucket": cloud(peer, tmp_path)}]}))
    p = report("--config", str(cfg), "--dir", repo.work, "--sha", SHA)
    assert p.returncode == 1, p.stdout + p.stderr
    ann = peer.reports[(SHA, "tyk-gitops-prod")]["annotations"]
    rule = [a for a in ann if a["severity"] == "HIGH"]
    assert len(rule) == 1, ann
    assert rule[0]["path"] == "apis/open.json" and rule[0]["line"] > 1
    assert rule[0]["summary"].startswith("error: auth_required: api 'rp-open' is keyless"), rule
    assert gateway.request("/rp-open/x")[0] != 200  # a report applies nothing
