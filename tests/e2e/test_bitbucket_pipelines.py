"""examples/bitbucket-pipelines.yml: parsed with a YAML parser and checked
against the structure Bitbucket documents, then its scripts run for real:
the pull-request step against a Pipelines-proxy peer, the main step's
script against a running controller with a Pipelines OIDC token."""
import os
import shutil
import subprocess

import pytest
import yaml

from bitbucket import BitbucketApi, Controller, OidcIssuer, sync
from conftest import BIN, keyless_api
from peers import ROOT

PIPELINE = os.path.join(ROOT, "examples", "bitbucket-pipelines.yml")

# support.atlassian.com/bitbucket-cloud/docs/pipeline-start-conditions/ and
# .../step-options/: the keys each level may hold.
TOP = {"image", "clone", "definitions", "options", "pipelines", "labels"}
STARTS = {"default", "branches", "pull-requests", "tags", "custom"}
STEP = {"after-script", "artifacts", "caches", "clone", "condition", "deployment", "fail-fast",
        "image", "name", "oidc", "runs-on", "runtime", "services", "size", "trigger",
        "max-time", "script"}
DEPLOYMENTS = {"test", "staging", "production"}  # Bitbucket's default environments


def load():
    with open(PIPELINE) as f:
        return yaml.safe_load(f)


def steps(pipeline):
    for item in pipeline:
        assert isinstance(item, dict) and len(item) == 1, item
        kind, body = next(iter(item.items()))
        assert kind in ("step", "parallel", "stage"), kind
        if kind == "step":
            yield body
        else:
            yield from steps(body["steps"])


def test_pipeline_has_the_structure_bitbucket_documents():
    doc = load()
    assert set(doc) <= TOP, set(doc) - TOP
    assert isinstance(doc["image"], str)
    assert set(doc["pipelines"]) <= STARTS and doc["pipelines"]
    every = []
    for start, body in doc["pipelines"].items():
        if start == "default":
            every += list(steps(body))
        else:
            for pattern, pipeline in body.items():
                assert isinstance(pattern, str)
                every += list(steps(pipeline))
    for s in every:
        assert set(s) <= STEP, set(s) - STEP
        assert isinstance(s["script"], list) and s["script"], s  # script is required
        assert all(isinstance(line, str) for line in s["script"] + s.get("after-script", []))
        if "deployment" in s:
            assert s["deployment"] in DEPLOYMENTS
        if "oidc" in s:
            assert isinstance(s["oidc"], bool)
        if "runs-on" in s:
            assert isinstance(s["runs-on"], list) and "self.hosted" in s["runs-on"]
    # Pull requests: validate and report, no secret anywhere.
    pr = list(steps(doc["pipelines"]["pull-requests"]["**"]))
    text = "\n".join(" ".join(s["script"] + s.get("after-script", [])) for s in pr)
    assert "tyk-gitops validate" in text and "tyk-gitops report" in text
    assert "--proxy http://localhost:29418" in text
    assert "token" not in text.lower() and "secret" not in text.lower()
    # Main: a production deployment step with its OIDC token.
    main = list(steps(doc["pipelines"]["branches"]["main"]))
    deploy = [s for s in main if s.get("deployment") == "production"]
    assert len(deploy) == 1 and deploy[0]["oidc"] is True
    script = " ".join(deploy[0]["script"])
    assert "$BITBUCKET_STEP_OIDC_TOKEN" in script
    assert "reconcile?wait=true" in script and "commit=$BITBUCKET_COMMIT" in script


def run_lines(lines, env, cwd, proxy=None):
    """Runs script lines as Pipelines does (sh, stop at the first failure),
    with our binary for tyk-gitops and the proxy peer for localhost:29418."""
    script = "set -e\n" + "\n".join(lines)
    script = script.replace("tyk-gitops ", BIN + " ")
    if proxy:
        script = script.replace("http://localhost:29418", proxy)
    e = {k: v for k, v in os.environ.items() if not k.startswith("BITBUCKET_")}
    e.update(env)
    return subprocess.run(["sh", "-c", script], cwd=cwd, env=e, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)


