"""Leader election against a real kube-apiserver + etcd, a real Tyk Gateway
and git: three controller processes share nine syncs through one Lease per
sync (issue 12).

Run by `make test-deploy`, which builds the Kubernetes peer
(tests/peers/build-kube.sh, ~15 min cold, cached); skipped in `make test`.
"""
import json
import os
import signal
import time

import pytest

from bitbucket import cloud_push, deliver
from conftest import keyless_api
from faultproxy import FaultProxy
from kubepeers import KubeAPI
from leasecluster import (FULL, NS, SECRET, Replica, counts, gateway_writes, holders,
                          lease_objects, setup_namespace, spread_ok, wait_for)

pytestmark = pytest.mark.skipif(not os.environ.get("TG_DEPLOY"),
                                reason="needs the kube-apiserver peer: run `make test-deploy`")

N = 9
LEASE, RETRY, RENEW = 15.0, 2.0, 10.0


@pytest.fixture(scope="module")
def kube():
    k = KubeAPI()
    yield k
    k.stop()


@pytest.fixture
def cluster(kube, gateway, repo, upstream, tmp_path):
    """Nine syncs (one path each of one repository) on one gateway behind a
    recording proxy; replicas are started by the test."""
    ns = "%s-%d" % (NS, int(time.time() * 1000) % 100000)
    token_file = setup_namespace(kube, ns)
    proxy = FaultProxy(gateway.port)
    for i in range(N):
        repo.write("s%d/apis/a%d.json" % (i, i),
                   keyless_api("a%d" % i, "/s%d/" % i, upstream.url, name="a%d v1" % i))
    first = repo.commit("nine apis")
    secret_file = os.path.join(str(tmp_path), "hook-secret")
    with open(secret_file, "w") as f:
        f.write(SECRET + "\n")
    syncs = [{"name": "s%d" % i, "repo": repo.url, "path": "s%d" % i, "gateway": proxy.url,
              "secret_file": gateway.secret_file} for i in range(N)]
    replicas = []

    class C:
        pass
    c = C()
    c.kube, c.ns, c.proxy, c.gateway, c.repo, c.first = kube, ns, proxy, gateway, repo, first
    c.replicas = replicas

    def start(identity):
        r = Replica(str(tmp_path), identity, syncs, kube, token_file, ns=ns,
                    webhook_secret_file=secret_file)
        replicas.append(r)
        return r
    c.start = start
    yield c
    for r in replicas:
        r.stop()
    proxy.stop()


def api_name(gateway, i):
    code, obj = gateway.api("GET", "/tyk/apis/a%d" % i)
    return obj.get("name") if code == 200 else None


def all_live(gateway, version):
    return all(api_name(gateway, i) == "a%d %s" % (i, version) for i in range(N))


def intents(replicas, commit, detail=False):
    """(sync, kind, id) of every write intent for commit, over all audit trails."""
    out, seen = [], set()
    for r in replicas:
        if r.audit_path in seen:  # a restarted replica keeps its trail
            continue
        seen.add(r.audit_path)
        for rec in r.audit():
            if rec.get("phase") == "intent" and rec.get("commit") == commit:
                out.append((rec["sync"], rec["kind"], rec["id"]) +
                           ((r.identity, rec.get("trigger"), rec.get("ts")) if detail else ()))
    return out


def bump(repo, upstream, version, only=range(N)):
    for i in only:
        repo.write("s%d/apis/a%d.json" % (i, i),
                   keyless_api("a%d" % i, "/s%d/" % i, upstream.url,
                               name="a%d %s" % (i, version)))
    return repo.commit(version)


