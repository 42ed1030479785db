#!/bin/sh
# Git source benchmark: a repository of 10,000 files served by git daemon on
# loopback.  Measures
#   1. a no-change poll (tg_git_remote_head + compare) vs `git ls-remote`;
#   2. fetch + checkout of one new commit (tg_git_sync) vs `git fetch` +
#      `git checkout -f` in an up-to-date clone;
# each as wall time per run of a fresh process (same overhead for both), and
# the in-process time the module reports.
# Usage: sh bench/git_poll.sh [files=10000] [polls=20] [commits=5]
set -eu

FILES=${1:-10000}
POLLS=${2:-20}
COMMITS=${3:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKGS="libgit2 libcurl libcjson yaml-0.1 openssl libmicrohttpd"
T=$(mktemp -d /tmp/tg-bench-git.XXXXXX)
DPID=
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

now_ms() { date +%s%3N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
per() { awk -v a="$1" -v n="$2" 'BEGIN { printf "%.1f", a / n }'; }

echo "== building gitprobe"
make -s -C "$ROOT" build/libtg.a
cc -std=c11 -D_GNU_SOURCE -O2 -I"$ROOT/include" $(pkg-config --cflags $PKGS) \
	-o "$T/gitprobe" "$ROOT/tests/e2e/gitprobe.c" "$ROOT/build/libtg.a" \
	$(pkg-config --libs $PKGS) -lpthread -lm

echo "== repository with $FILES files"
git init -q --bare -b main "$T/srv/repo.git"
git init -q -b main "$T/work"
python3 - "$T/work" "$FILES" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "apis", "%03d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "api-%05d.yaml" % i), "w") as f:
        f.write("name: api-%d\nlisten_path: /api/%d/\ntarget: http://upstream:%d/\n" % (i, i, 8000 + i % 1000))
EOF
git -C "$T/work" add -A
git -C "$T/work" commit -qm "initial"
git -C "$T/work" push -q "$T/srv/repo.git" main

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
git daemon --reuseaddr --export-all --base-path="$T/srv" --listen=127.0.0.1 --port="$PORT" "$T/srv" \
	>/dev/null 2>&1 &
DPID=$!
for _ in $(seq 50); do
	git ls-remote "git://127.0.0.1:$PORT/repo.git" >/dev/null 2>&1 && break
	sleep 0.1
done
URL="git://127.0.0.1:$PORT/repo.git"

echo "== initial clone"
t0=$(now_ms); "$T/gitprobe" --url "$URL" --cache "$T/cache" >/dev/null; t1=$(now_ms)
echo "tg_git_sync first clone + checkout:   $((t1 - t0)) ms"
t0=$(now_ms); git clone -q "$URL" "$T/gitclone"; t1=$(now_ms)
echo "git clone (with checkout):            $((t1 - t0)) ms"

echo "== no-change poll, $POLLS runs"
t0=$(now_ms)
for _ in $(seq "$POLLS"); do
	"$T/gitprobe" --url "$URL" --cache "$T/cache" --op head >/dev/null
done
t1=$(now_ms); tg_poll=$((t1 - t0))
t0=$(now_ms)
for _ in $(seq "$POLLS"); do
	git ls-remote "$URL" refs/heads/main >/dev/null
done
t1=$(now_ms); git_poll=$((t1 - t0))
inproc=$("$T/gitprobe" --url "$URL" --cache "$T/cache" --op head --times "$POLLS" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["head_ms"])')
echo "tg remote_head (process per poll):    $(per $tg_poll $POLLS) ms/poll"
echo "git ls-remote (process per poll):     $(per $git_poll $POLLS) ms/poll"
echo "tg remote_head (in-process):          $(per $inproc $POLLS) ms/poll"
echo "ratio tg/git (process per poll):      $(ratio $tg_poll $git_poll)"

echo "== fetch + checkout of one new commit, $COMMITS rounds"
tg_sync=0; git_sync=0; tg_inproc=0
for i in $(seq "$COMMITS"); do
	echo "change $i" >>"$T/work/apis/000/api-00000.yaml"
	git -C "$T/work" commit -qam "change $i"
	git -C "$T/work" push -q "$T/srv/repo.git" main
	t0=$(now_ms)
	out=$("$T/gitprobe" --url "$URL" --cache "$T/cache")
	t1=$(now_ms); tg_sync=$((tg_sync + t1 - t0))
	tg_inproc=$((tg_inproc + $(printf "%s\n" "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["changed"]; print(d["sync_ms"])')))
	t0=$(now_ms)
	git -C "$T/gitclone" fetch -q origin
	git -C "$T/gitclone" checkout -q -f origin/main 2>/dev/null
	t1=$(now_ms); git_sync=$((git_sync + t1 - t0))
done
echo "tg sync (process per run):            $(per $tg_sync $COMMITS) ms/commit"
echo "git fetch + checkout -f:              $(per $git_sync $COMMITS) ms/commit"
echo "tg sync (in-process):                 $(per $tg_inproc $COMMITS) ms/commit"
echo "ratio tg/git:                         $(ratio $tg_sync $git_sync)"
