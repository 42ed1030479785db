#!/bin/sh
# Builds a real Kubernetes API server and etcd from their Go modules (and
# kubectl, when the machine has none recent enough) and caches the binaries
# outside the repository, keyed by version, like build-tyk.sh does for the
# gateway.  Prints one `name=path` line per binary on stdout.
#
#   KUBE_VERSION (v1.34.4)  k8s.io/kubernetes; its staging modules are
#                           published as k8s.io/<name> at v0.<minor>.<patch>
#   ETCD_VERSION (v3.6.16)  go.etcd.io/etcd/server/v3
#
# The k8s.io/kubernetes module zip has no staging/ directory, yet its go.mod
# replaces 31 modules with ./staging/src/k8s.io/<name>: in a writable copy
# each such replace is dropped and the published module required instead, and
# go.work is removed.  etcd's server module replaces its sibling modules with
# ../api and friends the same way.  A cold build takes about 10 minutes of CPU
# for kube-apiserver on 2 cores; later runs print the cached paths at once.
set -eu

kube=${KUBE_VERSION:-v1.34.4}
etcd=${ETCD_VERSION:-v3.6.16}
staging=v0.${kube#v1.}

command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin:/usr/lib/go/bin
cache=${TG_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tyk-gitops}
mkdir -p "$cache"
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0

# Two test runs starting at once build once.
exec 9>"$cache/build-kube.lock"
flock 9

work=""
cleanup() { [ -z "$work" ] || { chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"; }; }
trap cleanup EXIT

log() { echo "build-kube: $*" >&2; }

module_dir() {
	(cd "$cache" && go mod download -json "$1" 2>/dev/null) |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# A writable copy of module $1 with every relative replace dropped and the
# replaced module required at $2 instead.
prepare() {
	dir=$(module_dir "$1")
	[ -n "$dir" ] || { log "the module proxy does not serve $1"; exit 1; }
	[ -n "$work" ] || work=$(mktemp -d "$cache/build.XXXXXX")
	src="$work/$(echo "$1" | tr '/@' '__')"
	cp -r "$dir" "$src"
	chmod -R u+w "$src"
	rm -f "$src/go.work" "$src/go.work.sum"
	# Replaces of required modules by a relative directory; others (etcd's
	# "=> ./FORBIDDEN_DEPENDENCY" guards) stay as they are.
	edits=$(cd "$src" && go mod edit -json |
		awk '/"Require"/ { sect = "req" } /"Replace"/ { sect = "rep" } /"Exclude"|"Retract"|"Tool"/ { sect = "" }
		     sect == "req" && /"Path"/ { gsub(/[",]/, "", $2); req[$2] = 1 }
		     sect == "rep" && /"Old"/ { old = 1 } sect == "rep" && /"New"/ { old = 0 }
		     sect == "rep" && old && /"Path"/ { gsub(/[",]/, "", $2); path = $2 }
		     sect == "rep" && !old && /"Path": "\./ && (path in req) { print path }')
	n=0
	for m in $edits; do
		(cd "$src" && go mod edit -dropreplace="$m" -require="$m@$2")
		n=$((n + 1))
	done
	log "$1: $n relative replaces now require $2"
}

kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kube
-X k8s.io/component-base/version.gitMajor=1
-X k8s.io/component-base/version.gitMinor=$(echo "$kube" | cut -d. -f2)
-X k8s.io/component-base/version.gitTreeState=clean
-X k8s.io/client-go/pkg/version.gitVersion=$kube"

build_kube() { # $1: cmd name
	out="$cache/kube-$kube/$1"
	[ -x "$out" ] && return 0
	[ -d "$work/k8s.io_kubernetes_$kube" ] || prepare "k8s.io/kubernetes@$kube" "$staging"
	start=$(date +%s)
	(cd "$work/k8s.io_kubernetes_$kube" &&
		go build -trimpath -ldflags "$kube_ldflags" -o "$work/$1" "./cmd/$1") >&2
	mkdir -p "$cache/kube-$kube"
	mv "$work/$1" "$out"
	log "built $1 $kube in $(($(date +%s) - start))s"
}

build_etcd() {
	out="$cache/etcd-$etcd/etcd"
	[ -x "$out" ] && return 0
	prepare "go.etcd.io/etcd/server/v3@$etcd" "$etcd"
	start=$(date +%s)
	(cd "$work/go.etcd.io_etcd_server_v3_$etcd" &&
		go build -trimpath -ldflags "-s -w" -o "$work/etcd" .) >&2
	mkdir -p "$cache/etcd-$etcd"
	mv "$work/etcd" "$out"
	log "built etcd $etcd in $(($(date +%s) - start))s"
}

# kubectl: the machine's own when it is 1.27 or newer (kustomize v5 with
# components); else one built from the same module as the API server.
# Debian bookworm's kubernetes-client is 1.20, too old for components.
kubectl_ok() {
	command -v kubectl >/dev/null 2>&1 || return 1
	minor=$(kubectl version --client -o json 2>/dev/null |
		sed -n 's/^[[:space:]]*"minor": "\([0-9]*\).*/\1/p' | head -n 1)
	[ -n "$minor" ] && [ "$minor" -ge 27 ]
}

build_kube kube-apiserver
build_etcd
echo "kube-apiserver=$cache/kube-$kube/kube-apiserver"
echo "etcd=$cache/etcd-$etcd/etcd"
if [ "${TG_BUILD_KUBECTL:-0}" != 1 ] && kubectl_ok; then
	echo "kubectl=$(command -v kubectl)"
else
	build_kube kubectl
	echo "kubectl=$cache/kube-$kube/kubectl"
fi
