"""The container image (docker/Dockerfile) on a real Docker engine.

Run by `make test-deploy`, which builds the image and names it in TG_IMAGE;
skipped in `make test`.  The container runs the way the Kubernetes manifests
run it: read-only root filesystem, user 65532, every capability dropped, no
privilege escalation, the config, the gateway secret and the git token
mounted read-only as files, the git cache and /tmp on tmpfs (emptyDir).  It
syncs a config repository served over HTTPS with a token (Apache +
git-http-backend, private CA) into a real Tyk Gateway, all on loopback.
"""
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import keyless_api, policy  # noqa: E402
from containers import IMAGE, UID, Container, docker, inspect_image, secret_dir  # noqa: E402
from gitpeers import Apache, RepoFactory, TOKEN, git_root  # noqa: E402,F401  (fixture)
from peers import free_port, wait_for  # noqa: E402

pytestmark = pytest.mark.skipif(not os.environ.get("TG_DEPLOY") or not IMAGE,
                                reason="deploy tests: run `make test-deploy`")

# The drain limit (README "Signals"): a pass still running after 20 s is
# abandoned and the controller exits 0.
DRAIN_LIMIT = 20
MAX_IMAGE_BYTES = 120 * 1000 * 1000


def get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


@pytest.fixture(scope="module")
def apache(git_root):  # noqa: F811
    a = Apache(git_root)
    yield a
    a.stop()


@pytest.fixture
def containers():
    made = []
    yield made
    for c in made:
        c.remove()


def config_repo(git_root, target):
    r = RepoFactory(git_root)("img")
    sha = r.commit({
        "apis/echo.json": json.dumps(keyless_api("img-echo", "/img-echo/", target)),
        "policies/gold.json": json.dumps(policy("img-gold", ["img-echo"])),
    }, "first")
    return r, sha


def controller_files(tmp_path, gateway, apache, repo, listen, probe, interval="2s"):
    """Config, gateway secret and git credentials laid out as the pod gets them."""
    etc = secret_dir(str(tmp_path / "etc"), {"config.yaml": "\n".join([
        "listen: 127.0.0.1:%d" % listen,
        "probe_listen: 127.0.0.1:%d" % probe,
        "log: {format: json, level: info}",
        "cache_dir: /var/cache/tyk-gitops",
        "syncs:",
        "  - name: prod",
        "    repo:",
        "      url: %s" % apache.url(repo, tls=True),
        "      ref: {branch: main}",
        "      auth: {token_file: /var/run/secrets/git/token,",
        "             ca_file: /var/run/secrets/git/ca.crt}",
        "    gateway: {url: '%s', secret_file: /var/run/secrets/tyk/secret," % gateway.url,
        "              timeout: 10s}",
        "    interval: %s" % interval,
        "    drift: {interval: 5s}",
        ""])})
    with open(apache.ca) as f:
        ca = f.read()
    git = secret_dir(str(tmp_path / "git"), {"token": TOKEN + "\n", "ca.crt": ca})
    tyk = secret_dir(str(tmp_path / "tyk"), {"secret": gateway.secret + "\n"})
    return [(etc, "/etc/tyk-gitops"), (git, "/var/run/secrets/git"), (tyk, "/var/run/secrets/tyk")]


def test_image__metadata_size_user_and_labels():
    info = inspect_image(IMAGE)
    cfg = info["Config"]
    # Numeric, so runAsNonRoot can check it.
    assert cfg["User"] == "%d:%d" % (UID, UID)
    assert cfg["Entrypoint"] == ["tyk-gitops"]
    assert cfg["Cmd"] == ["run", "--config", "/etc/tyk-gitops/config.yaml"]
    labels = cfg["Labels"]
    for key in ("version", "revision", "source", "created", "title"):
        assert "org.opencontainers.image." + key in labels, key
    assert labels["org.opencontainers.image.version"] not in ("", "unknown")
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", labels["org.opencontainers.image.revision"])
    assert info["Size"] <= MAX_IMAGE_BYTES, "image is %d bytes" % info["Size"]
    # The binary reports the version the image is labelled with, and every
    # library it links is in the runtime stage.
    out = docker("run", "--rm", "--network", "host", "--read-only", IMAGE, "version").stdout
    assert out.startswith("tyk-gitops %s " % labels["org.opencontainers.image.version"]), out
    out = docker("run", "--rm", "--network", "host", "--entrypoint", "ldd", IMAGE,
                 "/usr/local/bin/tyk-gitops").stdout
    assert "not found" not in out, out
    out = docker("run", "--rm", "--network", "host", "--user", "0", "--entrypoint", "find",
                 IMAGE, "/", "-xdev", "-type", "f", "-perm", "/6000").stdout
    assert out == "", "setuid/setgid programs: " + out


def test_image__without_config_fails_naming_the_file(containers):
    c = Container(IMAGE, tmpfs=["/var/cache/tyk-gitops", "/tmp"])
    containers.append(c)
    assert c.wait(30) != 0
    assert "/etc/tyk-gitops/config.yaml" in c.logs()


