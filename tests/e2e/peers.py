"""Real test peers on loopback: Redis, the Tyk Gateway, an HTTP upstream.

Each peer binds a free port on 127.0.0.1, lives in a temp directory and is
torn down by its stop() (the pytest fixtures call it even when a test fails).
"""
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RefusedPort:
    """A loopback port that refuses connections for as long as it is held.

    A port free_port() returned can be bound again by anyone (the next
    free_port() of the same test, a daemon's listener); this one stays bound,
    never listens, so a connection to it is refused and nothing else gets it.
    """

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port

    def close(self):
        self.sock.close()


def wait_port(port, timeout=30.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on port %d after %.0fs" % (port, timeout))


def wait_for(fn, timeout, what, step=0.1):
    """Calls fn until it returns something true and returns that; fails the
    test after timeout seconds, naming what it waited for and fn's last answer."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


def tyk_binary():
    out = subprocess.run(["sh", os.path.join(ROOT, "tests/peers/build-tyk.sh")],
                         check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout.strip().splitlines()[-1]


def make_tls(directory, name="127.0.0.1"):
    """A test CA and a server certificate for 127.0.0.1 signed by it."""
    ca_key, ca = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    key, csr, cert = (os.path.join(directory, n) for n in ("server.key", "server.csr", "server.pem"))
    ext = os.path.join(directory, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run = lambda *a: subprocess.run(a, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=tyk-gitops test CA", "-keyout", ca_key, "-out", ca)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name,
        "-keyout", key, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-extfile", ext, "-out", cert)
    return ca, cert, key


class Redis:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tg-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Gateway:
    """A real Tyk Gateway with file-based APIs and policies in a temp dir."""

    def __init__(self, redis, secret="tg-test-secret", policy_path=True, tls=False):
        self.dir = tempfile.mkdtemp(prefix="tg-tyk-")
        self.redis = redis
        self.secret = secret
        self.port = free_port()
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)
        self.ca_file = None
        self.app_path = os.path.join(self.dir, "apps")
        self.policy_path = os.path.join(self.dir, "policies")
        os.makedirs(self.app_path)
        os.makedirs(self.policy_path)
        self.secret_file = os.path.join(self.dir, "secret")
        with open(self.secret_file, "w") as f:
            f.write(secret + "\n")
        self.conf = {
            "listen_address": "127.0.0.1",
            "listen_port": self.port,
            "secret": secret,
            "node_secret": secret,
            "template_path": None,
            "use_db_app_configs": False,
            "app_path": self.app_path,
            "storage": {"type": "redis", "host": "127.0.0.1", "port": redis.port,
                        "database": 0, "optimisation_max_idle": 100},
            "enable_analytics": False,
            "health_check": {"enable_health_checks": False},
            "hash_keys": True,
            "enable_hashed_keys_listing": True,
            "enable_jsvm": False,
            "allow_insecure_configs": True,
            "policies": {"policy_source": "file",
                         "policy_record_name": os.path.join(self.dir, "policies.json")},
            "close_connections": True,
            "suppress_redis_signal_reload": True,
            "log_level": "info",
            # Exact per-key limits (the default DRL is approximate at low rates).
            "enable_redis_rolling_limiter": True,
        }
        if policy_path:
            self.conf["policies"]["policy_path"] = self.policy_path
        if tls:
            self.ca_file, cert, key = make_tls(self.dir)
            self.conf["http_server_options"] = {
                "use_ssl": True,
                "certificates": [{"domain_name": "127.0.0.1", "cert_file": cert, "key_file": key}]}
        self.binary = tyk_binary()
        self.conf["template_path"] = os.path.join(os.path.dirname(self.binary), "templates")
        self.log_path = os.path.join(self.dir, "tyk.log")
        self.proc = None
        self.start()

    def start(self):
        conf_path = os.path.join(self.dir, "tyk.conf")
        with open(conf_path, "w") as f:
            json.dump(self.conf, f)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "--conf", conf_path],
                                     cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, timeout=60, proc=self.proc)
        self.wait_ready()

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                code, _ = self.api("GET", "/tyk/apis")
                if code == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gateway control API not ready; log: %s" % self.log_path)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        self.proc = None

    def restart_empty(self):
        """A gateway restart that lost every object (empty app_path)."""
        self.stop()
        for d in (self.app_path, self.policy_path):
            shutil.rmtree(d)
            os.makedirs(d)
        self.start()

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def api(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"x-tyk-authorization": self.secret,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ssl_context()) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def ssl_context(self):
        if not self.ca_file:
            return None
        import ssl
        return ssl.create_default_context(cafile=self.ca_file)

    def reload(self):
        return self.api("GET", "/tyk/reload?block=true")

    def request(self, path, headers=None, method="GET"):
        """A client request through the gateway's proxy (not the control API)."""
        req = urllib.request.Request(self.url + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ssl_context()) as r:
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")


class Upstream:
    """An HTTP upstream that echoes what it received as JSON."""

    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.hits = 0
        self.paths = []  # every request path, in the order received
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                upstream.hits += 1
                upstream.paths.append(self.path)
                body = json.dumps({"upstream": "ok", "path": self.path,
                                   "method": self.command}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
