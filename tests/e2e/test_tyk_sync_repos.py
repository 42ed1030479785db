"""Repositories written for tyk-sync work as they are, against a real Tyk Gateway, including
manifests that tyk-sync accepts although they are odd."""
import json
import os
import subprocess

from conftest import BIN


def tyk_sync_repo(upstream_url):
    """A tyk-sync dump: Dashboard wrappers, a policy keyed by _id, and a .tyk.json that lists
    the API file twice (once spelled "./..."), which tyk-sync accepts."""
    api = {
        "api_model": {},
        "api_definition": {
            "name": "Synced echo", "api_id": "sync-echo", "org_id": "default",
            "use_keyless": True, "active": True,
            "version_data": {"not_versioned": True, "versions": {"Default": {"name": "Default"}}},
            "proxy": {"listen_path": "/sync-echo/", "target_url": upstream_url,
                      "strip_listen_path": True},
        },
    }
    policy = {
        "_id": "5ead7120575961000181867e", "id": "", "name": "Basic", "org_id": "default",
        "rate": 5, "per": 1, "quota_max": -1, "active": True,
        "access_rights": {"sync-echo": {"api_id": "sync-echo", "versions": ["Default"]}},
    }
    manifest = {
        "type": "apidef",
        "files": [{"file": "api-sync-echo.json"}, {"file": "./api-sync-echo.json"}],
        "policies": [{"file": "policy-basic.json"}],
    }
    return {"api-sync-echo.json": api, "policy-basic.json": policy, ".tyk.json": manifest}


REPEATED = (".tyk.json:%d:%d: warning: files.1.file: './api-sync-echo.json' is listed more than "
            "once (first at files.0.file): loaded once")


def manifest_position(text):
    """Line and column of the second "file" key in the manifest as json.dumps(indent=2) writes it."""
    lines = text.split("\n")
    hits = [(n + 1, line.index('"file"') + 1) for n, line in enumerate(lines) if '"file"' in line]
    return hits[1]


def test_validate_loads_a_file_listed_twice_once_and_warns(tmp_path):
    files = tyk_sync_repo("http://127.0.0.1:9/")
    for name, obj in files.items():
        with open(os.path.join(str(tmp_path), name), "w") as f:
            f.write(json.dumps(obj, indent=2))
    p = subprocess.run([BIN, "validate", str(tmp_path)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    line, column = manifest_position(json.dumps(files[".tyk.json"], indent=2))
    assert p.stdout.splitlines() == [REPEATED % (line, column), "valid: 2 objects, 1 warnings"]
    assert p.stderr == ""

    p = subprocess.run([BIN, "validate", "--format", "json", str(tmp_path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert (report["valid"], report["errors"], report["warnings"]) == (True, 0, 1)
    assert report["problems"][0]["file"] == ".tyk.json"
    assert report["problems"][0]["field"] == "files.1.file"


def test_sync_applies_a_file_listed_twice_once(controller, repo, gateway, upstream):
    for name, obj in tyk_sync_repo(upstream.url).items():
        repo.write(name, obj)
    sha = repo.commit("tyk-sync dump with a repeated manifest entry")

    p = controller.run("sync")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "duplicate" not in p.stdout + p.stderr
    assert "2 created, 0 updated, 0 deleted" in p.stdout

    code, api = gateway.api("GET", "/tyk/apis/sync-echo")
    assert code == 200
    assert api["config_data"]["tyk_gitops"]["commit"] == sha
    assert api["config_data"]["tyk_gitops"]["file"] == "api-sync-echo.json"
    code, pol = gateway.api("GET", "/tyk/policies/5ead7120575961000181867e")
    assert code == 200 and pol["access_rights"]["sync-echo"]["api_id"] == "sync-echo"
    code, body = gateway.request("/sync-echo/hello")
    assert code == 200 and json.loads(body)["path"] == "/hello"

    # The warning travels with the result; the gateway is in sync.
    p = controller.run("diff", "--format", "json")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "is listed more than once (first at files.0.file): loaded once" in p.stdout
    assert "duplicate" not in p.stdout
    p = controller.run("diff")
    assert p.returncode == 0 and "in sync" in p.stdout, p.stdout + p.stderr