def test_image__read_only_non_root_syncs_gateway_probes_and_drains(
        gateway, upstream, apache, git_root, tmp_path, containers, capsys):  # noqa: F811
    repo, first = config_repo(git_root, upstream.url)
    listen, probe = free_port(), free_port()
    c = Container(IMAGE, mounts=controller_files(tmp_path, gateway, apache, repo, listen, probe),
                  tmpfs=["/var/cache/tyk-gitops", "/tmp"])
    containers.append(c)
    api = "http://127.0.0.1:%d" % listen
    probes = "http://127.0.0.1:%d" % probe

    wait_for(lambda: get(probes + "/readyz")[0] == 200, 60, "/readyz 200; logs:\n" + c.logs())
    for base in (api, probes):
        assert get(base + "/healthz")[0] == 200
        code, text = get(base + "/metrics")
        assert code == 200 and 'tyk_gitops_reconcile_total{sync="prod",result="success"}' in text
    code, body = get(api + "/api/v1/syncs/prod")
    assert code == 200
    assert json.loads(body)["last_result"]["commit"] == first, body
    assert get(probes + "/api/v1/syncs")[0] == 404, "the probe port serves only probes and metrics"

    # The gateway serves what the commit says, stamped with it.
    code, obj = gateway.api("GET", "/tyk/apis/img-echo")
    assert code == 200 and obj["config_data"]["tyk_gitops"]["commit"] == first
    assert gateway.api("GET", "/tyk/policies/img-gold")[0] == 200
    assert gateway.request("/img-echo/hello")[0] == 200

    # A new commit arrives by polling.
    second = repo.commit({"apis/two.json": json.dumps(keyless_api("img-two", "/img-two/",
                                                                  upstream.url))}, "second")
    wait_for(lambda: gateway.api("GET", "/tyk/apis/img-two")[0] == 200, 60, "img-two applied")
    code, obj = gateway.api("GET", "/tyk/apis/img-two")
    assert obj["config_data"]["tyk_gitops"]["commit"] == second

    # What the kernel says about the process: non-root, no capabilities,
    # no privilege escalation; the root filesystem refuses writes.
    st = c.proc_status()
    assert st["Uid"].split() == [str(UID)] * 4 and st["Gid"].split() == [str(UID)] * 4
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
    assert st["NoNewPrivs"].strip() == "1"
    assert c.exec("touch", "/usr/local/bin/x").returncode != 0
    assert c.exec("touch", "/var/cache/tyk-gitops/x").returncode == 0
    with capsys.disabled():
        print("\n  image resources, 3 objects: RSS %s, peak %s, %.2f CPU-s since start" % (
            st["VmRSS"].strip(), st["VmHWM"].strip(), c.cpu_seconds()))

    # SIGTERM (what `docker stop` and the kubelet send): exit 0 within the drain limit.
    t0 = time.time()
    c.signal("TERM")
    code = c.wait(DRAIN_LIMIT + 10)
    elapsed = time.time() - t0
    logs = c.logs()
    assert code == 0, logs
    assert elapsed < DRAIN_LIMIT, "stopped after %.1fs" % elapsed
    # JSON logs on stderr, no secret in them.
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert lines and lines[-1]["msg"] == "stopped"
    assert TOKEN not in logs and gateway.secret not in logs


def test_image__sighup_with_config_on_read_only_mount_keeps_running(
        gateway, upstream, apache, git_root, tmp_path, containers):  # noqa: F811
    repo, _ = config_repo(git_root, upstream.url)
    listen, probe = free_port(), free_port()
    c = Container(IMAGE, mounts=controller_files(tmp_path, gateway, apache, repo, listen, probe),
                  tmpfs=["/var/cache/tyk-gitops", "/tmp"])
    containers.append(c)
    probes = "http://127.0.0.1:%d" % probe
    wait_for(lambda: get(probes + "/readyz")[0] == 200, 60, "/readyz 200; logs:\n" + c.logs())
    c.signal("HUP")
    time.sleep(1)
    assert c.state()["Running"], c.logs()
    assert get(probes + "/healthz")[0] == 200
    c.signal("TERM")
    assert c.wait(DRAIN_LIMIT + 10) == 0


def manifest_resources():
    """requests/limits of the Deployment in manifests/base."""
    import yaml
    root = os.path.join(os.path.dirname(__file__), "..", "..", "manifests", "base")
    with open(os.path.join(root, "deployment.yaml")) as f:
        dep = yaml.safe_load(f)
    return dep["spec"]["template"]["spec"]["containers"][0]["resources"]


def mebibytes(q):
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(q[:-2]) * units[q[-2:]]


