#!/bin/sh
# Installs what the deploy tests (make test-deploy) need on top of
# install-deps.sh: Debian's docker.io for the engine, debootstrap and the
# archive keyring for the base image, PyYAML to read the manifests.
# kube-apiserver, etcd (and kubectl when the machine has none recent enough)
# are built from the Go module proxy by build-kube.sh.  Idempotent.
set -eu

packages="docker.io debootstrap debian-archive-keyring python3-yaml"
missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "install-deploy-deps: installing$missing" >&2
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The packaged engine must not run as a system service with its default
# bridge: start-dockerd.sh starts one without it.
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
fi
exit 0
