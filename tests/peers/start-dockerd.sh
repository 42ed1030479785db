#!/bin/sh
# Starts a Docker engine for the deploy tests when none answers (Debian's
# docker.io, installed by install-deploy-deps.sh).  Idempotent; needs root.
#
# The engine runs with no default bridge and no iptables rules: every build and
# container of the tests uses --network host, and the default bridge (a
# private address range) must never carry their traffic, so it does not exist.
set -eu

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
docker=${DOCKER:-docker}
if $docker info >/dev/null 2>&1; then
	exit 0
fi

cache=${TG_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tyk-gitops}
mkdir -p "$cache"
log="$cache/dockerd.log"
echo "start-dockerd: starting dockerd (log: $log)" >&2
# setsid: the engine outlives the test run that started it, like a system
# service would, so the next run finds it (and its build cache) running.
$SUDO setsid dockerd --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
	--host unix:///var/run/docker.sock >>"$log" 2>&1 </dev/null &
i=0
until $docker info >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 120 ]; then
		echo "start-dockerd: dockerd does not answer after 60s; last lines of $log:" >&2
		tail -n 20 "$log" >&2
		exit 1
	fi
	sleep 0.5
done
echo "start-dockerd: dockerd is up" >&2