def test_image__resources_fit_a_thousand_objects(gateway, upstream, apache, git_root, tmp_path,
                                                 containers, capsys):  # noqa: F811
    """Sizes the Deployment's resources: a first sync of 1,000 APIs and 100
    policies, then idle polling, under the manifests' own limits."""
    res = manifest_resources()
    limit_mib = mebibytes(res["limits"]["memory"])
    n_apis, n_pols = 1000, 100
    r = RepoFactory(git_root)("big")
    files = {"apis/a%04d.json" % i: json.dumps(keyless_api("big-%04d" % i, "/big-%04d/" % i,
                                                           upstream.url))
             for i in range(n_apis)}
    files.update({"policies/p%03d.json" % i: json.dumps(policy("bigpol-%03d" % i,
                                                                ["big-%04d" % (i * 10)]))
                  for i in range(n_pols)})
    sha = r.commit(files, "a thousand APIs")
    listen, probe = free_port(), free_port()
    c = Container(IMAGE, mounts=controller_files(tmp_path, gateway, apache, r, listen, probe,
                                                 interval="5s"),
                  tmpfs=["/var/cache/tyk-gitops", "/tmp"],
                  memory="%dm" % limit_mib, cpus=res["limits"]["cpu"])
    containers.append(c)
    probes = "http://127.0.0.1:%d" % probe
    t0 = time.time()
    wait_for(lambda: get(probes + "/readyz")[0] == 200, 300, "first sync; logs:\n" + c.logs(),
             step=0.5)
    first_sync = time.time() - t0
    code, body = get("http://127.0.0.1:%d/api/v1/syncs/prod" % listen)
    result = json.loads(body)["last_result"]
    assert result["commit"] == sha and result["outcome"] == "success", body
    cpu_sync = c.cpu_seconds()
    hwm_sync = int(c.proc_status()["VmHWM"].split()[0]) / 1024
    # Idle: polls every 5 s, drift passes every 5 s against 1,100 objects.
    time.sleep(30)
    cpu_idle = (c.cpu_seconds() - cpu_sync) / 30
    st = c.proc_status()
    mib = {k: int(st[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile",
                                                     "RssShmem")}
    hwm = mib["VmHWM"]
    with capsys.disabled():
        print("\n  image resources: first sync of %d objects %.1fs, %.2f CPU-s; peak RSS %.1f MiB "
              "(%.1f after the first sync); now RSS %.1f MiB (anon %.1f, file %.1f, shmem %.1f); "
              "%.3f CPU while polling and drift-checking every 5s; limits %s" % (
                  n_apis + n_pols, first_sync, cpu_sync, hwm, hwm_sync, mib["VmRSS"],
                  mib["RssAnon"], mib["RssFile"], mib["RssShmem"], cpu_idle, res["limits"]))
    assert c.state()["OOMKilled"] is False
    assert hwm < limit_mib / 2, "peak RSS %.1f MiB leaves too little headroom under %s" % (
        hwm, res["limits"]["memory"])
    c.signal("TERM")
    assert c.wait(DRAIN_LIMIT + 10) == 0


def test_image__compose_config_and_command_run(gateway, upstream, apache, git_root, tmp_path,
                                               containers):  # noqa: F811
    """docker/compose.yaml cannot run here (no registry for the Redis and
    gateway images); its tyk-gitops service can: the same config file, command
    and secret path, with the gateway and the listen addresses pointed at
    this machine's loopback peers."""
    import yaml
    docker_dir = os.path.join(os.path.dirname(__file__), "..", "..", "docker")
    with open(os.path.join(docker_dir, "compose.yaml")) as f:
        svc = yaml.safe_load(f)["services"]["tyk-gitops"]
    with open(os.path.join(docker_dir, "compose-config.yaml")) as f:
        text = f.read()
    listen, probe = free_port(), free_port()
    text = text.replace('listen: ":9180"', "listen: 127.0.0.1:%d" % listen)
    text = text.replace('probe_listen: ":9181"', "probe_listen: 127.0.0.1:%d" % probe)
    text = text.replace("http://tyk-gateway:8080", gateway.url)
    assert str(listen) in text and str(probe) in text and gateway.url in text
    repo, sha = config_repo(git_root, upstream.url)
    env = {"GITOPS_REPO_URL": apache.url(repo, auth=False)}
    args = [re.sub(r"\$\{(\w+)(?::[-?]([^}]*))?\}",
                   lambda m: env.get(m.group(1), m.group(2) or ""), a) for a in svc["command"]]
    (secret,) = svc["secrets"]
    etc = secret_dir(str(tmp_path / "etc"), {"config.yaml": text})
    run = secret_dir(str(tmp_path / "run"), {secret["source"]: gateway.secret})
    assert svc["configs"][0]["target"] == "/etc/tyk-gitops/config.yaml"
    c = Container(IMAGE, args=args, read_only=svc["read_only"],
                  mounts=[(etc, "/etc/tyk-gitops"), (run, os.path.dirname(secret["target"]))],
                  tmpfs=svc["tmpfs"] + [svc["volumes"][0].split(":")[1]])
    containers.append(c)
    wait_for(lambda: get("http://127.0.0.1:%d/readyz" % probe)[0] == 200, 60,
             "/readyz 200; logs:\n" + c.logs())
    code, obj = gateway.api("GET", "/tyk/apis/img-echo")
    assert code == 200 and obj["config_data"]["tyk_gitops"]["commit"] == sha, c.logs()
