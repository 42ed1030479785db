#!/usr/bin/python3
"""Push-to-live latency (SPEC 10): a commit pushed to a git server, then
announced by a signed Bitbucket Cloud webhook, until the real Tyk Gateway
serves it; next to the poll path (interval 1s, no webhook) on the same
peers.  Also the webhook's accept latency (the POST's round trip).

    /usr/bin/python3 bench/webhook_latency.py [N=10]

Peers: Redis, a Tyk Gateway, an upstream, `git daemon` (git://), all on
loopback.  Each round adds one API with a new listen path; "live" is the
first 200 from the gateway's data port for it (polled every 10 ms).
Prints median, min and max of N rounds for each path.
"""
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("TG_BIN", os.path.join(ROOT, "build", "tyk-gitops"))

from bitbucket import Controller, cloud_push, deliver, sync  # noqa: E402
from conftest import keyless_api  # noqa: E402
from gitpeers import GitDaemon, Repo  # noqa: E402
from peers import Gateway, Redis, Upstream  # noqa: E402

SECRET = "bench-webhook-secret-4f2c9a"
FULL = "acme/gateway-config"
UUID = "{4b0c5c9e-1f1e-4f7a-9f3d-2c3b1a0e9d8c}"


def until_live(gateway, path, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gateway.request(path)[0] == 200:
            return time.monotonic()
        time.sleep(0.01)
    raise RuntimeError("%s never went live" % path)


def rounds(n, repo, gateway, upstream, prefix, announce):
    out, accepts = [], []
    for i in range(n):
        name = "%s%d" % (prefix, i)
        before = repo.head()
        sha = repo.commit({"apis/%s.json" % name: json.dumps(keyless_api(name, "/%s/" % name,
                                                                         upstream.url))})
        t0 = time.monotonic()
        took = announce(sha, before)
        if took is not None:
            accepts.append(took)
        out.append(until_live(gateway, "/%s/x" % name) - t0)
        time.sleep(0.3)  # let the pass finish its read-back before the next push
    return out, accepts


def fmt(xs, digits=0):
    f = "%%7.%df" % digits
    return ("median " + f + " ms   min " + f + "   max " + f) % (
        statistics.median(xs) * 1000, min(xs) * 1000, max(xs) * 1000)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    work = tempfile.mkdtemp(prefix="tg-bench-hook-")
    redis = Redis()
    upstream = Upstream()
    gateway = Gateway(redis)
    root = os.path.join(work, "git")
    os.makedirs(root)
    gd = GitDaemon(root)
    ctl = None
    try:
        repo = Repo(root, "gateway-config")
        repo.commit({"apis/base.json": json.dumps(keyless_api("base", "/base/", upstream.url))})
        secret = os.path.join(work, "secret")
        with open(secret, "w") as f:
            f.write(SECRET + "\n")

        # Webhook path: no polling at all (interval 1h).
        ctl = Controller(os.path.join(work, "hook"), [sync(
            "bench", gd.url(repo), gateway,
            webhook={"secret_file": secret, "repository": FULL})])
        ctl.wait_ready()

        def announce(sha, before):
            code, body, took = deliver(ctl.base, cloud_push(
                FULL, UUID, [("branch", "main", sha, before)]), SECRET)
            assert code == 202, body
            return took

        hook, accepts = rounds(n, repo, gateway, upstream, "hook", announce)
        ctl.stop()

        # Poll path: interval 1s (each poll is one ls-remote; a pass when the ref moved).
        ctl = Controller(os.path.join(work, "poll"), [dict(sync(
            "bench", gd.url(repo), gateway), interval="1s")])
        ctl.wait_ready()
        poll, _ = rounds(n, repo, gateway, upstream, "poll", lambda sha, before: None)

        print("push-to-live, %d rounds each (git daemon + Tyk Gateway on loopback)" % n)
        print("  webhook            %s" % fmt(hook))
        print("  poll (interval 1s) %s" % fmt(poll))
        print("  ratio poll/webhook (medians) %.2f" % (statistics.median(poll) /
                                                       statistics.median(hook)))
        print("webhook accept (POST round trip, client included) %s" % fmt(accepts, 1))
    finally:
        if ctl:
            ctl.stop()
        gd.stop()
        gateway.destroy()
        upstream.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
