#!/bin/sh
# Benchmark of desired-state loading (what `tyk-gitops validate` does):
# generates repositories with 1,000 and 10,000 APIs (half classic JSON,
# half Tyk OAS YAML) plus one policy per 10 APIs, loads each with
# bench/bench_load.c and prints seconds per 1,000 files and peak RSS.
# Run from the repository root after `make build/libtg.a`.
set -eu

BUILD=${BUILD:-build}
OUT=${OUT:-$BUILD/bench}
mkdir -p "$OUT"
[ -f "$BUILD/libtg.a" ] || make "$BUILD/libtg.a" >/dev/null
PKGS="libgit2 libcurl libcjson yaml-0.1 openssl libmicrohttpd"
# Built without the Makefile so the benchmark does not depend on its rules.
cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude $(pkg-config --cflags $PKGS) -o "$OUT/bench_load" \
	bench/bench_load.c "$BUILD/libtg.a" $(pkg-config --libs $PKGS) -lpthread -lm

gen() {
	python3 - "$1" "$2" <<'PY'
import json, os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(root + "/apis", exist_ok=True)
os.makedirs(root + "/policies", exist_ok=True)
for i in range(n):
    if i % 2 == 0:
        api = {"name": "API %d" % i, "api_id": "api-%d" % i, "org_id": "default",
               "use_keyless": False, "auth": {"auth_header_name": "Authorization"},
               "definition": {"location": "header", "key": "x-api-version"},
               "version_data": {"not_versioned": True, "versions": {"Default": {
                   "name": "Default", "use_extended_paths": True,
                   "extended_paths": {"ignored": [{"path": "/health", "method_actions": {
                       "GET": {"action": "no_action", "code": 200, "headers": {}}}}]}}}},
               "proxy": {"listen_path": "/api-%d/" % i, "target_url": "http://upstream-%d:8080/" % i,
                         "strip_listen_path": True},
               "global_rate_limit": {"rate": 100, "per": 1}, "active": True}
        with open("%s/apis/api-%05d.json" % (root, i), "w") as f:
            json.dump(api, f, indent=2)
    else:
        with open("%s/apis/api-%05d.yaml" % (root, i), "w") as f:
            f.write("""openapi: 3.0.3
info:
  title: API %d
  version: 1.0.0
paths:
  /pets:
    get:
      operationId: list%d
      responses:
        "200":
          description: ok
x-tyk-api-gateway:
  info:
    id: api-%d
    name: API %d
    state: {active: true}
  upstream:
    url: http://upstream-%d:8080/
  server:
    listenPath:
      value: /api-%d/
      strip: true
""" % (i, i, i, i, i, i))
for p in range(max(1, n // 10)):
    rights = {"api-%d" % j: {"api_id": "api-%d" % j, "versions": ["Default"]}
              for j in range(p * 10, min(n, p * 10 + 10))}
    with open("%s/policies/pol-%05d.json" % (root, p), "w") as f:
        json.dump({"id": "pol-%d" % p, "name": "Policy %d" % p, "rate": 100, "per": 1,
                   "quota_max": -1, "access_rights": rights}, f, indent=2)
PY
}

for n in 1000 10000; do
	dir="$OUT/repo-$n"
	rm -rf "$dir"
	gen "$dir" "$n"
	files=$(find "$dir" -type f | wc -l)
	line=$("$OUT/bench_load" "$dir")
	secs=$(echo "$line" | sed 's/.*seconds=\([0-9.]*\).*/\1/')
	rss=$(echo "$line" | sed 's/.*peak_rss_kb=\([0-9]*\).*/\1/')
	awk -v n="$n" -v f="$files" -v s="$secs" -v r="$rss" -v l="$line" 'BEGIN {
		printf "%d apis, %d files: %s\n  %.3f s per 1000 files, peak RSS %.1f MiB\n", n, f, l, s * 1000 / f, r / 1024 }'
done

# Wide objects: one API holding 100,000 extra keys (what a hostile or generated
# file can do) against the same keys spread over 1,000 APIs of 100 keys each,
# the same bytes in ordinary shapes.  Key lookups were linear per key, so the
# wide file took a minute; the ratio shows whether loading stays linear.
wide() {
	python3 - "$1" "$2" <<'PY'
import json, os, sys
root, shape = sys.argv[1], sys.argv[2]
os.makedirs(root + "/apis", exist_ok=True)
def api(i, keys):
    a = {"api_id": "w-%d" % i, "name": "w %d" % i, "org_id": "o",
         "proxy": {"listen_path": "/w-%d/" % i, "target_url": "http://x"}}
    a.update(("k%d" % k, k) for k in keys)
    return a
if shape == "wide":
    with open(root + "/apis/wide.json", "w") as f:
        json.dump(api(0, range(100000)), f)
else:
    for i in range(1000):
        with open(root + "/apis/n-%04d.json" % i, "w") as f:
            json.dump(api(i, range(i * 100, i * 100 + 100)), f)
PY
}
for shape in spread wide; do
	rm -rf "$OUT/repo-$shape"
	wide "$OUT/repo-$shape" "$shape"
done
spread=$("$OUT/bench_load" "$OUT/repo-spread" | sed 's/.*seconds=\([0-9.]*\).*/\1/')
wide=$("$OUT/bench_load" "$OUT/repo-wide" | sed 's/.*seconds=\([0-9.]*\).*/\1/')
awk -v s="$spread" -v w="$wide" 'BEGIN {
	printf "100,000 keys: spread over 1,000 APIs %.3f s, in one API %.3f s (%.2fx)\n", s, w, w / s }'
