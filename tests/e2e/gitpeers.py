"""Real git servers on loopback for the git source tests, and the probe.

Peers: `git daemon` (git://), Apache + git-http-backend (smart HTTP and
HTTPS with basic auth, per-session CA), OpenSSH sshd (ssh://, generated
host and user keys), and a silent TCP server that accepts and never
answers.  Each binds 127.0.0.1 on a free port, lives in a temp dir and is
stopped by its fixture even when a test fails.

The C module is driven through tests/e2e/gitprobe.c, built here against
build/libtg.a.
"""
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PKGS = "libgit2 libcurl libcjson yaml-0.1 openssl libmicrohttpd"
CFLAGS = ("-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wformat=2 -Wshadow "
          "-Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wwrite-strings "
          "-Wvla -Wundef -fno-common -O1 -g").split()

# Deterministic git for the helper repos: no user/system config.
GIT_ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               GIT_AUTHOR_NAME="Alice Author", GIT_AUTHOR_EMAIL="alice@example.com",
               GIT_COMMITTER_NAME="Carol Committer", GIT_COMMITTER_EMAIL="carol@example.com",
               GIT_TERMINAL_PROMPT="0")

# Secrets used by the HTTP peer; tests check they never leak.
HTTP_USER = "alice"
HTTP_PASSWORD = "pw-Secr3t-alice-9f8e"
TOKEN_USER = "x-token-auth"
TOKEN = "tok-ZZ81c7d6aa0b4e"


from peers import free_port, wait_port  # noqa: E402  (shared with the gateway peers)


def sh(*args, cwd=None, check=True):
    return subprocess.run(list(args), cwd=cwd, env=GIT_ENV, check=check,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def mkdtemp(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)  # the web server's CGI runs as www-data
    return d


# ---- the probe ------------------------------------------------------------

def build_probe(outdir):
    """Builds gitprobe against build/libtg.a (make builds it first)."""
    subprocess.run(["make", "-s", "build/libtg.a"], cwd=ROOT, check=True)
    libs = subprocess.run(["pkg-config", "--libs"] + PKGS.split(), check=True,
                          stdout=subprocess.PIPE, text=True).stdout.split()
    cflags = subprocess.run(["pkg-config", "--cflags"] + PKGS.split(), check=True,
                            stdout=subprocess.PIPE, text=True).stdout.split()
    out = os.path.join(outdir, "gitprobe")
    subprocess.run([os.environ.get("CC", "cc")] + CFLAGS + ["-I" + os.path.join(ROOT, "include")]
                   + cflags + ["-o", out, os.path.join(ROOT, "tests/e2e/gitprobe.c"),
                               os.path.join(ROOT, "build/libtg.a")] + libs + ["-lpthread", "-lm"],
                   check=True)
    return out


class Probe:
    def __init__(self, path):
        self.path = path

    def run(self, url, cache, *args, timeout=60):
        cmd = [self.path, "--url", url, "--cache", cache] + [str(a) for a in args]
        t0 = time.time()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        elapsed = time.time() - t0
        try:
            res = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise AssertionError("gitprobe printed no JSON: rc=%d out=%r err=%r"
                                 % (p.returncode, p.stdout, p.stderr))
        res["_rc"] = p.returncode
        res["_out"] = p.stdout + p.stderr
        res["_elapsed"] = elapsed
        assert (p.returncode == 0) == res["ok"], res
        return res


# ---- repositories ---------------------------------------------------------

class Repo:
    """A bare repository under a served root plus a work clone to commit from."""

    def __init__(self, root, name, branch="main"):
        self.root = root
        self.name = name
        self.bare = os.path.join(root, name + ".git")
        self.work = os.path.join(root, "_work", name)
        self.branch = branch
        sh("git", "init", "-q", "--bare", "-b", branch, self.bare)
        sh("git", "config", "http.receivepack", "true", cwd=self.bare)
        sh("git", "config", "uploadpack.allowAnySHA1InWant", "true", cwd=self.bare)
        os.makedirs(os.path.dirname(self.work), exist_ok=True)
        sh("git", "init", "-q", "-b", branch, self.work)
        sh("git", "remote", "add", "origin", self.bare, cwd=self.work)

    def git(self, *args, check=True):
        return sh("git", *args, cwd=self.work, check=check)

    def commit(self, files, msg="change", sign_key=None, push=True):
        for path, content in files.items():
            full = os.path.join(self.work, path)
            if content is None:
                if os.path.exists(full):
                    os.remove(full)
                continue
            os.makedirs(os.path.dirname(full), exist_ok=True)
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(full, mode) as f:
                f.write(content)
        self.git("add", "-A")
        args = ["commit", "-q", "--allow-empty", "-m", msg]
        if sign_key:
            args = ["-c", "gpg.format=ssh", "-c", "user.signingkey=" + sign_key] + args + ["-S"]
        self.git(*args)
        if push:
            self.push()
        return self.head()

    def head(self, ref="HEAD"):
        return self.git("rev-parse", ref).stdout.strip()

    def push(self, force=False, ref=None):
        self.git("push", "-q", "--tags", "origin", ("+" if force else "") + (ref or self.branch))

    def tag(self, name, annotated=True):
        if annotated:
            self.git("tag", "-a", name, "-m", "tag " + name)
        else:
            self.git("tag", name)
        self.git("push", "-q", "origin", "refs/tags/" + name)

    def rewrite(self, files, msg="rewritten"):
        """Drops the last commit and force-pushes a different one."""
        self.git("reset", "-q", "--hard", "HEAD~1")
        sha = self.commit(files, msg, push=False)
        self.push(force=True)
        return sha

    def delete_remote_branch(self, name):
        self.git("push", "-q", "origin", "--delete", name)


_repo_ids = itertools.count(1)


class RepoFactory:
    def __init__(self, root):
        self.root = root

    def __call__(self, prefix="r", **kw):
        return Repo(self.root, "%s%d-%d" % (prefix, os.getpid(), next(_repo_ids)), **kw)


# ---- servers --------------------------------------------------------------

class GitDaemon:
    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.dir = mkdtemp("tg-gitd-")
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--base-path=" + root,
             "--listen=127.0.0.1", "--port=%d" % self.port, "--pid-file=" + self.dir + "/pid",
             root], env=GIT_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        wait_port(self.port, proc=self.proc)

    def url(self, repo):
        return "git://127.0.0.1:%d/%s.git" % (self.port, repo.name)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def make_ca(d):
    """A CA and a server certificate for 127.0.0.1/localhost, in d."""
    def ossl(*a):
        subprocess.run(["openssl"] + list(a), cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
         "-days", "2", "-subj", "/CN=tg test ca")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    # A second, unrelated CA: trusting it must not trust the server.
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out",
         "other-ca.crt", "-days", "2", "-subj", "/CN=tg other ca")
    os.chmod(os.path.join(d, "server.key"), 0o600)


