#!/usr/bin/python3
"""What commit build statuses cost a pass (SPEC 7, issue "Bitbucket out"):
the same passes, each applying a new commit, with no `bitbucket:` at all
(the baseline), with a Bitbucket that answers, and with one that takes the
request and never answers (30 s timeout).  A status is only queued by the
pass; the notifier's own thread sends it.

    /usr/bin/python3 bench/bitbucket_statuses.py [N=10]

Peers: Redis, a Tyk Gateway, an upstream, `git daemon`, and the Bitbucket
REST API peer of tests/e2e/bitbucket.py, all on loopback.  Prints the
median pass duration (the controller's own figure) and the request round
trip of POST /reconcile?wait=true for each, and the ratios to the baseline.
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

from bitbucket import BitbucketApi, Controller, metric, sync  # noqa: E402
from conftest import keyless_api  # noqa: E402
from gitpeers import GitDaemon, Repo  # noqa: E402
from peers import Gateway, Redis, Upstream  # noqa: E402


def passes(ctl, repo, upstream, prefix, n):
    durations, walls = [], []
    for i in range(n):
        name = "%s%d" % (prefix, i)
        repo.commit({"apis/bench.json": json.dumps(keyless_api("bench", "/%s/" % name,
                                                               upstream.url))})
        t0 = time.monotonic()
        code, text, _ = ctl.post("/api/v1/syncs/bench/reconcile?wait=true")
        walls.append(time.monotonic() - t0)
        assert code == 200, text
        durations.append(json.loads(text)["duration_seconds"])
    return statistics.median(durations), statistics.median(walls)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    work = tempfile.mkdtemp(prefix="tg-bench-bb-")
    redis = Redis()
    upstream = Upstream()
    gateway = Gateway(redis)
    root = os.path.join(work, "git")
    os.makedirs(root)
    gd = GitDaemon(root)
    peers, ctl = [], None
    try:
        repo = Repo(root, "gateway-config")
        repo.commit({"apis/bench.json": json.dumps(keyless_api("bench", "/b/", upstream.url))})
        token = os.path.join(work, "token")
        with open(token, "w") as f:
            f.write("bench-token\n")
        results = {}
        for mode in ("none", "answering", "hanging"):
            extra = {}
            if mode != "none":
                peer = BitbucketApi("cloud", token="bench-token")
                peers.append(peer)
                if mode == "hanging":
                    peer.faults = ["hang"] * 1000
                extra["bitbucket"] = {"api": "cloud", "url": peer.url, "workspace": "acme",
                                      "repo_slug": "gateway-config", "token_file": token,
                                      "timeout": "30s"}
            ctl = Controller(os.path.join(work, mode), [sync("bench", gd.url(repo), gateway,
                                                            **extra)])
            ctl.wait_ready()
            results[mode] = passes(ctl, repo, upstream, mode, n)
            sent = metric(ctl.metrics(), "tyk_gitops_bitbucket_requests_total", api="cloud",
                          result="ok")
            ctl.stop()
            ctl = None
            if mode == "answering":
                print("statuses answered: %d (INPROGRESS and SUCCESSFUL per pass)" % sent)
        base = results["none"]
        print("pass with a new commit, %d passes each (git daemon + Tyk Gateway on loopback)" % n)
        for mode in ("none", "answering", "hanging"):
            d, w = results[mode]
            print("  %-28s pass %6.0f ms  round trip %6.0f ms  ratio to baseline %.2f / %.2f" % (
                {"none": "no bitbucket (baseline)", "answering": "bitbucket answering",
                 "hanging": "bitbucket hanging (30s)"}[mode],
                d * 1000, w * 1000, d / base[0], w / base[1]))
    finally:
        if ctl:
            ctl.stop()
        for p in peers:
            p.stop()
        gd.stop()
        gateway.destroy()
        upstream.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
