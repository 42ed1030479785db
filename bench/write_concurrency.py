"""Write throughput of a first sync against a real Tyk Gateway with the
gateway's writes at a fixed concurrency of 1, 4 and 16, and with the
adaptive window (bounded by 16); then the same through a limiter that
answers 503 once more than K requests are in flight (a gateway or ingress
that sheds load), where a fixed concurrency above K keeps hitting it.

    /usr/bin/python3 bench/write_concurrency.py [N] [K]   (N APIs, default 2000; K default 4)

Prints, for each mode, the API writes per second of the write phase (the
controller's own figure, from its debug log), the pass's outcome and, behind
the limiter, how many requests it refused.  Medians of BENCH_REPEAT (3) runs.
"""
import http.client
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peers import Gateway, Redis, Upstream, free_port  # noqa: E402
from reconcile import api, git, write  # noqa: E402

BIN = os.environ.get("TG_BIN") or os.path.join(ROOT, "build", "tyk-gitops")
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
MODES = [("fixed 1", 1, False), ("fixed 4", 4, False), ("fixed 16", 16, False),
         ("adaptive (at most 16)", 16, True)]


class Limiter:
    """Forwards to the gateway; past `limit` requests in flight it answers
    503 at once, as a server shedding load does."""

    def __init__(self, target_port, limit):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.lock = threading.Lock()
        self.in_flight = 0
        self.refused = 0
        limiter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with limiter.lock:
                    over = limiter.in_flight >= limit
                    if over:
                        limiter.refused += 1
                    else:
                        limiter.in_flight += 1
                if over:
                    data = b'{"status":"error","message":"too many requests in flight"}'
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", target_port, timeout=120)
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    conn.close()
                finally:
                    with limiter.lock:
                        limiter.in_flight -= 1
                self.send_response(resp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def config(work, repo, url, secret_file, concurrency, adaptive):
    path = os.path.join(work, "conf-%d-%d.yaml" % (concurrency, adaptive))
    with open(path, "w") as f:
        f.write("cache_dir: %s\nlog: {format: json, level: debug}\n"
                "syncs:\n  - name: bench\n    repo: {url: 'file://%s', ref: {branch: main}}\n"
                "    gateway: {url: '%s', secret_file: '%s', timeout: 5m, concurrency: %d,"
                " adaptive: %s}\n"
                % (os.path.join(work, "cache"), repo, url, secret_file, concurrency,
                   "true" if adaptive else "false"))
    return path


def first_sync(conf):
    """(API writes per second, outcome line, window at the end)."""
    p = subprocess.run([BIN, "sync", "--config", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    rate, window = None, None
    for line in p.stderr.splitlines():
        try:
            msg = json.loads(line).get("msg", "")
        except ValueError:
            continue
        m = re.search(r"(\d+) writes in (\d+) ms, (\d+) in flight", msg)
        if m and rate is None:  # the first write phase: the APIs
            rate = int(m.group(1)) * 1000.0 / max(int(m.group(2)), 1)
            window = int(m.group(3))
    last = (p.stdout.strip().splitlines() or [""])[-1]
    return rate, last, window, p.returncode


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    work = tempfile.mkdtemp(prefix="tg-bench-writes-")
    redis, upstream = Redis(), Upstream()
    gw = Gateway(redis)
    limiter = Limiter(gw.port, limit)
    try:
        repo = os.path.join(work, "repo")
        os.makedirs(os.path.join(repo, "apis"))
        for i in range(n):
            write(os.path.join(repo, "apis", "api-%d.json" % i), api(i, upstream.url))
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "bench")
        print("%d APIs, %d-core machine; writes/s of the write phase, medians of %d"
              % (n, os.cpu_count(), REPEAT))
        print("%-24s %-10s %12s %10s %9s  %s" % ("mode", "through", "writes/s", "window",
                                                "refused", "outcome"))
        for through, url in (("gateway", gw.url), ("limiter", limiter.url)):
            for name, conc, adaptive in MODES:
                conf = config(work, repo, url, gw.secret_file, conc, adaptive)
                runs = []
                for _ in range(REPEAT):
                    gw.restart_empty()
                    refused0 = limiter.refused
                    rate, last, window, rc = first_sync(conf)
                    runs.append((rate or 0.0, window, limiter.refused - refused0, last, rc))
                rate = median([r[0] for r in runs])
                run = [r for r in runs if r[0] == rate][0]
                print("%-24s %-10s %12.0f %10s %9d  %s%s"
                      % (name, through, rate, run[1], run[2], run[3],
                         "" if run[4] == 0 else " (exit %d)" % run[4]), flush=True)
    finally:
        limiter.stop()
        gw.destroy()
        upstream.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
