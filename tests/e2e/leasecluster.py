"""Several tyk-gitops replicas sharing syncs through Leases on a real
kube-apiserver (kubepeers.KubeAPI), for tests/e2e/test_leases.py and
bench/leases.py.

Each replica is a `tyk-gitops run` process with leader election on, the
namespace's ServiceAccount token (RBAC from manifests/base/rbac.yaml, so the
Role is proven sufficient), its own audit trail and cache, and its API
address advertised on the Leases it holds.  All of them point at one Tyk
Gateway through a FaultProxy, which records every request: that is how a
test sees who wrote what, and when.
"""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from conftest import BIN
from peers import ROOT, free_port, wait_port, wait_for

NS = "tg-leases"
SECRET = "lease-webhook-secret"
FULL = "acme/gateway-config"
WRITES = ("POST", "PUT", "DELETE")


def http(method, url, body=b"", headers=None, timeout=30):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    req = urllib.request.Request(url, method=method, data=body if method == "POST" else None,
                                 headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


def setup_namespace(kube, ns=NS):
    """The namespace with the manifests' ServiceAccount, Role and RoleBinding;
    returns a token file for that ServiceAccount."""
    kube.kubectl("create", "namespace", ns)
    for f in ("serviceaccount.yaml", "rbac.yaml"):
        kube.kubectl("-n", ns, "apply", "-f", os.path.join(ROOT, "manifests/base", f))
    token = kube.kubectl("-n", ns, "create", "token", "tyk-gitops", "--duration",
                         "2h").stdout.strip()
    path = os.path.join(kube.dir, "sa-token-" + ns)
    with open(path, "w") as f:
        f.write(token + "\n")
    return path


class Replica:
    def __init__(self, tmpdir, identity, syncs, kube, token_file, ns=NS, lease="15s",
                 renew="10s", retry="2s", webhook_secret_file=None):
        self.identity = identity
        self.dir = os.path.join(tmpdir, identity)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.audit_path = os.path.join(self.dir, "audit.jsonl")
        self.config = os.path.join(self.dir, "config.yaml")
        self.settings = (ns, lease, renew, retry, webhook_secret_file)
        self.write_config(syncs)
        self.args = [BIN, "run", "--config", self.config, "--kube-api", kube.url,
                     "--kube-token-file", token_file, "--kube-ca-file", kube.ca]
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.start()

    def write_config(self, syncs):
        ns, lease, renew, retry, webhook_secret_file = self.settings
        lines = [
            "listen: 127.0.0.1:%d" % self.port,
            "cache_dir: %s" % os.path.join(self.dir, "cache"),
            "audit: %s" % self.audit_path,
            "log: {format: json, level: info}",
            "leader_election:",
            "  enabled: true",
            "  namespace: %s" % ns,
            "  identity: %s" % self.identity,
            "  address: %s" % self.base,
            "  lease_duration: %s" % lease,
            "  renew_deadline: %s" % renew,
            "  retry_period: %s" % retry,
            "syncs:",
        ]
        for s in syncs:
            lines += [
                "  - name: %s" % s["name"],
                "    repo: {url: '%s', ref: {branch: main}, path: '%s'}" % (s["repo"], s["path"]),
                "    gateway: {url: '%s', secret_file: '%s', timeout: 5s}" % (s["gateway"],
                                                                          s["secret_file"]),
                "    interval: %s" % s.get("interval", "1s"),
                "    drift: {interval: %s}" % s.get("drift", "60s"),
            ]
            if webhook_secret_file:
                lines.append("    webhook: {secret_file: '%s', repository: '%s'}"
                             % (webhook_secret_file, FULL))
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, timeout=30, proc=self.proc)

    def alive(self):
        return self.proc.poll() is None

    def get(self, path):
        return http("GET", self.base + path)

    def syncs(self):
        code, body = self.get("/api/v1/syncs")
        if code != 200:
            return None
        return {s["name"]: s for s in json.loads(body)["syncs"]}

    def held(self):
        """Names of the syncs this replica says it holds (None when down)."""
        if not self.alive():
            return None
        s = self.syncs()
        return None if s is None else sorted(n for n, v in s.items()
                                             if v["leader"]["this_replica"])

    def metrics(self):
        return self.get("/metrics")[1]

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        return self.proc.returncode

    def audit(self):
        if not os.path.exists(self.audit_path):
            return []
        with open(self.audit_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def logs(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


def holders(replicas):
    """{sync: [identities holding it]} from every live replica's status."""
    out = {}
    for r in replicas:
        h = r.held()
        for name in h or []:
            out.setdefault(name, []).append(r.identity)
    return out


def counts(replicas):
    return {r.identity: len(r.held() or []) for r in replicas if r.alive()}


def spread_ok(replicas, n_syncs):
    """Every sync held by exactly one live replica, each holding N/R +- 1."""
    live = [r for r in replicas if r.alive()]
    h = holders(live)
    if len(h) != n_syncs or any(len(v) != 1 for v in h.values()):
        return False
    c = [len(r.held() or []) for r in live]
    return max(c) - min(c) <= 1 and sum(c) == n_syncs


def lease_objects(kube, ns=NS):
    out = kube.kubectl("-n", ns, "get", "leases", "-o", "json").stdout
    return {i["metadata"]["name"]: i for i in json.loads(out)["items"]}


def gateway_writes(proxy, since=0):
    """Requests that change the gateway (writes and reloads) after index since."""
    with proxy.lock:
        seen = list(proxy.seen[since:])
    return [s for s in seen if s[0] in WRITES or s[1].startswith("/tyk/reload")]
