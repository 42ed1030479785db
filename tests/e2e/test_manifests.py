"""The Kubernetes manifests (manifests/) against a real kube-apiserver + etcd,
and the image run with what a pod of them would get.

Run by `make test-deploy`; skipped in `make test`.  The API server really
stores and admits the objects (schema validation, RBAC, Pod Security
admission at "restricted", the TokenRequest API); nothing schedules pods, so
the pod itself runs as a Docker container with the pod's security settings,
mounts, environment and limits read from the rendered Deployment.
"""
import copy
import json
import os
import re
import subprocess
import sys
import time

import pytest

yaml = pytest.importorskip("yaml")

sys.path.insert(0, os.path.dirname(__file__))
from conftest import keyless_api, policy  # noqa: E402
from containers import IMAGE, UID, Container, secret_dir  # noqa: E402
from gitpeers import Apache, RepoFactory, TOKEN, git_root  # noqa: E402,F401  (fixture)
from kubepeers import KubeAPI  # noqa: E402
from peers import ROOT, free_port  # noqa: E402
from test_image import get, wait_for  # noqa: E402

pytestmark = pytest.mark.skipif(not os.environ.get("TG_DEPLOY"),
                                reason="deploy tests: run `make test-deploy`")

MANIFESTS = os.path.join(ROOT, "manifests")
NS = "tyk-gitops"
SA = "system:serviceaccount:%s:tyk-gitops" % NS
# The Prometheus Operator's own CRDs, from its Go module (pinned).
PROM_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def kube():
    k = KubeAPI()
    yield k
    k.stop()


def render(kube, path):
    out = kube.kubectl("kustomize", os.path.join(MANIFESTS, path)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def one(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, "%d %s objects" % (len(found), kind)
    return found[0]


def no_warnings(p):
    assert "Warning" not in p.stderr, p.stderr


@pytest.fixture(scope="module")
def namespace(kube):
    """The namespace as the production example makes it: Pod Security
    "restricted" enforced."""
    no_warnings(kube.kubectl("apply", "-f", os.path.join(MANIFESTS, "examples/production",
                                                        "namespace.yaml")))
    return NS


@pytest.fixture(scope="module")
def applied_base(kube, namespace):
    """The base really applied (stored; nothing runs it)."""
    no_warnings(kube.kubectl("apply", "-k", MANIFESTS))
    return render(kube, "base")


def config_agrees_with_pod(docs):
    """The config file the ConfigMap carries points only at paths the pod
    mounts (Secrets for secrets, emptyDirs for what is written), and its ports
    are the ones the probes, the Service and the NetworkPolicy use."""
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: vols[m["name"]] for m in c["volumeMounts"]}
    cm = one(docs, "ConfigMap")
    assert mounts["/etc/tyk-gitops"]["configMap"]["name"] == cm["metadata"]["name"]
    assert c["args"][c["args"].index("--config") + 1] == "/etc/tyk-gitops/config.yaml"
    cfg = yaml.safe_load(cm["data"]["config.yaml"])
    # The address handed to the other replicas is the API port's.
    if cfg.get("leader_election", {}).get("enabled"):
        assert c["args"][c["args"].index("--advertise-url") + 1] == "http://$(POD_IP):%d" % (
            {p["name"]: p["containerPort"] for p in c["ports"]}["http"])

    def volume_of(path):
        best = max((m for m in mounts if path.startswith(m.rstrip("/") + "/")), key=len)
        return mounts[best]

    assert "emptyDir" in volume_of(cfg["cache_dir"] + "/x")
    assert "emptyDir" in volume_of(cfg["audit"])
    assert "emptyDir" in mounts["/tmp"]
    def secret_of(path):
        return volume_of(path)["secret"]["secretName"]

    for s in cfg["syncs"]:
        assert secret_of(s["gateway"]["secret_file"]) == "tyk-gitops-gateway"
        assert secret_of(s["repo"]["auth"]["token_file"]) == "tyk-gitops-git"
        if "webhook" in s:
            assert secret_of(s["webhook"]["secret_file"]) == "tyk-gitops-webhook"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert cfg["listen"] == ":%d" % ports["http"]
    assert cfg["probe_listen"] == ":%d" % ports["metrics"]
    assert cfg["webhook_listen"] == ":%d" % ports["webhooks"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    svc = one(docs, "Service")
    assert {p["name"]: p["targetPort"] for p in svc["spec"]["ports"]} == {
        "http": "http", "metrics": "metrics", "webhooks": "webhooks"}
    ingress = one(docs, "NetworkPolicy")["spec"]["ingress"]
    assert sorted(p["port"] for rule in ingress for p in rule["ports"]) == sorted(ports)


# ---- rendering: what the objects say, checked against the config ---------------

def test_kustomize__base_objects_pod_hardening_and_config_agree(kube):
    docs = render(kube, "")
    assert sorted(d["kind"] for d in docs) == sorted([
        "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "Service",
        "PodDisruptionBudget", "NetworkPolicy"])
    assert all(d["metadata"]["namespace"] == NS for d in docs)
    dep = one(docs, "Deployment")
    spec = dep["spec"]
    # Leader election: two replicas, one Lease per sync; a rolling update
    # never takes both down, the PDB keeps one through a drain, and the
    # scheduler is asked to put them on different nodes.
    assert spec["replicas"] == 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    (term,) = pod["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert (term["podAffinityTerm"]["labelSelector"]["matchLabels"].items()
            <= spec["template"]["metadata"]["labels"].items())
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 1 and "maxUnavailable" not in pdb
    cfg = yaml.safe_load(one(docs, "ConfigMap")["data"]["config.yaml"])
    assert cfg["leader_election"]["enabled"] is True
    # The holder's address, for requests handed over by the other replica.
    (pod_ip,) = [e for e in c["env"] if e["name"] == "POD_IP"]
    assert pod_ip["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert c["args"][c["args"].index("--advertise-url") + 1] == "http://$(POD_IP):9180"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
    assert pod["terminationGracePeriodSeconds"] > 20, "above the 20 s drain limit"
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    # Secrets reach the container as files only.
    assert not any("secretKeyRef" in e.get("valueFrom", {}) or
                   "configMapKeyRef" in e.get("valueFrom", {}) for e in c.get("env", []))
    assert "envFrom" not in c
    assert not any("subPath" in m for m in c["volumeMounts"]), "subPath mounts never rotate"

    config_agrees_with_pod(docs)
    labels = spec["template"]["metadata"]["labels"]
    for sel in (one(docs, "Service")["spec"]["selector"],
                one(docs, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
                one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]):
        assert sel.items() <= labels.items()
    role = one(docs, "Role")
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "list", "watch", "create", "update"]}]


