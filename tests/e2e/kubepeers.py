"""A real Kubernetes API server on loopback: etcd + kube-apiserver, built
from their Go modules by tests/peers/build-kube.sh (cached outside the repo).

No kubelet, scheduler or controller manager: objects are stored and admitted
for real (validation, defaulting, RBAC, Pod Security admission, the
ServiceAccount admission plugin, the TokenRequest API), but nothing runs them.
Authentication: a static admin token (system:masters) and ServiceAccount
tokens signed with a key pair made here.  The serving certificate is issued
by a CA made here for 127.0.0.1, localhost and kubernetes.default.svc, so a
container given that CA and the host/port in KUBERNETES_SERVICE_HOST/PORT
verifies the server as a pod would.
"""
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from peers import ROOT, free_port, wait_port

ADMIN_TOKEN = "tg-admin-token-6a1f0c"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


def kube_binaries():
    out = subprocess.run(["sh", os.path.join(ROOT, "tests/peers/build-kube.sh")], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return dict(line.split("=", 1) for line in out.split() if "=" in line)


def _openssl(d, *args):
    subprocess.run(["openssl", *args], cwd=d, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_pki(d):
    _openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", "-days", "2", "-subj", "/CN=tg-kube-ca")
    _openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key", "-out",
             "apiserver.csr", "-subj", "/CN=kube-apiserver")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,"
                "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
                "DNS:kubernetes.default.svc.cluster.local\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    _openssl(d, "x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "apiserver.crt")
    _openssl(d, "genrsa", "-out", "sa.key", "2048")
    _openssl(d, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    with open(os.path.join(d, "tokens.csv"), "w") as f:
        f.write('%s,tg-admin,tg-admin-uid,"system:masters"\n' % ADMIN_TOKEN)


class KubeAPI:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tg-kube-")
        self.bins = kube_binaries()
        self.kubectl_bin = self.bins["kubectl"]
        make_pki(self.dir)
        self.ca = os.path.join(self.dir, "ca.crt")
        self.etcd_port, peer_port = free_port(), free_port()
        self.port = free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self.procs = []
        self.logs = []
        etcd = "http://127.0.0.1:%d" % self.etcd_port
        peer = "http://127.0.0.1:%d" % peer_port
        self._start("etcd", [
            self.bins["etcd"], "--name", "tg", "--data-dir", os.path.join(self.dir, "etcd"),
            "--listen-client-urls", etcd, "--advertise-client-urls", etcd,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "tg=" + peer, "--log-level", "warn", "--unsafe-no-fsync"])
        wait_port(self.etcd_port, proc=self.procs[-1])
        p = lambda name: os.path.join(self.dir, name)  # noqa: E731
        self._start("kube-apiserver", [
            self.bins["kube-apiserver"],
            "--etcd-servers", etcd,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.port),
            "--tls-cert-file", p("apiserver.crt"), "--tls-private-key-file", p("apiserver.key"),
            "--cert-dir", p("certs"),
            "--client-ca-file", p("ca.crt"),
            "--token-auth-file", p("tokens.csv"),
            "--authorization-mode", "RBAC",
            "--service-account-issuer", SA_ISSUER,
            "--service-account-key-file", p("sa.pub"),
            "--service-account-signing-key-file", p("sa.key"),
            "--api-audiences", SA_ISSUER,
            # Addresses handed out to Services are only stored, never dialled.
            "--service-cluster-ip-range", "10.96.0.0/24",
            # The "kubernetes" Endpoints would name 127.0.0.1, which is invalid there.
            "--endpoint-reconciler-type", "none",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--v", "1"])
        self.kubeconfig = p("kubeconfig")
        with open(self.kubeconfig, "w") as f:
            json.dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "tg",
                "clusters": [{"name": "tg", "cluster": {"server": self.url,
                                                        "certificate-authority": self.ca}}],
                "users": [{"name": "tg-admin", "user": {"token": ADMIN_TOKEN}}],
                "contexts": [{"name": "tg", "context": {"cluster": "tg", "user": "tg-admin"}}],
            }, f)
        self.wait_ready()

    def _start(self, name, args):
        log = open(os.path.join(self.dir, name + ".log"), "wb")
        self.logs.append(log)
        self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def log(self, name="kube-apiserver"):
        with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
            return f.read()[-4000:]

    def wait_ready(self, timeout=120):
        ctx = ssl.create_default_context(cafile=self.ca)
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.procs[-1].poll() is not None:
                raise RuntimeError("kube-apiserver exited: %s" % self.log())
            req = urllib.request.Request(self.url + "/readyz",
                                         headers={"Authorization": "Bearer " + ADMIN_TOKEN})
            try:
                with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
                    if r.status == 200:
                        self.ready_after = timeout - (deadline - time.time())
                        return
            except (urllib.error.URLError, OSError) as e:
                last = e
            time.sleep(0.5)
        raise RuntimeError("kube-apiserver not ready after %ds (%s): %s" % (timeout, last,
                                                                           self.log()))

    def kubectl(self, *args, token=None, input=None, check=True):
        cmd = [self.kubectl_bin, "--kubeconfig", self.kubeconfig]
        if token:
            # Only this token: not the admin's from the kubeconfig.
            cmd = [self.kubectl_bin, "--kubeconfig", "/dev/null", "--server", self.url,
                   "--certificate-authority", self.ca, "--token", token]
        p = subprocess.run([*cmd, *args], input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError("kubectl %s: exit %d\n%s%s" % (" ".join(args), p.returncode,
                                                              p.stdout, p.stderr))
        return p

    def request(self, method, path, token, body=None, cafile=None):
        """One HTTPS request as a client holding only `token` and the CA."""
        ctx = ssl.create_default_context(cafile=cafile or self.ca)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for log in self.logs:
            log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
