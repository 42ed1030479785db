"""Benchmark: reconcile passes against a real Tyk Gateway, next to a plain
loop of the same HTTP calls measured in the same run (bench/plain_loop.c).

    /usr/bin/python3 bench/reconcile.py [N]     (N APIs + N policies, default 1000)

Prints wall times (medians of 3 runs) and ratios for: a first sync, a
no-change pass, and a pass that changes 10 objects, by the CLI and by the
daemon.  The plain loop runs against a gateway of its own; for the no-change
passes it also runs against the controller's gateway, whose lists are longer
(each object carries its provenance marker).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from peers import Gateway, Redis, Upstream  # noqa: E402

# TG_BIN: another build (e.g. the one before a change) measured the same way.
BIN = os.environ.get("TG_BIN") or os.path.join(ROOT, "build", "tyk-gitops")


def build_baseline(work):
    out = os.path.join(work, "plain_loop")
    cflags = subprocess.run(["pkg-config", "--cflags", "--libs", "libcurl"], check=True,
                            stdout=subprocess.PIPE, text=True).stdout.split()
    subprocess.run(["cc", "-O2", "-o", out, os.path.join(ROOT, "bench", "plain_loop.c"), *cflags],
                   check=True)
    return out


def api(i, upstream):
    return {"name": "api %d" % i, "api_id": "api-%d" % i, "org_id": "bench", "use_keyless": True,
            "active": True,
            "proxy": {"listen_path": "/api-%d/" % i, "target_url": upstream,
                      "strip_listen_path": True},
            "version_data": {"not_versioned": True, "versions": {"Default": {"name": "Default"}}}}


def pol(i):
    return {"id": "pol-%d" % i, "name": "policy %d" % i, "org_id": "bench", "active": True,
            "rate": 100 + i, "per": 60, "quota_max": -1,
            "access_rights": {"api-%d" % i: {"api_id": "api-%d" % i, "versions": ["Default"]}}}


REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))


def medians(pairs):
    a = sorted(p[0] for p in pairs)
    b = sorted(p[1] for p in pairs)
    return a[len(a) // 2], b[len(b) // 2]


def write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=b@example.com",
                    "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)


PEAK_RSS_KIB = {}


def timed(args, label=None):
    """Runs args; returns (seconds, stdout).  With a label, keeps the
    child's own peak RSS (KiB) under it."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen(args, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit("command failed: %s\n%s" % (" ".join(args[:2]), err.read()[-2000:]))
        if label:
            PEAK_RSS_KIB[label] = max(PEAK_RSS_KIB.get(label, 0), usage.ru_maxrss)
        return took, out.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def max_list_size(n):
    """A list reply past the default 512 MiB (about 90,000 classic APIs as
    the gateway lists them) needs gateway.max_list_mib."""
    return "" if n < 50000 else ", max_list_mib: 4096"


def cli_config(work, repo, gw, n):
    path = os.path.join(work, "cli.yaml")
    with open(path, "w") as f:
        f.write("cache_dir: %s\nlog: {format: json, level: warn}\n"
                "syncs:\n  - name: bench\n    repo: {url: 'file://%s', ref: {branch: main}}\n"
                "    gateway: {url: '%s', secret_file: '%s', timeout: 30m%s}\n"
                % (os.path.join(work, "cache"), repo, gw.url, gw.secret_file, max_list_size(n)))
    return path


