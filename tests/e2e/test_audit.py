"""The audit trail is write-ahead: no gateway change without a durable record,
even when the controller dies between the gateway's reload and its report."""
import json
import os
import subprocess

import pytest

from conftest import keyless_api, policy
from faultproxy import FaultProxy
from test_daemon import Daemon, daemons, sync_spec, wait_for  # noqa: F401 (fixture)
from test_gateway_faults import through


@pytest.fixture
def proxy(gateway):
    p = FaultProxy(gateway.port)
    yield p
    p.stop()


def records(path):
    with open(path, "rb") as f:
        return [json.loads(line.decode("utf-8")) for line in f if line.strip()]


def by_op(recs):
    ops = {}
    for r in recs:
        ops.setdefault(r["op"], []).append(r)
    return ops


def api_ids_on(gateway):
    code, body = gateway.api("GET", "/tyk/apis")
    assert code == 200
    return {a["api_id"] for a in body}


def test_changes_live_before_a_crash_are_recorded_at_the_next_start(
        controller, repo, gateway, upstream, proxy, tmp_path):
    through(controller, proxy)
    audit = str(tmp_path / "audit.jsonl")
    for i in range(30):
        repo.write("apis/a%02d.json" % i, keyless_api("a%02d" % i, "/a%02d/" % i, upstream.url))
    sha = repo.commit("thirty apis")
    running = {}
    # SIGKILL right after the gateway reloaded, before the controller hears of it.
    proxy.after("/tyk/reload", lambda: running["proc"].kill())
    proc = running["proc"] = subprocess.Popen(controller.args("sync", "--audit", audit),
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.communicate(timeout=120)
    assert proc.returncode == -9
    assert len(api_ids_on(gateway)) == 30, "the changes went live before the crash"
    intents = [r for r in records(audit) if r["phase"] == "intent"]
    assert len(intents) == 30 and all(r["result"] == "pending" for r in intents)
    assert not [r for r in records(audit) if r["phase"] == "outcome"]

    proxy.hooks.clear()
    p = controller.run("sync", "--audit", audit)
    assert p.returncode == 0, p.stderr
    assert "0 created" in p.stdout and "30 unchanged" in p.stdout
    ops = by_op(records(audit))
    assert len(ops) == 30
    for op, recs in ops.items():
        assert [r["phase"] for r in recs] == ["intent", "outcome"], recs
        out = recs[1]
        assert out["result"] == "applied" and out["recovered"] is True
        assert out["commit"] == sha and out["action"] == "create"


def test_a_full_disk_for_the_audit_trail_changes_nothing(controller, repo, gateway, upstream,
                                                         tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        os.close(fd)
        audit = str(mnt / "audit.jsonl")
        repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
        repo.commit()
        p = controller.run("sync", "--audit", audit)
        assert p.returncode == 1
        assert "cannot write audit file" in p.stderr + p.stdout
        assert "echo" not in api_ids_on(gateway)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_an_unopenable_audit_file_changes_nothing(controller, repo, gateway, upstream, tmp_path):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    for path in (str(tmp_path / "missing-dir" / "audit.jsonl"), "/dev/full"):
        p = controller.run("sync", "--audit", path)
        assert p.returncode == 1, p.stderr
        assert "audit file" in p.stderr and "nothing was applied" in p.stderr
        assert "echo" not in api_ids_on(gateway)


def test_an_object_that_went_live_after_a_failed_record_is_recorded(
        controller, repo, gateway, upstream, proxy, tmp_path):
    through(controller, proxy)
    audit = str(tmp_path / "audit.jsonl")
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    # The gateway reloads, but the controller is told it failed.
    proxy.after("/tyk/reload", lambda: 500)
    p = controller.run("sync", "--audit", audit)
    assert p.returncode == 1
    assert "echo" in api_ids_on(gateway)
    out = [r for r in records(audit) if r["phase"] == "outcome"]
    assert [(r["result"], r["written"]) for r in out] == [("failed", True)]

    proxy.hooks.clear()
    p = controller.run("sync", "--audit", audit)
    assert p.returncode == 0, p.stderr
    recs = by_op(records(audit))
    assert len(recs) == 1
    (only,) = recs.values()
    assert [(r["phase"], r["result"]) for r in only] == [
        ("intent", "pending"), ("outcome", "failed"), ("outcome", "applied")]
    assert only[-1]["recovered"] is True


def test_retries_and_the_tombstone_policy_are_audited(controller, repo, gateway, upstream,
                                                      proxy, tmp_path):
    through(controller, proxy)
    audit = str(tmp_path / "audit.jsonl")
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.write("policies/p.json", policy("p", ["echo"]))
    repo.commit()
    assert controller.run("sync", "--audit", audit).returncode == 0
    repo.remove("policies/p.json")
    repo.commit("drop the last policy")
    proxy.add("status", 1, status=400, methods=("DELETE",))  # 4xx is not retried in the pass
    p = controller.run("sync", "--audit", audit)
    assert p.returncode == 1
    p = controller.run("sync", "--audit", audit)
    assert p.returncode == 0, p.stderr
    recs = records(audit)
    deletes = [r for r in recs if r["id"] == "p" and r["action"] == "delete"]
    assert [(r["phase"], r["result"]) for r in deletes] == [
        ("intent", "pending"), ("outcome", "failed"), ("intent", "pending"), ("outcome", "applied")]
    tomb = [r for r in recs if r["id"] == "tyk-gitops-tombstone"]
    assert [(r["phase"], r["result"]) for r in tomb] == [("intent", "pending"), ("outcome", "applied")]
    assert len(by_op(recs)) == 2 + 2 + 1  # two creates, two delete tries, the tombstone


def test_invalid_utf8_in_commit_metadata_keeps_audit_and_status_json_valid(
        gateway, repo, upstream, tmp_path, daemons):
    audit = str(tmp_path / "audit.jsonl")
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    env = dict(os.environb)
    env.update({b"GIT_AUTHOR_NAME": b"Bad \xff\xfe Name", b"GIT_AUTHOR_EMAIL": b"x@example.com",
                b"GIT_COMMITTER_NAME": b"C", b"GIT_COMMITTER_EMAIL": b"c@example.com"})
    subprocess.run(["git", "add", "-A"], cwd=repo.work, check=True)
    subprocess.run(["git", "-c", "commit.gpgsign=false", "-c", "i18n.commitEncoding=ISO-8859-1",
                    "commit", "-q", "-m", b"summary \xc3\x28 bad"], cwd=repo.work, env=env,
                   check=True)
    subprocess.run(["git", "push", "-q", "-f", "origin", "HEAD:main"], cwd=repo.work, check=True)
    d = Daemon(str(tmp_path), [sync_spec("test", repo, gateway)],
               extra_cfg="audit: %s" % audit)
    daemons.append(d)
    d.wait_ready()
    wait_for(lambda: os.path.exists(audit) and any(
        r["phase"] == "outcome" for r in records(audit)), 30, "an audit outcome")
    code, body = d.get("/api/v1/syncs")
    assert code == 200
    json.loads(body)  # raises on invalid JSON
    rec = records(audit)[0]  # records() decodes strictly as UTF-8
    assert rec["author"].startswith("Bad \ufffd\ufffd Name")
