"""Operator-facing hardening: a pass must say what it really did."""
import os
import time

from conftest import keyless_api
from test_daemon import Daemon, daemons, sync_spec, wait_for  # noqa: F401 (fixture)


def test_a_git_outage_is_reported_while_drift_is_still_repaired(gateway, repo, upstream,
                                                                 tmp_path, daemons):
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    sha = repo.commit("echo")
    d = Daemon(str(tmp_path), [sync_spec("test", repo, gateway)])
    daemons.append(d)
    d.wait_ready()
    first = d.status("test")
    assert first["last_outcome"] == "success"

    os.rename(repo.bare, repo.bare + ".gone")  # the git server is down
    gateway.api("DELETE", "/tyk/apis/echo")
    gateway.reload()
    wait_for(lambda: gateway.request("/echo/x")[0] == 200, 10, "drift repaired from the last good commit")
    st = wait_for(lambda: (lambda s: s if s["last_outcome"] == "error" else None)(d.status("test")),
                  10, "the pass reports the outage")
    assert "the pass ran on the last good commit %s" % sha[:12] in st["last_error"]
    assert st["last_success_at"] == first["last_success_at"]
    assert st["last_commit"] == sha

    os.rename(repo.bare + ".gone", repo.bare)
    wait_for(lambda: d.status("test")["last_outcome"] == "success", 40, "back to success")


def test_a_rotated_secret_is_hidden_on_both_sides_of_a_diff(controller, repo, gateway, upstream):
    api = keyless_api("echo", "/echo/", upstream.url)
    api["proxy"]["target_url"] = upstream.url + "/${UPSTREAM_TOKEN}"
    repo.write("apis/echo.json", api)
    repo.commit()
    assert controller.run("sync", env={"UPSTREAM_TOKEN": "old-secret-111"}).returncode == 0
    for fmt in ((), ("--format", "json")):
        p = controller.run("diff", *fmt, env={"UPSTREAM_TOKEN": "new-secret-222"})
        assert p.returncode == 2, p.stderr
        out = p.stdout + p.stderr
        assert "old-secret-111" not in out and "new-secret-222" not in out
        assert "***" in out


def test_a_filled_in_value_never_reaches_a_validation_message(controller, repo, gateway):
    from conftest import policy
    repo.write("policies/p.json", policy("p", ["${SECRET_API}"]))
    repo.commit()
    for cmd in ("diff", "sync"):
        p = controller.run(cmd, env={"SECRET_API": "hidden-value-333"})
        assert p.returncode == 1
        assert "hidden-value-333" not in p.stdout + p.stderr
        assert "***" in p.stderr


def test_sighup_with_a_fifo_or_missing_config_is_refused_with_a_reason(gateway, repo, upstream,
                                                                       tmp_path, daemons):
    import json
    import signal
    repo.write("apis/echo.json", keyless_api("echo", "/echo/", upstream.url))
    repo.commit()
    d = Daemon(str(tmp_path), [sync_spec("test", repo, gateway)])
    daemons.append(d)
    d.wait_ready()

    def refusals():
        return [json.loads(l) for l in d.logs().splitlines()
                if l.startswith("{") and "reload refused" in l]

    os.remove(d.config)
    d.signal(signal.SIGHUP)
    wait_for(lambda: len(refusals()) == 1, 10, "refusal of a missing file")
    assert "No such file" in refusals()[0]["error"]

    os.mkfifo(d.config)
    d.signal(signal.SIGHUP)
    wait_for(lambda: len(refusals()) == 2, 10, "refusal of a FIFO")
    assert "not a regular file" in refusals()[1]["error"]
    assert d.get("/healthz")[0] == 200
    t0 = time.time()
    d.signal(signal.SIGTERM)
    assert d.proc.wait(10) == 0
    assert time.time() - t0 < 5


def test_control_characters_in_file_names_are_escaped_in_text_output(tmp_path):
    import subprocess
    from conftest import BIN
    apis = tmp_path / "apis"
    apis.mkdir()
    # A name that would forge a second "error:" line and send a terminal escape.
    (apis / "x\nfake.json:1:1: error: forged\x1b[2J.json").write_text("{not json")
    p = subprocess.run([BIN, "validate", str(tmp_path)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert p.returncode == 1
    assert "\x1b" not in p.stdout + p.stderr
    assert not any(line.startswith("fake.json") for line in p.stderr.splitlines())
    assert "x\\x0afake.json" in p.stderr
