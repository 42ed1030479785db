"""Runs the local demo (see examples/demo.sh)."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from peers import Gateway, Redis, Upstream  # noqa: E402

BIN = os.path.join(ROOT, "build", "tyk-gitops")


def sh(cwd, *args):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def main():
    work = tempfile.mkdtemp(prefix="tyk-gitops-demo-")
    redis = Redis()
    upstream = Upstream()
    gateway = Gateway(redis)
    try:
        repo = os.path.join(work, "config-repo")
        shutil.copytree(os.path.join(ROOT, "examples", "config-repo"), repo)
        sh(repo, "git", "-c", "init.defaultBranch=main", "init", "-q")
        sh(repo, "git", "add", "-A")
        sh(repo, "git", "-c", "user.name=Demo", "-c", "user.email=demo@example.com",
           "commit", "-q", "-m", "Initial gateway configuration")
        env = dict(os.environ, UPSTREAM_URL=upstream.url)
        args = ["--name", "demo", "--repo", "file://" + repo, "--branch", "main",
                "--gateway", gateway.url, "--secret-file", gateway.secret_file,
                "--cache-dir", os.path.join(work, "cache"), "--log-format", "text"]
        print("== tyk-gitops validate")
        subprocess.run([BIN, "validate", repo], env=env)
        print("\n== tyk-gitops diff (before the first sync)")
        subprocess.run([BIN, "diff", *args], env=env)
        print("\n== tyk-gitops sync")
        subprocess.run([BIN, "sync", "--audit", os.path.join(work, "audit.log"), *args],
                       env=env, check=True)
        print("\n== tyk-gitops status")
        subprocess.run([BIN, "status", *args], env=env)
        print("\n== traffic through the gateway")
        for path in ("/orders/list", "/petstore/pets"):
            code, body = gateway.request(path)
            print("GET %s%s -> %d %s" % (gateway.url, path, code, body))
        print("\n== a hand edit on the gateway, then a sync repairs it")
        code, api = gateway.api("GET", "/tyk/apis/orders")
        api["proxy"]["target_url"] = "http://127.0.0.1:9/"
        gateway.api("PUT", "/tyk/apis/orders", api)
        gateway.reload()
        subprocess.run([BIN, "diff", *args], env=env)
        subprocess.run([BIN, "sync", *args], env=env)
        print("\nWhere to look:")
        print("  config repo (commit here, then re-run sync): %s" % repo)
        print("  gateway control API: %s (secret in %s)" % (gateway.url, gateway.secret_file))
        print("  audit log: %s" % os.path.join(work, "audit.log"))
        print("  gateway log: %s" % gateway.log_path)
        print("  rerun: %s sync %s" % (BIN, " ".join(args)))
        if sys.stdin.isatty() and "--no-wait" not in sys.argv:
            print("\nThe gateway keeps running; press Ctrl-C to stop the demo.")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        gateway.destroy()
        upstream.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
