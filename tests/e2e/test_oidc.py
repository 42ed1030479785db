"""Bitbucket Pipelines OIDC on the API: tokens minted by PyJWT, the issuer's
discovery document and JWKS served over HTTPS on loopback with a CA made
for the test, every forged variant refused with its reason, rules per
sync, provenance, and ?commit= answers against a real Tyk Gateway."""
import json
import time

import pytest

from bitbucket import Controller, OidcIssuer, metric, sync, wait_for  # noqa: F401
from conftest import keyless_api

REPO = "{7d3c5b2a-1111-4f4f-9a9a-0e0e0e0e0e01}"
ENV = "{c3c3c3c3-5555-4e4e-9f9f-0a0a0a0a0a05}"
WS = "{0f8e7a2c-54d2-4c55-8c4a-1a2b3c4d5e6f}"


@pytest.fixture
def issuer(tmp_path):
    i = OidcIssuer(str(tmp_path / "idp"))
    yield i
    i.stop()


@pytest.fixture
def controllers():
    made = []
    yield made
    # A clean exit on SIGTERM; under ASan, also no leak.
    codes = [c.stop() for c in made]
    assert all(rc in (0, None) for rc in codes), codes


def oidc_cfg(issuers, required=False):
    out = {"oidc": {"issuers": [dict({"issuer": i.issuer, "audience": i.AUD, "ca_file": i.ca_file,
                                       "min_refresh_interval": "1s"}, **extra)
                                 for i, extra in issuers]}}
    if required:
        out["auth"] = {"required": True}
    return out


RULES = {"rules": [
    # The repository's production deployment step may reconcile, from main.
    {"repository_uuid": REPO.upper(), "deployment_environment_uuid": ENV.strip("{}"),
     "branch": "main"},
    # Any pipeline of the workspace may suspend and resume, from release/*.
    {"workspace_uuid": WS, "branch": "release/*", "actions": ["suspend", "resume"]},
]}


def reasons(c):
    m = c.metrics()
    return {r: metric(m, "tyk_gitops_auth_requests_total", result=res, reason=r)
            for res, r in (("unauthenticated", "alg_not_allowed"), ("unauthenticated", "key_type"),
                           ("unauthenticated", "unknown_kid"), ("unauthenticated", "bad_signature"),
                           ("unauthenticated", "wrong_issuer"), ("unauthenticated", "wrong_audience"),
                           ("unauthenticated", "expired"), ("unauthenticated", "not_yet_valid"),
                           ("unauthenticated", "malformed"), ("unauthenticated", "missing_token"),
                           ("forbidden", "no_rule"), ("allowed", "token"),
                           ("allowed", "loopback"))}


