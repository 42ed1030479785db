#!/usr/bin/python3
"""Daemon idle cost (SPEC 10, "Idle between polls").

Three syncs against one real Tyk Gateway and three git repositories (20 APIs
each).  Measures
  1. the daemon's CPU time (utime + stime from /proc/PID/stat) over an idle
     window at the default-ish interval (10 s polls, 5 m drift): only the
     cheap remote checks run;
  2. RSS after the first cycle vs after 100 more full cycles (interval
     100 ms, drift 100 ms, so every cycle is a full pass against the
     gateway): memory must not grow with the number of cycles.
Usage: python3 bench/idle.py [idle_seconds=60] [cycles=100]
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from conftest import BIN, ConfigRepo, keyless_api  # noqa: E402
from peers import Gateway, Redis, Upstream, free_port, wait_port  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_kib(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * PAGE // 1024


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def total_passes(base):
    n = 0
    for line in get(base + "/metrics").splitlines():
        if line.startswith("tyk_gitops_reconcile_total{"):
            n += float(line.rsplit(" ", 1)[1])
    return n


def start(tmp, repos, gateway, interval, drift):
    port = free_port()
    cfg = os.path.join(tmp, "cfg-%s.yaml" % interval)
    lines = ["listen: 127.0.0.1:%d" % port, "cache_dir: %s" % os.path.join(tmp, "cache"),
             "log: {level: warn}", "syncs:"]
    for i, r in enumerate(repos):
        lines += ["  - name: s%d" % i,
                  "    repo: {url: '%s', ref: {branch: main}}" % r.url,
                  "    gateway: {url: '%s', secret_file: '%s'}" % (gateway.url,
                                                                   gateway.secret_file),
                  "    interval: %s" % interval,
                  "    drift: {interval: %s}" % drift]
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    log = open(os.path.join(tmp, "daemon-%s.log" % interval), "wb")
    p = subprocess.Popen([BIN, "run", "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, proc=p)
    base = "http://127.0.0.1:%d" % port
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if get(base + "/readyz").startswith("ready"):
                break
        except OSError:
            pass
        time.sleep(0.1)
    return p, base


def stop(p):
    p.send_signal(signal.SIGTERM)
    return p.wait(30)


def main():
    idle = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    cycles = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    tmp = tempfile.mkdtemp(prefix="tg-bench-idle-")
    redis = Redis()
    upstream = Upstream()
    gateway = Gateway(redis)
    repos = []
    try:
        for s in range(3):
            r = ConfigRepo()
            for i in range(20):
                r.write("apis/a%d.json" % i,
                        keyless_api("s%d-a%d" % (s, i), "/s%d/a%d/" % (s, i), upstream.url))
            r.commit("twenty apis")
            repos.append(r)

        print("== idle: 3 syncs, interval 10s, drift 5m, %d s window" % idle)
        p, base = start(tmp, repos, gateway, "10s", "5m")
        time.sleep(1)
        c0, t0, n0 = cpu_seconds(p.pid), time.time(), total_passes(base)
        time.sleep(idle)
        c1, t1, n1 = cpu_seconds(p.pid), time.time(), total_passes(base)
        print("cpu %.3f s over %.0f s wall = %.4f%% of one core; %d full passes in the window; "
              "rss %d KiB" % (c1 - c0, t1 - t0, 100 * (c1 - c0) / (t1 - t0), n1 - n0,
                              rss_kib(p.pid)))
        print("exit code on SIGTERM: %d" % stop(p))

        print("== memory: 3 syncs, interval 100ms, drift 100ms (every cycle a full pass)")
        p, base = start(tmp, repos, gateway, "100ms", "100ms")
        first = total_passes(base)
        rss1 = rss_kib(p.pid)
        target = first + 3 * cycles
        while total_passes(base) < target:
            time.sleep(0.2)
        rss100 = rss_kib(p.pid)
        print("rss after first cycle %d KiB, after %d more cycles per sync %d KiB "
              "(ratio %.2f, +%d KiB)" % (rss1, cycles, rss100, rss100 / rss1, rss100 - rss1))
        print("exit code on SIGTERM: %d" % stop(p))
        print(json.dumps({"idle_cpu_seconds": round(c1 - c0, 3), "idle_window_s": idle,
                          "rss_kib_first": rss1, "rss_kib_after": rss100, "cycles": cycles}))
    finally:
        gateway.destroy()
        upstream.stop()
        redis.stop()
        for r in repos:
            r.cleanup()


if __name__ == "__main__":
    main()
