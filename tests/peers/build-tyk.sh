#!/bin/sh
# Build the open-source Tyk Gateway from its Go module and cache the binary
# outside the repository, keyed by version.  Prints the binary's path.
#
# Tyk's go.mod has replace directives and no /v5 suffix, so `go install` of a
# tag does not work: download the module at the tag's commit, copy it to a
# writable directory and build there.
set -eu

version=${TYK_VERSION:-v5.8.15}
case "$version" in
v5.8.15) commit=301579e685f8b1023bac81dda9b681326eb98969 ;;
v5.14.0) commit=2e9450120e2b05f13457f441ee012cc57d6bd604 ;;
*) echo "build-tyk: unknown version '$version' (add its commit here)" >&2; exit 1 ;;
esac

cache=${TG_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tyk-gitops}
bin="$cache/tyk-$version/tyk"
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

command -v go >/dev/null || { echo "build-tyk: go toolchain not found" >&2; exit 1; }
mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

export GOFLAGS=-mod=mod
dir=$(cd "$work" && go mod download -json "github.com/TykTechnologies/tyk@$commit" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "build-tyk: cannot download tyk@$commit" >&2; exit 1; }
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
start=$(date +%s)
(cd "$work/src" && CGO_ENABLED=0 go build -trimpath -o "$work/tyk" .) >&2
mkdir -p "$cache/tyk-$version"
mv "$work/tyk" "$bin"
echo "build-tyk: built $version in $(( $(date +%s) - start ))s" >&2
echo "$bin"
