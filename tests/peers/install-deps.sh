#!/bin/sh
# Installs every build and test dependency on a fresh Debian machine.
# Idempotent and non-interactive; the Go toolchain is expected on the machine.
set -eu

packages="build-essential pkg-config git libgit2-dev libcurl4-openssl-dev libcjson-dev
libyaml-dev libssl-dev libmicrohttpd-dev libcmocka-dev redis-server valgrind clang clang-tidy
python3 python3-pytest python3-yaml openssh-server openssh-client apache2 prometheus curl ca-certificates openssl
clang-format libclang-rt-14-dev python3-jwt python3-cryptography"

missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "install-deps: installing$missing" >&2
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The packaged services must not run system-wide: tests start their own.
for svc in redis-server apache2 ssh prometheus; do
	if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
done
exit 0
