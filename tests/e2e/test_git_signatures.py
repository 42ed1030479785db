"""SSH commit signature verification, with commits signed by real git."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from gitpeers import *  # noqa: F401,F403,E402  (fixtures)
from gitpeers import GIT_ENV  # noqa: E402

TG_EINVALID = -3


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("sigkeys")
    out = {}
    for name, t in (("ed", "ed25519"), ("rsa", "rsa"), ("stranger", "ed25519")):
        path = str(d / name)
        args = ["ssh-keygen", "-q", "-t", t, "-N", "", "-C", name + "@test", "-f", path]
        if t == "rsa":
            args[4:4] = ["-b", "3072"]
        subprocess.run(args, check=True)
        with open(path + ".pub") as f:
            out[name] = (path, f.read().strip())
    return out


def workdir_file(cache, path):
    with open(os.path.join(cache, "work", path)) as f:
        return f.read()


def test_signed_by_trusted_ed25519_key__accepted(probe, repos, cache, keys):
    r = repos()
    sha = r.commit({"a.yaml": "signed\n"}, "signed", sign_key=keys["ed"][0])
    res = probe.run(r.bare, cache, "--trusted-key", keys["stranger"][1],
                    "--trusted-key", keys["ed"][1])
    assert res["ok"] and res["sha"] == sha, res


def test_signed_by_trusted_rsa_key__accepted(probe, repos, cache, keys):
    r = repos()
    sha = r.commit({"a.yaml": "signed\n"}, "signed rsa", sign_key=keys["rsa"][0])
    raw = r.git("cat-file", "commit", "HEAD").stdout
    assert "BEGIN SSH SIGNATURE" in raw
    res = probe.run(r.bare, cache, "--trusted-key", keys["rsa"][1])
    assert res["ok"] and res["sha"] == sha, res


def test_unsigned_head__refused_and_checkout_kept(probe, repos, cache, keys):
    r = repos()
    good = r.commit({"a.yaml": "good\n"}, "signed", sign_key=keys["ed"][0])
    assert probe.run(r.bare, cache, "--trusted-key", keys["ed"][1])["sha"] == good
    bad = r.commit({"a.yaml": "evil\n"}, "unsigned")
    res = probe.run(r.bare, cache, "--trusted-key", keys["ed"][1])
    assert res["code"] == TG_EINVALID
    assert res["error"] == "refusing commit %s: it is not signed" % bad
    assert workdir_file(cache, "a.yaml") == "good\n"


def test_signed_by_untrusted_key__refused(probe, repos, cache, keys):
    r = repos()
    sha = r.commit({"a.yaml": "x\n"}, "signed by someone else", sign_key=keys["stranger"][0])
    res = probe.run(r.bare, cache, "--trusted-key", keys["ed"][1], "--trusted-key",
                    keys["rsa"][1])
    assert res["code"] == TG_EINVALID
    assert res["error"].startswith("refusing commit %s: signing key SHA256:" % sha)
    assert res["error"].endswith("is not a trusted key")
    assert not os.path.exists(os.path.join(cache, "work"))


def test_tampered_commit__signature_does_not_verify(probe, repos, cache, keys):
    r = repos()
    r.commit({"a.yaml": "x\n"}, "original message", sign_key=keys["ed"][0])
    raw = r.git("cat-file", "commit", "HEAD").stdout
    forged = raw.replace("original message", "forged message")
    p = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=r.work,
                       input=forged, env=GIT_ENV, stdout=subprocess.PIPE, text=True,
                       check=True)
    sha = p.stdout.strip()
    r.git("update-ref", "refs/heads/main", sha)
    r.push(force=True)
    res = probe.run(r.bare, cache, "--trusted-key", keys["ed"][1])
    assert res["code"] == TG_EINVALID
    assert "ssh signature does not verify" in res["error"], res


def test_bad_trusted_key__rejected_at_setup(probe, repos, cache):
    r = repos()
    r.commit({"a.yaml": "x\n"}, "one")
    res = probe.run(r.bare, cache, "--trusted-key", "ssh-ed25519 not-base64!")
    assert res["code"] == TG_EINVALID and "trusted key 1" in res["error"], res
