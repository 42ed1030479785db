#!/bin/sh
# Builds the open-source Tyk Gateway from its Go module and caches the binary
# outside the repository, keyed by module version.  Prints the binary's path.
#
# Tyk's go.mod has replace directives and no /v5 suffix, so `go install` of a
# tag does not work: the module is downloaded at a commit's pseudo-version,
# copied to a writable directory and built there with CGO_ENABLED=0.
#
# TYK_VERSION picks a release.  Release tags are not module versions, so each
# release maps to its commit.  The module proxy reachable from this project's
# machines does not resolve bare commit hashes and serves only some Tyk
# pseudo-versions (v5.8.15's and v5.14.0's commits are refused there, see
# README "Test peers"); when the pinned release cannot be downloaded, the
# newest Tyk that the proxy does serve is built instead, loudly.
set -eu

version=${TYK_VERSION:-v5.8.15}
case "$version" in
v5.8.15) want=301579e685f8b1023bac81dda9b681326eb98969 ;;
v5.14.0) want=2e9450120e2b05f13457f441ee012cc57d6bd604 ;;
*) want=$version ;;
esac
# Newest gateway module version known to be served by the proxy here
# (master of 2023-02-28, gateway/version.go says v4.3.0; has /tyk/apis,
# /tyk/apis/oas, /tyk/policies and /tyk/reload).
fallback=v1.9.2-0.20230228090416-dfc3f76938c8

# The machine's Go toolchain may not be on a non-login PATH.
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin:/usr/lib/go/bin
cache=${TG_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tyk-gitops}
mkdir -p "$cache"
export GOFLAGS=-mod=mod

download() {
	(cd "$cache" && go mod download -json "github.com/TykTechnologies/tyk@$1" 2>/dev/null) |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

for v in "$want" "$fallback"; do
	# A refusal is remembered for a day so each test run does not ask again.
	if [ -n "$(find "$cache" -maxdepth 1 -name "refused-$v" -mmin -1440 2>/dev/null)" ]; then
		continue
	fi
	if [ -x "$cache/tyk-$v/tyk" ] && [ -d "$cache/tyk-$v/templates" ]; then
		echo "$cache/tyk-$v/tyk"
		exit 0
	fi
	command -v go >/dev/null || { echo "build-tyk: go toolchain not found" >&2; exit 1; }
	dir=$(download "$v")
	if [ -z "$dir" ]; then
		echo "build-tyk: warning: the module proxy does not serve tyk@$v; trying $fallback" >&2
		[ "$v" = "$fallback" ] || touch "$cache/refused-$v"
		continue
	fi
	work=$(mktemp -d "$cache/build.XXXXXX")
	trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
	cp -r "$dir" "$work/src"
	chmod -R u+w "$work/src"
	start=$(date +%s)
	(cd "$work/src" && CGO_ENABLED=0 go build -trimpath -o "$work/tyk" .) >&2
	mkdir -p "$cache/tyk-$v"
	# The gateway panics at start without its error templates.
	rm -rf "$cache/tyk-$v/templates"
	cp -r "$work/src/templates" "$cache/tyk-$v/templates"
	mv "$work/tyk" "$cache/tyk-$v/tyk"
	echo "build-tyk: built tyk@$v in $(( $(date +%s) - start ))s" >&2
	echo "$cache/tyk-$v/tyk"
	exit 0
done
echo "build-tyk: cannot download any Tyk Gateway module version" >&2
exit 1