class Daemon:
    """tyk-gitops run with one sync; passes are triggered over HTTP and
    timed by the controller itself (duration_seconds of the result)."""

    def __init__(self, work, repo, gw, n):
        self.port = free_port()
        conf = os.path.join(work, "daemon.yaml")
        with open(conf, "w") as f:
            f.write("listen: 127.0.0.1:%d\ncache_dir: %s\nlog: {format: json, level: warn}\n"
                    "syncs:\n  - name: bench\n    repo: {url: 'file://%s', ref: {branch: main}}\n"
                    "    gateway: {url: '%s', secret_file: '%s', timeout: 30m%s}\n"
                    "    interval: 24h\n    drift: {interval: 24h}\n"
                    % (self.port, os.path.join(work, "daemon-cache"), repo, gw.url,
                       gw.secret_file, max_list_size(n)))
        self.log = open(os.path.join(work, "daemon.log"), "wb")
        self.proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.port) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        sys.exit("daemon not ready")

    def pass_seconds(self):
        req = urllib.request.Request(
            "http://127.0.0.1:%d/api/v1/syncs/bench/reconcile?wait=true&timeout=30m" % self.port,
            method="POST")
        with urllib.request.urlopen(req, timeout=1900) as r:
            res = json.loads(r.read())
        assert res["outcome"] == "success", res
        return res["duration_seconds"], res

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    work = tempfile.mkdtemp(prefix="tg-bench-")
    redis, upstream = Redis(), Upstream()
    gw_ctl, gw_base = Gateway(redis), Gateway(redis)
    try:
        baseline = build_baseline(work)
        repo = os.path.join(work, "repo")
        os.makedirs(os.path.join(repo, "apis"))
        os.makedirs(os.path.join(repo, "policies"))
        for i in range(n):
            write(os.path.join(repo, "apis", "api-%d.json" % i), api(i, upstream.url))
            write(os.path.join(repo, "policies", "pol-%d.json" % i), pol(i))
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "bench")
        args = ["--config", cli_config(work, repo, gw_ctl, n)]

        rows = []
        # Reload times on the gateway vary from run to run: each figure is
        # the median of REPEAT runs, controller and baseline interleaved.
        firsts = []
        for rep in range(REPEAT):
            if rep:
                gw_ctl.restart_empty()
                gw_base.restart_empty()
            t_ctl, out = timed([BIN, "sync", *args], "first sync")
            assert "%d created" % (2 * n) in out, out
            t_base, _ = timed([baseline, gw_base.url, gw_base.secret_file, "first", repo])
            firsts.append((t_ctl, t_base))
        rows.append(("first sync (%d APIs + %d policies)" % (n, n), *medians(firsts)))

        # The lists of the controller's gateway are longer (every object
        # carries its provenance marker) and that gateway has been written
        # by the controller: the plain loop is also run against it, for the
        # same calls to the same gateway.
        nochange, nochange_same = [], []
        for _ in range(REPEAT):
            t_ctl, out = timed([BIN, "sync", *args], "no-change pass")
            assert "in sync" in out or "0 created, 0 updated, 0 deleted" in out, out
            t_base, _ = timed([baseline, gw_base.url, gw_base.secret_file, "lists"])
            t_same, _ = timed([baseline, gw_ctl.url, gw_ctl.secret_file, "lists"])
            nochange.append((t_ctl, t_base))
            nochange_same.append((t_ctl, t_same))
        rows.append(("no-change pass", *medians(nochange)))
        rows.append(("  same, plain loop on the same gateway", *medians(nochange_same)))

        changes = []
        for rep in range(REPEAT):
            changed = []
            for i in range(5):
                a = api(i, upstream.url)
                a["name"] = "api %d v%d" % (i, rep + 2)
                write(os.path.join(repo, "apis", "api-%d.json" % i), a)
                p = pol(i)
                p["rate"] = 1000 + rep
                write(os.path.join(repo, "policies", "pol-%d.json" % i), p)
                changed += [os.path.join(repo, "apis", "api-%d.json" % i),
                            os.path.join(repo, "policies", "pol-%d.json" % i)]
            git(repo, "commit", "-q", "-am", "change 10")
            t_ctl, out = timed([BIN, "sync", *args], "pass changing 10 objects")
            assert "10 updated" in out, out
            t_base, _ = timed([baseline, gw_base.url, gw_base.secret_file, "change", repo, *changed])
            changes.append((t_ctl, t_base))
        rows.append(("pass changing 10 objects", *medians(changes)))

        # The daemon: a drift pass (nothing changed) and a pass after a
        # commit changing 10 objects, each timed by the controller itself
        # (duration_seconds) next to the plain loop's own timing.
        if os.environ.get("BENCH_DAEMON", "1") == "1":
            daemon = Daemon(work, repo, gw_ctl, n)
            try:
                drift, drift_same = [], []
                for _ in range(REPEAT + 1):  # the first pass after start-up records
                    t_ctl, res = daemon.pass_seconds()
                    assert res["counts"]["unchanged"] == 2 * n, res["counts"]
                    _, out = timed([baseline, gw_base.url, gw_base.secret_file, "lists"])
                    _, same = timed([baseline, gw_ctl.url, gw_ctl.secret_file, "lists"])
                    drift.append((t_ctl, float(out.split()[-1])))
                    drift_same.append((t_ctl, float(same.split()[-1])))
                rows.append(("daemon drift pass (no change)", *medians(drift[1:])))
                rows.append(("  same, plain loop on the same gateway", *medians(drift_same[1:])))
                dchanges = []
                for rep in range(REPEAT):
                    changed = []
                    for i in range(5, 10):
                        a = api(i, upstream.url)
                        a["name"] = "api %d d%d" % (i, rep + 2)
                        write(os.path.join(repo, "apis", "api-%d.json" % i), a)
                        p = pol(i)
                        p["rate"] = 2000 + rep
                        write(os.path.join(repo, "policies", "pol-%d.json" % i), p)
                        changed += [os.path.join(repo, "apis", "api-%d.json" % i),
                                    os.path.join(repo, "policies", "pol-%d.json" % i)]
                    git(repo, "commit", "-q", "-am", "daemon change 10")
                    t_ctl, res = daemon.pass_seconds()
                    assert res["counts"]["updated"] == 10, res["counts"]
                    _, out = timed([baseline, gw_base.url, gw_base.secret_file, "change", repo,
                                    *changed])
                    dchanges.append((t_ctl, float(out.split()[-1])))
                rows.append(("daemon pass changing 10 objects", *medians(dchanges)))
            finally:
                daemon.stop()

        print("%-40s %12s %14s %8s" % ("pass", "tyk-gitops s", "plain loop s", "ratio"))
        for name, a, b in rows:
            print("%-40s %12.3f %14.3f %8.2f" % (name, a, b, a / b if b else float("nan")))
        # The JSON a pass holds: the gateway's three lists and the desired files.
        with open(gw_ctl.secret_file) as f:
            secret = f.read().strip()
        list_bytes = 0
        for path in ("/tyk/apis", "/tyk/apis/oas", "/tyk/policies"):
            req = urllib.request.Request(gw_ctl.url + path,
                                         headers={"x-tyk-authorization": secret})
            with urllib.request.urlopen(req, timeout=600) as r:
                list_bytes += len(r.read())
        desired_bytes = sum(os.path.getsize(os.path.join(repo, d, f))
                            for d in ("apis", "policies") for f in os.listdir(os.path.join(repo, d)))
        held = list_bytes + desired_bytes
        print("JSON held by a pass: %d bytes (gateway lists %d + desired files %d)"
              % (held, list_bytes, desired_bytes))
        for label, kib in PEAK_RSS_KIB.items():
            print("peak RSS of tyk-gitops, %s: %d KiB = %d bytes per object (%d objects) = "
                  "%.2f x the JSON held" % (label, kib, kib * 1024 // (2 * n), 2 * n,
                                            kib * 1024 / held))
        print("(ratio = tyk-gitops / plain loop of the same HTTP calls; the controller also "
              "fetches git, validates, diffs, stamps markers and verifies every write)")
    finally:
        gw_ctl.destroy()
        gw_base.destroy()
        upstream.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
