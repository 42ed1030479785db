"""Fixtures for end-to-end tests: real Redis, Tyk Gateway, upstream, git repos."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from peers import ROOT, Gateway, Redis, Upstream  # noqa: E402

BIN = os.environ.get("TG_BIN", os.path.join(ROOT, "build", "tyk-gitops"))


@pytest.fixture(scope="session")
def redis():
    r = Redis()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def upstream():
    u = Upstream()
    yield u
    u.stop()


@pytest.fixture
def gateway(redis):
    g = Gateway(redis)
    yield g
    g.destroy()


def git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="Ada Tester", GIT_AUTHOR_EMAIL="ada@example.com",
               GIT_COMMITTER_NAME="Ada Tester", GIT_COMMITTER_EMAIL="ada@example.com")
    return subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false",
                           *args], cwd=cwd, env=env, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True).stdout.strip()


class ConfigRepo:
    """A bare repository served over file:// plus a work tree to commit from."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tg-repo-")
        self.bare = os.path.join(self.dir, "remote.git")
        self.work = os.path.join(self.dir, "work")
        git(self.dir, "init", "-q", "--bare", self.bare)
        git(self.dir, "init", "-q", self.work)
        git(self.work, "remote", "add", "origin", self.bare)
        self.url = "file://" + self.bare

    def write(self, path, content):
        full = os.path.join(self.work, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content, indent=2))

    def remove(self, path):
        os.remove(os.path.join(self.work, path))

    def commit(self, message="change"):
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        git(self.work, "push", "-q", "-f", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def repo():
    r = ConfigRepo()
    yield r
    r.cleanup()


class Controller:
    """Runs the tyk-gitops binary against one gateway and repository."""

    def __init__(self, gateway, repo, tmpdir):
        self.gateway = gateway
        self.repo = repo
        self.cache = os.path.join(tmpdir, "cache")
        self.extra = []

    def args(self, command, *extra):
        return [BIN, command, "--name", "test", "--repo", self.repo.url, "--branch", "main",
                "--gateway", self.gateway.url, "--secret-file", self.gateway.secret_file,
                "--cache-dir", self.cache, *self.extra, *extra]

    def run(self, command, *extra, env=None):
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run(self.args(command, *extra), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=300, env=e)
        return p


@pytest.fixture
def controller(gateway, repo, tmp_path):
    return Controller(gateway, repo, str(tmp_path))


def keyless_api(api_id, listen_path, target, name=None):
    return {
        "name": name or api_id, "api_id": api_id, "org_id": "acme", "use_keyless": True,
        "active": True,
        "proxy": {"listen_path": listen_path, "target_url": target, "strip_listen_path": True},
        "version_data": {"not_versioned": True, "versions": {"Default": {"name": "Default"}}},
    }


def token_api(api_id, listen_path, target):
    api = keyless_api(api_id, listen_path, target)
    api["use_keyless"] = False
    api["use_standard_auth"] = True
    api["auth"] = {"auth_header_name": "Authorization"}
    return api


def policy(pol_id, api_ids, rate=1000, per=60):
    return {
        "id": pol_id, "name": pol_id, "org_id": "acme", "active": True, "rate": rate, "per": per,
        "quota_max": -1,
        "access_rights": {a: {"api_id": a, "api_name": a, "versions": ["Default"]} for a in api_ids},
    }