def test_pipeline_token_reconciles_and_every_forgery_is_refused(gateway, repo, upstream, tmp_path,
                                                               issuer, controllers):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    sha = repo.commit("echo")
    c = Controller(str(tmp_path / "ctl"), [sync("prod", repo.url, gateway, oidc=RULES)],
                   listen_host="0.0.0.0", extra=oidc_cfg([(issuer, {})]))
    controllers.append(c)
    c.wait_ready()

    # No token on a non-loopback listener: 401 with a Bearer challenge.
    code, body, headers = c.post("/api/v1/syncs/prod/reconcile")
    assert code == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert "BITBUCKET_STEP_OIDC_TOKEN" in json.loads(body)["error"]

    code, body, _ = c.post("/api/v1/syncs/prod/reconcile?wait=true&timeout=60s",
                           token=issuer.token())
    assert code == 200, body
    res = json.loads(body)
    assert res["outcome"] == "success" and res["commit"] == sha and res["trigger"] == "pipeline"
    assert "pipeline={b2b2b2b2-4444-4d4d-8e8e-0b0b0b0b0b04}" in res["actor"]
    assert "step={e1e1e1e1-2222-4b4b-8c8c-0d0d0d0d0d02}" in res["actor"]
    assert "repository=" + REPO in res["actor"] and "branch=main" in res["actor"]
    assert "environment=" + ENV in res["actor"]
    ident = res["identities"][0]
    assert ident["kind"] == "pipeline" and ident["issuer"] == issuer.issuer
    assert ident["workspace_uuid"] == WS and ident["action"] == "reconcile"
    assert c.status("prod")["last_result"]["actor"] == res["actor"]

    forged = {
        "alg none": issuer.forged_none(),
        "HS256 keyed with the public key": issuer.forged_hs256(),
        "RS384, not pinned": issuer.token(alg="RS384"),
        "unknown kid": issuer.token(kid="k9", key=issuer.new_key()),
        "bad signature": issuer.token(key=issuer.new_key()),
        "wrong iss": issuer.token(iss=issuer.issuer + "x"),
        "wrong aud": issuer.token(aud="ari:cloud:bitbucket::workspace/other"),
        "expired": issuer.token(iat=int(time.time()) - 7200, exp=int(time.time()) - 120),
        "not yet valid": issuer.token(nbf=int(time.time()) + 300),
        "garbage": "not.a.token",
    }
    for what, tok in forged.items():
        code, body, _ = c.post("/api/v1/syncs/prod/reconcile", token=tok)
        assert code == 401, (what, code, body)
    # An EC key published under the kid an RS256 token names.
    issuer.kind = "EC"
    issuer.add_key("ec-1")
    issuer.kind = "RSA"
    time.sleep(1.1)  # past min_refresh_interval: the unknown kid refreshes once
    code, body, _ = c.post("/api/v1/syncs/prod/reconcile", token=issuer.token(
        kid="ec-1", key=issuer.keys["k1"]))
    assert code == 401, body
    r = reasons(c)
    assert r["alg_not_allowed"] == 3 and r["unknown_kid"] == 1 and r["bad_signature"] == 1
    assert r["wrong_issuer"] == 1 and r["wrong_audience"] == 1 and r["expired"] == 1
    assert r["not_yet_valid"] == 1 and r["malformed"] == 1 and r["key_type"] == 1
    assert r["missing_token"] == 1 and r["token"] == 1 and r["loopback"] == 0
    logs = c.logs()
    assert '"reason":"expired"' in logs and '"reason":"alg_not_allowed"' in logs
    assert forged["bad signature"] not in logs and issuer.token() not in logs
    # Nothing forged started a pass.
    assert metric(c.metrics(), "tyk_gitops_triggers_total", sync="prod", trigger="pipeline") == 1

    # A valid token of another repository, or another branch: 403, by rule.
    code, body, _ = c.post("/api/v1/syncs/prod/reconcile",
                           token=issuer.token(repositoryUuid="{99999999-9999-4999-8999-999999999999}"))
    assert code == 403, body
    code, _, _ = c.post("/api/v1/syncs/prod/reconcile", token=issuer.token(branchName="feature/x"))
    assert code == 403
    # The production step may reconcile but not suspend; a release branch may.
    assert c.post("/api/v1/syncs/prod/suspend", token=issuer.token())[0] == 403
    code, body, _ = c.post("/api/v1/syncs/prod/suspend",
                           token=issuer.token(branchName="release/2.1", deploymentEnvironmentUuid=None))
    assert code == 200 and json.loads(body)["suspended"] is True
    code, _, _ = c.post("/api/v1/syncs/prod/resume",
                        token=issuer.token(branchName="release/2.1", repositoryUuid=None))
    assert code == 200
    assert c.post("/api/v1/syncs/nope/reconcile", token=issuer.token())[0] == 404
    assert reasons(c)["no_rule"] == 3
    assert '"msg":"sync resumed"' in c.logs() and "branch=release/2.1" in c.logs()


def test_unknown_kid_refreshes_the_key_set_once_then_verifies(gateway, repo, upstream, tmp_path,
                                                              issuer, controllers):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit("echo")
    c = Controller(str(tmp_path / "ctl"), [sync("prod", repo.url, gateway, oidc=RULES)],
                   extra=oidc_cfg([(issuer, {"refresh_interval": "1h"})], required=True))
    controllers.append(c)
    c.wait_ready()
    wait_for(lambda: issuer.fetches["jwks"] >= 1, 10, "the first JWKS fetch")
    assert issuer.fetches["discovery"] >= 1
    # auth.required: loopback too needs a token.
    assert c.post("/api/v1/syncs/prod/reconcile")[0] == 401
    assert c.post("/api/v1/syncs/prod/reconcile", token=issuer.token())[0] == 202
    time.sleep(1.1)
    # The issuer rotates in k2 after the controller cached k1.
    issuer.add_key("k2", publish=False)
    tok = issuer.token(kid="k2")
    before = issuer.fetches["jwks"]
    assert c.post("/api/v1/syncs/prod/reconcile", token=tok)[0] == 401  # not published yet
    assert issuer.fetches["jwks"] == before + 1
    # A flood of unknown kids costs at most one fetch per min_refresh_interval.
    for i in range(20):
        assert c.post("/api/v1/syncs/prod/reconcile",
                      token=issuer.token(kid="r%d" % i, key=issuer.keys["k1"]))[0] == 401
    assert issuer.fetches["jwks"] <= before + 1
    issuer.publish("k2")
    time.sleep(1.1)
    code, body, _ = c.post("/api/v1/syncs/prod/reconcile", token=tok)
    assert code == 202, body
    assert issuer.fetches["jwks"] == before + 2


