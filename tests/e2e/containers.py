"""The tyk-gitops image on a real Docker engine, for the deploy tests.

Every container runs with --network host and reaches the other test peers on
127.0.0.1: the engine the tests start has no default bridge at all
(tests/peers/start-dockerd.sh), so no test traffic can leave loopback.
Containers are named tg-e2e-<pid>-<n> and removed by their fixture.
"""
import itertools
import json
import os
import subprocess
import time

DOCKER = os.environ.get("DOCKER", "docker")
IMAGE = os.environ.get("TG_IMAGE", "")
UID = 65532

_ids = itertools.count(1)


def docker(*args, check=True, timeout=120, input=None):
    return subprocess.run([DOCKER, *args], check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, input=input)


def inspect_image(image):
    return json.loads(docker("image", "inspect", image).stdout)[0]


def secret_dir(path, files):
    """Files the way the kubelet mounts a Secret with defaultMode 0440 and
    fsGroup 65532: owned by root, readable by the controller's group only."""
    os.makedirs(path, exist_ok=True)
    os.chown(path, 0, UID)
    os.chmod(path, 0o750)
    for name, content in files.items():
        p = os.path.join(path, name)
        with open(p, "w") as f:
            f.write(content)
        os.chown(p, 0, UID)
        os.chmod(p, 0o440)
    return path


class Container:
    """`docker run -d` of the image with pod-like settings.

    mounts: (host path, container path) pairs, read-only; tmpfs: container
    paths written at run time (emptyDir), owned by the controller."""

    def __init__(self, image, args=(), mounts=(), tmpfs=(), env=None, memory=None, cpus=None,
                 read_only=True, user="%d:%d" % (UID, UID), group_add=(UID,), entrypoint=None):
        self.name = "tg-e2e-%d-%d" % (os.getpid(), next(_ids))
        cmd = ["run", "-d", "--name", self.name, "--network", "host",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
               "--user", user, "--stop-timeout", "30"]
        for g in group_add:
            cmd += ["--group-add", str(g)]
        if read_only:
            cmd.append("--read-only")
        for host, path in mounts:
            cmd += ["--mount", "type=bind,source=%s,target=%s,readonly" % (host, path)]
        for path in tmpfs:
            cmd += ["--tmpfs",
                    "%s:rw,nosuid,nodev,noexec,uid=%d,gid=%d,mode=0750" % (path, UID, UID)]
        for k, v in (env or {}).items():
            cmd += ["--env", "%s=%s" % (k, v)]
        if memory:
            cmd += ["--memory", str(memory), "--memory-swap", str(memory)]
        if cpus:
            cmd += ["--cpus", str(cpus)]
        if entrypoint is not None:
            cmd += ["--entrypoint", entrypoint]
        self.started = time.time()
        self.id = docker(*cmd, image, *args).stdout.strip()

    def state(self):
        return json.loads(docker("inspect", self.name).stdout)[0]["State"]

    def pid(self):
        return self.state()["Pid"]

    def logs(self):
        p = docker("logs", self.name, check=False)
        return p.stdout + p.stderr

    def exec(self, *args):
        return docker("exec", self.name, *args, check=False)

    def proc_status(self):
        """The controller's /proc/<pid>/status as seen from the host."""
        with open("/proc/%d/status" % self.pid()) as f:
            return dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.pid()) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def signal(self, sig):
        docker("kill", "--signal", sig, self.name)

    def wait(self, timeout):
        """Exit code once the container stopped (TimeoutExpired if it did not)."""
        return int(docker("wait", self.name, timeout=timeout).stdout.strip())

    def remove(self):
        docker("rm", "-f", "-v", self.name, check=False)
