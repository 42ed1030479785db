"""Bitbucket's side of the webhook and OIDC tests, as real peers on loopback.

- Payloads: Bitbucket Cloud `repo:push` and Data Center `repo:refs_changed`
  built in the shapes Atlassian documents ("Event payloads"), signed like
  Bitbucket signs them (X-Hub-Signature: sha256=<HMAC of the raw body>).
- OidcIssuer: an OpenID provider over HTTPS with a CA made for the test
  (discovery document and JWKS), whose tokens are minted by PyJWT, an
  implementation independent of the controller's C code.  The key set can
  be rotated and every fetch is counted.
- Controller: `tyk-gitops run` with a config file written from Python dicts.
"""
import base64
import hashlib
import hmac
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# PyJWT and cryptography come from Debian (python3-jwt, python3-cryptography,
# tests/peers/install-deps.sh).  A pytest run by another Python (pyenv) finds
# them in Debian's dist-packages, placed last so its own packages win.
try:
    import jwt  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.append("/usr/lib/python3/dist-packages")
import jwt  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from jwt.algorithms import ECAlgorithm, RSAAlgorithm  # noqa: E402

from conftest import BIN  # noqa: E402
from peers import free_port, make_tls, wait_port, wait_for  # noqa: E402

# ---- HTTP -------------------------------------------------------------------