APACHE_CONF = """
ServerRoot "{d}"
ServerName 127.0.0.1
PidFile "{d}/httpd.pid"
DefaultRuntimeDir "{d}"
ErrorLog "{d}/error.log"
LogLevel warn
Listen 127.0.0.1:{http}
Listen 127.0.0.1:{https}
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule authn_file_module /usr/lib/apache2/modules/mod_authn_file.so
LoadModule authz_user_module /usr/lib/apache2/modules/mod_authz_user.so
LoadModule auth_basic_module /usr/lib/apache2/modules/mod_auth_basic.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule cgi_module /usr/lib/apache2/modules/mod_cgi.so
LoadModule env_module /usr/lib/apache2/modules/mod_env.so
LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so
LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so
{user}
StartServers 2
Timeout 30
SSLSessionCache "shmcb:{d}/ssl_scache(512000)"
SetEnv GIT_PROJECT_ROOT {root}
SetEnv GIT_HTTP_EXPORT_ALL 1
SetEnv GIT_CONFIG_COUNT 1
SetEnv GIT_CONFIG_KEY_0 safe.directory
SetEnv GIT_CONFIG_VALUE_0 *
ScriptAlias /git/ /usr/lib/git-core/git-http-backend/
ScriptAlias /anon/ /usr/lib/git-core/git-http-backend/
<Location /git/>
  AuthType Basic
  AuthName "git"
  AuthBasicProvider file
  AuthUserFile "{d}/htpasswd"
  Require valid-user
</Location>
<Location /anon/>
  Require all granted
</Location>
<VirtualHost 127.0.0.1:{https}>
  SSLEngine on
  SSLCertificateFile "{d}/server.crt"
  SSLCertificateKeyFile "{d}/server.key"
</VirtualHost>
"""


