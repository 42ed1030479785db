"""Governed changes (SPEC 11) against real peers: guardrail rules in validate,
diff and sync; the post-apply health check with automatic rollback on a real
Tyk Gateway; the apply history and `rollback --to` (CLI and HTTP)."""
import json
import os
import subprocess
import time

import pytest

from conftest import BIN, keyless_api
from peers import RefusedPort
from test_daemon import Daemon, daemons, metric, wait_for  # noqa: F401 (fixture)


def run(*args, timeout=120):
    return subprocess.run([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)


def write_config(path, repo, gateway, cache, sync_lines, extra=""):
    lines = ["cache_dir: %s" % cache, "log: {format: text, level: warn}", extra, "syncs:",
             "  - name: gov",
             "    repo: {url: '%s', ref: {branch: main}}" % repo.url,
             "    gateway: {url: '%s', secret_file: '%s', timeout: 5s}" % (gateway.url,
                                                                       gateway.secret_file)]
    lines += ["    " + l for l in sync_lines]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


RULES = [
    "rules:",
    "  auth_required: {except: ['apis/public/*']}",
    "  policy_limits: {max_requests_per_second: 100}",
    "  upstream_allow: {allow_loopback: true}",
    "  path_ownership:",
    "    owners:",
    "      - {files: 'apis/teams/pay/*', listen_paths: [/pay/]}",
    "  required_fields: {apis: [config_data.owner], level: warn}",
]


def keyed(api_id, listen, target, owner="team"):
    api = keyless_api(api_id, listen, target)
    api["use_keyless"] = False
    api["use_standard_auth"] = True
    api["auth"] = {"auth_header_name": "Authorization"}
    api["config_data"] = {"owner": owner}
    return api


# Each rule: a repository that breaks it, with the exact message and place.
# The API files are written with json.dumps(indent=2), so lines are known.
RULE_CASES = [
    ("auth_required", "apis/a.json", lambda up: dict(keyed("a", "/a/", up), use_keyless=True),
     "apis/a.json:5:3: error: auth_required: api 'a' is keyless (use_keyless is true)"),
    ("policy_limits", "policies/p.json",
     lambda up: {"id": "p", "name": "p", "rate": 1000, "per": 1, "quota_max": -1,
                 "access_rights": {}},
     "policies/p.json:4:3: error: policy_limits: policy 'p' allows 1000 requests per second "
     "in policy, more than max_requests_per_second 100"),
    ("upstream_allow", "apis/a.json", lambda up: keyed("a", "/a/", "http://0xA9FEA9FE/latest"),
     "apis/a.json:9:5: error: upstream_allow: api 'a': upstream host '0xA9FEA9FE' "
     "(169.254.169.254) is link-local (cloud metadata lives there); only an exact entry in "
     "hosts allows it"),
    ("path_ownership", "apis/teams/pay/a.json", lambda up: keyed("a", "/orders/", up),
     "apis/teams/pay/a.json:8:5: error: path_ownership: api 'a': listen path '/orders/' is "
     "outside /pay/, which files 'apis/teams/pay/*' may use"),
    ("required_fields", "apis/a.json", lambda up: dict(keyed("a", "/a/", up), config_data={}),
     "apis/a.json:24:3: warning: required_fields: api 'a' is missing required field "
     "'config_data.owner'"),
]


@pytest.mark.parametrize("rule,path,make,message", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_each_rule_fails_and_passes_in_validate(rule, path, make, message, gateway, repo,
                                                upstream, tmp_path):
    cfg = write_config(str(tmp_path / "c.yaml"), repo, gateway, str(tmp_path / "cache"), RULES)
    bad = os.path.join(str(tmp_path), "bad")
    good = os.path.join(str(tmp_path), "good")
    for root, obj in ((bad, make(upstream.url)), (good, None)):
        os.makedirs(os.path.join(root, "apis"))
        os.makedirs(os.path.join(root, "policies"))
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            if obj is not None:
                json.dump(obj, f, indent=2)
            elif path.startswith("policies/"):
                json.dump({"id": "p", "name": "p", "rate": 100, "per": 1, "quota_max": -1,
                           "access_rights": {}}, f, indent=2)
            else:
                json.dump(keyed("a", "/pay/a/" if "teams/pay" in path else "/a/",
                                upstream.url), f, indent=2)
    p = run("validate", "--config", cfg, bad)
    out = p.stdout + p.stderr
    assert message in out.splitlines(), out
    if "warning:" in message:
        assert p.returncode == 0, out
    else:
        assert p.returncode == 1 and "invalid: 1 errors" in out, out
    p = run("validate", "--config", cfg, "--sync", "gov", good)
    assert p.returncode == 0 and rule not in p.stdout + p.stderr, p.stdout + p.stderr
    # The same directory without the config: no rules, valid.
    assert run("validate", bad).returncode == 0
    # JSON results carry the rule.
    p = run("validate", "--config", cfg, "--format", "json", bad)
    probs = json.loads(p.stdout)["problems"]
    assert [x["rule"] for x in probs] == [rule], probs


def test_sync_refuses_a_commit_that_breaks_a_rule(gateway, repo, upstream, tmp_path):
    audit = str(tmp_path / "audit.jsonl")
    cfg = write_config(str(tmp_path / "c.yaml"), repo, gateway, str(tmp_path / "cache"),
                       RULES + ["  max_changes: {max: 2}"], extra="audit: %s" % audit)
    repo.write("apis/a.json", keyed("a", "/a/", upstream.url))
    good = repo.commit("good")
    p = run("sync", "--config", cfg)
    assert p.returncode == 0, p.stderr
    assert gateway.request("/a/")[0] == 401  # keyed: live and guarded

    repo.write("apis/public/open.json", keyless_api("open", "/open/", upstream.url))
    repo.write("apis/b.json", dict(keyed("b", "/b/", upstream.url), use_keyless=True))
    bad = repo.commit("keyless b")
    p = run("diff", "--config", cfg)
    assert p.returncode == 1
    assert ("apis/b.json:5:3: error: auth_required: api 'b' is keyless (use_keyless is true)"
            in p.stderr.splitlines()), p.stderr
    p = run("sync", "--config", cfg, "--format", "json")
    assert p.returncode == 1
    res = json.loads(p.stdout)[0]
    assert res["outcome"] == "refused" and "refused by rules" in res["error"], res
    assert sorted((x["rule"], x["severity"], x["file"]) for x in res["problems"]["problems"]) == [
        ("auth_required", "error", "apis/b.json"),
        ("required_fields", "warning", "apis/public/open.json")]
    # Nothing of the commit went live; the last good state stays.
    assert gateway.request("/open/")[0] == 404
    assert gateway.request("/b/")[0] == 404
    with open(audit) as f:
        events = [json.loads(l) for l in f if '"event"' in l]
    assert [(e["event"], e["rule"], e["commit"]) for e in events] == [
        ("refused", "auth_required", bad)]

    # max_changes: three changes need --force.
    repo.remove("apis/b.json")
    repo.write("apis/c.json", keyed("c", "/c/", upstream.url))
    repo.write("apis/d.json", keyed("d", "/d/", upstream.url))
    repo.commit("three changes")
    p = run("sync", "--config", cfg)
    assert p.returncode == 1
    assert ("error: max_changes: plan changes 3 objects, more than max 2; use --force to apply"
            in p.stderr.splitlines()), p.stderr
    p = run("sync", "--config", cfg, "--force")
    assert p.returncode == 0, p.stderr
    assert ("warning: max_changes: plan changes 3 objects, more than max 2; applied with --force"
            in p.stderr.splitlines()), p.stderr
    assert gateway.request("/open/")[0] == 200
    assert good


class GovDaemon(Daemon):
    """The daemon with rules, health and audit lines in its one sync."""

    def __init__(self, tmpdir, sync, sync_lines, extra_cfg=""):
        self.sync_lines = sync_lines
        super().__init__(tmpdir, [sync], extra_cfg=extra_cfg)

    def write_config(self, syncs=None):
        super().write_config(syncs)
        with open(self.config, "a") as f:
            f.write("".join("    %s\n" % l for l in self.sync_lines))


def history(d, name="gov"):
    code, body = d.get("/api/v1/syncs/%s/history" % name)
    assert code == 200, body
    return json.loads(body)


def pass_summary(res, d):
    """What a failed assertion on a pass needs to be understood from a CI log."""
    keys = ("commit", "trigger", "outcome", "health", "error", "rolled_back_to", "counts",
            "summary")
    lines = [l for l in d.logs().splitlines() if any(
        w in l for w in ("health", "reconcil", "rolling", "apply", "pass"))]
    return "%s\ndaemon log:\n%s" % ({k: res.get(k) for k in keys}, "\n".join(lines[-25:]))


@pytest.fixture
def refused_port():
    p = RefusedPort()
    yield p
    p.close()


def test_dead_upstream_is_rolled_back_and_not_retried(gateway, repo, upstream, tmp_path,
                                                     daemons, refused_port):
    dead = refused_port.url
    audit = str(tmp_path / "audit.jsonl")
    repo.write("apis/svc.json", keyless_api("svc", "/svc/", upstream.url))
    first = repo.commit("svc on the upstream")
    d = GovDaemon(str(tmp_path), {"name": "gov", "repo": repo.url, "gateway": gateway.url,
                                  "secret_file": gateway.secret_file, "interval": "1s",
                                  "drift": "2s"},
                  ["health: {on_failure: rollback, timeout: 1s, attempts: 2, interval: 100ms}",
                   # A warning is reported and counted, and does not block.
                   "rules: {auth_required: {level: warn}}"],
                  extra_cfg="audit: %s" % audit)
    daemons.append(d)
    d.wait_ready()
    st = d.status("gov")
    assert st["last_commit"] == first and st["last_result"]["health"] == "healthy", st
    assert gateway.request("/svc/x")[0] == 200

    # The bad commit: the API now points at a port nobody listens on.
    repo.write("apis/svc.json", keyless_api("svc", "/svc/", dead))
    bad = repo.commit("svc on a dead upstream")
    st = wait_for(lambda: (lambda s: s if s["last_result"] and
                           s["last_result"]["commit"] == bad else None)(d.status("gov")),
                  20, "the bad commit's pass")
    res = st["last_result"]
    assert res["outcome"] == "error" and res["health"] == "unhealthy", pass_summary(res, d)
    assert res["rolled_back_to"] == first, res
    assert "failed its health check" in res["error"] and "upstream_down (500)" in res["error"]
    assert st["last_commit"] == first, st
    # The status keeps saying so after later passes.
    time.sleep(2.5)
    st = d.status("gov")
    assert st["pinned_commit"] == first and st["failed_commit"] == bad, st
    # Traffic on the old route works again: the first commit's definition is back.
    assert gateway.request("/svc/x")[0] == 200
    code, api = gateway.api("GET", "/tyk/apis/svc")
    assert api["proxy"]["target_url"] == upstream.url
    h = history(d)
    assert h["pin"] == first and h["pin_head"] == bad, h
    kinds = [(e["commit"], e["kind"], e["health"], e["rolled_back"]) for e in h["entries"]]
    assert kinds[:3] == [(first, "rollback", "healthy", False), (bad, "apply", "unhealthy", True),
                         (first, "apply", "healthy", False)], kinds

    # The next polls and drift passes do not apply the bad commit again.
    n = len(h["entries"])
    time.sleep(4)
    assert gateway.request("/svc/x")[0] == 200
    assert gateway.api("GET", "/tyk/apis/svc")[1]["proxy"]["target_url"] == upstream.url
    assert len(history(d)["entries"]) == n
    m = d.metrics()
    assert metric(m, "tyk_gitops_rollbacks_total", sync="gov", result="ok") == 1
    assert metric(m, "tyk_gitops_health_checks_total", sync="gov", result="unhealthy") == 1
    assert metric(m, "tyk_gitops_rule_violations_total", sync="gov", rule="auth_required",
                  severity="warning") >= 2
    assert st["last_result"]["problems"]["problems"][0]["rule"] == "auth_required"
    # Drift repair holds the rolled-back state.
    gateway.api("DELETE", "/tyk/apis/svc")
    gateway.reload()
    wait_for(lambda: gateway.request("/svc/x")[0] == 200, 8, "drift repaired to the good commit")
    assert gateway.api("GET", "/tyk/apis/svc")[1]["proxy"]["target_url"] == upstream.url

    # A new, fixed commit goes live.
    repo.write("apis/svc.json", keyless_api("svc", "/svc/", upstream.url + "/v2"))
    fixed = repo.commit("svc fixed")
    wait_for(lambda: d.status("gov")["last_commit"] == fixed, 15, "the fixed commit live")
    assert gateway.request("/svc/x") == (200, json.dumps(
        {"upstream": "ok", "path": "/v2/x", "method": "GET"}))
    h = history(d)
    assert h["pin"] is None and h["entries"][0]["commit"] == fixed, h
    st = d.status("gov")
    assert st["pinned_commit"] is None and st["failed_commit"] is None, st

    # Rollback through the API: POST only, with the usual rules (loopback here).
    assert d.get("/api/v1/syncs/gov/rollback?to=" + first)[0] == 405
    assert d.post("/api/v1/syncs/gov/rollback")[0] == 400
    code, body = d.post("/api/v1/syncs/gov/rollback?to=%s&wait=true" % first[:10])
    assert code == 200, body
    res = json.loads(body)
    assert res["commit"] == first and res["trigger"] == "rollback" and res["pinned"], res
    assert res["rollback_from"] == fixed
    assert gateway.api("GET", "/tyk/apis/svc")[1]["proxy"]["target_url"] == upstream.url
    assert history(d)["entries"][0]["kind"] == "rollback"
    with open(audit) as f:
        events = [(e["event"], e["commit"]) for e in map(json.loads, f) if "event" in e]
    assert events == [("health_failed", bad), ("rollback", first), ("rollback", first)], events

    # The history survives a restart, and the CLI reads it.
    d.stop()
    p = run("history", "--config", d.config, "--format", "json")
    assert p.returncode == 0, p.stderr
    cli = json.loads(p.stdout)[0]
    assert cli["sync"] == "gov" and cli["pin"] == first
    assert [e["commit"] for e in cli["entries"]][:2] == [first, fixed]
    p = run("history", "--config", d.config)
    assert "[rolled back]" in p.stdout and "pinned at %s" % first[:12] in p.stdout, p.stdout


def test_cli_rollback_to_holds_until_a_new_commit(gateway, repo, upstream, tmp_path):
    cfg = write_config(str(tmp_path / "c.yaml"), repo, gateway, str(tmp_path / "cache"), [])
    repo.write("apis/svc.json", keyless_api("svc", "/svc/", upstream.url))
    first = repo.commit("one")
    assert run("sync", "--config", cfg).returncode == 0
    repo.write("apis/svc.json", keyless_api("svc", "/svc/", upstream.url + "/two"))
    second = repo.commit("two")
    assert run("sync", "--config", cfg).returncode == 0
    assert json.loads(gateway.request("/svc/x")[1])["path"] == "/two/x"

    assert run("rollback", "--config", cfg).returncode == 1  # needs --to
    p = run("rollback", "--config", cfg, "--to", "nothex")
    assert p.returncode == 1 and "is not a commit id" in p.stderr
    p = run("rollback", "--config", cfg, "--to", first[:8])
    assert p.returncode == 0, p.stderr
    assert json.loads(gateway.request("/svc/x")[1])["path"] == "/x"
    # A plain sync holds the rollback while the branch still names `second`.
    assert run("sync", "--config", cfg).returncode == 0
    assert json.loads(gateway.request("/svc/x")[1])["path"] == "/x"
    p = run("history", "--config", cfg, "--format", "json")
    h = json.loads(p.stdout)[0]
    assert [(e["commit"], e["kind"], e["from_commit"]) for e in h["entries"]] == [
        (first, "rollback", second), (second, "apply", None), (first, "apply", None)]
    # A new commit lifts the pin.
    repo.write("apis/svc.json", keyless_api("svc", "/svc/", upstream.url + "/three"))
    repo.commit("three")
    assert run("sync", "--config", cfg).returncode == 0
    assert json.loads(gateway.request("/svc/x")[1])["path"] == "/three/x"
    assert json.loads(run("history", "--config", cfg, "--format", "json").stdout)[0]["pin"] is None


def test_a_health_path_on_the_object_wins_over_the_syncs(gateway, repo, upstream, tmp_path):
    cfg = write_config(str(tmp_path / "c.yaml"), repo, gateway, str(tmp_path / "cache"),
                       ["health: {path: healthz, timeout: 2s, attempts: 1}"])
    own = keyless_api("own", "/own/", upstream.url)
    own["config_data"] = {"tyk_gitops": {"health_path": "ping"}}
    repo.write("apis/own.json", own)
    repo.write("apis/plain.json", keyless_api("plain", "/plain/", upstream.url))
    repo.commit("two apis, one with its own health path")
    seen = len(upstream.paths)  # the upstream peer may be shared with earlier tests
    p = run("sync", "--config", cfg, "--format", "json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)[0]
    assert res["health"] == "healthy", res
    # strip_listen_path: the upstream sees the path below the listen path.
    assert sorted(upstream.paths[seen:]) == ["/healthz", "/ping"], upstream.paths[seen:]


def test_a_second_pass_of_one_sync_waits_for_the_first(gateway, repo, upstream, tmp_path):
    """The CLI beside a controller on one cache_dir: one pass at a time per sync."""
    import fcntl
    cache = str(tmp_path / "cache")
    cfg = write_config(str(tmp_path / "c.yaml"), repo, gateway, cache, [])
    repo.write("apis/svc.json", keyless_api("svc", "/svc/", upstream.url))
    repo.commit("one")
    assert run("sync", "--config", cfg).returncode == 0
    repo.write("apis/svc.json", keyless_api("svc", "/svc/", upstream.url + "/two"))
    repo.commit("two")
    lock = os.path.join(cache, "gov", "pass.lock")
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        t0 = time.monotonic()
        p = subprocess.Popen([BIN, "sync", "--config", cfg], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        # Still waiting: nothing of "two" is live yet.
        assert p.poll() is None
        assert json.loads(gateway.request("/svc/x")[1])["path"] == "/x"
        fcntl.flock(held, fcntl.LOCK_UN)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert time.monotonic() - t0 >= 1.5
    assert json.loads(gateway.request("/svc/x")[1])["path"] == "/two/x"
    # Held past the wait, the pass fails with the reason and changes nothing.
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        repo.write("apis/svc.json", keyless_api("svc", "/svc/", upstream.url + "/three"))
        repo.commit("three")
        p = run("sync", "--config", cfg)
    assert p.returncode == 1
    assert "another tyk-gitops pass of this sync holds '%s' (waited 10000 ms)" % lock in p.stderr
    assert json.loads(gateway.request("/svc/x")[1])["path"] == "/two/x"


def test_a_rollback_settles_the_pass_and_is_not_retried(gateway, repo, upstream, tmp_path,
                                                       daemons, refused_port):
    repo.write("apis/svc.json", keyless_api("svc", "/svc/", upstream.url))
    repo.commit("svc on the upstream")
    # No drift pass in the window: what follows the rollback is up to the poll.
    d = GovDaemon(str(tmp_path), {"name": "gov", "repo": repo.url, "gateway": gateway.url,
                                  "secret_file": gateway.secret_file, "interval": "1s",
                                  "drift": "1h"},
                  ["health: {on_failure: rollback, timeout: 1s, attempts: 1}"])
    daemons.append(d)
    d.wait_ready()
    repo.write("apis/svc.json", keyless_api("svc", "/svc/", refused_port.url))
    bad = repo.commit("svc on a dead upstream")
    wait_for(lambda: d.status("gov")["failed_commit"] == bad, 20, "the rollback")
    passes = metric(d.metrics(), "tyk_gitops_reconcile_total", sync="gov", result="error")
    time.sleep(3.5)
    m = d.metrics()
    # The polls after it are cheap checks (the ref still names the bad
    # commit): no full pass retried with a failure's backoff.
    assert metric(m, "tyk_gitops_triggers_total", sync="gov", trigger="retry") == 0, m
    assert metric(m, "tyk_gitops_reconcile_total", sync="gov", result="error") == passes
    assert gateway.request("/svc/x")[0] == 200