def test_leases__spread_join_leave_failover_and_api_outage(cluster, upstream, capsys):
    c = cluster
    report = []

    # One replica alone takes every sync and applies them.
    a = c.start("a")
    wait_for(lambda: counts([a]).get("a") == N, 30, "replica a holding all nine")
    wait_for(lambda: all_live(c.gateway, "v1"), 30, "v1 live")
    wait_for(lambda: a.get("/readyz")[0] == 200, 10, "a ready")
    leases = lease_objects(c.kube, c.ns)
    for i in range(N):
        spec = leases["tyk-gitops-s%d" % i]["spec"]
        assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15
        assert spec["acquireTime"] and spec["renewTime"]
        ann = leases["tyk-gitops-s%d" % i]["metadata"]["annotations"]
        assert ann["tyk-gitops.io/sync"] == "s%d" % i
        assert ann["tyk-gitops.io/holder-address"] == a.base

    # Two more join: each ends with three (the joiners announce themselves
    # with a member Lease; a gives back its surplus).
    t0 = time.time()
    b, cc = c.start("b"), c.start("c")
    # Standbys are ready at once (the probe must not restart them).
    wait_for(lambda: b.get("/readyz")[0] == 200 and cc.get("/readyz")[0] == 200, 10, "readyz")
    wait_for(lambda: spread_ok(c.replicas, N) and set(counts(c.replicas).values()) == {3}, 40,
             "3/3/3")
    report.append("join: 9/0/0 -> 3/3/3 in %.1f s" % (time.time() - t0))
    # Every replica's view names the holders (within one retry period).
    wait_for(lambda: all(v["leader"]["holder"] for r in c.replicas
                         for v in r.syncs().values()), 5, "holders in every view")
    st = a.syncs()
    for name, s in st.items():
        lead = s["leader"]
        assert lead["holder"] in ("a", "b", "c") and lead["lease"] == "tyk-gitops-" + name
        assert lead["this_replica"] == (lead["holder"] == "a")
    m = sum(float(line.split()[-1]) for r in c.replicas for line in r.metrics().splitlines()
            if line.startswith("tyk_gitops_leader{"))
    assert m == N, "tyk_gitops_leader sums to the syncs"

    # A reconcile request reaching a standby is handed to the holder.
    target = (b.held() or [None])[0]
    code, body = c.replicas[0].get("/api/v1/syncs/%s" % target)
    t_req = time.time()
    code, body = __import__("leasecluster").http(
        "POST", a.base + "/api/v1/syncs/%s/reconcile?wait=true&timeout=20s" % target)
    assert code == 200, body
    assert json.loads(body)["sync"] == target
    report.append("reconcile via a non-holder: %.0f ms" % ((time.time() - t_req) * 1000))

    # A webhook reaching a standby goes to the holders and the push goes
    # live within the webhook latency target.
    # v2 changes one sync, held by another replica than the one the
    # webhook reaches.
    changed = int(target[1:])
    sha = bump(c.repo, upstream, "v2", only=[changed])
    t_push = time.time()
    code, body, took = deliver(a.base, cloud_push(FULL, "{0c3b6e55-3c5d-4c4e-9f3a-6a0d1e2f3a4b}",
                                                  [("branch", "main", sha, c.first)]), SECRET)
    assert code == 202, body
    assert sorted(body["triggered"]) == ["s%d" % i for i in range(N)]
    wait_for(lambda: api_name(c.gateway, changed) == "a%d v2" % changed, 10, "v2 live",
             step=0.02)
    push_to_live = time.time() - t_push
    report.append("webhook on a non-holder: accepted in %.0f ms, push-to-live %.0f ms"
                  % (took * 1000, push_to_live * 1000))
    # The target is 1.5 s (bench/leases.py measures the median against a
    # delivery to the holder itself); here, on a shared CI machine, one
    # sample only proves the hop adds no lease-sized wait.
    assert push_to_live < 3.0, "push-to-live %.2f s" % push_to_live
    assert intents(c.replicas, sha) == [(target, "api", "a%d" % changed)]

    # SIGTERM: the leaving replica releases its Leases; the others take them
    # at once (not after the lease duration).
    t0 = time.time()
    assert cc.stop() == 0
    wait_for(lambda: spread_ok(c.replicas, N), 10, "a and b holding all nine")
    leave = time.time() - t0
    report.append("leave (SIGTERM): 3/3/3 -> %s in %.1f s" % (counts(c.replicas), leave))
    assert leave < LEASE, "released Leases are taken before they would expire"
    assert "lease released: shutting down" in cc.logs()
    cc = c.start("c")
    wait_for(lambda: spread_ok(c.replicas, N) and set(counts(c.replicas).values()) == {3}, 40,
             "3/3/3 again")

    # SIGKILL the holder of three syncs and push a commit at once: the
    # others take over within lease + retry (measured from the last renewal
    # the dead one could have made), start with a drift pass, and the commit
    # goes live exactly once.
    victim = b
    lost = victim.held()
    assert len(lost) == 3
    victim.kill()
    t_kill = time.time()
    sha3 = bump(c.repo, upstream, "v3")
    survivors = [a, cc]

    def taken():
        h = holders(survivors)
        return all(len(h.get(n, [])) == 1 for n in lost)
    wait_for(taken, LEASE + 2 * RETRY + 5, "the dead replica's syncs taken over", step=0.05)
    takeover = time.time() - t_kill
    report.append("failover (SIGKILL): %s taken over in %.1f s (lease %.0f s + retry %.0f s)"
                  % (",".join(lost), takeover, LEASE, RETRY))
    assert takeover <= LEASE + 2 * RETRY + 1.0
    wait_for(lambda: all_live(c.gateway, "v3"), 30, "v3 live")
    assert sorted(intents(c.replicas, sha3)) == sorted(("s%d" % i, "api", "a%d" % i)
                                                       for i in range(N)), \
        "every object of the commit written exactly once: %r" % intents(c.replicas, sha3, True)
    # The new holders started with a drift pass, which applied the commit.
    for sync, _, _, who, trigger, _ in intents(c.replicas, sha3, True):
        if sync in lost:
            assert trigger == "drift" and who != victim.identity, (sync, who, trigger)
    wait_for(lambda: a.get("/readyz")[0] == 200 and cc.get("/readyz")[0] == 200, 10, "ready")
    wait_for(lambda: spread_ok(survivors, N), 20, "4/5 over the survivors")

    # The API server stops answering for longer than the lease: nobody
    # writes to the gateway once the renew deadline has passed, though git
    # moved and the gateway drifted.
    api = c.kube.procs[-1]
    os.kill(api.pid, signal.SIGSTOP)
    t_stop = time.time()
    try:
        time.sleep(RENEW + 1.0)
        mark = len(c.proxy.seen)
        sha4 = bump(c.repo, upstream, "v4")
        assert c.gateway.api("DELETE", "/tyk/apis/a0")[0] == 200
        c.gateway.reload()
        time.sleep(LEASE + 5.0 - (time.time() - t_stop))
        silent = gateway_writes(c.proxy, mark)
        assert not silent, "writes while no replica held a valid Lease: %r" % silent
        for r in survivors:
            assert r.held() == [], "%s still says it holds %r" % (r.identity, r.held())
    finally:
        os.kill(api.pid, signal.SIGCONT)
    t_cont = time.time()
    outage = t_cont - t_stop
    wait_for(lambda: spread_ok(survivors, N), 40, "Leases held again after the outage")
    wait_for(lambda: all_live(c.gateway, "v4"), 30, "v4 live and a0 restored")
    report.append("API server stopped %.0f s: no gateway write after the renew deadline; "
                  "converged %.1f s after it came back" % (outage, time.time() - t_cont))
    assert sorted(intents(c.replicas, sha4)) == sorted(
        set(intents(c.replicas, sha4))), "no object of v4 written twice"
    assert {(s, i) for s, _, i in intents(c.replicas, sha4)} == {("s%d" % i, "a%d" % i)
                                                                for i in range(N)}
    # Lease transitions are counted, and each Lease records its changes.
    leases = lease_objects(c.kube, c.ns)
    # The dead replica's: a -> (released) -> b at the join, b -> another at
    # the failover.  A holder renewing, or taking back its own, adds none.
    for name in lost:
        assert leases["tyk-gitops-" + name]["spec"]["leaseTransitions"] >= 2, leases
    m = a.metrics() + cc.metrics()
    assert 'tyk_gitops_lease_transitions_total{sync="s0",event="acquired"}' in m
    with capsys.disabled():
        print("\n  " + "\n  ".join(report))


