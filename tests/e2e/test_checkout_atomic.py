"""A checkout that fails half-way is never applied (issue 15, item 1).

The cache is a small tmpfs.  Commit 2 keeps the same 40 APIs, moves 8 of
them to another file and adds incompressible padding (in a hidden directory,
which the loader skips): the fetch fits, the checkout runs out of space.  An
in-place checkout removed the 8 old files before failing on the padding, and
the pass then ran on "the last good checkout" and deleted 8 live APIs.  Now
the previous tree must stay byte for byte and the gateway must not change.
"""
import json
import os
import subprocess

import pytest

from conftest import git, keyless_api
from test_daemon import Daemon, daemons, metric, sync_spec, wait_for  # noqa: F401 (fixture)

N_APIS = 40
MOVED = range(32, 40)      # files renamed in commit 2: deleted first by an in-place checkout
PAD = 4 << 20              # the checkout of commit 2 needs at least this much
SLACK = 1 << 20            # free space left for the fetch's own files (index, refs, pages)


@pytest.fixture
def tmpfs_cache(tmp_path):
    """A tmpfs as the daemon's cache_dir, large until the test shrinks it."""
    d = str(tmp_path / "cache")
    os.makedirs(d)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", d], check=True)
    yield d
    if subprocess.run(["umount", d], stderr=subprocess.DEVNULL).returncode:
        subprocess.run(["umount", "-l", d], check=False)


def used_bytes(path):
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def snapshot(top):
    """{relative path: (mode, bytes or link target)} of a whole tree."""
    out = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, top)
            if os.path.islink(p):
                out[rel] = (st.st_mode, os.readlink(p))
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out[rel] = (st.st_mode, f.read())
            else:
                out[rel] = (st.st_mode, None)
    return out


def pack_size(work, old, new):
    """Bytes git needs to send from old to new: what the fetch will store."""
    objs = git(work, "rev-list", "--objects", "%s..%s" % (old, new))
    p = subprocess.run(["git", "pack-objects", "--stdout", "-q"], cwd=work, check=True,
                       input=(objs + "\n").encode(), stdout=subprocess.PIPE)
    return len(p.stdout)


def apis_on(gateway):
    code, body = gateway.api("GET", "/tyk/apis")
    assert code == 200
    return {a["api_id"]: a for a in body}


def audit_records(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def passes(d, result):
    return metric(d.metrics(), "tyk_gitops_reconcile_total", sync="test", result=result)


def test_checkout_out_of_space__previous_tree_kept_and_nothing_deleted(
        gateway, repo, upstream, tmp_path, tmpfs_cache, daemons):
    ids = ["a%02d" % i for i in range(N_APIS)]
    for a in ids:
        repo.write("apis/%s.json" % a, keyless_api(a, "/%s/" % a, upstream.url))
    one = repo.commit("forty apis")
    audit = str(tmp_path / "audit.jsonl")
    d = Daemon(str(tmp_path), [sync_spec("test", repo, gateway, interval="1s", drift="1h",
                                         backoff_max="2s")],
               extra_cfg="audit: %s" % audit)
    daemons.append(d)
    d.wait_ready()
    wait_for(lambda: d.status("test")["last_outcome"] == "success", 30, "first pass")
    assert d.status("test")["last_commit"] == one
    assert sorted(apis_on(gateway)) == ids
    work = os.path.join(tmpfs_cache, "test", "work")
    tree = os.path.realpath(work)
    before = snapshot(work)
    assert len([p for p in before if p.endswith(".json")]) == N_APIS

    # Commit 2: same APIs, 8 of them in other files, plus padding the loader skips.
    for i in MOVED:
        os.rename(os.path.join(repo.work, "apis", "%s.json" % ids[i]),
                  os.path.join(repo.work, "apis", "moved-%s.json" % ids[i]))
    os.makedirs(os.path.join(repo.work, "apis", ".padding"))
    with open(os.path.join(repo.work, "apis", ".padding", "blob.bin"), "wb") as f:
        f.write(os.urandom(PAD))
    git(repo.work, "add", "-A")
    git(repo.work, "commit", "-q", "-m", "move eight, pad")
    two = git(repo.work, "rev-parse", "HEAD")
    # Room for the fetch and a little more, far from room for the padding twice.
    fetch = pack_size(repo.work, one, two)
    assert fetch > PAD
    size_kib = (used_bytes(tmpfs_cache) + fetch + SLACK) // 1024 + 1
    subprocess.run(["mount", "-o", "remount,size=%dk" % size_kib, tmpfs_cache], check=True)
    errors0, audited = passes(d, "error"), audit_records(audit)
    git(repo.work, "push", "-q", "-f", "origin", "HEAD:main")

    # Two failed passes (the first and a retry), each reporting the checkout.
    wait_for(lambda: passes(d, "error") >= errors0 + 2, 30, "two failed passes")
    st = d.status("test")
    assert st["last_outcome"] == "error", st
    assert "cannot check out" in st["last_error"], st["last_error"]
    assert "the pass ran on the last good commit %s" % one[:12] in st["last_error"]
    assert st["last_commit"] == one
    # The fetch fitted; the checkout could not have.
    assert free_bytes(tmpfs_cache) < PAD
    # The gateway still has all 40, nothing was changed, the tree is as it was.
    assert sorted(apis_on(gateway)) == ids
    assert audit_records(audit) == audited
    assert os.path.realpath(work) == tree
    assert snapshot(work) == before, "the previous work tree changed"
    left = set(os.listdir(os.path.join(tmpfs_cache, "test")))
    # history.json: the apply history (history.h); verified: what the passes
    # found in sync (verified.h); desired: what each file loaded gave
    # (loadmemo.h).  They live beside the clone.
    assert left <= {"repo.git", "work", "history.json", "verified", "desired", "pass.lock",
                    os.path.basename(tree)}, left

    # Commit 3 drops the padding and renames one API: it converges in the same space.
    git(repo.work, "rm", "-q", "-r", "apis/.padding")
    api = keyless_api(ids[0], "/%s/" % ids[0], upstream.url, name="renamed")
    with open(os.path.join(repo.work, "apis", "%s.json" % ids[0]), "w") as f:
        json.dump(api, f, indent=2)
    git(repo.work, "add", "-A")
    git(repo.work, "commit", "-q", "-m", "unpad")
    three = git(repo.work, "rev-parse", "HEAD")
    git(repo.work, "push", "-q", "-f", "origin", "HEAD:main")
    wait_for(lambda: (lambda s: s["last_outcome"] == "success" and s["last_commit"] == three)(
        d.status("test")), 30, "commit 3 applied")
    live = apis_on(gateway)
    assert sorted(live) == ids
    assert live[ids[0]]["name"] == "renamed"
    assert not [r for r in audit_records(audit) if r.get("action") == "delete"]
    now = snapshot(work)
    assert "apis/moved-%s.json" % ids[MOVED[0]] in now and not any(".padding" in p for p in now)
    # The old tree is gone: one cache, one tree.
    left = set(os.listdir(os.path.join(tmpfs_cache, "test")))
    assert left <= {"repo.git", "work", "history.json", "verified", "desired", "pass.lock",
                    os.path.basename(os.path.realpath(work))}, left
