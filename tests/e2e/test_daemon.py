"""The daemon (`tyk-gitops run`) against a real Tyk Gateway, git repository,
promtool and Prometheus server."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import BIN, keyless_api, policy
from peers import free_port, wait_port, wait_for


def http(method, url, timeout=30):
    # POSTs carry JSON: a form content type is refused as a possible cross-site request.
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None,
                                 headers={"Content-Type": "application/json"}
                                 if method == "POST" else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} for simple label values."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        if "{" in head:
            name, rest = head.split("{", 1)
            labels = {}
            for part in rest.rstrip("}").split('",'):
                if not part:
                    continue
                k, v = part.split('="', 1)
                labels[k] = v.rstrip('"')
        else:
            name, labels = head, {}
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def metric(text, name, **labels):
    return parse_metrics(text).get((name, frozenset(labels.items())), 0.0)


class Daemon:
    """tyk-gitops run with a generated config file."""

    def __init__(self, tmpdir, syncs, listen_host="127.0.0.1", wrapper=(), extra_cfg=""):
        self.tmpdir = tmpdir
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.config = os.path.join(tmpdir, "tyk-gitops.yaml")
        self.log_path = os.path.join(tmpdir, "daemon.log")
        self.listen_host = listen_host
        self.syncs = syncs
        self.extra_cfg = extra_cfg
        self.write_config()
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([*wrapper, BIN, "run", "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, timeout=120 if wrapper else 30, proc=self.proc)

    def write_config(self, syncs=None):
        syncs = syncs or self.syncs
        lines = ["listen: %s:%d" % (self.listen_host, self.port),
                 "cache_dir: %s" % os.path.join(self.tmpdir, "cache"),
                 "log: {format: json, level: info}", self.extra_cfg, "syncs:"]
        for s in syncs:
            lines += [
                "  - name: %s" % s["name"],
                "    repo: {url: '%s', ref: {branch: main}}" % s["repo"],
                "    gateway: {url: '%s', secret_file: '%s', timeout: 5s}" % (s["gateway"],
                                                                          s["secret_file"]),
                "    interval: %s" % s.get("interval", "1s"),
                "    drift: {interval: %s}" % s.get("drift", "2s"),
                "    backoff_max: %s" % s.get("backoff_max", "30s"),
            ]
            if s.get("suspend"):
                lines.append("    suspend: true")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def get(self, path):
        return http("GET", self.base + path)

    def post(self, path, timeout=30):
        return http("POST", self.base + path, timeout=timeout)

    def status(self, name):
        code, body = self.get("/api/v1/syncs/" + name)
        assert code == 200, body
        return json.loads(body)

    def metrics(self):
        code, body = self.get("/metrics")
        assert code == 200
        return body

    def wait_ready(self, timeout=30):
        wait_for(lambda: self.get("/readyz")[0] == 200, timeout, "/readyz")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def logs(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


def sync_spec(name, repo, gateway, **kw):
    d = {"name": name, "repo": repo.url, "gateway": gateway.url,
         "secret_file": gateway.secret_file}
    d.update(kw)
    return d


@pytest.fixture
def daemons():
    started = []
    yield started
    for d in started:
        d.stop()


def test_push_goes_live_and_drift_is_repaired(gateway, repo, upstream, tmp_path, daemons):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.write("policies/basic.json", policy("basic", ["echo"]))
    first = repo.commit("echo")
    d = Daemon(str(tmp_path), [sync_spec("test", repo, gateway)])
    daemons.append(d)
    d.wait_ready()
    assert d.get("/healthz")[0] == 200
    st = d.status("test")
    assert st["last_commit"] == first and st["last_outcome"] == "success", st
    assert st["last_result"]["trigger"] == "startup"
    assert gateway.request("/echo/x")[0] == 200
    code, body = d.get("/api/v1/syncs")
    assert code == 200 and [s["name"] for s in json.loads(body)["syncs"]] == ["test"]
    assert d.get("/api/v1/syncs/nope")[0] == 404

    # A push is live within one interval (1 s) plus the pass.
    repo.write("apis/second.json", keyless_api("second", "/second/", upstream.url))
    second = repo.commit("second")
    t0 = time.time()
    wait_for(lambda: gateway.request("/second/y")[0] == 200, 5, "second api live")
    assert time.time() - t0 < 4
    wait_for(lambda: d.status("test")["last_commit"] == second, 5, "status shows the commit")
    st = d.status("test")
    assert st["last_result"]["trigger"] == "poll"
    assert st["next_run_at"] is not None

    # A hand-deleted API comes back within one drift interval (2 s).
    code, _ = gateway.api("DELETE", "/tyk/apis/echo")
    assert code == 200
    gateway.reload()
    assert gateway.request("/echo/x")[0] == 404
    t0 = time.time()
    wait_for(lambda: gateway.request("/echo/x")[0] == 200, 6, "echo repaired")
    assert time.time() - t0 < 5

    m = wait_for(lambda: (lambda t: t if metric(t, "tyk_gitops_drift_corrections_total",
                                                 sync="test") >= 1 else None)(d.metrics()),
                 5, "drift correction counted")
    assert metric(m, "tyk_gitops_reconcile_total", sync="test", result="success") >= 3
    assert metric(m, "tyk_gitops_last_applied_commit_info", sync="test", commit=second) == 1
    assert metric(m, "tyk_gitops_last_applied_commit_info", sync="test", commit=first) == 0
    assert metric(m, "tyk_gitops_objects", sync="test", kind="api", state="in_sync") == 2
    assert metric(m, "tyk_gitops_objects", sync="test", kind="policy", state="in_sync") == 1
    assert metric(m, "tyk_gitops_suspended", sync="test") == 0
    assert metric(m, "tyk_gitops_git_requests_total", sync="test", op="fetch", result="ok") >= 2
    assert metric(m, "tyk_gitops_git_requests_total", sync="test", op="ls_remote", result="ok") >= 1
    assert metric(m, "tyk_gitops_last_success_timestamp_seconds", sync="test") > time.time() - 60
    assert metric(m, "tyk_gitops_git_requests_total", sync="test", op="ls_remote",
                  result="ok") >= 1
    assert metric(m, "tyk_gitops_gateway_requests_total", endpoint="/tyk/reload", method="GET",
                  code="200") >= 2
    assert "tyk_gitops_gateway_request_duration_seconds_bucket{" in m
    assert 'tyk_gitops_build_info{version="' in m
    logs = d.logs()
    line = next(json.loads(l) for l in logs.splitlines()
                if l.startswith("{") and '"reconciled"' in l and second in l)
    assert line["sync"] == "test" and line["commit"] == second and line["level"] == "info"

    # SIGTERM: /readyz goes away, exit 0 within 5 s.
    t0 = time.time()
    d.signal(signal.SIGTERM)
    assert d.proc.wait(5) == 0
    assert time.time() - t0 < 5


def test_reconcile_wait_suspend_and_resume(gateway, repo, upstream, tmp_path, daemons):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    sha = repo.commit("echo")
    d = Daemon(str(tmp_path), [sync_spec("test", repo, gateway, interval="1s", drift="1h")],
               extra_cfg="http: {max_connections: 16, connection_timeout: 10s, max_wait: 2m}")
    daemons.append(d)
    d.wait_ready()

    code, body = d.post("/api/v1/syncs/test/reconcile?wait=true&timeout=30s")
    assert code == 200, body
    res = json.loads(body)
    assert res["outcome"] == "success" and res["commit"] == sha
    assert res["trigger"] == "pipeline" and res["counts"]["unchanged"] == 1

    code, body = d.post("/api/v1/syncs/test/reconcile")
    assert code == 202 and json.loads(body)["queued"] is True
    assert d.post("/api/v1/syncs/nope/reconcile")[0] == 404
    assert d.post("/api/v1/syncs/test/reconcile?wait=maybe")[0] == 400
    assert d.get("/api/v1/syncs/test/reconcile")[0] == 405
    assert d.post("/metrics")[0] == 405
    assert d.get("/hooks/bitbucket")[0] == 404

    code, body = d.post("/api/v1/syncs/test/suspend")
    assert code == 200 and json.loads(body)["suspended"] is True
    assert d.status("test")["suspended"] is True
    assert metric(d.metrics(), "tyk_gitops_suspended", sync="test") == 1
    repo.write("apis/later.json", keyless_api("later", "/later/", upstream.url))
    later = repo.commit("later")
    time.sleep(3)
    assert gateway.request("/later/z")[0] == 404
    assert d.status("test")["last_commit"] == sha
    # An explicit reconcile of a suspended sync only plans.
    code, body = d.post("/api/v1/syncs/test/reconcile?wait=true")
    res = json.loads(body)
    assert code == 200 and res["plan_only"] is True, body
    assert [o["id"] for o in res["objects"] if o["action"] == "create"] == ["later"]
    assert gateway.request("/later/z")[0] == 404

    code, body = d.post("/api/v1/syncs/test/resume")
    assert code == 200 and json.loads(body)["suspended"] is False
    wait_for(lambda: gateway.request("/later/z")[0] == 200, 5, "applied after resume")
    wait_for(lambda: d.status("test")["last_commit"] == later, 5, "status after resume")
    assert metric(d.metrics(), "tyk_gitops_suspended", sync="test") == 0
    assert d.stop() == 0


def test_sighup_reloads_only_a_valid_config(gateway, repo, upstream, tmp_path, daemons):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit("echo")
    spec = sync_spec("test", repo, gateway, interval="1s", drift="1h")
    d = Daemon(str(tmp_path), [spec])
    daemons.append(d)
    d.wait_ready()
    passes = d.status("test")["passes"]

    with open(d.config, "w") as f:
        f.write("listen: [this is not: valid\nsyncs: 3\n")
    d.signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in d.logs(), 5, "refusal logged")
    assert d.proc.poll() is None
    assert d.get("/healthz")[0] == 200
    # Still reconciling on the old configuration.
    repo.write("apis/after.json", keyless_api("after", "/after/", upstream.url))
    repo.commit("after")
    wait_for(lambda: gateway.request("/after/z")[0] == 200, 5, "applied on the old config")

    # A valid reload that keeps the sync unchanged keeps its state, and a
    # new sync starts.
    d.write_config([spec, dict(spec, name="second", suspend=True)])
    d.signal(signal.SIGHUP)
    wait_for(lambda: len(json.loads(d.get("/api/v1/syncs")[1])["syncs"]) == 2, 5, "second sync")
    assert d.status("test")["passes"] > passes
    assert d.status("second")["suspended"] is True
    assert metric(d.metrics(), "tyk_gitops_suspended", sync="second") == 1
    assert d.stop() == 0


def test_metrics_pass_promtool_and_prometheus_scrapes_them(gateway, repo, upstream, tmp_path,
                                                          daemons):
    if not shutil.which("promtool") or not shutil.which("prometheus"):
        pytest.skip("prometheus not installed")
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit("echo")
    d = Daemon(str(tmp_path), [sync_spec("test", repo, gateway)])
    daemons.append(d)
    d.wait_ready()
    text = d.metrics()
    p = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.returncode == 0, p.stdout + "\n" + text

    prom_port = free_port()
    prom_dir = tempfile.mkdtemp(prefix="tg-prom-", dir=str(tmp_path))
    conf = os.path.join(prom_dir, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                "scrape_configs:\n"
                "  - job_name: tyk-gitops\n"
                "    static_configs: [{targets: ['127.0.0.1:%d']}]\n" % d.port)
    log = open(os.path.join(prom_dir, "prometheus.log"), "wb")
    prom = subprocess.Popen(["prometheus", "--config.file=" + conf,
                             "--storage.tsdb.path=" + os.path.join(prom_dir, "data"),
                             "--web.listen-address=127.0.0.1:%d" % prom_port],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(prom_port, timeout=60, proc=prom)
        q = urllib.parse.quote('tyk_gitops_reconcile_total{sync="test",result="success"}')

        def query():
            code, body = http("GET", "http://127.0.0.1:%d/api/v1/query?query=%s" % (prom_port, q))
            if code != 200:
                return None
            r = json.loads(body)["data"]["result"]
            return r if r and float(r[0]["value"][1]) >= 1 else None

        result = wait_for(query, 60, "prometheus to scrape the daemon", step=0.5)
        assert result[0]["metric"]["job"] == "tyk-gitops"
        code, body = http("GET", "http://127.0.0.1:%d/api/v1/targets" % prom_port)
        health = [t["health"] for t in json.loads(body)["data"]["activeTargets"]]
        assert health == ["up"], body
    finally:
        prom.terminate()
        try:
            prom.wait(20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()
    assert d.stop() == 0


def test_posts_are_refused_unless_listening_on_loopback(tmp_path, daemons):
    secret = tmp_path / "secret"
    secret.write_text("x\n")
    spec = {"name": "test", "repo": "file:///nonexistent", "gateway": "http://127.0.0.1:9",
            "secret_file": str(secret), "interval": "1h", "drift": "1h"}
    d = Daemon(str(tmp_path), [spec], listen_host="0.0.0.0")
    daemons.append(d)
    code, body = d.post("/api/v1/syncs/test/reconcile")
    assert code == 403 and "loopback" in json.loads(body)["error"]
    assert d.post("/api/v1/syncs/test/suspend")[0] == 403
    # Reads stay open; the failing sync still becomes ready (first pass done).
    assert d.get("/api/v1/syncs/test")[0] == 200
    d.wait_ready()
    st = d.status("test")
    assert st["last_outcome"] == "error" and st["last_error"]
    assert d.get("/healthz")[0] == 200
    # Oversized bodies are refused before they are read.
    req = urllib.request.Request(d.base + "/api/v1/syncs/test/reconcile", method="POST",
                                 data=b"x" * (2 * 1024 * 1024))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except (ConnectionError, urllib.error.URLError):
        code = 413
    assert code == 413
    assert d.stop() == 0


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind not installed")
@pytest.mark.skipif(bool(os.environ.get("TG_SANITIZED")),
                    reason="an ASan binary cannot run under valgrind; make test covers it")
def test_many_cycles_under_valgrind_leak_nothing(gateway, repo, upstream, tmp_path, daemons):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.write("policies/basic.json", policy("basic", ["echo"]))
    repo.commit("echo")
    d = Daemon(str(tmp_path), [sync_spec("test", repo, gateway, interval="200ms", drift="400ms")],
               wrapper=("valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
                        "--error-exitcode=99", "--log-file=" + str(tmp_path / "vg.log")))
    daemons.append(d)
    d.wait_ready(timeout=120)

    def passes():
        m = d.metrics()
        n = metric(m, "tyk_gitops_reconcile_total", sync="test", result="success")
        return n if n >= 20 else None

    # A commit and a hand edit in the middle exercise the apply path too.
    repo.write("apis/two.json", keyless_api("two", "/two/", upstream.url))
    repo.commit("two")
    gateway.api("DELETE", "/tyk/apis/echo")
    gateway.reload()
    d.post("/api/v1/syncs/test/reconcile?wait=true&timeout=60s", timeout=90)
    wait_for(passes, 180, "20 passes under valgrind", step=1)
    rc = d.stop(timeout=60)
    report = open(str(tmp_path / "vg.log")).read()  # exists: valgrind really ran
    assert rc == 0, report
    assert "definitely lost" not in report, report


def test_start_up_check_names_a_wrong_secret(gateway, repo, upstream, tmp_path, daemons):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    bad = tmp_path / "wrong-secret"
    bad.write_text("definitely-not-the-secret\n")
    spec = sync_spec("test", repo, gateway)
    spec["secret_file"] = str(bad)
    d = Daemon(str(tmp_path), [spec])
    daemons.append(d)
    wait_for(lambda: "gateway check failed" in d.logs(), 10, "start-up check logged")
    line = next(json.loads(l) for l in d.logs().splitlines() if "gateway check failed" in l)
    assert "rejected the secret" in line["error"] and line["sync"] == "test"
    assert "definitely-not-the-secret" not in d.logs()
    # Once the secret file is fixed, the next pass succeeds without a restart.
    bad.write_text(gateway.secret + "\n")
    wait_for(lambda: gateway.request("/echo/x")[0] == 200, 40, "applied after the secret was fixed")


def test_slow_pass_wait_times_out_then_sigterm_drains(gateway, repo, upstream, tmp_path, daemons):
    """A gateway slowed down by a fault proxy: a waiting reconcile call gives
    up with 202, and SIGTERM during the pass turns /readyz 503, lets the pass
    finish and exits 0."""
    from faultproxy import FaultProxy
    proxy = FaultProxy(gateway.port)
    try:
        repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
        repo.commit()
        spec = sync_spec("test", repo, gateway, interval="1h", drift="1h")
        spec["gateway"] = proxy.url
        d = Daemon(str(tmp_path), [spec])
        daemons.append(d)
        d.wait_ready()
        proxy.add("delay", 3, delay=1.5, methods=("GET",))  # the three list calls
        code, body = d.post("/api/v1/syncs/test/reconcile?wait=true&timeout=1s")
        assert code == 202, body
        wait_for(lambda: d.status("test")["running"], 5, "pass running")
        d.signal(signal.SIGTERM)
        wait_for(lambda: d.get("/readyz")[0] == 503, 3, "/readyz 503 while draining")
        assert d.proc.wait(15) == 0
        assert "shutting down" in d.logs()
    finally:
        proxy.stop()
