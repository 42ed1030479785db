"""A config repository is untrusted input: it must neither exhaust the controller's memory
nor make it read (and publish) files from outside the repository."""
import os
import re
import resource
import subprocess
import tempfile

from conftest import BIN, keyless_api

SANITIZED = bool(os.environ.get("TG_SANITIZED"))
# Address space for the controller: a daemon under a container limit.  Sanitizers reserve
# terabytes of address space, so they run without it (and without the RSS checks).
ADDRESS_SPACE = 512 * 1024 * 1024
NOT_FOLLOWED = "(links are not followed: they could point outside the repository)"


class Run:
    def __init__(self, returncode, stdout, stderr, peak_rss_kb):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.peak_rss_kb = peak_rss_kb


def run_capped(*args):
    """Runs the binary under the address-space cap; returns output and peak RSS."""
    def cap():
        if not SANITIZED:
            resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen([BIN, *args], stdout=out, stderr=err, preexec_fn=cap)
        try:
            _, status, usage = os.wait4(p.pid, 0)
        finally:
            p.returncode = 0  # reaped above; keeps Popen from waiting again
        out.seek(0)
        err.seek(0)
        return Run(os.waitstatus_to_exitcode(status), out.read(), err.read(), usage.ru_maxrss)


def assert_small(run, mb):
    if not SANITIZED:
        assert run.peak_rss_kb < mb * 1024, "peak RSS %d KiB" % run.peak_rss_kb


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def bomb_doc(n):
    """About 390 bytes that build some 190 MB through aliases, yet under the old 64 MiB
    per-document cap."""
    lines = ["api_id: bomb%d" % n, "name: bomb %d" % n,
             "proxy: {listen_path: /bomb%d/, target_url: 'http://127.0.0.1:9/'}" % n,
             "a0: &a0 {%s}" % ", ".join("k%d: ''" % j for j in range(7))]
    for i in range(1, 9):
        lines.append("a%d: &a%d [%s]" % (i, i, ", ".join(["*a%d" % (i - 1)] * 4)))
    return "\n".join(lines) + "\n"


def test_sixteen_alias_bombs_in_a_6_kb_file_are_each_reported_in_little_memory(tmp_path):
    text = "".join("---\n" + bomb_doc(n) for n in range(16))
    assert len(text) < 6500
    write(str(tmp_path / "apis" / "bomb.yaml"), text)
    r = run_capped("validate", str(tmp_path))
    assert r.returncode == 1, r.stderr[-2000:]
    found = re.findall(r"^apis/bomb\.yaml:\d+:\d+: error: a\d\.\d: document expands to more "
                       r"than 2097152 bytes through aliases \(the limit for the whole file: 64 "
                       r"times its %d bytes, at least 2 MiB\)$" % len(text), r.stderr, re.M)
    assert len(found) == 16, r.stderr
    assert "invalid: 16 errors" in r.stderr
    assert_small(r, 64)


def test_a_single_bomb_document_is_stopped_early(tmp_path):
    write(str(tmp_path / "apis" / "bomb.yaml"), bomb_doc(0))
    r = run_capped("validate", str(tmp_path))
    assert r.returncode == 1
    assert "document expands to more than 2097152 bytes through aliases" in r.stderr
    assert_small(r, 48)


def quiet_bomb(n):
    """A valid API whose aliases build 1,924,800 bytes: just under a file's 2 MiB."""
    return ("api_id: f%d\nproxy: {listen_path: /f%d/, target_url: 'http://127.0.0.1:9/'}\n"
            "x-data:\n  a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1]\n"
            "  a1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]\n"
            "  a2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]\n"
            "  a3: &a3 [*a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2]\n"
            "  a4: [*a3, *a3, *a3, *a3]\n") % (n, n)


def test_many_files_share_one_alias_budget(tmp_path):
    files = 48
    for n in range(files):
        write(str(tmp_path / "apis" / ("f%02d.yaml" % n)), quiet_bomb(n))
    r = run_capped("validate", str(tmp_path))
    assert r.returncode == 1, r.stderr[-2000:]
    # 64 MiB for the pass (the floor: 64 times 20 KB of YAML is less) holds 34 such files.
    over = files - (64 * 1024 * 1024) // 1924800
    shared = [l for l in r.stderr.splitlines() if "the limit shared by all files of a pass" in l]
    assert len(shared) == over, r.stderr
    assert shared[0].startswith("apis/f34.yaml:")
    assert "invalid: %d errors" % over in r.stderr
    assert_small(r, 160)


