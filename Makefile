# tyk-gitops build.  `make` builds the binary, `make test` runs every test
# (unit + end-to-end against real peers), `make check` runs the suite under
# ASan+UBSan, `make valgrind` runs the unit tests under valgrind.

PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc
PKGS = libgit2 libcurl libcjson yaml-0.1 openssl libmicrohttpd

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

WARN = -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes \
       -Wmissing-prototypes -Wpointer-arith -Wwrite-strings -Wvla -Wundef -fno-common
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iinclude \
	     -DTG_VERSION='"$(VERSION)"' $(shell pkg-config --cflags $(PKGS))
LIBS = $(shell pkg-config --libs $(PKGS)) -lpthread -lm
TEST_LIBS = $(shell pkg-config --libs cmocka)

SRC = $(wildcard controller/*.c)
LIB_SRC = $(filter-out controller/main.c,$(SRC))
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HEADERS = $(wildcard include/tg/*.h)

all: $(BUILD)/tyk-gitops

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libtg.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/tyk-gitops: $(BUILD)/controller/main.o $(BUILD)/libtg.a
	@echo "  LINK    $@"
	@$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libtg.a $(HEADERS)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< $(BUILD)/libtg.a $(LIBS) $(TEST_LIBS)

deps:
	sh tests/peers/install-deps.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

PYTHON ?= /usr/bin/python3

e2e: $(BUILD)/tyk-gitops
	TG_BIN=$(abspath $(BUILD)/tyk-gitops) TG_SANITIZED=$(SANITIZED) $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

# The whole suite: unit tests, then end-to-end tests against real peers.
test: deps all
	$(MAKE) unit
	$(MAKE) e2e

check: deps
	$(MAKE) BUILD=build-asan SANITIZED=1 CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" unit e2e

valgrind: deps $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== valgrind $$t"; \
		valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
		--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 $$t; done

# Every header compiles on its own.
headers:
	@set -e; for h in $(HEADERS); do \
		echo "#include \"$${h#include/}\"" | $(CC) $(ALL_CFLAGS) -x c -fsyntax-only -; done

# clang-tidy with the short list in .clang-tidy; any finding fails.
tidy:
	@set -e; for f in $(SRC); do clang-tidy -quiet $$f -- -std=c11 -D_GNU_SOURCE -Iinclude \
		-DTG_VERSION='"tidy"' $(shell pkg-config --cflags $(PKGS)); done

# Formatting: .clang-format holds the house style.
FORMAT_SRC = $(SRC) $(HEADERS) $(wildcard tests/unit/*.c tests/fuzz/*.c bench/*.c tests/e2e/*.c)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRC)

# libFuzzer targets: tests/fuzz/fuzz_<name>.c, seeds in tests/fuzz/corpus/<name>/.
# FUZZ_SECONDS bounds each run.
FUZZ_SECONDS ?= 30
FUZZ_SRC = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN = $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_SAN = -fsanitize=address,undefined
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude $(FUZZ_SAN) \
	      -DTG_VERSION='"fuzz"' $(shell pkg-config --cflags $(PKGS))
FUZZ_LIB_OBJ = $(LIB_SRC:%.c=build-fuzz/obj/%.o)

# The library is compiled once with coverage, and each target links to it.
build-fuzz/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	@echo "  CC      $< (fuzz)"
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build-fuzz/libtg.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

build-fuzz/%: tests/fuzz/%.c build-fuzz/libtg.a
	@echo "  FUZZ    $@"
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libtg.a $(LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: deps $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
		echo "== $$n"; $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=build-fuzz/ \
		build-fuzz/corpus-$$n tests/fuzz/corpus/$${n#fuzz_} 2>&1 | grep -E 'stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY' || true; \
		done

# Long runs: every target to FUZZ_RUNS executions (10 M by default), then
# the corpus it grew is minimised back into tests/fuzz/corpus/<name>/ (in
# git), so the next run starts where this one ended.  Allocation stacks are
# not recorded (malloc_context_size=0: 1.4x the executions a second); a
# finding is replayed from its artifact with full stacks.
FUZZ_RUNS ?= 10000000
fuzz-long: deps $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); c=$${n#fuzz_}; mkdir -p build-fuzz/corpus-$$n; \
		echo "== $$n ($(FUZZ_RUNS) runs)"; ASAN_OPTIONS=malloc_context_size=0 $$f -runs=$(FUZZ_RUNS) -print_final_stats=1 -artifact_prefix=build-fuzz/ \
		build-fuzz/corpus-$$n tests/fuzz/corpus/$$c 2>&1 | grep -E 'stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY'; \
		rm -rf build-fuzz/min-$$c && mkdir -p build-fuzz/min-$$c; \
		$$f -merge=1 build-fuzz/min-$$c tests/fuzz/corpus/$$c build-fuzz/corpus-$$n 2>/dev/null; \
		rm -rf tests/fuzz/corpus/$$c && mv build-fuzz/min-$$c tests/fuzz/corpus/$$c; \
		echo "   corpus: $$(ls tests/fuzz/corpus/$$c | wc -l) files"; done

# Every input of the committed corpora run once, without fuzzing: the
# corpora are a regression suite for the parsers (in CI).
fuzz-replay: deps $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); c=$${n#fuzz_}; \
		echo "== $$n: $$(ls tests/fuzz/corpus/$$c | wc -l) inputs"; \
		$$f -runs=0 tests/fuzz/corpus/$$c > build-fuzz/replay-$$c.log 2>&1 || \
		{ tail -40 build-fuzz/replay-$$c.log; exit 1; }; done

demo: deps all
	sh examples/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/tyk-gitops $(DESTDIR)$(PREFIX)/bin/tyk-gitops

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all deps unit e2e test check valgrind headers tidy demo install clean fuzz fuzz-build fuzz-long fuzz-replay format format-check

# Container image from docker/Dockerfile.  The build context is only what the
# build stage compiles, sent as a tar, so build trees and .git never reach the
# engine.  No image registry is reachable from this project's machines:
# `make test-deploy` first makes the base image locally
# (tests/peers/base-image.sh); elsewhere the engine pulls it.
DOCKER ?= docker
IMAGE ?= tyk-gitops
IMAGE_TAG ?= $(subst +,-,$(VERSION))
DOCKER_BUILD_FLAGS ?= --network host
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# Credentials in the remote's URL never go into a label.
SOURCE := $(shell git config --get remote.origin.url 2>/dev/null | sed -e 's|//[^/@]*@|//|')

image:
	tar -cf - Makefile include controller docker | $(DOCKER) build $(DOCKER_BUILD_FLAGS) \
		-f docker/Dockerfile --build-arg VERSION='$(VERSION)' --build-arg REVISION='$(REVISION)' \
		--build-arg SOURCE='$(SOURCE)' --build-arg CREATED="$$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		-t $(IMAGE):$(IMAGE_TAG) -t $(IMAGE):latest -
	@$(DOCKER) image inspect -f '  IMAGE   $(IMAGE):$(IMAGE_TAG) {{.Size}} bytes' $(IMAGE):$(IMAGE_TAG)

# Deploy tests: the image on a real Docker engine, the manifests on a real
# kube-apiserver + etcd built from the Go module proxy (cached in
# ~/.cache/tyk-gitops like the gateway; a cold run builds for ~15 minutes).
# Installs docker.io and debootstrap and starts dockerd when none runs.
# Leader election (tests/e2e/test_leases.py) runs here too: it needs the same
# kube-apiserver peer, but no Docker.
test-deploy: deps all
	sh tests/peers/install-deploy-deps.sh
	sh tests/peers/start-dockerd.sh
	sh tests/peers/base-image.sh
	sh tests/peers/build-kube.sh
	$(MAKE) image
	TG_DEPLOY=1 TG_IMAGE=$(IMAGE):$(IMAGE_TAG) $(PYTHON) -m pytest -q -p no:cacheprovider -rs \
		tests/e2e/test_image.py tests/e2e/test_manifests.py tests/e2e/test_leases.py

# Only the leader election tests (the kube-apiserver peer, no Docker).
test-leases: deps all
	sh tests/peers/build-kube.sh >/dev/null
	TG_DEPLOY=1 TG_BIN=$(abspath $(BUILD)/tyk-gitops) $(PYTHON) -m pytest -q -p no:cacheprovider -rs \
		tests/e2e/test_leases.py

.PHONY: image test-deploy test-leases