def test_leases__sighup_adds_and_removes_syncs_and_their_leases(kube, gateway, repo, upstream,
                                                               tmp_path):
    """A reload that adds a sync makes its Lease (held, applied); one that
    removes a sync gives its Lease back."""
    ns = "%s-hup-%d" % (NS, int(time.time() * 1000) % 100000)
    token_file = setup_namespace(kube, ns)
    for i in range(2):
        repo.write("s%d/apis/a%d.json" % (i, i),
                   keyless_api("a%d" % i, "/s%d/" % i, upstream.url, name="a%d v1" % i))
    repo.commit("two")
    syncs = [{"name": "s%d" % i, "repo": repo.url, "path": "s%d" % i, "gateway": gateway.url,
              "secret_file": gateway.secret_file} for i in range(2)]
    r = Replica(str(tmp_path), "solo", syncs[:1], kube, token_file, ns=ns)
    try:
        wait_for(lambda: r.held() == ["s0"], 20, "s0 held")
        r.write_config(syncs[1:])
        r.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: r.held() == ["s1"], 20, "s1 held after the reload")
        wait_for(lambda: api_name(gateway, 1) == "a1 v1", 20, "s1 applied")
        leases = wait_for(lambda: (lambda ls: ls if not ls["tyk-gitops-s0"]["spec"].get(
            "holderIdentity") else None)(lease_objects(kube, ns)), 10, "s0 released")
        assert leases["tyk-gitops-s1"]["spec"]["holderIdentity"] == "solo"
        assert 'tyk_gitops_leader{sync="s1"} 1' in r.metrics()
        assert 'sync="s0"' not in r.metrics()
    finally:
        assert r.stop() == 0