def test_kustomize__production_example_has_no_secret_and_adds_monitoring(kube):
    docs = render(kube, "examples/production")
    kinds = [d["kind"] for d in docs]
    assert "Secret" not in kinds
    assert {"Namespace", "ServiceMonitor", "PrometheusRule"} <= set(kinds)
    ns = one(docs, "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    image = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image != "tyk-gitops:latest"
    config_agrees_with_pod(docs)


# ---- the API server ----------------------------------------------------------

def test_server_dry_run__base_is_accepted(kube, namespace):
    p = kube.kubectl("apply", "--dry-run=server", "-k", MANIFESTS)
    no_warnings(p)
    assert "(server dry run)" in p.stdout


def prometheus_operator_crds():
    env = dict(os.environ, GOFLAGS="-mod=mod")
    env["PATH"] = env.get("PATH", "") + ":/usr/local/go/bin"
    out = subprocess.run(["go", "mod", "download", "-json", PROM_OPERATOR], check=True,
                         stdout=subprocess.PIPE, text=True, env=env, cwd="/").stdout
    d = os.path.join(json.loads(out)["Dir"], "example", "prometheus-operator-crd")
    return [os.path.join(d, "monitoring.coreos.com_%s.yaml" % n)
            for n in ("servicemonitors", "prometheusrules")]


def test_server_dry_run__production_example_with_monitoring_crds(kube, namespace):
    for crd in prometheus_operator_crds():
        kube.kubectl("apply", "--server-side", "-f", crd)
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 "crd/servicemonitors.monitoring.coreos.com",
                 "crd/prometheusrules.monitoring.coreos.com")
    p = kube.kubectl("apply", "--dry-run=server", "-k",
                     os.path.join(MANIFESTS, "examples/production"))
    no_warnings(p)
    assert "servicemonitor.monitoring.coreos.com/tyk-gitops" in p.stdout
    assert "prometheusrule.monitoring.coreos.com/tyk-gitops" in p.stdout
    # The schema is enforced: a ServiceMonitor with a wrong type is refused.
    docs = render(kube, "examples/production")
    bad = copy.deepcopy(one(docs, "ServiceMonitor"))
    bad["spec"]["endpoints"] = "metrics"
    p = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(bad), check=False)
    assert p.returncode != 0 and "endpoints" in p.stderr


