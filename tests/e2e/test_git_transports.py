"""The git source over every transport, against real servers on loopback."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from gitpeers import *  # noqa: F401,F403,E402  (fixtures)
from gitpeers import HTTP_PASSWORD, HTTP_USER, TOKEN, assert_no_secret  # noqa: E402

TG_ENOTFOUND, TG_EAUTH = -2, -6


def seeded(repos):
    r = repos()
    first = r.commit({"apis/a.yaml": "name: a\n"}, "first commit")
    r.tag("v1")
    r.tag("light", annotated=False)
    second = r.commit({"apis/b.yaml": "name: b\n"}, "second commit\n\nbody line")
    return r, first, second


def check_synced(res, sha, files=("apis/a.yaml",)):
    assert res["ok"], res
    assert res["sha"] == sha
    for f in files:
        assert os.path.exists(os.path.join(res["workdir"], f)), f
    assert not os.path.exists(os.path.join(res["workdir"], ".git"))


# ---- local -------------------------------------------------------------------

def test_file_url__branch_tag_commit_and_metadata(probe, repos, cache):
    r, first, second = seeded(repos)
    url = "file://" + r.bare
    res = probe.run(url, cache, "--op", "both")
    check_synced(res, second, ("apis/a.yaml", "apis/b.yaml"))
    assert res["head"] == second and res["changed"] is True
    assert res["author"] == "Alice Author" and res["author_email"] == "alice@example.com"
    assert res["committer"] == "Carol Committer"
    assert res["summary"] == "second commit"
    assert res["message"] == "second commit\n\nbody line\n"
    assert res["time"] > 1600000000
    # annotated tag: the peeled commit, with one round trip
    res = probe.run(url, cache + "t", "--tag", "v1", "--op", "both")
    assert res["head"] == first and res["sha"] == first
    assert not os.path.exists(os.path.join(res["workdir"], "apis/b.yaml"))
    res = probe.run(url, cache + "l", "--tag", "light", "--op", "both")
    assert res["head"] == first and res["sha"] == first
    res = probe.run(url, cache + "c", "--commit", first, "--op", "both")
    assert res["head"] == first and res["sha"] == first


def test_plain_path__second_sync_unchanged_then_new_commit(probe, repos, cache):
    r, _, second = seeded(repos)
    res = probe.run(r.bare, cache, "--times", "2")
    assert res["sha"] == second and res["changed"] is False  # second of two syncs
    third = r.commit({"apis/c.yaml": "name: c\n", "apis/a.yaml": None}, "third")
    # stray file in the work tree is removed by the forced checkout
    open(os.path.join(res["workdir"], "stray.txt"), "w").close()
    res = probe.run(r.bare, cache)
    check_synced(res, third, ("apis/c.yaml",))
    assert not os.path.exists(os.path.join(res["workdir"], "apis/a.yaml"))
    assert not os.path.exists(os.path.join(res["workdir"], "stray.txt"))


def test_missing_branch_and_tag__not_found(probe, repos, cache):
    r, _, _ = seeded(repos)
    res = probe.run(r.bare, cache, "--branch", "nope", "--op", "head")
    assert res["code"] == TG_ENOTFOUND and "branch 'nope' not found" in res["error"]
    res = probe.run(r.bare, cache, "--tag", "v9")
    assert res["code"] == TG_ENOTFOUND and "tag 'v9' not found" in res["error"]
    res = probe.run(r.bare, cache, "--commit", "1" * 40)
    assert res["code"] == TG_ENOTFOUND and "commit 1111" in res["error"]


# ---- git:// ------------------------------------------------------------------

def test_git_daemon__head_and_sync(probe, repos, cache, git_daemon):
    r, first, second = seeded(repos)
    url = git_daemon.url(r)
    res = probe.run(url, cache, "--op", "both")
    assert res["head"] == second
    check_synced(res, second)
    third = r.commit({"x.txt": "x\n"}, "third")
    res = probe.run(url, cache, "--op", "both")
    check_synced(res, third, ("x.txt",))
    assert res["changed"] is True
    res = probe.run(url, cache + "t", "--tag", "v1", "--op", "both")
    assert res["head"] == first and res["sha"] == first
    res = probe.run(url, cache + "c", "--commit", first)
    assert res["sha"] == first


# ---- http(s) -----------------------------------------------------------------

def test_http__anonymous(probe, repos, cache, apache):
    r, _, second = seeded(repos)
    res = probe.run(apache.url(r, auth=False), cache, "--op", "both")
    assert res["head"] == second
    check_synced(res, second)


def test_http__username_and_password(probe, repos, cache, apache, secrets):
    r, _, second = seeded(repos)
    res = probe.run(apache.url(r), cache, "--op", "both", "--user", HTTP_USER,
                    "--password-file", secrets["password"])
    check_synced(res, second)
    assert_no_secret(res, HTTP_PASSWORD)


def test_http__token_as_password(probe, repos, cache, apache, secrets):
    r, _, second = seeded(repos)
    res = probe.run(apache.url(r), cache, "--op", "both", "--token-file", secrets["token"])
    check_synced(res, second)
    assert_no_secret(res, TOKEN)


def test_http__token_rotation_needs_no_restart(probe, repos, cache, apache, tmp_path):
    r, _, second = seeded(repos)
    tok = tmp_path / "rotating"
    tok.write_text("stale-token\n")
    res = probe.run(apache.url(r), cache, "--token-file", str(tok), "--op", "head")
    assert res["code"] == TG_EAUTH
    tok.write_text(TOKEN + "\n")  # rotated in place
    res = probe.run(apache.url(r), cache, "--token-file", str(tok), "--op", "both")
    check_synced(res, second)


def test_http__wrong_password_is_auth_error(probe, repos, cache, apache, secrets):
    r, _, _ = seeded(repos)
    res = probe.run(apache.url(r), cache, "--user", HTTP_USER, "--password-file",
                    secrets["wrong"])
    assert res["code"] == TG_EAUTH, res
    assert "authentication failed" in res["error"]
    assert_no_secret(res, "not-the-pw")
    res = probe.run(apache.url(r), cache, "--op", "head")
    assert res["code"] == TG_EAUTH and "no token or password file" in res["error"]


def test_http__password_in_url_is_redacted(probe, repos, cache, apache):
    r, _, second = seeded(repos)
    url = apache.url(r, userinfo="%s:%s@" % (HTTP_USER, HTTP_PASSWORD))
    res = probe.run(url, cache, "--op", "both")
    check_synced(res, second)
    bad = apache.url(r, userinfo="%s:%s@" % (HTTP_USER, "Wr0ngSecretInUrl"))
    res = probe.run(bad, cache + "2")
    assert not res["ok"]
    assert "alice:***@127.0.0.1" in res["error"], res
    assert_no_secret(res, "Wr0ngSecretInUrl")


def test_https__private_ca(probe, repos, cache, apache, secrets):
    r, _, second = seeded(repos)
    res = probe.run(apache.url(r, tls=True), cache, "--op", "both", "--ca", apache.ca,
                    "--token-file", secrets["token"])
    assert res["head"] == second
    check_synced(res, second)
    assert_no_secret(res, TOKEN)


def test_https__untrusted_certificate_is_refused(probe, repos, cache, apache, secrets):
    r, _, _ = seeded(repos)
    res = probe.run(apache.url(r, tls=True), cache, "--token-file", secrets["token"])
    assert res["code"] == TG_EAUTH and "not trusted" in res["error"], res
    res = probe.run(apache.url(r, tls=True), cache, "--op", "head", "--ca", apache.other_ca,
                    "--token-file", secrets["token"])
    assert res["code"] == TG_EAUTH and "not trusted by ca file" in res["error"], res
    assert not os.path.exists(os.path.join(cache, "work"))


def test_https__host_name_must_match_certificate(probe, repos, cache, apache, secrets):
    r, _, _ = seeded(repos)
    # the certificate names 127.0.0.1 and localhost, not 127.0.0.2... which
    # is also loopback but the server only binds 127.0.0.1: use a name the
    # resolver maps to 127.0.0.1 but the certificate lacks, if any.
    url = apache.url(r, tls=True).replace("127.0.0.1", "localhost")
    res = probe.run(url, cache, "--op", "head", "--ca", apache.ca,
                    "--token-file", secrets["token"])
    # localhost is in the certificate: accepted (when it resolves to 127.0.0.1)
    assert res["ok"] or "connect" in res["error"], res


# ---- ssh ---------------------------------------------------------------------

def test_ssh__key_and_known_hosts(probe, repos, cache, sshd):
    r, first, second = seeded(repos)
    res = probe.run(sshd.url(r), cache, "--op", "both", "--ssh-key", sshd.user_key,
                    "--known-hosts", sshd.known_hosts)
    assert res["head"] == second
    check_synced(res, second)
    res = probe.run(sshd.url(r), cache + "t", "--tag", "v1", "--op", "both", "--ssh-key",
                    sshd.user_key, "--known-hosts", sshd.known_hosts)
    assert res["head"] == first and res["sha"] == first


def test_ssh__hashed_known_hosts(probe, repos, cache, sshd):
    r, _, second = seeded(repos)
    with open(sshd.known_hosts_hashed) as f:
        assert "|1|" in f.read() and "127.0.0.1" not in open(sshd.known_hosts_hashed).read()
    res = probe.run(sshd.url(r), cache, "--ssh-key", sshd.user_key,
                    "--known-hosts", sshd.known_hosts_hashed)
    check_synced(res, second)


def test_ssh__wrong_host_key_is_refused(probe, repos, cache, sshd):
    r, _, _ = seeded(repos)
    res = probe.run(sshd.url(r), cache, "--ssh-key", sshd.user_key,
                    "--known-hosts", sshd.known_hosts_wrong)
    assert res["code"] == TG_EAUTH
    assert "does not match known_hosts" in res["error"], res
    assert not os.path.exists(os.path.join(cache, "work"))


def test_ssh__unknown_host_is_refused(probe, repos, cache, sshd):
    r, _, _ = seeded(repos)
    res = probe.run(sshd.url(r), cache, "--op", "head", "--ssh-key", sshd.user_key,
                    "--known-hosts", sshd.known_hosts_other_host)
    assert res["code"] == TG_EAUTH and "is not in known_hosts" in res["error"], res
    res = probe.run(sshd.url(r), cache, "--op", "head", "--ssh-key", sshd.user_key)
    assert res["code"] == TG_EAUTH and "no known_hosts file" in res["error"], res
    # explicit opt-out
    res = probe.run(sshd.url(r), cache, "--op", "head", "--ssh-key", sshd.user_key,
                    "--insecure-host-key")
    assert res["ok"], res


def test_ssh__unauthorized_key_is_auth_error(probe, repos, cache, sshd):
    r, _, _ = seeded(repos)
    res = probe.run(sshd.url(r), cache, "--ssh-key", sshd.stranger_key,
                    "--known-hosts", sshd.known_hosts)
    assert res["code"] == TG_EAUTH, res
    assert "authentication failed" in res["error"]
