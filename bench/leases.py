#!/usr/bin/python3
"""Leader election (issue 12) on a real kube-apiserver + etcd: R replicas of
tyk-gitops share N syncs through one Lease per sync.

    /usr/bin/python3 bench/leases.py [N=9] [R=3] [STEADY_SECONDS=30] [ROUNDS=5]

Measures, on the same peers in one run:
  - spread after a join: one replica holding N, then R-1 more start, until
    every replica holds N/R (+-1);
  - spread after a leave: one replica gets SIGTERM (it releases its
    Leases), until the others hold all N;
  - takeover after SIGKILL: from the kill until every sync of the killed
    replica has a new holder; the baseline is the bound lease duration +
    retry period (15 + 2 s), printed as a ratio;
  - webhook push-to-live when the webhook reaches a replica that does not
    hold the sync (handed over) against one sent to the holder;
  - API server requests per second in steady state, counted by the API
    server itself (apiserver_request_total for leases, before and after),
    against the baseline N / retry period (one renewal per sync per 2 s).

Needs the Kubernetes peer (tests/peers/build-kube.sh; cached after the first
build) and the Tyk Gateway peer.
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("TG_BIN", os.path.join(ROOT, "build", "tyk-gitops"))

from bitbucket import cloud_push, deliver  # noqa: E402
from conftest import ConfigRepo, keyless_api  # noqa: E402
from kubepeers import ADMIN_TOKEN, KubeAPI  # noqa: E402
from leasecluster import (FULL, SECRET, Replica, counts, holders, setup_namespace,  # noqa: E402
                          spread_ok, wait_for)
from peers import Gateway, Redis, Upstream  # noqa: E402

LEASE, RETRY = 15.0, 2.0


def lease_requests(kube):
    """Lease requests the API server has served, from its own metrics."""
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=kube.ca)
    req = urllib.request.Request(kube.url + "/metrics",
                                 headers={"Authorization": "Bearer " + ADMIN_TOKEN})
    with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
        text = r.read().decode()
    total = 0.0
    # No namespace label: this counts the API server's own identity Lease
    # too (one renewal per 10 s), a little above what the replicas send.
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{") and 'resource="leases"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def repo_head(repo):
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo.work, stdout=subprocess.PIPE,
                          text=True, check=True).stdout.strip()


def client_requests(rep):
    total = 0.0
    for line in rep.metrics().splitlines():
        if line.startswith("tyk_gitops_kube_requests_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    r = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    steady = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    tmp = tempfile.mkdtemp(prefix="tg-bench-leases-")
    kube = redis = gw = up = repo = None
    replicas = []
    try:
        kube = KubeAPI()
        token = setup_namespace(kube, "tg-bench")
        redis, up = Redis(), Upstream()
        gw = Gateway(redis)
        repo = ConfigRepo()
        for i in range(n):
            repo.write("s%d/apis/a%d.json" % (i, i), keyless_api("a%d" % i, "/s%d/" % i, up.url))
        repo.commit("apis")
        syncs = [{"name": "s%d" % i, "repo": repo.url, "path": "s%d" % i, "gateway": gw.url,
                  "secret_file": gw.secret_file, "interval": "10s"} for i in range(n)]

        secret_file = os.path.join(tmp, "hook-secret")
        with open(secret_file, "w") as f:
            f.write(SECRET + "\n")

        def start(ident):
            rep = Replica(tmp, ident, syncs, kube, token, ns="tg-bench",
                          webhook_secret_file=secret_file)
            replicas.append(rep)
            return rep

        first = start("r0")
        wait_for(lambda: counts([first]).get("r0") == n, 60, "r0 holding all")
        t0 = time.time()
        for k in range(1, r):
            start("r%d" % k)
        wait_for(lambda: spread_ok(replicas, n), 90, "even spread", step=0.05)
        join = time.time() - t0
        print("spread after join:   1 -> %d replicas, %s in %.1f s" % (r, counts(replicas), join))

        # Steady state: only renewals (and one list per replica per retry).
        time.sleep(2 * RETRY)
        before, t0 = lease_requests(kube), time.time()
        sent0 = sum(client_requests(x) for x in replicas)
        time.sleep(steady)
        rate = (lease_requests(kube) - before) / (time.time() - t0)
        sent = (sum(client_requests(x) for x in replicas) - sent0) / (time.time() - t0)
        base = n / RETRY
        print("steady state:        %.2f lease requests/s to the API server; baseline N/retry "
              "= %.2f/s; ratio %.2f (the extra is one LIST per replica per retry: %.2f/s)"
              % (rate, base, rate / base, r / RETRY))
        print("                     (the replicas count %.2f/s sent: tyk_gitops_kube_requests_total)"
              % sent)

        # Push-to-live of one sync's change announced by a webhook, sent to
        # the holder (baseline) or to a replica that hands it over.
        def api_name(i):
            code, obj = gw.api("GET", "/tyk/apis/a%d" % i)
            return obj.get("name") if code == 200 else None

        direct, handed = [], []
        for k in range(rounds):
            i = k % n
            holder = [x for x in replicas if "s%d" % i in (x.held() or [])][0]
            other = [x for x in replicas if x is not holder][0]
            for to, out in ((holder, direct), (other, handed)):
                before = repo_head(repo)
                repo.write("s%d/apis/a%d.json" % (i, i),
                           keyless_api("a%d" % i, "/s%d/" % i, up.url, name="v%d-%s" % (k, to.identity)))
                sha = repo.commit("round %d" % k)
                t0 = time.monotonic()
                code, body, _ = deliver(to.base, cloud_push(FULL, "{0c3b6e55-3c5d-4c4e-9f3a-6a0d1e2f3a4b}",
                                                            [("branch", "main", sha, before)]), SECRET)
                assert code == 202, body
                want = "v%d-%s" % (k, to.identity)
                wait_for(lambda: api_name(i) == want, 30, "live", step=0.01)
                out.append(time.monotonic() - t0)
                time.sleep(0.5)
        print("webhook push-to-live: to the holder median %.0f ms, to another replica (handed "
              "over) median %.0f ms; ratio %.2f (target 1.5 s)"
              % (statistics.median(direct) * 1000, statistics.median(handed) * 1000,
                 statistics.median(handed) / statistics.median(direct)))

        leaver = replicas[-1]
        t0 = time.time()
        leaver.stop()
        wait_for(lambda: spread_ok(replicas, n), 60, "spread after leave", step=0.05)
        leave = time.time() - t0
        print("spread after leave:  SIGTERM one of %d, %s in %.1f s (ratio to lease+retry %.2f)"
              % (r, counts(replicas), leave, leave / (LEASE + RETRY)))

        victim = [x for x in replicas if x.alive()][0]
        lost = victim.held()
        victim.kill()
        t0 = time.time()
        live = [x for x in replicas if x.alive()]

        def taken():
            h = holders(live)
            return all(len(h.get(s, [])) == 1 for s in lost)
        wait_for(taken, 60, "takeover", step=0.05)
        takeover = time.time() - t0
        print("takeover (SIGKILL):  %d syncs in %.1f s; baseline lease+retry %.0f s; ratio %.2f"
              % (len(lost), takeover, LEASE + RETRY, takeover / (LEASE + RETRY)))
    finally:
        for x in replicas:
            if x.alive():
                x.proc.send_signal(signal.SIGTERM)
                x.proc.wait()
        for p in (gw, up, redis, kube):
            if p:
                p.stop() if not hasattr(p, "destroy") else p.destroy()
        if repo:
            repo.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
