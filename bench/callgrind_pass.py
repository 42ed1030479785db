"""Instruction counts (valgrind --tool=callgrind) of a no-change pass against
a real Tyk Gateway: the figure that stays put on a busy machine where
seconds do not.

    /usr/bin/python3 bench/callgrind_pass.py [N] [BIN...]

N APIs + N policies (default 1000) are synced once with the first BIN
(default build/tyk-gitops); then, for every BIN, two warm-up passes and one
`sync` and one `diff` under callgrind, both finding nothing to change.
Prints the total instructions (Ir) of each, and keeps the callgrind files
in CALLGRIND_OUT (default: a temporary directory that is removed) for
callgrind_annotate.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peers import Gateway, Redis, Upstream  # noqa: E402
from reconcile import api, git, pol, write  # noqa: E402


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
    finally:
        gw.destroy()
        upstream.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
