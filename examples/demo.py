"""Runs the local demo (see examples/demo.sh).

A real Tyk Gateway, Redis and an upstream on loopback; a git repository made
from examples/config-repo; `tyk-gitops run` reconciling it.  The demo then
commits a change and hand-deletes an API to show both being reconciled.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from peers import Gateway, Redis, Upstream, free_port  # noqa: E402

BIN = os.path.join(ROOT, "build", "tyk-gitops")


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=Demo", "-c", "user.email=demo@example.com",
                    "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def wait_for(what, check, timeout=60):
    start = time.time()
    while time.time() - start < timeout:
        if check():
            print("  %s after %.1f s" % (what, time.time() - start))
            return
        time.sleep(0.2)
    raise SystemExit("demo: timed out waiting for: " + what)


def write_config(path, work, repo, gateway, listen):
    with open(path, "w") as f:
        f.write("""listen: %s
log: {format: text, level: info}
cache_dir: %s
audit: %s
syncs:
  - name: demo
    repo: {url: "file://%s", ref: {branch: main}}
    gateway: {url: "%s", secret_file: "%s"}
    interval: 2s
    drift: {interval: 5s, policy: correct}
""" % (listen, os.path.join(work, "cache"), os.path.join(work, "audit.jsonl"), repo,
       gateway.url, gateway.secret_file))


def main():
    work = tempfile.mkdtemp(prefix="tyk-gitops-demo-")
    redis, upstream = Redis(), Upstream()
    gateway = Gateway(redis)
    daemon = None
    try:
        repo = os.path.join(work, "config-repo")
        shutil.copytree(os.path.join(ROOT, "examples", "config-repo"), repo)
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "Initial gateway configuration")
        env = dict(os.environ, UPSTREAM_URL=upstream.url)
        listen = "127.0.0.1:%d" % free_port()
        config = os.path.join(work, "tyk-gitops.yaml")
        write_config(config, work, repo, gateway, listen)

        print("== tyk-gitops validate %s" % repo)
        subprocess.run([BIN, "validate", repo], env=env)
        print("\n== tyk-gitops diff (before anything is applied)")
        subprocess.run([BIN, "diff", "--config", config], env=env)

        print("\n== tyk-gitops run (the controller), logging to %s" % os.path.join(work, "controller.log"))
        log = open(os.path.join(work, "controller.log"), "w")
        daemon = subprocess.Popen([BIN, "run", "--config", config], env=env, stderr=log)
        wait_for("ready", lambda: http_get("http://%s/readyz" % listen)[0] == 200)
        print("\n== traffic through the gateway")
        for path in ("/orders/list", "/petstore/pets"):
            code, body = gateway.request(path)
            print("  GET %s -> %d %s" % (path, code, body))

        print("\n== commit a new API to git")
        with open(os.path.join(repo, "apis", "inventory.yaml"), "w") as f:
            f.write("name: Inventory\napi_id: inventory\norg_id: acme\nuse_keyless: true\n"
                    "active: true\nproxy: {listen_path: /inventory/, target_url: '%s', "
                    "strip_listen_path: true}\nversion_data: {not_versioned: true, versions: "
                    "{Default: {name: Default}}}\n" % upstream.url)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "Add the inventory API")
        wait_for("/inventory/ is live", lambda: gateway.request("/inventory/x")[0] == 200)

        print("\n== hand-delete the orders API on the gateway")
        gateway.api("DELETE", "/tyk/apis/orders")
        gateway.reload()
        print("  GET /orders/list -> %d" % gateway.request("/orders/list")[0])
        wait_for("orders is back (drift corrected)", lambda: gateway.request("/orders/list")[0] == 200)

        print("\n== GET /api/v1/syncs/demo")
        print("  " + json.dumps(json.loads(http_get("http://%s/api/v1/syncs/demo" % listen)[1]))[:400])
        print("\n== a few metrics")
        for line in http_get("http://%s/metrics" % listen)[1].splitlines():
            if line.startswith(("tyk_gitops_reconcile_total", "tyk_gitops_drift_corrections_total",
                                "tyk_gitops_last_applied_commit_info")):
                print("  " + line)
        print("\n== tyk-gitops status")
        subprocess.run([BIN, "status", "--config", config], env=env)

        print("\nWhere to look:")
        print("  config repo (commit here):  %s" % repo)
        print("  controller:                 http://%s/api/v1/syncs, /metrics" % listen)
        print("  controller log, audit:      %s, %s" % (log.name, os.path.join(work, "audit.jsonl")))
        print("  gateway:                    %s (secret in %s)" % (gateway.url, gateway.secret_file))
        if sys.stdin.isatty() and "--no-wait" not in sys.argv:
            print("\nThe controller keeps reconciling; press Ctrl-C to stop the demo.")
            while daemon.poll() is None:
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        if daemon and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
        gateway.destroy()
        upstream.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