def http(method, url, body=b"", headers=None, timeout=30):
    """(status, text, headers); POSTs default to JSON like a pipeline's curl."""
    h = {"Content-Type": "application/json"} if method == "POST" else {}
    h.update(headers or {})
    req = urllib.request.Request(url, method=method, data=body if method == "POST" else None,
                                 headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def metric(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, value = line.rsplit(" ", 1)
        got = head[len(name):].strip("{}")
        if ",".join(sorted(got.split(","))) == want or (not labels and got == ""):
            return float(value)
    return 0.0


# ---- webhook payloads ---------------------------------------------------------

def sign(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def cloud_push(full_name, repo_uuid, changes, actor_uuid="{d2a6f0b8-7e4c-4d0a-9b1e-5f6a7b8c9d0e}",
               actor_name="Ada Tester", host="bitbucket.org"):
    """repo:push; changes: [(type, name, new_hash or None, old_hash or None)]."""
    ws, slug = full_name.split("/")

    def ref(kind, name, sha):
        return {"type": kind, "name": name,
                "target": {"type": "commit", "hash": sha,
                           "date": "2026-01-01T10:00:00+00:00",
                           "author": {"type": "author", "raw": "Ada Tester <ada@example.com>"},
                           "message": "change\n",
                           "links": {"html": {"href": "https://%s/%s/commits/%s"
                                              % (host, full_name, sha)}}},
                "links": {"html": {"href": "https://%s/%s/branch/%s" % (host, full_name, name)}}}

    out = []
    for kind, name, new, old in changes:
        out.append({"new": ref(kind, name, new) if new else None,
                    "old": ref(kind, name, old) if old else None,
                    "created": old is None, "closed": new is None, "forced": False,
                    "truncated": False,
                    "commits": [{"type": "commit", "hash": new, "message": "change\n"}] if new else []})
    return {
        "push": {"changes": out},
        "repository": {
            "type": "repository", "full_name": full_name, "name": slug, "uuid": repo_uuid,
            "is_private": True, "scm": "git",
            "links": {"self": {"href": "https://api.%s/2.0/repositories/%s" % (host, full_name)},
                      "html": {"href": "https://%s/%s" % (host, full_name)}},
            "workspace": {"type": "workspace", "slug": ws, "name": ws.title(),
                          "uuid": "{0f8e7a2c-54d2-4c55-8c4a-1a2b3c4d5e6f}"},
            "project": {"type": "project", "key": "PLAT", "name": "Platform"},
        },
        "actor": {"type": "user", "display_name": actor_name, "uuid": actor_uuid,
                  "account_id": "557058:0d6b1c2e", "nickname": actor_name.split()[0].lower()},
    }


def dc_push(project, slug, clone_urls, changes, actor="jdoe", actor_name="Jane Doe"):
    """repo:refs_changed; changes: [(BRANCH|TAG, name, to_hash or None, from_hash)]."""
    zero = "0" * 40
    out = []
    for kind, name, to, frm in changes:
        prefix = "refs/heads/" if kind == "BRANCH" else "refs/tags/"
        out.append({"ref": {"id": prefix + name, "displayId": name, "type": kind},
                    "refId": prefix + name, "fromHash": frm or zero, "toHash": to or zero,
                    "type": "DELETE" if not to else "ADD" if not frm else "UPDATE"})
    return {
        "eventKey": "repo:refs_changed", "date": "2026-01-01T10:00:00+0000",
        "actor": {"name": actor, "emailAddress": actor + "@example.com", "id": 500,
                  "displayName": actor_name, "active": True, "slug": actor, "type": "NORMAL"},
        "repository": {
            "slug": slug, "id": 656, "name": slug, "scmId": "git", "state": "AVAILABLE",
            "statusMessage": "Available", "forkable": True,
            "project": {"key": project, "id": 389, "name": "Platform", "public": False,
                        "type": "NORMAL"},
            "public": False,
            "links": {"clone": [{"href": u, "name": "ssh" if u.startswith("ssh") else "http"}
                                for u in clone_urls],
                      "self": [{"href": "https://bitbucket.example/projects/%s/repos/%s/browse"
                                % (project, slug)}]},
        },
        "changes": out,
    }


def deliver(base, payload, secret=None, event="repo:push", delivery=None, raw=None, extra=None):
    """POSTs a webhook like Bitbucket; returns (status, json or text, seconds)."""
    body = raw if raw is not None else json.dumps(payload).encode()
    h = {"X-Event-Key": event, "User-Agent": "Bitbucket-Webhooks/2.0"}
    if event in ("repo:refs_changed", "diagnostics:ping"):
        h["X-Request-Id"] = delivery or str(uuid.uuid4())
    else:
        h["X-Request-UUID"] = delivery or str(uuid.uuid4())
        h["X-Hook-UUID"] = "{5d2a1c3b-9e8f-4a7b-b6c5-d4e3f2a1b0c9}"
        h["X-Attempt-Number"] = "1"
    if secret is not None:
        h["X-Hub-Signature"] = sign(secret, body)
    h.update(extra or {})
    t0 = time.monotonic()
    code, text, _ = http("POST", base + "/hooks/bitbucket", body, h)
    took = time.monotonic() - t0
    try:
        return code, json.loads(text), took
    except ValueError:
        return code, text, took


# ---- an OpenID provider ---------------------------------------------------------

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class OidcIssuer:
    """Discovery + JWKS over HTTPS on loopback, with a CA made for the test."""

    AUD = "ari:cloud:bitbucket::workspace/0f8e7a2c-54d2-4c55-8c4a-1a2b3c4d5e6f"

    def __init__(self, tmpdir, workspace="acme", kind="RSA"):
        self.dir = tmpdir
        os.makedirs(tmpdir, exist_ok=True)
        self.ca_file, cert, key = make_tls(tmpdir)
        self.port = free_port()
        self.base = "https://127.0.0.1:%d" % self.port
        self.issuer = "%s/2.0/workspaces/%s/pipelines-config/identity/oidc" % (self.base, workspace)
        self.kind = kind
        self.keys = {}        # kid -> private key, published
        self.unpublished = {}  # kid -> private key, not in the JWKS (yet)
        self.add_key("k1")
        self.fetches = {"discovery": 0, "jwks": 0}
        self.lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                prefix = issuer.issuer[len(issuer.base):]
                if path == prefix + "/.well-known/openid-configuration":
                    with issuer.lock:
                        issuer.fetches["discovery"] += 1
                    body = {"issuer": issuer.issuer, "jwks_uri": issuer.issuer + "/keys",
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                            "response_types_supported": ["id_token"]}
                elif path == prefix + "/keys":
                    with issuer.lock:
                        issuer.fetches["jwks"] += 1
                    body = issuer.jwks()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        wait_port(self.port)

    def new_key(self):
        if self.kind == "EC":
            return ec.generate_private_key(ec.SECP256R1())
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def add_key(self, kid, publish=True):
        (self.keys if publish else self.unpublished)[kid] = self.new_key()

    def publish(self, kid):
        with self.lock:
            self.keys[kid] = self.unpublished.pop(kid)

    def jwks(self):
        out = []
        with self.lock:
            items = list(self.keys.items())
        for kid, key in items:
            alg = ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
            d = json.loads(alg.to_jwk(key.public_key()))
            d.update({"kid": kid, "use": "sig"})
            out.append(d)
        # Keys a verifier must skip: an HMAC secret and an encryption key.
        out.append({"kty": "oct", "kid": "hmac", "k": b64(b"not for signatures")})
        return {"keys": out}

    def claims(self, **over):
        now = int(time.time())
        c = {
            "iss": self.issuer, "aud": self.AUD, "iat": now, "nbf": now - 1, "exp": now + 3600,
            "sub": "{7d3c5b2a-1111-4f4f-9a9a-0e0e0e0e0e01}:{c3c3c3c3-5555-4e4e-9f9f-0a0a0a0a0a05}"
                   ":{e1e1e1e1-2222-4b4b-8c8c-0d0d0d0d0d02}",
            "accountUuid": "{a0a0a0a0-3333-4c4c-9d9d-0c0c0c0c0c03}",
            "workspaceUuid": "{0f8e7a2c-54d2-4c55-8c4a-1a2b3c4d5e6f}",
            "repositoryUuid": "{7d3c5b2a-1111-4f4f-9a9a-0e0e0e0e0e01}",
            "pipelineUuid": "{b2b2b2b2-4444-4d4d-8e8e-0b0b0b0b0b04}",
            "stepUuid": "{e1e1e1e1-2222-4b4b-8c8c-0d0d0d0d0d02}",
            "branchName": "main",
            "deploymentEnvironmentUuid": "{c3c3c3c3-5555-4e4e-9f9f-0a0a0a0a0a05}",
        }
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def token(self, kid="k1", alg=None, key=None, headers=None, **claims):
        alg = alg or ("ES256" if self.kind == "EC" else "RS256")
        key = key or self.keys.get(kid) or self.unpublished.get(kid)
        h = {"kid": kid}
        h.update(headers or {})
        return jwt.encode(self.claims(**claims), key, algorithm=alg, headers=h)

    def forged_none(self, **claims):
        return "%s.%s." % (b64(json.dumps({"alg": "none", "kid": "k1"}).encode()),
                           b64(json.dumps(self.claims(**claims)).encode()))

    def forged_hs256(self, kid="k1", **claims):
        """HS256 keyed with the issuer's public key: the classic confusion."""
        pem = self.keys[kid].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        head = "%s.%s" % (b64(json.dumps({"alg": "HS256", "kid": kid}).encode()),
                          b64(json.dumps(self.claims(**claims)).encode()))
        return head + "." + b64(hmac.new(pem, head.encode(), hashlib.sha256).digest())

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---- the controller ----------------------------------------------------------------

def yaml_value(v):
    return json.dumps(v)  # JSON is YAML


class Controller:
    """tyk-gitops run with a config written from dicts (JSON is YAML)."""

    def __init__(self, tmpdir, syncs, listen_host="127.0.0.1", extra=None, start=True):
        self.tmpdir = tmpdir
        os.makedirs(tmpdir, exist_ok=True)
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.config = os.path.join(tmpdir, "tyk-gitops.yaml")
        self.log_path = os.path.join(tmpdir, "daemon.log")
        self.doc = {"listen": "%s:%d" % (listen_host, self.port),
                    "cache_dir": os.path.join(tmpdir, "cache"),
                    "audit": os.path.join(tmpdir, "audit.jsonl"),
                    "log": {"format": "json", "level": "info"}, "syncs": syncs}
        self.doc.update(extra or {})
        self.write()
        self.proc = None
        if start:
            self.start()

    def write(self):
        with open(self.config, "w") as f:
            json.dump(self.doc, f, indent=1)

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "run", "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, timeout=30, proc=self.proc)

    def run_once(self, timeout=20):
        """Starts and waits for exit (for configurations that must fail)."""
        p = subprocess.run([BIN, "run", "--config", self.config], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr

    def reload(self):
        self.write()
        self.proc.send_signal(1)  # SIGHUP

    def get(self, path):
        code, text, _ = http("GET", self.base + path)
        return code, text

    def post(self, path, token=None, headers=None, timeout=60, base=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        return http("POST", (base or self.base) + path, b"", h, timeout=timeout)

    def status(self, name):
        code, text = self.get("/api/v1/syncs/" + name)
        assert code == 200, text
        return json.loads(text)

    def metrics(self):
        return self.get("/metrics")[1]

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def audit(self):
        try:
            with open(self.doc["audit"]) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def wait_ready(self, timeout=60):
        wait_for(lambda: self.get("/readyz")[0] == 200, timeout, "readyz")

    def wait_passes(self, name, n, timeout=30):
        return wait_for(lambda: self.status(name)["passes"] >= n and self.status(name),
                        timeout, "%d passes of %s" % (n, name))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc


def sync(name, repo_url, gateway, branch="main", **more):
    s = {"name": name, "repo": {"url": repo_url, "ref": {"branch": branch}},
         "gateway": {"url": gateway.url, "secret_file": gateway.secret_file, "timeout": "10s"},
         "interval": "1h", "drift": {"interval": "1h"}}
    s.update(more)
    return s


# ---- Bitbucket's REST API (build statuses, Code Insights) --------------------------

class BitbucketApi:
    """Bitbucket's REST API on loopback, for what the controller sends out:
    commit build statuses and Code Insights reports, Cloud or Data Center.

    It records every request (method, path, headers, JSON body) and answers
    as Atlassian documents:
    - Cloud build status: POST /2.0/repositories/{ws}/{slug}/commit/{sha}/statuses/build
      -> 201 with the commit status object (developer.atlassian.com/cloud/bitbucket/
      rest/api-group-commit-statuses/); errors as {"type": "error", "error":
      {"message": ...}}.
    - Data Center build status: POST /rest/api/latest/projects/{key}/repos/{slug}/
      commits/{sha}/builds -> 204 (developer.atlassian.com/server/bitbucket/how-tos/
      updating-build-status-for-commits); errors as {"errors": [{"message": ...}]}.
    - Cloud reports: PUT .../commit/{sha}/reports/{id} -> 200 with the report,
      POST .../reports/{id}/annotations -> 200 with the annotations (at most 100
      per request, 1000 per report: 400 beyond), DELETE -> 204 or 404
      (developer.atlassian.com/cloud/bitbucket/rest/api-group-reports/).
    - Data Center insights: PUT /rest/insights/1.0/projects/{key}/repos/{slug}/
      commits/{sha}/reports/{key} -> 200, POST .../annotations {"annotations": [...]}
      -> 204, DELETE -> 204 (developer.atlassian.com/server/bitbucket/how-tos/
      code-insights/).
    Faults: `faults` is a list of what the next requests get instead: an int
    status (429 comes with Retry-After: 1), or "hang" (no answer until stop).
    Auth: a Bearer token, or Basic email:token; anything else is 401.
    As the Pipelines proxy (proxy=True) it takes absolute-form requests for
    http://api.bitbucket.org and needs no credentials, as Pipelines' local
    proxy adds the step's own.
    """

    def __init__(self, api="cloud", owner="acme", slug="gateway-config", token="bb-token-1",
                 email=None, proxy=False):
        self.api, self.owner, self.slug = api, owner, slug
        self.token, self.email, self.proxy = token, email, proxy
        self.requests = []
        self.faults = []
        self.reports = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, code, doc=None, headers=None):
                body = json.dumps(doc).encode() if doc is not None else b""
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if doc is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, code, message):
                if peer.api == "cloud":
                    self._answer(code, {"type": "error", "error": {"message": message}})
                else:
                    self._answer(code, {"errors": [{"context": None, "message": message,
                                                    "exceptionName": None}]})

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                path = self.path
                host = None
                if path.startswith("http://"):
                    host = path[len("http://"):].split("/", 1)[0]
                    path = "/" + path[len("http://"):].split("/", 1)[1]
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                rec = {"method": self.command, "path": path, "host": host,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "body": body, "time": time.time()}
                with peer.lock:
                    peer.requests.append(rec)
                    fault = peer.faults.pop(0) if peer.faults else None
                if fault == "hang":
                    peer.stopping.wait(120)
                    return
                if fault == 429:
                    self._answer(429, None, {"Retry-After": "1"})
                    return
                if fault:
                    self._error(fault, "fault injected by the test")
                    return
                if not peer.authorized(rec):
                    self._error(401, "Unauthorized")
                    return
                peer.route(self, rec)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def authorized(self, rec):
        if self.proxy:
            return rec["host"] == "api.bitbucket.org" and "authorization" not in rec["headers"]
        got = rec["headers"].get("authorization", "")
        if self.email:
            want = "Basic " + base64.b64encode(("%s:%s" % (self.email, self.token)).encode()).decode()
        else:
            want = "Bearer " + self.token
        return hmac.compare_digest(got, want)

    def route(self, h, rec):
        p, m, body = rec["path"], rec["method"], rec["body"]
        if self.api == "cloud":
            base = "/2.0/repositories/%s/%s/commit/" % (self.owner, self.slug)
        else:
            base = "/rest/api/latest/projects/%s/repos/%s/commits/" % (self.owner, self.slug)
        ins = "/rest/insights/1.0/projects/%s/repos/%s/commits/" % (self.owner, self.slug)
        parts = None
        if p.startswith(base):
            parts = p[len(base):].split("/")
        elif self.api == "dc" and p.startswith(ins):
            parts = p[len(ins):].split("/")
        if parts is None:
            h._error(404, "Repository not found")
            return
        sha = parts[0]
        if self.api == "cloud" and parts[1:] == ["statuses", "build"] and m == "POST":
            st = dict(body, type="build", uuid="{%s}" % uuid.uuid4(),
                      created_on="2026-12-03T18:00:00+00:00", updated_on="2026-12-03T18:00:00+00:00",
                      links={"commit": {"href": "https://api.bitbucket.org/2.0/repositories/%s/%s/commit/%s"
                                        % (self.owner, self.slug, sha)}})
            h._answer(201, st)
        elif self.api == "dc" and parts[1:] == ["builds"] and m == "POST":
            h._answer(204)
        elif len(parts) >= 3 and parts[1] == "reports":
            key = (sha, parts[2])
            if len(parts) == 3 and m == "PUT":
                self.reports[key] = {"report": body, "annotations": []}
                h._answer(200, dict(body, uuid="{%s}" % uuid.uuid4()))
            elif len(parts) == 3 and m == "DELETE":
                if self.reports.pop(key, None) is None and self.api == "cloud":
                    h._error(404, "Report not found")
                else:
                    h._answer(204)
            elif parts[3:] == ["annotations"] and m == "POST":
                rep = self.reports.get(key)
                items = body if self.api == "cloud" else body["annotations"]
                if rep is None:
                    h._error(404, "Report not found")
                elif (self.api == "cloud" and len(items) > 100) or \
                        len(rep["annotations"]) + len(items) > 1000:
                    h._error(400, "Too many annotations")
                else:
                    rep["annotations"].extend(items)
                    if self.api == "cloud":
                        h._answer(200, [dict(a, uuid="{%s}" % uuid.uuid4()) for a in items])
                    else:
                        h._answer(204)
            else:
                h._error(405, "Method not allowed")
        else:
            h._error(404, "Not found")

    def statuses(self, sha=None):
        with self.lock:
            return [r for r in self.requests if r["method"] == "POST" and
                    (r["path"].endswith("/statuses/build") or r["path"].endswith("/builds")) and
                    (sha is None or "/%s/" % sha in r["path"])]

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