def pod_from_template(docs, name):
    t = one(docs, "Deployment")["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": t["metadata"]["labels"]},
            "spec": copy.deepcopy(t["spec"])}


def test_pod_security__template_is_admitted_at_restricted(kube, applied_base):
    ns = json.loads(kube.kubectl("get", "namespace", NS, "-o", "json").stdout)
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = pod_from_template(applied_base, "tyk-gitops-psa")
    p = kube.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(pod))
    no_warnings(p)
    admitted = json.loads(p.stdout)
    # The ServiceAccount admission plugin ran too: the projected token volume.
    assert any(v["name"].startswith("kube-api-access") for v in admitted["spec"]["volumes"])
    # The namespace really enforces "restricted": each weakening is refused.
    for weaken in (lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
                   lambda s: s["containers"][0]["securityContext"]["capabilities"].pop("drop"),
                   lambda s: s["securityContext"].pop("runAsNonRoot") and
                   s["containers"][0]["securityContext"].pop("runAsNonRoot"),
                   lambda s: s["securityContext"].pop("seccompProfile") and
                   s["containers"][0]["securityContext"].pop("seccompProfile")):
        bad = pod_from_template(applied_base, "tyk-gitops-weak")
        weaken(bad["spec"])
        p = kube.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(bad),
                         check=False)
        assert p.returncode != 0 and 'violates PodSecurity "restricted' in p.stderr, p.stderr


def sa_token(kube, duration="10m"):
    return kube.kubectl("-n", NS, "create", "token", "tyk-gitops",
                        "--duration", duration).stdout.strip()


def lease(name, holder, version=None):
    meta = {"name": name, "namespace": NS}
    if version:
        meta["resourceVersion"] = version
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}}


def test_rbac__service_account_can_do_leases_and_nothing_else(kube, applied_base):
    token = sa_token(kube)
    who = json.loads(kube.kubectl("auth", "whoami", "-o", "json", token=token).stdout)
    assert who["status"]["userInfo"]["username"] == SA

    def can(*args):
        p = kube.kubectl("auth", "can-i", *args, token=token, check=False)
        return p.stdout.strip() == "yes"

    for verb in ("get", "list", "watch", "create", "update"):
        assert can(verb, "leases.coordination.k8s.io", "-n", NS), verb
    for args in (("delete", "leases.coordination.k8s.io", "-n", NS),
                 ("patch", "leases.coordination.k8s.io", "-n", NS),
                 ("get", "leases.coordination.k8s.io", "-n", "default"),
                 ("list", "leases.coordination.k8s.io", "--all-namespaces"),
                 ("get", "secrets", "-n", NS), ("list", "secrets", "-n", NS),
                 ("get", "secrets", "-n", "kube-system"),
                 ("get", "configmaps", "-n", NS), ("list", "pods", "-n", NS),
                 ("create", "events", "-n", NS), ("list", "namespaces"),
                 ("get", "serviceaccounts", "-n", NS),
                 ("create", "serviceaccounts/token", "-n", NS),
                 ("*", "*", "-n", NS)):
        assert not can(*args), args

    # Everything the token may do in the namespace: the Leases, and the
    # self-reviews every authenticated user has (system:basic-user).
    listed = kube.kubectl("auth", "can-i", "--list", "-n", NS, token=token).stdout.splitlines()
    rules = {line.split()[0]: line.split("[]")[-1].strip() for line in listed[1:]
             if line and not line.startswith(" ")}
    assert rules == {"selfsubjectreviews.authentication.k8s.io": "[create]",
                     "selfsubjectaccessreviews.authorization.k8s.io": "[create]",
                     "selfsubjectrulesreviews.authorization.k8s.io": "[create]",
                     "leases.coordination.k8s.io": "[get list watch create update]"}, listed

    # Not only what can-i says: the calls leader election makes, for real.
    name = "tg-rbac-%d" % os.getpid()
    base = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS
    code, body = kube.request("POST", base, token, lease(name, "pod-a"))
    assert code == 201, body
    code, body = kube.request("GET", base + "/" + name, token)
    assert code == 200 and body["spec"]["holderIdentity"] == "pod-a"
    code, body = kube.request("PUT", base + "/" + name, token,
                              lease(name, "pod-b", body["metadata"]["resourceVersion"]))
    assert code == 200 and body["spec"]["holderIdentity"] == "pod-b"
    code, body = kube.request("GET", base + "?watch=false", token)
    assert code == 200 and name in [i["metadata"]["name"] for i in body["items"]]
    assert kube.request("DELETE", base + "/" + name, token)[0] == 403
    assert kube.request("GET", "/api/v1/namespaces/%s/secrets" % NS, token)[0] == 403
    assert kube.request("GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases",
                        token)[0] == 403


