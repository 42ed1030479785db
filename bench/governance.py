"""Benchmark: the post-apply health check and rollback against a real Tyk
Gateway, each next to a baseline measured in the same run.

    /usr/bin/python3 bench/governance.py [N]     (N APIs changed per pass, default 100)

Prints (medians of BENCH_REPEAT runs, default 3):
  - a pass that changes N APIs, with and without health probes (one probe
    per API, through the gateway's data port): wall times and their ratio;
  - a commit whose API points at a dead upstream, under on_failure:
    rollback: time from the start of its apply to the rollback complete
    (the pass's own rollback_seconds, and the whole `sync` command), next
    to a plain apply of the same commit without a health check.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from conftest import ConfigRepo, keyless_api  # noqa: E402
from peers import Gateway, Redis, Upstream, free_port  # noqa: E402

BIN = os.path.join(ROOT, "build", "tyk-gitops")
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))


def config(path, repo, gateway, cache, health, name="bench"):
    lines = ["cache_dir: %s" % cache, "log: {format: text, level: error}", "syncs:",
             "  - name: %s" % name,
             "    repo: {url: '%s', ref: {branch: main}}" % repo.url,
             "    gateway: {url: '%s', secret_file: '%s', timeout: 30s}" % (gateway.url,
                                                                        gateway.secret_file)]
    if health:
        lines.append("    health: {%s}" % health)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def sync(cfg):
    t0 = time.monotonic()
    p = subprocess.run([BIN, "sync", "--config", cfg, "--format", "json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    took = time.monotonic() - t0
    try:
        res = json.loads(p.stdout)[0]
    except (ValueError, IndexError):
        raise SystemExit("sync failed: %s" % p.stderr)
    return took, res


def commit_apis(repo, prefix, n, target):
    for i in range(n):
        name = "%s-%d" % (prefix, i)
        repo.write("apis/%s.json" % name, keyless_api(name, "/%s/" % name, target))
    return repo.commit("target %s" % target)


def probes(n, work, gateway, upstream):
    """A pass that updates n APIs, with and without probing them: two syncs
    of n APIs each, live side by side, their passes interleaved so that
    both see the same gateway."""
    runs = {}
    for label, health in (("plain", None),
                          ("health", "max_probes: %d, rate: 100000, timeout: 2s" % n)):
        repo = ConfigRepo()
        cfg = config(os.path.join(work, label + ".yaml"), repo, gateway,
                     os.path.join(work, "cache-" + label), health, name=label)
        commit_apis(repo, label, n, upstream.url + "/v0")
        sync(cfg)  # first sync: creates
        runs[label] = (repo, cfg, health, [], [])
    for r in range(REPEAT):
        # Alternate which goes first: a pass may pay for the gateway's
        # work left over from the one before.
        order = list(runs.items()) if r % 2 == 0 else list(reversed(list(runs.items())))
        for label, (repo, cfg, health, times, probe_times) in order:
            commit_apis(repo, label, n, upstream.url + "/v%d" % (r + 1))
            took, res = sync(cfg)
            assert res["counts"]["updated"] == n, res["error"]
            if health:
                assert res["health"] == "healthy", res["health_detail"]
                probe_times.append(res["health_seconds"])
            times.append(took)
    out = {label: statistics.median(v[3]) for label, v in runs.items()}
    out["probes_only"] = statistics.median(runs["health"][4])
    for label, (repo, _, _, _, _) in runs.items():
        for i in range(n):
            gateway.api("DELETE", "/tyk/apis/%s-%d" % (label, i))
        repo.cleanup()
    gateway.reload()
    return out


def rollback(work, gateway, upstream):
    """A dead upstream rolled back, next to the same apply with no health check."""
    dead = "http://127.0.0.1:%d" % free_port()
    results = {"rollback_seconds": [], "sync_with_rollback": [], "plain_apply": []}
    for r in range(REPEAT):
        for label, health in (("plain", None),
                              ("rollback", "on_failure: rollback, timeout: 1s, attempts: 2, "
                                           "interval: 200ms")):
            repo = ConfigRepo()
            cfg = config(os.path.join(work, "rb-%s-%d.yaml" % (label, r)), repo, gateway,
                         os.path.join(work, "cache-rb-%s-%d" % (label, r)), health)
            repo.write("apis/svc.json", keyless_api("svc", "/svc/", upstream.url))
            repo.commit("good")
            sync(cfg)
            repo.write("apis/svc.json", keyless_api("svc", "/svc/", dead))
            repo.commit("dead upstream")
            took, res = sync(cfg)
            if health:
                assert res["rolled_back_to"], res
                assert gateway.request("/svc/x")[0] == 200
                results["rollback_seconds"].append(res["rollback_seconds"])
                results["sync_with_rollback"].append(took)
            else:
                results["plain_apply"].append(took)
            gateway.api("DELETE", "/tyk/apis/svc")
            gateway.reload()
            repo.cleanup()
    return {k: statistics.median(v) for k, v in results.items()}


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    work = tempfile.mkdtemp(prefix="tg-bench-gov-")
    redis = Redis()
    gateway = Gateway(redis)
    upstream = Upstream()
    try:
        p = probes(n, work, gateway, upstream)
        print("pass changing %d APIs: without probes %.3fs, with probes %.3fs, ratio %.2fx"
              % (n, p["plain"], p["health"], p["health"] / p["plain"]))
        print("  the probes themselves: %.3fs (%.2f ms per API), %.0f%% of the pass with probes"
              % (p["probes_only"], p["probes_only"] * 1000.0 / n,
                 100.0 * p["probes_only"] / p["health"]))
        r = rollback(work, gateway, upstream)
        print("dead upstream, on_failure: rollback (attempts 2, interval 200ms, timeout 1s):")
        print("  apply to rollback complete (in the pass): %.3fs" % r["rollback_seconds"])
        print("  whole `sync` command with the rollback: %.3fs; the same apply without a "
              "health check: %.3fs; ratio %.2fx"
              % (r["sync_with_rollback"], r["plain_apply"],
                 r["sync_with_rollback"] / r["plain_apply"]))
    finally:
        gateway.destroy()
        redis.stop()
        upstream.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
