# defer - make, make run, make test, make bench, make fuzz, make clean.
#
# Two builds side by side: $(BUILD)/release (optimised, what `make run` and
# `make bench` use) and $(BUILD)/asan (AddressSanitizer + UBSan, what
# `make test` runs everything against); BUILD defaults to build. Each target
# installs the Debian packages it needs first (scripts/deps.sh, a no-op when
# they are present).

.DEFAULT_GOAL := all
SHELL := /bin/bash

CC ?= cc
PYTHON := /usr/bin/python3
# Where objects and binaries go; override to build in parallel elsewhere.
BUILD ?= build
DATA_DIR ?= $(CURDIR)/data

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
        -Wno-format-nonliteral
ifeq ($(CI),true)
WARN += -Werror
endif
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -Isrc $(WARN) -MMD -MP
LIBS := -luv -lz -lpthread -lm -lhttp_parser -ljansson -lcurl -linih

RELEASE_CFLAGS := $(BASE_CFLAGS) -O2 -g
ASAN_CFLAGS := $(BASE_CFLAGS) -O1 -g -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=all

# Everything but main.c and the CLI goes into a library the tests link
# against. deferctl (src/cli) talks to the server over HTTP with libcurl and
# shares only util/ with it.
LIB_SRC := $(filter-out src/main.c src/cli/%,$(wildcard src/*.c src/*/*.c))
MAIN_SRC := src/main.c
CLI_SRC := $(wildcard src/cli/*.c)
CLI_UTIL := $(filter src/util/%,$(LIB_SRC))
CLI_LIBS := -lcurl -ljansson
UNIT_SRC := $(wildcard tests/unit/test_*.c)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)

REL_OBJ := $(patsubst %.c,$(BUILD)/release/%.o,$(LIB_SRC))
ASAN_OBJ := $(patsubst %.c,$(BUILD)/asan/%.o,$(LIB_SRC))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/asan/tests/%,$(UNIT_SRC))
FUZZ_NAMES := $(FUZZ_SRC:fuzz/%.c=%)
# Code the harnesses share (every fuzz/*.c that is not a harness).
FUZZ_COMMON := $(filter-out $(FUZZ_SRC) fuzz/replay_main.c,$(wildcard fuzz/*.c))
FUZZ_REPLAY := $(FUZZ_NAMES:%=$(BUILD)/asan/fuzz/replay_%)

.PHONY: all run test unit fuzzreplay pytest phptest bench fuzz clean deps-build deps-test \
        deps-bench deps-fuzz

all: deps-build $(BUILD)/deferd $(BUILD)/deferctl

deps-build:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test
deps-bench:
	@scripts/deps.sh bench
deps-fuzz:
	@scripts/deps.sh fuzz

$(BUILD)/release/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE_CFLAGS) -c $< -o $@

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c $< -o $@

$(BUILD)/deferd: $(REL_OBJ) $(BUILD)/release/src/main.o
	$(CC) $(RELEASE_CFLAGS) $^ -o $@ $(LIBS)

$(BUILD)/asan/deferd: $(ASAN_OBJ) $(BUILD)/asan/src/main.o
	$(CC) $(ASAN_CFLAGS) $^ -o $@ $(LIBS)

$(BUILD)/deferctl: $(patsubst %.c,$(BUILD)/release/%.o,$(CLI_SRC) $(CLI_UTIL))
	$(CC) $(RELEASE_CFLAGS) $^ -o $@ $(CLI_LIBS)

$(BUILD)/asan/deferctl: $(patsubst %.c,$(BUILD)/asan/%.o,$(CLI_SRC) $(CLI_UTIL))
	$(CC) $(ASAN_CFLAGS) $^ -o $@ $(CLI_LIBS)

$(BUILD)/asan/tests/%: tests/unit/%.c $(ASAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -Itests/unit $< $(ASAN_OBJ) -o $@ $(LIBS) -lcmocka

# A fuzz harness with a plain main(): replays the committed corpus (seeds
# and past crashes) under the sanitizers, without clang or libFuzzer.
$(BUILD)/asan/fuzz/replay_%: fuzz/%.c fuzz/replay_main.c $(FUZZ_COMMON) $(ASAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -Ifuzz fuzz/replay_main.c $< $(FUZZ_COMMON) $(ASAN_OBJ) -o $@ $(LIBS)

$(BUILD)/bsload: bench/bsload.c
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g $< -o $@ -lm -lpthread

run: all
	@mkdir -p $(DATA_DIR)
	exec $(BUILD)/deferd -b $(DATA_DIR)

# The whole suite, under AddressSanitizer and UndefinedBehaviorSanitizer.
test: deps-test unit fuzzreplay pytest phptest

unit: deps-test $(UNIT_BIN)
	@failed=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || failed=$$((failed + 1)); done; \
	if [ $$failed -ne 0 ]; then echo "$$failed unit test program(s) failed"; exit 1; fi

fuzzreplay: deps-test $(FUZZ_REPLAY)
	@set -e; for h in $(FUZZ_NAMES); do $(BUILD)/asan/fuzz/replay_$$h fuzz/corpus/$$h; done

pytest: deps-test $(BUILD)/asan/deferd $(BUILD)/deferd $(BUILD)/asan/deferctl
	DEFERD=$(abspath $(BUILD))/asan/deferd DEFERD_RELEASE=$(abspath $(BUILD))/deferd \
	    DEFERCTL=$(abspath $(BUILD))/asan/deferctl $(PYTHON) -m pytest -q tests/py

# pheanstalk against deferd, then our own PHP client.
phptest: deps-test $(BUILD)/asan/deferd
	DEFERD=$(abspath $(BUILD))/asan/deferd phpunit --colors=never tests/php
	DEFERD=$(abspath $(BUILD))/asan/deferd phpunit --colors=never -c clients/php/phpunit.xml

bench: deps-bench $(BUILD)/deferd $(BUILD)/bsload
	DEFERD=$(abspath $(BUILD))/deferd BSLOAD=$(abspath $(BUILD))/bsload bench/run.sh
	DEFERD=$(abspath $(BUILD))/deferd BSLOAD=$(abspath $(BUILD))/bsload bench/php.sh

fuzz: deps-fuzz
	BUILD=$(BUILD) fuzz/run.sh

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