# ---- alerts ------------------------------------------------------------------

PROMTOOL_TESTS = """
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="tyk-gitops",namespace="ns",pod="p"}'
        values: '1 1 0x20'
      - series: 'tyk_gitops_reconcile_total{job="tyk-gitops",namespace="ns",sync="bad",result="error"}'
        values: '0+1x60'
      - series: 'tyk_gitops_reconcile_total{job="tyk-gitops",namespace="ns",sync="bad",result="success"}'
        values: '0x60'
      - series: 'tyk_gitops_reconcile_total{job="tyk-gitops",namespace="ns",sync="good",result="error"}'
        values: '0x60'
      - series: 'tyk_gitops_reconcile_total{job="tyk-gitops",namespace="ns",sync="good",result="success"}'
        values: '0+1x60'
      - series: 'tyk_gitops_last_success_timestamp_seconds{job="tyk-gitops",namespace="ns",sync="good"}'
        values: '0+60x60'
      - series: 'tyk_gitops_last_success_timestamp_seconds{job="tyk-gitops",namespace="ns",sync="stale"}'
        values: '60x60'
      - series: 'tyk_gitops_last_success_timestamp_seconds{job="tyk-gitops",namespace="ns",sync="paused"}'
        values: '60x60'
      - series: 'tyk_gitops_suspended{job="tyk-gitops",namespace="ns",sync="paused"}'
        values: '1x60'
      - series: 'tyk_gitops_suspended{job="tyk-gitops",namespace="ns",sync="stale"}'
        values: '0x60'
      - series: 'tyk_gitops_drift_corrections_total{job="tyk-gitops",namespace="ns",sync="good"}'
        values: '0 5 5x60'
      - series: 'tyk_gitops_drift_corrections_total{job="tyk-gitops",namespace="ns",sync="fought"}'
        values: '0+1x60'
      - series: 'tyk_gitops_objects{job="tyk-gitops",namespace="ns",sync="bad",kind="api",state="failed"}'
        values: '2x60'
      - series: 'tyk_gitops_objects{job="tyk-gitops",namespace="ns",sync="good",kind="api",state="in_sync"}'
        values: '9x60'
    alert_rule_test:
      - {eval_time: 4m, alertname: TykGitopsDown, exp_alerts: []}
      - eval_time: 8m
        alertname: TykGitopsDown
        exp_alerts:
          - exp_labels: {severity: critical, job: tyk-gitops, namespace: ns, pod: p}
      - {eval_time: 10m, alertname: TykGitopsReconcileFailing, exp_alerts: []}
      - eval_time: 20m
        alertname: TykGitopsReconcileFailing
        exp_alerts:
          - exp_labels: {severity: warning, namespace: ns, sync: bad, result: error}
      - {eval_time: 30m, alertname: TykGitopsNoRecentSuccess, exp_alerts: []}
      - eval_time: 40m
        alertname: TykGitopsNoRecentSuccess
        exp_alerts:
          - exp_labels: {severity: critical, namespace: ns, sync: stale}
      - {eval_time: 20m, alertname: TykGitopsNeverSucceeded, exp_alerts: []}
      - eval_time: 35m
        alertname: TykGitopsNeverSucceeded
        exp_alerts:
          - exp_labels: {severity: critical, namespace: ns, sync: bad}
      - {eval_time: 5m, alertname: TykGitopsDriftCorrections, exp_alerts: []}
      - eval_time: 30m
        alertname: TykGitopsDriftCorrections
        exp_alerts:
          - exp_labels: {severity: warning, namespace: ns, sync: fought}
      - {eval_time: 10m, alertname: TykGitopsObjectsFailed, exp_alerts: []}
      - eval_time: 20m
        alertname: TykGitopsObjectsFailed
        exp_alerts:
          - exp_labels: {severity: warning, namespace: ns, sync: bad, kind: api}
"""