def test_wait_with_commit_says_whether_that_commit_went_live(gateway, repo, upstream, tmp_path,
                                                             issuer, controllers):
    repo.write("apis/one.json", keyless_api("one", "/one/", upstream.url))
    old = repo.commit("one")
    repo.write("apis/two.json", keyless_api("two", "/two/", upstream.url))
    head = repo.commit("two")
    c = Controller(str(tmp_path / "ctl"), [sync("prod", repo.url, gateway, oidc=RULES)],
                   extra=oidc_cfg([(issuer, {})]))
    controllers.append(c)
    c.wait_ready()
    tok = issuer.token()
    # The step's own commit: live.
    code, body, _ = c.post("/api/v1/syncs/prod/reconcile?wait=true&commit=" + head, token=tok)
    res = json.loads(body)
    assert code == 200 and res["commit_check"] == {"commit": head, "live": True,
                                                   "relation": "applied", "live_commit": head}
    # An older pipeline's commit is contained in what is live.
    code, body, _ = c.post("/api/v1/syncs/prod/reconcile?wait=true&commit=" + old[:12], token=tok)
    assert code == 200 and json.loads(body)["commit_check"]["relation"] == "ancestor"
    # A commit on another branch never went live: the step must fail.
    repo.write("apis/three.json", keyless_api("three", "/three/", upstream.url))
    from conftest import git
    git(repo.work, "checkout", "-q", "-b", "feature")
    git(repo.work, "add", "-A")
    git(repo.work, "commit", "-q", "-m", "three")
    git(repo.work, "push", "-q", "origin", "feature")
    side = git(repo.work, "rev-parse", "HEAD")
    code, body, _ = c.post("/api/v1/syncs/prod/reconcile?wait=true&commit=" + side, token=tok)
    res = json.loads(body)
    assert code == 409, body
    assert res["commit_check"]["live"] is False and res["commit_check"]["live_commit"] == head
    assert gateway.request("/three/x")[0] == 404
    assert c.post("/api/v1/syncs/prod/reconcile?wait=true&commit=xyz", token=tok)[0] == 400
    assert c.post("/api/v1/syncs/prod/reconcile?commit=" + head, token=tok)[0] == 400
    # Loopback keeps working without a token (recorded as such), but a token
    # that is sent is checked: a bad one is not waved through as loopback.
    code, body, _ = c.post("/api/v1/syncs/prod/reconcile?wait=true")
    assert code == 200 and json.loads(body)["actor"] == "api (loopback 127.0.0.1)", body
    assert c.post("/api/v1/syncs/prod/reconcile", token=issuer.forged_none())[0] == 401
    assert metric(c.metrics(), "tyk_gitops_auth_requests_total", result="allowed",
                  reason="loopback") == 1
    # A refused commit (invalid) is not live either: 422 from the pass.
    git(repo.work, "checkout", "-q", "main")
    repo.write("apis/bad.json", "{not json")
    bad = repo.commit("bad")
    code, body, _ = c.post("/api/v1/syncs/prod/reconcile?wait=true&commit=" + bad, token=tok)
    res = json.loads(body)
    assert code == 422 and res["commit_check"]["live"] is False, body
    assert res["commit_check"]["live_commit"] == head


def test_es256_issuer_alongside_and_untrusted_tls_is_unavailable(gateway, repo, upstream, tmp_path,
                                                                 issuer, controllers):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit("echo")
    other = OidcIssuer(str(tmp_path / "idp2"), workspace="other", kind="EC")
    try:
        rules = {"rules": [dict(RULES["rules"][0], issuer=issuer.issuer),
                           {"issuer": other.issuer, "repository_uuid": REPO}]}
        cfg = oidc_cfg([(issuer, {}), (other, {"algorithms": ["ES256"]})])
        c = Controller(str(tmp_path / "ctl"), [sync("prod", repo.url, gateway, oidc=rules)],
                       listen_host="0.0.0.0", extra=cfg)
        controllers.append(c)
        c.wait_ready()
        assert c.post("/api/v1/syncs/prod/reconcile", token=other.token())[0] == 202
        assert c.post("/api/v1/syncs/prod/reconcile", token=issuer.token())[0] == 202
        # RS256 at the ES256-pinned issuer: refused whatever the keys.
        rs = other.token(alg="RS256", key=issuer.keys["k1"])
        assert c.post("/api/v1/syncs/prod/reconcile", token=rs)[0] == 401
        c.stop()

        # The issuer's TLS is checked: without its CA (system CAs only) the
        # keys cannot be fetched, and tokens are refused as unavailable.
        cfg["oidc"]["issuers"][0].pop("ca_file")
        d = Controller(str(tmp_path / "ctl2"), [sync("prod", repo.url, gateway, oidc=rules)],
                       extra=cfg)
        controllers.append(d)
        d.wait_ready()
        code, body, _ = d.post("/api/v1/syncs/prod/reconcile", token=issuer.token())
        assert code == 503 and "jwks_unavailable" in body, body
        assert "cannot fetch the oidc key set" in d.logs()
    finally:
        other.stop()
