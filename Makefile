# EWS: build, test and run. `make demo` and `make test` work on a fresh
# Debian bookworm machine: both install what is missing first (make deps).

BUILD      ?= build
CC         ?= cc
SAN_FLAGS  ?=
CFLAGS     ?= -O2 -g
CFLAGS     += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
              -Wstrict-prototypes -fno-common -Iprocessor $(SAN_FLAGS)
LDFLAGS    += $(SAN_FLAGS)
PYTHON     := /usr/bin/python3

PKGS       := rdkafka avro-c hiredis yaml-0.1 jansson libcurl libmicrohttpd
PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

# Debian packages the build, the tests and the demo use.
DEB_PACKAGES := gcc make pkg-config librdkafka-dev libavro-dev \
                libhiredis-dev libyaml-dev libjansson-dev libcurl4-openssl-dev \
                libmicrohttpd-dev libcmocka-dev \
                redis-server \
                redis-tools kcat clang-format python3 python3-pytest \
                python3-avro python3-confluent-kafka python3-redis \
                prometheus docker-compose
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# One folder per stage, in the order of the data flow, then the driver and
# the shared pieces (README.md, "Layout").
STAGES   := in_kafka decode score rules store out_kafka
MODULES  := $(STAGES) pipeline ops util
LIB_SRC  := $(foreach m,$(MODULES),$(wildcard processor/$(m)/*.c))
LIB_OBJ  := $(patsubst processor/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
HEADERS  := $(foreach m,$(MODULES),$(wildcard processor/$(m)/*.h))
LIB      := $(BUILD)/libews.a
TOOLS    := $(BUILD)/ews-devbroker $(BUILD)/ews-gen $(BUILD)/ews-alerts \
            $(BUILD)/ews-inspect $(BUILD)/ews-redrive
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
C_FILES  := $(LIB_SRC) $(HEADERS) processor/main.c \
            $(wildcard processor/tools/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch] \
                       tests/integration/c/*.[ch])

# libFuzzer targets (tests/fuzz/README.md). `make test` replays their seed
# corpus and regressions with gcc; `make fuzz` fuzzes each for FUZZ_SECONDS.
FUZZ_TARGETS := fuzz_avro fuzz_confluent fuzz_json fuzz_stored
FUZZ_REPLAY  := $(patsubst %,$(BUILD)/tests/replay_%,$(FUZZ_TARGETS))
FUZZ_SECONDS ?= 60
# LeakSanitizer's options for the fuzz targets: lsan.supp names avro-c's
# own leaks.
FUZZ_LSAN    := print_suppressions=0:suppressions=$(CURDIR)/tests/fuzz/lsan.supp

.PHONY: all deps test unit integration asan demo format format-check clean \
        fuzz fuzz-build install lint

all: $(BUILD)/ews-processor $(TOOLS)

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $$missing >/dev/null; \
	fi

Q := $(if $(V),,@)

$(BUILD)/obj/%.o: processor/%.c $(HEADERS)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

# Made anew: members of sources moved or removed must not stay in it.
$(LIB): $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/ews-processor: processor/main.c $(LIB)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) $< $(LIB) -o $@ $(LDFLAGS) $(PKG_LIBS)

$(BUILD)/ews-%: processor/tools/ews_%.c $(LIB) | $(BUILD)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) $< $(LIB) -o $@ $(LDFLAGS) \
	  $(PKG_LIBS)

# ews-gen: the CLI and Kafka, the scenario model, its scores and truth.
$(BUILD)/ews-gen: processor/tools/ews_gen.c processor/tools/ews_gen_model.c \
                  processor/tools/ews_gen_truth.c \
                  processor/tools/ews_gen.h $(LIB) | $(BUILD)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) $(filter %.c,$^) $(LIB) \
	  -o $@ $(LDFLAGS) $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB) | $(BUILD)/tests
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) $< $(LIB) -o $@ $(LDFLAGS) \
	  $(PKG_LIBS) -lcmocka

$(BUILD) $(BUILD)/tests:
	$(Q)mkdir -p $@

# make unit T=pattern: only the unit tests whose name matches the cmocka
# pattern (`*` and `?` wildcards, e.g. T='test_codec_*'), passed to each
# binary as EWS_TEST_FILTER; the fuzz corpus replays are then neither built
# nor run.
T ?=
unit: $(UNIT_BIN) $(if $(T),,$(FUZZ_REPLAY))
	@for t in $(UNIT_BIN); do \
	  $(if $(T),EWS_TEST_FILTER='$(T)') $$t || exit 1; \
	done
	$(if $(T),@true,@for t in $(FUZZ_TARGETS); do \
	  LSAN_OPTIONS=$(FUZZ_LSAN) $(BUILD)/tests/replay_$$t \
	    tests/fuzz/corpus/$$t tests/fuzz/regressions/$$t || exit 1; \
	done)

# A fuzz target linked with tests/fuzz/replay.c instead of libFuzzer.
$(BUILD)/tests/replay_%: tests/fuzz/%.c tests/fuzz/replay.c \
                         tests/fuzz/fuzz_common.h $(LIB) | $(BUILD)/tests
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) $< tests/fuzz/replay.c \
	  $(LIB) -o $@ $(LDFLAGS) $(PKG_LIBS)

# Each target for FUZZ_SECONDS, from its seeds, its regressions and what
# earlier runs found (build/fuzz/corpus-<target>/, not committed). A crash
# is saved under build/fuzz/crashes/<target>/; copy it to
# tests/fuzz/regressions/<target>/ so that `make test` replays it from then
# on, and fix the bug. Needs clang: tests/fuzz/build.sh installs it.
fuzz-build: deps
	@tests/fuzz/build.sh

fuzz: fuzz-build
	@rc=0; for t in $(FUZZ_TARGETS); do \
	  LSAN_OPTIONS=$(FUZZ_LSAN) tests/fuzz/run.sh $$t \
	    $(FUZZ_SECONDS) || rc=1; \
	done; exit $$rc

# C tests that need a live process (a real Redis): in tests/integration/c/,
# built here and run by the integration suite. tests/unit/ holds only tests
# that need no process.
STORE_BIN := $(BUILD)/tests/store_zombie

$(BUILD)/tests/store_%: tests/integration/c/store_%.c $(LIB) | $(BUILD)/tests
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) $< $(LIB) -o $@ $(LDFLAGS) \
	  $(PKG_LIBS) -lcmocka

# make integration K=expr: only the tests pytest's `-k expr` selects.
K ?=
integration: all $(STORE_BIN)
	EWS_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q tests/integration \
	  $(if $(K),-k '$(K)')

# The whole suite; its last line is pytest's summary.
test: deps
	$(MAKE) all unit
	$(MAKE) integration

# The suite built and run under AddressSanitizer and UBSan.
asan: deps
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	$(MAKE) BUILD=build/asan CC=gcc \
	  SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer \
	             -fno-sanitize-recover=undefined" all unit integration

demo: deps all
	@EWS_BUILD=$(abspath $(BUILD)) $(PYTHON) tests/demo.py

# Redis memory per user and processor throughput at 100,000 users, against
# kcat as the baseline: a few minutes. See tests/bench/bench.py.
.PHONY: bench
bench: deps all
	@EWS_BUILD=$(abspath $(BUILD)) $(PYTHON) tests/bench/bench.py

format:
	clang-format -i $(C_FILES)

format-check: deps
	@clang-format --dry-run -Werror $(C_FILES) && echo "format-check: ok"

# The include graph between the modules (processor/<module>/) and its
# rules: no cycles, each library only in its modules, no stage including
# the driver, ops or main. The tables are at the top of the script.
lint:
	@$(PYTHON) tests/lint/include_graph.py processor

clean:
	rm -rf build

# make install [PREFIX=/usr/local] [DESTDIR=]: the binaries to PREFIX/bin,
# the schemas and a reference copy of the configuration to PREFIX/share/ews,
# the configuration to /etc/ews/ews.yaml unless one is there already, and
# the systemd unit to PREFIX/lib/systemd/system (searched by systemd for
# PREFIX /usr/local and /usr). The installed configuration and unit name the
# installed paths. ews-devbroker is a test broker and is not installed.
PREFIX      ?= /usr/local
DESTDIR     ?=
UNITDIR     ?= $(PREFIX)/lib/systemd/system
INSTALL_BIN := $(BUILD)/ews-processor \
               $(filter-out $(BUILD)/ews-devbroker,$(TOOLS))

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/ews/schemas \
	  $(DESTDIR)/etc/ews $(DESTDIR)$(UNITDIR)
	install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 schemas/*.avsc $(DESTDIR)$(PREFIX)/share/ews/schemas/
	sed 's|^\(  schema\.dir:\) schemas |\1 $(PREFIX)/share/ews/schemas |' \
	  config/ews.yaml >$(DESTDIR)$(PREFIX)/share/ews/ews.yaml
	chmod 0644 $(DESTDIR)$(PREFIX)/share/ews/ews.yaml
	@if [ -e $(DESTDIR)/etc/ews/ews.yaml ]; then \
	  echo "install: kept $(DESTDIR)/etc/ews/ews.yaml (new one:" \
	       "$(DESTDIR)$(PREFIX)/share/ews/ews.yaml)"; \
	else \
	  install -m 0644 $(DESTDIR)$(PREFIX)/share/ews/ews.yaml \
	    $(DESTDIR)/etc/ews/ews.yaml; \
	fi
	sed 's|/usr/local/|$(PREFIX)/|g' deploy/systemd/ews-processor.service \
	  >$(DESTDIR)$(UNITDIR)/ews-processor.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/ews-processor.service