def rule_groups(kube):
    return one(render(kube, "examples/production"), "PrometheusRule")["spec"]["groups"]


def test_alerts__rules_check_and_fire_when_they_should(kube, tmp_path):
    groups = rule_groups(kube)
    (tmp_path / "full.yaml").write_text(yaml.safe_dump({"groups": groups}))
    p = subprocess.run(["promtool", "check", "rules", str(tmp_path / "full.yaml")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.returncode == 0, p.stdout
    # The unit tests compare labels; annotations are templates checked above.
    bare = copy.deepcopy(groups)
    for g in bare:
        for r in g["rules"]:
            r.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": bare}))
    (tmp_path / "test.yaml").write_text(PROMTOOL_TESTS)
    p = subprocess.run(["promtool", "test", "rules", "test.yaml"], cwd=str(tmp_path),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.returncode == 0, p.stdout
    tested = set(re.findall(r"alertname: (\w+)", PROMTOOL_TESTS))
    assert tested == {r["alert"] for g in groups for r in g["rules"]}


# ---- the image with what a pod gets ------------------------------------------------

@pytest.fixture(scope="module")
def apache(git_root):  # noqa: F811
    a = Apache(git_root)
    yield a
    a.stop()


@pytest.mark.parametrize("overlay", ["base", "examples/production"])
def test_image_in_pod_environment__syncs_and_holds_a_lease(
        kube, applied_base, gateway, upstream, apache, git_root, tmp_path, capsys,
        overlay):  # noqa: F811
    """The image run as the Deployment describes it: its securityContext,
    limits, mounts (ConfigMap, emptyDirs, Secrets as files), and the files
    and environment the kubelet gives every pod (the ServiceAccount token, CA
    and namespace at the in-cluster paths, KUBERNETES_SERVICE_HOST/PORT)."""
    if not IMAGE:
        pytest.skip("TG_IMAGE is not set")
    docs = render(kube, overlay)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    psc, sc = pod["securityContext"], c["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"] and sc["allowPrivilegeEscalation"] is False

    # The ConfigMap's config, pointed at the test peers (loopback ports
    # instead of the pod's :9180/:9181, since the container shares the host's
    # network); every path in it stays as the manifest has it.
    r = RepoFactory(git_root)("pod")
    sha = r.commit({"environments/prod/apis/pod.json": json.dumps(
                        keyless_api("pod-echo", "/pod-echo/", upstream.url)),
                    "environments/prod/policies/pol.json": json.dumps(
                        policy("pod-pol", ["pod-echo"]))}, "pod commit")
    cfg = yaml.safe_load(one(docs, "ConfigMap")["data"]["config.yaml"])
    listen, probe, hooks = free_port(), free_port(), free_port()
    cfg["listen"], cfg["probe_listen"] = "127.0.0.1:%d" % listen, "127.0.0.1:%d" % probe
    cfg["webhook_listen"] = "127.0.0.1:%d" % hooks
    (s,) = cfg["syncs"]
    s["repo"]["url"] = apache.url(r, tls=True)
    s["repo"]["auth"]["ca_file"] = "/var/run/secrets/git/ca.crt"
    s["gateway"]["url"] = gateway.url
    s["interval"] = "2s"

    with open(apache.ca) as f:
        git_ca = f.read()
    with open(kube.ca) as f:
        kube_ca = f.read()
    token = sa_token(kube)
    contents = {
        "configMap": {"config.yaml": yaml.safe_dump(cfg)},
        "tyk-gitops-gateway": {"secret": gateway.secret + "\n"},
        "tyk-gitops-git": {"token": TOKEN + "\n", "ca.crt": git_ca},
        "tyk-gitops-webhook": {"secret": "webhook-secret-for-the-test\n"},
    }
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts, tmpfs = [], []
    for m in c["volumeMounts"]:
        v = vols[m["name"]]
        host = str(tmp_path / m["name"])
        if "emptyDir" in v:
            tmpfs.append(m["mountPath"])
        elif "configMap" in v:
            mounts.append((secret_dir(host, contents["configMap"]), m["mountPath"]))
        else:
            assert m.get("readOnly") and v["secret"]["defaultMode"] == 0o440
            mounts.append((secret_dir(host, contents[v["secret"]["secretName"]]), m["mountPath"]))
    mounts.append((secret_dir(str(tmp_path / "sa"), {"token": token, "ca.crt": kube_ca,
                                                     "namespace": NS}), SA_DIR))
    env = {"POD_IP": "127.0.0.1",
           "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(kube.port),
           "KUBERNETES_SERVICE_PORT_HTTPS": str(kube.port),
           "KUBERNETES_PORT": "tcp://127.0.0.1:%d" % kube.port}
    limits = c["resources"]["limits"]
    # The kubelet expands $(VAR) in args from the container's env.
    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in c["args"]]
    ctr = Container(IMAGE, args=args, mounts=mounts, tmpfs=tmpfs, env=env,
                    read_only=sc["readOnlyRootFilesystem"],
                    user="%d:%d" % (psc["runAsUser"], psc["runAsGroup"]),
                    group_add=(psc["fsGroup"],),
                    memory=limits["memory"].replace("Mi", "m"), cpus=limits["cpu"])
    try:
        probes = "http://127.0.0.1:%d" % probe
        ready = c["readinessProbe"]["httpGet"]["path"]
        live = c["livenessProbe"]["httpGet"]["path"]
        wait_for(lambda: get(probes + ready)[0] == 200, 60, "readiness; logs:\n" + ctr.logs())
        assert get(probes + live)[0] == 200
        assert get("http://127.0.0.1:%d/healthz" % hooks)[0] == 200
        assert get("http://127.0.0.1:%d/api/v1/syncs" % listen)[0] == 200
        # Ready means serving, a standby included: the pass comes once the
        # Lease is held (at once, alone).
        wait_for(lambda: gateway.api("GET", "/tyk/apis/pod-echo")[0] == 200, 30,
                 "the sync applied; logs:\n" + ctr.logs())
        code, obj = gateway.api("GET", "/tyk/apis/pod-echo")
        assert code == 200 and obj["config_data"]["tyk_gitops"]["commit"] == sha
        assert gateway.api("GET", "/tyk/policies/pod-pol")[0] == 200
        # The audit trail is written to its emptyDir.
        assert ctr.exec("test", "-s", cfg["audit"]).returncode == 0

        # Every metric the alerts use is one the controller exports.
        code, text = get(probes + "/metrics")
        exported = set(re.findall(r"^# TYPE (\w+)", text, re.M))
        used = {m for g in rule_groups(kube) for rule in g["rules"]
                for m in re.findall(r"tyk_gitops_\w+", rule["expr"])}
        assert used and used <= exported, used - exported

        # Leader election in the pod's own environment: its token, CA,
        # namespace and KUBERNETES_SERVICE_HOST/PORT reach the API server,
        # and the controller holds the sync's Lease, its address on it.
        seen = ctr.exec("cat", SA_DIR + "/token", SA_DIR + "/namespace")
        assert seen.returncode == 0 and seen.stdout == token + NS, seen.stderr
        ctr_env = dict(line.split("=", 1) for line in ctr.exec("env").stdout.split("\n")
                        if "=" in line)
        assert "%s:%s" % (ctr_env["KUBERNETES_SERVICE_HOST"],
                          ctr_env["KUBERNETES_SERVICE_PORT"]) == "127.0.0.1:%d" % kube.port
        base = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS
        name = "tyk-gitops-%s" % s["name"]
        code, body = kube.request("GET", base + "/" + name, token)
        assert code == 200, body
        code, st_json = get("http://127.0.0.1:%d/api/v1/syncs/%s" % (listen, s["name"]))
        leader = json.loads(st_json)["leader"]
        assert leader["this_replica"] is True
        assert body["spec"]["holderIdentity"] == leader["identity"]
        assert body["spec"]["leaseDurationSeconds"] == 15
        assert (body["metadata"]["annotations"]["tyk-gitops.io/holder-address"]
                == "http://127.0.0.1:9180")

        st = ctr.proc_status()
        with capsys.disabled():
            print("\n  pod-like container (%s): RSS %s, peak %s, %.2f CPU-s" % (
                overlay, st["VmRSS"].strip(), st["VmHWM"].strip(), ctr.cpu_seconds()))
        t0 = time.time()
        ctr.signal("TERM")
        assert ctr.wait(pod["terminationGracePeriodSeconds"]) == 0, ctr.logs()
        assert time.time() - t0 < pod["terminationGracePeriodSeconds"]
        # Released on SIGTERM, so another replica takes it over at once.
        code, body = kube.request("GET", base + "/" + name, token)
        assert code == 200 and not body["spec"].get("holderIdentity"), body
    finally:
        ctr.remove()
