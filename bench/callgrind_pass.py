"""Instruction counts (valgrind --tool=callgrind) of a no-change pass against
a real Tyk Gateway: the figure that stays put on a busy machine where
seconds do not.

    /usr/bin/python3 bench/callgrind_pass.py [N] [BIN...]

N APIs + N policies (default 1000) are synced once with the first BIN
(default build/tyk-gitops); then, for every BIN, two warm-up passes and one
`sync` and one `diff` under callgrind, both finding nothing to change, and
the daemon (`run`) under callgrind collecting only inside passes
(tg_syncer_run): after its start-up pass, DAEMON_PASSES (3) drift passes
triggered over HTTP, counted per pass.  The plain loop of the three list
calls (bench/plain_loop.c) is counted too.  Prints the total instructions
(Ir) of each, and keeps the callgrind files in CALLGRIND_OUT (default: a
temporary directory that is removed) for callgrind_annotate.  Note that
valgrind hides the CPU's SHA extensions: OpenSSL's SHA-256 runs its
software path under it (about 30 instructions a byte instead of a few).
"""
import os
import glob
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peers import Gateway, Redis, Upstream  # noqa: E402
from reconcile import api, build_baseline, free_port, git, pol, write  # noqa: E402

DAEMON_PASSES = int(os.environ.get("DAEMON_PASSES", "3"))


def daemon_pass_ir(binary, work, repo, gw, out):
    """Instructions per drift pass of `tyk-gitops run`, collected only
    inside tg_syncer_run, after the start-up pass."""
    port = free_port()
    conf = os.path.join(work, "daemon.yaml")
    with open(conf, "w") as f:
        f.write("listen: 127.0.0.1:%d\ncache_dir: %s\nlog: {format: json, level: warn}\n"
                "syncs:\n  - name: bench\n    repo: {url: 'file://%s', ref: {branch: main}}\n"
                "    gateway: {url: '%s', secret_file: '%s', timeout: 5m}\n"
                "    interval: 24h\n    drift: {interval: 24h}\n"
                % (port, os.path.join(work, "daemon-cache"), repo, gw.url, gw.secret_file))
    log = open(os.path.join(work, "daemon-vg.log"), "wb")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--toggle-collect=tg_syncer_run",
                             "--callgrind-out-file=" + out, binary, "run", "--config", conf],
                            stdout=log, stderr=subprocess.STDOUT)
    base = "http://127.0.0.1:%d" % port
    try:
        deadline = time.monotonic() + 1800
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz") as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("daemon not ready under valgrind")
            time.sleep(1)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(DAEMON_PASSES):
            req = urllib.request.Request(base + "/api/v1/syncs/bench/reconcile?wait=true&timeout=30m",
                                         method="POST")
            with urllib.request.urlopen(req, timeout=1900) as r:
                r.read()
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        proc.terminate()
        proc.wait(120)
        log.close()
    total = 0
    for dump in glob.glob(out + "*"):
        if dump.endswith(".1") or dump.split(".")[-1].isdigit() and dump != out:
            with open(dump) as f:
                for line in f:
                    if line.startswith("summary:") or line.startswith("totals:"):
                        total = max(total, int(line.split()[1]))
    return total // DAEMON_PASSES


def run(args):
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode not in (0, 2):
        sys.exit("command failed: %s\n%s" % (" ".join(args[:2]), proc.stderr[-2000:]))
    return proc.stdout


def callgrind(binary, args, out):
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                           binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    if proc.returncode not in (0, 2):
        sys.exit("callgrind run failed:\n%s" % proc.stderr[-2000:])
    m = re.search(r"Collected : (\d+)", proc.stderr)
    return int(m.group(1)) if m else -1


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    bins = sys.argv[2:] or [os.path.join(ROOT, "build", "tyk-gitops")]
    work = tempfile.mkdtemp(prefix="tg-callgrind-")
    keep = os.environ.get("CALLGRIND_OUT")
    outdir = keep or work
    os.makedirs(outdir, exist_ok=True)
    redis, upstream = Redis(), Upstream()
    gw = Gateway(redis)
    try:
        repo = os.path.join(work, "repo")
        os.makedirs(os.path.join(repo, "apis"))
        os.makedirs(os.path.join(repo, "policies"))
        for i in range(n):
            write(os.path.join(repo, "apis", "api-%d.json" % i), api(i, upstream.url))
            write(os.path.join(repo, "policies", "pol-%d.json" % i), pol(i))
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "bench")
        args = ["--name", "bench", "--repo", "file://" + repo, "--branch", "main",
                "--gateway", gw.url, "--secret-file", gw.secret_file,
                "--log-level", "warn"]
        first = True
        print("%-40s %8s %16s" % ("binary", "command", "instructions"))
        for b, binary in enumerate(bins):
            cargs = args + ["--cache-dir", os.path.join(work, "cache-%d" % b)]
            out = run([binary, "sync", *cargs])
            if first:
                assert "%d created" % (2 * n) in out, out
                first = False
            run([binary, "sync", *cargs])
            for cmd in ("sync", "diff"):
                ir = callgrind(binary, [cmd, *cargs],
                               os.path.join(outdir, "callgrind.%d.%s" % (b, cmd)))
                print("%-40s %8s %16d" % (binary[-40:], cmd, ir))
            ir = daemon_pass_ir(binary, work, repo, gw, os.path.join(outdir, "callgrind.%d.run" % b))
            print("%-40s %8s %16d   (per drift pass)" % (binary[-40:], "run", ir))
            shutil.rmtree(os.path.join(work, "daemon-cache"), ignore_errors=True)
        baseline = build_baseline(work)
        ir = callgrind(baseline, [gw.url, gw.secret_file, "lists"],
                       os.path.join(outdir, "callgrind.plain"))
        print("%-40s %8s %16d" % ("plain loop (bench/plain_loop.c)", "lists", ir))
    finally:
        gw.destroy()
        upstream.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
