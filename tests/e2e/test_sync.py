"""The thin slice and the reconcile engine against a real Tyk Gateway."""
import json
import os
import time

import pytest

from conftest import keyless_api, policy, token_api


def owned_marker(obj, slot="config_data"):
    return (obj.get(slot) or {}).get("tyk_gitops")


def test_first_sync_proxies_and_serves_policy(controller, repo, gateway, upstream):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.write("policies/basic.json", policy("basic", ["echo"]))
    sha = repo.commit("add echo api and basic policy")

    p = controller.run("sync")
    assert p.returncode == 0, p.stderr
    assert "2 created, 0 updated, 0 deleted" in p.stdout

    code, body = gateway.request("/echo/hello")
    assert code == 200
    assert json.loads(body) == {"upstream": "ok", "path": "/hello", "method": "GET"}

    code, pol = gateway.api("GET", "/tyk/policies/basic")
    assert code == 200 and pol["id"] == "basic" and pol["rate"] == 1000
    marker = pol["meta_data"]["tyk_gitops"]
    assert marker["sync"] == "test" and marker["commit"] == sha
    assert marker["file"] == "policies/basic.json"
    code, api = gateway.api("GET", "/tyk/apis/echo")
    assert owned_marker(api)["commit"] == sha


def test_second_diff_is_in_sync_for_every_example(controller, repo, gateway, upstream):
    examples = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "config-repo")
    for d in ("apis", "policies"):
        for name in os.listdir(os.path.join(examples, d)):
            with open(os.path.join(examples, d, name)) as f:
                repo.write(d + "/" + name, f.read())
    repo.commit("examples")
    env = {"UPSTREAM_URL": upstream.url}
    p = controller.run("sync", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    p = controller.run("diff", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "in sync" in p.stdout
    code, body = gateway.request("/petstore/pets")
    assert code == 200 and json.loads(body)["path"] == "/pets"


def test_unchanged_commit_writes_nothing(controller, repo, gateway, upstream):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    assert controller.run("sync").returncode == 0
    first = gateway.api("GET", "/tyk/apis/echo")[1]["config_data"]["tyk_gitops"]
    repo.write("README.md", "docs only")
    repo.commit("docs")
    p = controller.run("sync")
    assert p.returncode == 0, p.stderr
    assert "0 created, 0 updated, 0 deleted, 1 unchanged" in p.stdout or "in sync" in p.stdout
    again = gateway.api("GET", "/tyk/apis/echo")[1]["config_data"]["tyk_gitops"]
    assert again == first  # still stamped with the commit that produced it


def test_unreachable_gateway_fails_clearly(controller, repo, upstream):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    controller.gateway.stop()
    p = controller.run("sync")
    assert p.returncode == 1
    assert "cannot reach gateway" in p.stderr


def test_wrong_secret_fails_clearly(controller, repo, gateway, upstream, tmp_path):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    bad = tmp_path / "bad-secret"
    bad.write_text("not-the-secret-xyz\n")
    gateway.secret_file = str(bad)
    p = controller.run("sync")
    assert p.returncode == 1
    assert "rejected the secret" in p.stderr
    assert "not-the-secret-xyz" not in p.stderr + p.stdout


def test_unreadable_repo_fails_clearly(controller, repo):
    repo.url = "file:///nonexistent/repo.git"
    p = controller.run("sync")
    assert p.returncode == 1
    assert "nonexistent" in p.stderr


def test_malformed_file_names_file_and_line_and_changes_nothing(controller, repo, gateway, upstream):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    assert controller.run("sync").returncode == 0
    before = gateway.api("GET", "/tyk/apis/echo")[1]

    repo.write("apis/echo.json", keyless_api("echo", "/echo2/", upstream.url))
    repo.write("apis/broken.yaml", "name: broken\napi_id: broken\nproxy: [unclosed\n")
    repo.commit("broken")
    p = controller.run("sync")
    assert p.returncode == 1
    assert "apis/broken.yaml:" in p.stderr
    assert "nothing was applied" in p.stderr
    after = gateway.api("GET", "/tyk/apis/echo")[1]
    assert after["proxy"]["listen_path"] == before["proxy"]["listen_path"] == "/echo/"
    assert gateway.api("GET", "/tyk/apis/broken")[0] == 404


def test_deleted_file_removes_api_and_gateway_answers_404(controller, repo, gateway, upstream):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.write("apis/other.json", keyless_api("other", "/other/", upstream.url))
    repo.commit()
    assert controller.run("sync").returncode == 0
    assert gateway.request("/other/x")[0] == 200
    repo.remove("apis/other.json")
    repo.commit("remove other")
    p = controller.run("sync")
    assert p.returncode == 0, p.stderr
    assert "1 deleted" in p.stdout
    assert gateway.request("/other/x")[0] == 404
    assert gateway.api("GET", "/tyk/apis/other")[0] == 404
    assert gateway.request("/echo/x")[0] == 200


def test_policy_rate_limits_a_bound_key(controller, repo, gateway, upstream):
    repo.write("apis/paid.json", token_api("paid", "/paid/", upstream.url))
    repo.write("policies/tiny.json", policy("tiny", ["paid"], rate=3, per=60))
    repo.commit()
    assert controller.run("sync").returncode == 0
    code, key = gateway.api("POST", "/tyk/keys", {
        "apply_policies": ["tiny"], "org_id": "acme", "expires": 0, "allowance": 0, "rate": 0,
        "per": 0, "quota_max": -1, "access_rights": {}})
    assert code == 200, key
    headers = {"Authorization": key["key"]}
    codes = [gateway.request("/paid/x", headers)[0] for _ in range(6)]
    assert codes[:3] == [200, 200, 200]
    assert 429 in codes[3:]
    assert gateway.request("/paid/x")[0] in (400, 401)  # no key


def test_hand_edit_is_detected_and_corrected(controller, repo, gateway, upstream):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    assert controller.run("sync").returncode == 0
    api = gateway.api("GET", "/tyk/apis/echo")[1]
    api["proxy"]["target_url"] = "http://127.0.0.1:9/"
    assert gateway.api("PUT", "/tyk/apis/echo", api)[0] == 200
    gateway.reload()

    p = controller.run("diff")
    assert p.returncode == 2
    assert "drifted" in p.stdout and "proxy.target_url" in p.stdout
    p = controller.run("sync")
    assert p.returncode == 0, p.stderr
    assert gateway.api("GET", "/tyk/apis/echo")[1]["proxy"]["target_url"] == upstream.url
    assert controller.run("diff").returncode == 0


def test_warn_policy_reports_drift_without_correcting(controller, repo, gateway, upstream, tmp_path):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    cfg = tmp_path / "config.yaml"
    cfg.write_text("syncs:\n  - name: test\n    drift: {policy: warn}\n")
    controller.extra = ["--config", str(cfg)]
    assert controller.run("sync").returncode == 0
    api = gateway.api("GET", "/tyk/apis/echo")[1]
    api["proxy"]["target_url"] = "http://127.0.0.1:9/"
    gateway.api("PUT", "/tyk/apis/echo", api)
    gateway.reload()
    p = controller.run("sync")
    assert p.returncode == 0, p.stderr
    assert "drift left in place" in p.stderr
    assert gateway.api("GET", "/tyk/apis/echo")[1]["proxy"]["target_url"] == "http://127.0.0.1:9/"


def test_hand_deleted_and_restarted_empty_gateway_is_repaired(controller, repo, gateway, upstream):
    for i in range(5):
        repo.write("apis/a%d.json" % i, keyless_api("a%d" % i, "/a%d/" % i, upstream.url))
    repo.write("policies/p.json", policy("p", ["a0", "a1"]))
    repo.commit()
    assert controller.run("sync").returncode == 0
    gateway.restart_empty()
    assert gateway.api("GET", "/tyk/apis/a0")[0] == 404
    p = controller.run("sync")
    assert p.returncode == 0, p.stderr
    assert "6 created" in p.stdout
    assert all(gateway.request("/a%d/x" % i)[0] == 200 for i in range(5))
    assert gateway.api("GET", "/tyk/policies/p")[0] == 200


def test_unowned_object_is_a_conflict_until_adopted(controller, repo, gateway, upstream):
    gateway.api("POST", "/tyk/apis", keyless_api("legacy", "/legacy/", upstream.url))
    gateway.reload()
    repo.write("apis/legacy.json", keyless_api("legacy", "/legacy-new/", upstream.url))
    repo.commit()
    p = controller.run("sync")
    assert p.returncode == 1
    assert "conflict" in p.stdout and "not owned by this sync" in p.stderr
    assert gateway.api("GET", "/tyk/apis/legacy")[1]["proxy"]["listen_path"] == "/legacy/"
    p = controller.run("sync", "--adopt")
    assert p.returncode == 0, p.stderr
    api = gateway.api("GET", "/tyk/apis/legacy")[1]
    assert api["proxy"]["listen_path"] == "/legacy-new/"
    assert owned_marker(api)["sync"] == "test"


def test_unowned_objects_are_never_pruned(controller, repo, gateway, upstream):
    gateway.api("POST", "/tyk/apis", keyless_api("handmade", "/handmade/", upstream.url))
    gateway.reload()
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    assert controller.run("sync").returncode == 0
    assert gateway.api("GET", "/tyk/apis/handmade")[0] == 200


def test_max_delete_refuses_mass_deletion_unless_forced(controller, repo, gateway, upstream):
    for i in range(12):
        repo.write("apis/a%d.json" % i, keyless_api("a%d" % i, "/a%d/" % i, upstream.url))
    repo.commit()
    assert controller.run("sync").returncode == 0
    for i in range(1, 12):
        repo.remove("apis/a%d.json" % i)
    repo.commit("remove 11")
    p = controller.run("sync")
    assert p.returncode == 1
    assert "refusing to delete 11 objects" in p.stderr
    assert gateway.api("GET", "/tyk/apis/a5")[0] == 200
    p = controller.run("sync", "--force")
    assert p.returncode == 0, p.stderr
    assert gateway.api("GET", "/tyk/apis/a5")[0] == 404


def test_empty_commit_is_refused_unless_allowed(controller, repo, gateway, upstream):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    assert controller.run("sync").returncode == 0
    repo.remove("apis/echo.json")
    repo.commit("empty")
    p = controller.run("sync")
    assert p.returncode == 1
    assert gateway.api("GET", "/tyk/apis/echo")[0] == 200
    p = controller.run("sync", "--allow-empty")
    assert p.returncode == 0, p.stderr
    assert gateway.api("GET", "/tyk/apis/echo")[0] == 404


def test_policy_is_never_left_pointing_at_a_missing_api(controller, repo, gateway, upstream):
    # The OAS API lacks its upstream: the gateway rejects it, so the policy
    # that references it must not be written.
    repo.write("apis/good.json", keyless_api("good", "/good/", upstream.url))
    repo.write("policies/p.json", policy("p", ["good", "ghost"]))
    repo.commit()
    p = controller.run("sync")
    assert p.returncode == 1
    assert "ghost" in p.stderr
    assert gateway.api("GET", "/tyk/policies/p")[0] == 404


def test_deleting_api_and_its_policy_orders_policy_first(controller, repo, gateway, upstream):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.write("apis/keep.json", keyless_api("keep", "/keep/", upstream.url))
    repo.write("policies/p.json", policy("p", ["echo"]))
    repo.commit()
    assert controller.run("sync").returncode == 0
    repo.remove("apis/echo.json")
    repo.remove("policies/p.json")
    repo.commit("drop both")
    p = controller.run("sync", "--audit", "-")
    assert p.returncode == 0, p.stderr
    records = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    intents = [r for r in records if r["phase"] == "intent"]
    outcomes = [r for r in records if r["phase"] == "outcome"]
    order = [(r["kind"], r["id"], r["action"]) for r in intents]
    # The last policy leaves: the tombstone is written before the API goes.
    assert order == [("policy", "p", "delete"), ("policy", "tyk-gitops-tombstone", "create"),
                     ("api", "echo", "delete")]
    assert sorted(r["op"] for r in outcomes) == sorted(r["op"] for r in intents)
    assert all(r["result"] == "applied" and r["commit"] for r in outcomes)


def test_status_lists_owned_objects_with_commit(controller, repo, gateway, upstream):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.write("policies/basic.json", policy("basic", ["echo"]))
    sha = repo.commit()
    assert controller.run("sync").returncode == 0
    p = controller.run("status", "--format", "json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert {(r["kind"], r["id"], r["commit"], r["state"]) for r in rows} == {
        ("api", "echo", sha, "in-sync"), ("policy", "basic", sha, "in-sync")}


def test_diff_redacts_substituted_secrets(controller, repo, gateway, upstream):
    api = keyless_api("echo", "/echo/", upstream.url)
    api["proxy"]["target_url"] = upstream.url + "/${UPSTREAM_TOKEN}"
    repo.write("apis/echo.json", api)
    repo.commit()
    env = {"UPSTREAM_TOKEN": "s3cr3t-value-123"}
    assert controller.run("sync", env=env).returncode == 0
    env = {"UPSTREAM_TOKEN": "other-s3cr3t-456"}
    p = controller.run("diff", env=env)
    assert p.returncode == 2
    assert "other-s3cr3t-456" not in p.stdout + p.stderr
    assert "***" in p.stdout
    p = controller.run("diff", "--format", "json", env=env)
    assert "other-s3cr3t-456" not in p.stdout


def files_taken(p):
    """The debug line saying how many files a pass took from the desired-state cache."""
    for line in p.stderr.splitlines():
        if "files taken from the desired-state cache" in line:
            return json.loads(line)["msg"].split(": ", 1)[1].split(" files")[0]
    return None


def test_a_new_commit_reads_only_the_files_it_changed(controller, repo, gateway, upstream):
    for i in "abc":
        repo.write("apis/%s.json" % i, keyless_api(i, "/%s/" % i, upstream.url))
    api = keyless_api("d", "/d/", upstream.url)
    api["proxy"]["target_url"] = upstream.url + "/${UPSTREAM_TOKEN}"
    repo.write("apis/d.json", api)
    repo.commit("four apis, one with a secret")
    env = {"UPSTREAM_TOKEN": "s3cr3t-value-123"}
    p = controller.run("sync", "--log-level", "debug", env=env)
    assert p.returncode == 0, p.stderr
    assert files_taken(p) == "0 of 4"
    cache = os.path.join(controller.cache, "test", "desired")
    assert os.stat(cache).st_mode & 0o777 == 0o600
    with open(cache, "rb") as f:
        data = f.read()
    assert b"s3cr3t-value-123" not in data and b"UPSTREAM_TOKEN" not in data

    # A new process on a new commit: the three unchanged files without ${ are
    # not read again, and the change is applied as a fresh load would.
    repo.write("apis/b.json", keyless_api("b", "/b/", upstream.url, name="bee"))
    repo.commit("rename b")
    p = controller.run("sync", "--log-level", "debug", env=env)
    assert p.returncode == 0, p.stderr
    assert files_taken(p) == "2 of 4"
    assert "0 created, 1 updated, 0 deleted, 3 unchanged" in p.stdout
    assert gateway.api("GET", "/tyk/apis/b")[1]["name"] == "bee"
    code, body = gateway.request("/a/x")
    assert code == 200 and json.loads(body)["path"] == "/x"

    # A damaged cache is ignored: every file is read, and the pass is the same.
    with open(cache, "r+b") as f:
        f.seek(len(data) // 2)
        f.write(b"\x00garbage")
    repo.write("apis/c.json", keyless_api("c", "/c/", upstream.url, name="sea"))
    repo.commit("rename c")
    p = controller.run("sync", "--log-level", "debug", env=env)
    assert p.returncode == 0, p.stderr
    assert files_taken(p) == "0 of 4"
    assert "0 created, 1 updated, 0 deleted, 3 unchanged" in p.stdout
    assert gateway.api("GET", "/tyk/apis/c")[1]["name"] == "sea"
    p = controller.run("diff", "--log-level", "debug", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert files_taken(p) == "3 of 4"


def test_oas_api_round_trips_with_marker(controller, repo, gateway, upstream):
    repo.write("apis/pets.yaml", """
openapi: 3.0.3
info: {title: Pets, version: "1.0"}
paths: {}
x-tyk-api-gateway:
  info: {id: pets, name: Pets, state: {active: true}}
  upstream: {url: "%s"}
  server: {listenPath: {value: /pets/, strip: true}}
""" % upstream.url)
    sha = repo.commit()
    assert controller.run("sync").returncode == 0
    code, doc = gateway.api("GET", "/tyk/apis/oas/pets")
    assert code == 200 and doc["x-tyk-gitops"]["commit"] == sha
    assert gateway.request("/pets/x")[0] == 200
    assert controller.run("diff").returncode == 0


def copy_tree(src, repo):
    for dirpath, _, files in os.walk(src):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full) as f:
                repo.write(os.path.relpath(full, src), f.read())


CORPUS = os.path.join(os.path.dirname(__file__), "..", "corpus", "good")


@pytest.mark.parametrize("case", sorted(os.listdir(CORPUS)))
def test_no_false_drift_after_applying_corpus(controller, repo, gateway, upstream, case):
    copy_tree(os.path.join(CORPUS, case), repo)
    repo.commit(case)
    env = {"JWT_SECRET": "corpus-jwt-secret", "UPSTREAM_URL": upstream.url}
    p = controller.run("sync", "--log-level", "warn", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    p = controller.run("diff", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "in sync" in p.stdout
