"""Failure cases of the git source: the last good checkout always survives."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from gitpeers import *  # noqa: F401,F403,E402  (fixtures)
from peers import RefusedPort  # noqa: E402

TG_ERROR, TG_ENOTFOUND, TG_EINVALID, TG_ETIMEOUT = -1, -2, -3, -4


def read(res, path):
    with open(os.path.join(res["workdir"], path)) as f:
        return f.read()


def test_force_push__follows_rewritten_history(probe, repos, cache, git_daemon):
    r = repos()
    r.commit({"a.yaml": "v1\n"}, "one")
    two = r.commit({"a.yaml": "v2\n"}, "two")
    url = git_daemon.url(r)
    res = probe.run(url, cache)
    assert res["sha"] == two
    rewritten = r.rewrite({"a.yaml": "v2-rewritten\n"}, "two, rewritten")
    assert rewritten != two
    res = probe.run(url, cache, "--op", "both")
    assert res["head"] == rewritten and res["sha"] == rewritten and res["changed"]
    assert read(res, "a.yaml") == "v2-rewritten\n"


def test_deleted_branch__not_found_and_last_checkout_kept(probe, repos, cache, git_daemon):
    r = repos()
    r.commit({"a.yaml": "main\n"}, "one")
    r.git("checkout", "-q", "-b", "feature")
    feat = r.commit({"a.yaml": "feature\n"}, "feature work", push=False)
    r.push(ref="feature")
    url = git_daemon.url(r)
    res = probe.run(url, cache, "--branch", "feature")
    assert res["sha"] == feat
    r.delete_remote_branch("feature")
    res = probe.run(url, cache, "--branch", "feature")
    assert res["code"] == TG_ENOTFOUND
    assert res["error"] == "branch 'feature' not found in '%s'" % url
    assert read({"workdir": os.path.join(cache, "work")}, "a.yaml") == "feature\n"


def test_unreachable_repository__clear_error_and_checkout_kept(probe, repos, cache, git_daemon):
    r = repos()
    one = r.commit({"a.yaml": "one\n"}, "one")
    res = probe.run(git_daemon.url(r), cache)
    assert res["sha"] == one
    refused = RefusedPort()
    port = refused.port
    url = "git://127.0.0.1:%d/%s.git" % (port, r.name)
    res = probe.run(url, cache)
    assert res["code"] == TG_ERROR
    assert "cannot fetch '%s'" % url in res["error"] and "refused" in res["error"], res
    res = probe.run("http://127.0.0.1:%d/x.git" % port, cache, "--op", "head")
    assert not res["ok"] and "refused" in res["error"], res
    res = probe.run("/nonexistent/repo.git", cache)
    assert not res["ok"] and "cannot fetch '/nonexistent/repo.git'" in res["error"]
    refused.close()
    assert read({"workdir": os.path.join(cache, "work")}, "a.yaml") == "one\n"


def corrupt_objects(gitdir):
    for dirpath, _, files in os.walk(os.path.join(gitdir, "objects")):
        for f in files:
            p = os.path.join(dirpath, f)
            os.chmod(p, 0o644)
            with open(p, "wb") as fh:
                fh.write(b"garbage")


def test_corrupted_cache__detected_and_cloned_again(probe, repos, cache, git_daemon):
    r = repos()
    r.commit({"a.yaml": "one\n"}, "one")
    url = git_daemon.url(r)
    probe.run(url, cache)
    gitdir = os.path.join(cache, "repo.git")
    two = r.commit({"a.yaml": "two\n"}, "two")
    corrupt_objects(gitdir)
    res = probe.run(url, cache)
    assert res["ok"] and res["sha"] == two, res
    assert read(res, "a.yaml") == "two\n"
    # worse: HEAD and config are garbage, objects gone
    three = r.commit({"a.yaml": "three\n"}, "three")
    shutil.rmtree(os.path.join(gitdir, "objects"))
    for f in ("HEAD", "config"):
        with open(os.path.join(gitdir, f), "w") as fh:
            fh.write("not git\n")
    res = probe.run(url, cache)
    assert res["ok"] and res["sha"] == three, res
    # the cache is a plain file
    shutil.rmtree(gitdir)
    with open(gitdir, "w") as fh:
        fh.write("x")
    res = probe.run(url, cache)
    assert res["ok"] and res["sha"] == three, res
    assert os.path.isdir(gitdir)


def test_huge_file__refused_and_checkout_kept(probe, repos, cache, git_daemon):
    r = repos()
    one = r.commit({"a.yaml": "one\n"}, "one")
    url = git_daemon.url(r)
    probe.run(url, cache, "--max-file-size", 1 << 20)
    big = r.commit({"blob.bin": os.urandom(2 << 20), "a.yaml": "two\n"}, "huge")
    res = probe.run(url, cache, "--max-file-size", 1 << 20)
    assert res["code"] == TG_EINVALID
    assert res["error"].startswith("refusing to check out commit %s: file 'blob.bin' is 2097152 "
                                   "bytes, over the limit of 1048576 bytes" % big), res
    work = os.path.join(cache, "work")
    assert read({"workdir": work}, "a.yaml") == "one\n"
    assert not os.path.exists(os.path.join(work, "blob.bin"))
    # a later fixed commit goes through; the first sync of a new process
    fixed = r.commit({"blob.bin": None}, "drop the blob")
    res = probe.run(url, cache, "--max-file-size", 1 << 20)
    assert res["sha"] == fixed and read(res, "a.yaml") == "two\n"
    assert one != fixed


def timeout_case(probe, cache, url, *extra):
    res = probe.run(url, cache, "--timeout", 1500, *extra, timeout=30)
    assert res["code"] == TG_ETIMEOUT, res
    assert "timed out after 1500 ms" in res["error"]
    assert res["_elapsed"] < 5.0, res["_elapsed"]
    return res


def test_timeout__git_protocol(probe, cache, silent_server):
    timeout_case(probe, cache, "git://127.0.0.1:%d/r.git" % silent_server.port)


def test_timeout__http(probe, cache, silent_server, secrets):
    url = "http://127.0.0.1:%d/git/r.git" % silent_server.port
    timeout_case(probe, cache, url, "--op", "head", "--token-file", secrets["token"])
    timeout_case(probe, cache, url, "--token-file", secrets["token"])


def test_timeout__https(probe, cache, silent_server, apache):
    timeout_case(probe, cache, "https://127.0.0.1:%d/git/r.git" % silent_server.port,
                 "--ca", apache.ca)


def test_timeout__ssh(probe, cache, silent_server, sshd):
    timeout_case(probe, cache, "ssh://git@127.0.0.1:%d/r.git" % silent_server.port,
                 "--ssh-key", sshd.user_key, "--known-hosts", sshd.known_hosts)


def test_timeout__keeps_last_checkout(probe, repos, cache, git_daemon, silent_server):
    r = repos()
    one = r.commit({"a.yaml": "one\n"}, "one")
    assert probe.run(git_daemon.url(r), cache)["sha"] == one
    timeout_case(probe, cache, "git://127.0.0.1:%d/r.git" % silent_server.port)
    assert read({"workdir": os.path.join(cache, "work")}, "a.yaml") == "one\n"