def test_generous_anchors_and_merge_keys_still_load(tmp_path):
    err = "{description: %s, content: {application/json: {schema: {$ref: '#/components/schemas/E'}}}}"
    oas = ["openapi: 3.0.3", "info: {title: Orders, version: '1.0'}", "x-shared:",
           "  errors: &errors"]
    for code, what in (("400", "Bad"), ("401", "Who"), ("403", "No"), ("404", "Gone"),
                       ("500", "Oops")):
        oas.append("    '%s': %s" % (code, err % what))
    oas += ["  params: &params",
            "    - {name: X-Request-Id, in: header, schema: {type: string, format: uuid}}",
            "    - {name: X-Tenant, in: header, required: true, schema: {type: string}}",
            "  op: &op {tags: [orders], security: [{bearer: []}]}",
            "paths:"]
    for i in range(150):
        for verb in ("get", "delete"):
            oas += ["  /v%d/orders/{id}:" % i if verb == "get" else "",
                    "    %s:" % verb, "      <<: *op", "      operationId: %s%d" % (verb, i),
                    "      parameters: *params", "      responses:", "        <<: *errors",
                    "        '200': {description: OK}"]
    oas += ["components: {schemas: {E: {type: object}}}",
            "x-tyk-api-gateway:", "  info: {id: orders, name: Orders, state: {active: true}}",
            "  server: {listenPath: {value: /orders/, strip: true}}",
            "  upstream: {url: 'http://127.0.0.1:9/'}"]
    write(str(tmp_path / "apis" / "orders.yaml"), "\n".join(l for l in oas if l) + "\n")
    docs = []
    for i in range(40):
        docs.append("api_id: svc%d\nname: svc%d\n"
                    "x-common: &common\n  org_id: default\n  use_keyless: true\n  active: true\n"
                    "  version_data: {not_versioned: true, versions: {Default: {name: Default}}}\n"
                    "<<: *common\nproxy: {listen_path: /svc%d/, target_url: 'http://127.0.0.1:9/'}\n"
                    % (i, i, i))
    write(str(tmp_path / "apis" / "services.yaml"), "---\n".join(docs))
    r = run_capped("validate", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "valid: 41 objects" in r.stdout
    assert_small(r, 64)


def test_a_long_key_above_many_members_is_not_copied_into_every_position(tmp_path):
    key = "k" * 100000
    members = "".join("  m%d: 1\n" % i for i in range(10000))
    write(str(tmp_path / "apis" / "a.yaml"), "api_id: a\n? %s\n:\n%s" % (key, members))
    write(str(tmp_path / "apis" / "b.json"), '{"api_id": "b", "%s": {%s}}' % (
        key, ", ".join('"m%d": 1' % i for i in range(10000))))
    r = run_capped("validate", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    assert_small(r, 64)


def outside_api(base):
    """An API definition outside the repository that a link could expose."""
    write(os.path.join(base, "outside", "apis", "stolen.json"),
          '{"api_id": "stolen", "proxy": {"listen_path": "/stolen/"}}')
    write(os.path.join(base, "outside", "stolen.json"), '{"api_id": "stolen"}')
    return os.path.join(base, "outside")


def test_validate_never_reads_through_links(tmp_path):
    outside = outside_api(str(tmp_path))
    repo = str(tmp_path / "repo")
    write(os.path.join(repo, "apis", "ok.json"), '{"api_id": "ok"}')
    os.symlink(os.path.join(outside, "stolen.json"), os.path.join(repo, "apis", "link.json"))
    os.symlink("../outside/apis", os.path.join(repo, "policies"))
    r = run_capped("validate", repo)
    assert r.returncode == 1
    assert "apis/link.json: warning: ignoring symbolic link" in r.stderr
    assert ("policies: error: cannot read directory: 'policies' is a symbolic link "
            + NOT_FOLLOWED) in r.stderr
    assert "stolen" not in r.stdout + r.stderr

    manifest = str(tmp_path / "manifest")
    write(os.path.join(manifest, "ok.json"), '{"api_id": "ok"}')
    os.symlink(outside, os.path.join(manifest, "sub"))
    os.symlink(os.path.join(outside, "stolen.json"), os.path.join(manifest, "link.json"))
    write(os.path.join(manifest, ".tyk.json"), '{"files": [{"file": "ok.json"}, '
          '{"file": "link.json"}, {"file": "sub/stolen.json"}, {"file": "../outside/stolen.json"}]}')
    r = run_capped("validate", manifest)
    assert r.returncode == 1
    assert "cannot read 'link.json': 'link.json' is a symbolic link " + NOT_FOLLOWED in r.stderr
    assert "cannot read 'sub/stolen.json': 'sub' is a symbolic link " + NOT_FOLLOWED in r.stderr
    assert "path '../outside/stolen.json' leaves the repository" in r.stderr
    assert "invalid: 3 errors" in r.stderr


def test_sync_refuses_a_commit_whose_apis_directory_is_a_link(controller, repo, gateway, upstream,
                                                              tmp_path):
    outside = outside_api(str(tmp_path))
    repo.write("policies/.gitkeep", "")
    os.symlink(os.path.join(outside, "apis"), os.path.join(repo.work, "apis"))
    repo.commit("apis is a link")
    p = controller.run("sync")
    assert p.returncode == 1, p.stderr
    assert "'apis' is a symbolic link " + NOT_FOLLOWED in p.stderr
    assert "nothing was applied" in p.stderr
    assert gateway.api("GET", "/tyk/apis/stolen")[0] == 404


def test_sync_path_through_a_link_or_with_dot_dot_is_refused(controller, repo, gateway, upstream,
                                                            tmp_path):
    outside = outside_api(str(tmp_path))
    write(os.path.join(outside, "prod", "apis", "stolen.json"),
          '{"api_id": "stolen", "proxy": {"listen_path": "/stolen/", "target_url": "%s"}}'
          % upstream.url)
    repo.write("env-real/prod/apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    os.symlink(outside, os.path.join(repo.work, "env"))
    repo.commit("env is a link")

    p = controller.run("sync", "--path", "env/prod")
    assert p.returncode == 1, p.stderr
    assert "cannot open the sync path 'env/prod': 'env' is a symbolic link" in p.stderr
    assert gateway.api("GET", "/tyk/apis/stolen")[0] == 404

    p = controller.run("sync", "--path", "env-real/../env/prod")
    assert p.returncode == 1, p.stderr
    assert "must not contain '..'" in p.stderr
    assert gateway.api("GET", "/tyk/apis/stolen")[0] == 404

    p = controller.run("sync", "--path", "env-real/prod")
    assert p.returncode == 0, p.stderr
    assert gateway.api("GET", "/tyk/apis/echo")[0] == 200