SHA = "9b1f0c3e2d4a5b6c7d8e9f00112233445566778a"


@pytest.mark.parametrize("valid", [True, False])
def test_pull_request_step_validates_and_reports_through_the_proxy(tmp_path, valid):
    proxy = BitbucketApi("cloud", owner="acme", slug="gateway-config", proxy=True)
    try:
        clone = tmp_path / "clone"
        shutil.copytree(os.path.join(ROOT, "examples", "config-repo"),
                        str(clone / "environments" / "prod"))
        if not valid:
            (clone / "environments" / "prod" / "apis" / "orders-keyless.json").write_text("{\n")
        step = list(steps(load()["pipelines"]["pull-requests"]["**"]))[0]
        env = {"BITBUCKET_COMMIT": SHA, "BITBUCKET_WORKSPACE": "acme",
               "BITBUCKET_REPO_SLUG": "gateway-config", "BITBUCKET_CLONE_DIR": str(clone)}
        script = run_lines(step["script"], env, str(clone), proxy.url)
        after = run_lines(step["after-script"], env, str(clone), proxy.url)
        assert script.returncode == (0 if valid else 1), script.stderr
        assert after.returncode == (0 if valid else 1), after.stderr
        base = "/2.0/repositories/acme/gateway-config/commit/%s/reports/tyk-gitops-report" % SHA
        puts = [r for r in proxy.requests if r["method"] == "PUT"]
        assert len(puts) == 1 and puts[0]["path"] == base and puts[0]["host"] == "api.bitbucket.org"
        assert puts[0]["body"]["result"] == ("PASSED" if valid else "FAILED")
        assert all("authorization" not in r["headers"] for r in proxy.requests)
        for artifact in step["artifacts"]:
            assert (clone / artifact).is_file()
        if not valid:
            ann = proxy.reports[(SHA, "tyk-gitops-report")]["annotations"]
            assert [(a["path"], a["line"]) for a in ann] == [
                ("environments/prod/apis/orders-keyless.json", 2)]
    finally:
        proxy.stop()


def test_main_step_fails_unless_its_commit_went_live(gateway, repo, upstream, tmp_path):
    issuer = OidcIssuer(str(tmp_path / "idp"))
    rules = {"rules": [{"repository_uuid": "{7d3c5b2a-1111-4f4f-9a9a-0e0e0e0e0e01}",
                        "deployment_environment_uuid": "{c3c3c3c3-5555-4e4e-9f9f-0a0a0a0a0a05}",
                        "branch": "main"}]}
    repo.write("apis/deploy.json", keyless_api("pl-deploy", "/pl-deploy/", upstream.url))
    sha = repo.commit("deploy")
    c = Controller(str(tmp_path / "ctl"), [sync("prod", repo.url, gateway, oidc=rules)],
                   listen_host="0.0.0.0",
                   extra={"oidc": {"issuers": [{"issuer": issuer.issuer, "audience": issuer.AUD,
                                                "ca_file": issuer.ca_file}]}})
    try:
        c.wait_ready()
        step = [s for s in steps(load()["pipelines"]["branches"]["main"])
                if s.get("deployment") == "production"][0]
        env = {"TYK_GITOPS_URL": c.base, "BITBUCKET_COMMIT": sha,
               "BITBUCKET_STEP_OIDC_TOKEN": issuer.token()}
        work = tmp_path / "step"
        work.mkdir()
        p = run_lines(step["script"], env, str(work))
        assert p.returncode == 0, p.stdout + p.stderr
        assert '"relation":"applied"' in p.stdout
        assert gateway.request("/pl-deploy/x")[0] == 200
        # A commit that is not on the branch never goes live: the step fails.
        env["BITBUCKET_COMMIT"] = "0" * 40
        p = run_lines(step["script"], env, str(work))
        assert p.returncode != 0 and '"live":false' in p.stdout, p.stdout
        # Without its token the step fails too.
        env["BITBUCKET_STEP_OIDC_TOKEN"] = ""
        env["BITBUCKET_COMMIT"] = sha
        assert run_lines(step["script"], env, str(work)).returncode != 0
    finally:
        assert c.stop() == 0
        issuer.stop()