class Apache:
    def __init__(self, root):
        self.root = root
        self.dir = mkdtemp("tg-httpd-")
        self.http = free_port()
        self.https = free_port()
        make_ca(self.dir)
        self.ca = os.path.join(self.dir, "ca.crt")
        self.other_ca = os.path.join(self.dir, "other-ca.crt")
        lines = []
        for user, pw in ((HTTP_USER, HTTP_PASSWORD), (TOKEN_USER, TOKEN)):
            h = subprocess.run(["openssl", "passwd", "-apr1", pw], check=True,
                               stdout=subprocess.PIPE, text=True).stdout.strip()
            lines.append("%s:%s\n" % (user, h))
        with open(os.path.join(self.dir, "htpasswd"), "w") as f:
            f.writelines(lines)
        os.chmod(os.path.join(self.dir, "htpasswd"), 0o644)
        user = "User www-data\nGroup www-data" if os.geteuid() == 0 else ""
        with open(os.path.join(self.dir, "httpd.conf"), "w") as f:
            f.write(APACHE_CONF.format(d=self.dir, http=self.http, https=self.https,
                                       root=root, user=user))
        self.proc = subprocess.Popen(["apache2", "-f", os.path.join(self.dir, "httpd.conf"),
                                      "-DFOREGROUND"], stdout=subprocess.DEVNULL,
                                     start_new_session=True,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "w"))
        try:
            wait_port(self.http, proc=self.proc)
            wait_port(self.https, proc=self.proc)
        except RuntimeError:
            self.stop(keep_logs=True)
            raise

    def url(self, repo, tls=False, auth=True, userinfo=""):
        scheme, port = ("https", self.https) if tls else ("http", self.http)
        return "%s://%s127.0.0.1:%d/%s/%s.git" % (scheme, userinfo, port,
                                                  "git" if auth else "anon", repo.name)

    def log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, keep_logs=False):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if keep_logs:
            sys.stderr.write(self.log())
        shutil.rmtree(self.dir, ignore_errors=True)


SSHD_CONF = """
Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_ed25519
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
LogLevel ERROR
"""


class Sshd:
    def __init__(self, root):
        self.root = root
        self.dir = mkdtemp("tg-sshd-")
        self.port = free_port()
        d = self.dir

        def keygen(name, t="ed25519"):
            subprocess.run(["ssh-keygen", "-q", "-t", t, "-N", "", "-C", name, "-f",
                            os.path.join(d, name)], check=True)
            with open(os.path.join(d, name + ".pub")) as f:
                return f.read().split()
        host = keygen("host_ed25519")
        other = keygen("other_host")
        self.user_key = os.path.join(d, "user_ed25519")
        user = keygen("user_ed25519")
        keygen("stranger_ed25519")
        self.stranger_key = os.path.join(d, "stranger_ed25519")
        with open(os.path.join(d, "authorized_keys"), "w") as f:
            f.write(" ".join(user) + "\n")
        name = "[127.0.0.1]:%d" % self.port
        self.known_hosts = os.path.join(d, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write("# test known_hosts\nexample.org %s %s\n%s %s %s\n"
                    % (other[0], other[1], name, host[0], host[1]))
        self.known_hosts_hashed = os.path.join(d, "known_hosts_hashed")
        shutil.copy(self.known_hosts, self.known_hosts_hashed)
        subprocess.run(["ssh-keygen", "-q", "-H", "-f", self.known_hosts_hashed], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.known_hosts_wrong = os.path.join(d, "known_hosts_wrong")
        with open(self.known_hosts_wrong, "w") as f:
            f.write("%s %s %s\n" % (name, other[0], other[1]))
        self.known_hosts_other_host = os.path.join(d, "known_hosts_other")
        with open(self.known_hosts_other_host, "w") as f:
            f.write("example.org %s %s\n" % (host[0], host[1]))
        with open(os.path.join(d, "sshd_config"), "w") as f:
            f.write(SSHD_CONF.format(port=self.port, d=d))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        self.log = open(os.path.join(d, "sshd.log"), "w")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f",
                                      os.path.join(d, "sshd_config")],
                                     stdout=self.log, stderr=self.log,
                                     start_new_session=True)  # it signals its group
        wait_port(self.port, proc=self.proc)

    def url(self, repo):
        import getpass
        return "ssh://%s@127.0.0.1:%d%s" % (getpass.getuser(), self.port, repo.bare)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class SilentServer:
    """Accepts TCP connections and never sends a byte."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def stop(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            c.close()
        self.thread.join(5)


def assert_no_secret(res, *secrets):
    for s in secrets:
        assert s not in res["_out"], "secret leaked in probe output: %r" % res["_out"]


# ---- fixtures ---------------------------------------------------------------

@pytest.fixture(scope="session")
def probe():
    d = tempfile.mkdtemp(prefix="tg-probe-")
    try:
        yield Probe(build_probe(d))
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def git_root():
    d = mkdtemp("tg-gitroot-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def repos(git_root):
    return RepoFactory(git_root)


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


@pytest.fixture(scope="session")
def git_daemon(git_root):
    d = GitDaemon(git_root)
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="session")
def apache(git_root):
    a = Apache(git_root)
    try:
        yield a
    finally:
        a.stop()


@pytest.fixture(scope="session")
def sshd(git_root):
    s = Sshd(git_root)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def silent_server():
    s = SilentServer()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def secrets(tmp_path):
    """Credential files for the HTTP peer (mode 0600)."""
    files = {}
    for name, val in (("password", HTTP_PASSWORD), ("token", TOKEN), ("wrong", "not-the-pw")):
        p = tmp_path / name
        p.write_text(val + "\n")
        p.chmod(0o600)
        files[name] = str(p)
    return files
