#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz into build/fuzz/bin/.
#
# Everything the fuzzer should see inside is compiled by clang with the
# fuzzer's coverage and ASan/UBSan: our decode module (processor/filter_
# decode*.c and the little it needs) and avro-c itself. Debian's libavro is
# built without either, so avro-c 1.11.1 is rebuilt from Debian's own source
# package, patches applied, so that we fuzz the code we ship against.
#
# The source package is fetched with a private apt configuration under
# build/fuzz/apt/ (a deb-src entry, its own lists and cache): the system's
# apt sources and package lists are neither read nor changed by it.
#
# Idempotent: each step is skipped when its output is newer than its inputs
# (the avro-c build also when it was made with the same flags). Run from
# anywhere; `make fuzz` calls it.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=build/fuzz
AVRO_VERSION=1.11.1
AVRO_SRC=$OUT/src/avro-c-$AVRO_VERSION
AVRO_BUILD=$OUT/avro
AVRO_LIB=$AVRO_BUILD/src/libavro.a
TARGETS=(fuzz_avro fuzz_confluent fuzz_json)

CC=${FUZZ_CC:-clang}
# UB is a finding, not a warning: stop at the first report.
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined
     -fno-omit-frame-pointer"
SAN=$(echo $SAN)
# avro-c is built without three UBSan checks that it fails by design, on
# every message, so that the fuzzer can get past them:
#  null, object-size: its container_of (avro_private.h) takes member offsets
#    as &((type *)0)->member, at some 300 places;
#  alignment: generic.c packs a record's field values back to back
#    (avro_generic_record_class: next_offset += field_size), so a long after
#    an int or enum is misaligned; x86-64 does not mind.
# ASan still catches what the first two are for (a null dereference faults,
# an access past an object overflows). avro-c.ignorelist leaves single
# functions out of single checks.
AVRO_CFLAGS="-g -O1 $SAN -fno-sanitize=null,object-size,alignment
             -fsanitize-ignorelist=$(pwd)/tests/fuzz/avro-c.ignorelist
             -fsanitize=fuzzer-no-link"
AVRO_CFLAGS=$(echo $AVRO_CFLAGS)
# Not -Werror: clang warns where gcc (the project's compiler) does not, and
# a new clang warning in processor/ must not stop fuzzing.
EWS_CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra $SAN
            -fsanitize=fuzzer-no-link"
EWS_CFLAGS=$(echo $EWS_CFLAGS)

say() { echo "fuzz-build: $*"; }

# libclang-rt-14-dev holds libFuzzer and is only recommended by clang, so
# it is named here; the rest builds avro-c.
PACKAGES=(clang libclang-rt-14-dev cmake dpkg-dev pkg-config libjansson-dev
          zlib1g-dev liblzma-dev)
missing=()
for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
                grep -q '^install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
        say "installing ${missing[*]}"
        sudo=$([ "$(id -u)" = 0 ] || echo sudo)
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- avro-c's source, from Debian -----------------------------------------
if [ ! -f "$AVRO_SRC/CMakeLists.txt" ]; then
        say "fetching Debian's avro-c $AVRO_VERSION source package"
        apt_dir=$(pwd)/$OUT/apt
        mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" \
                "$apt_dir/cache/archives/partial" "$OUT/src"
        cat >"$apt_dir/sources.list.d/debian-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        apt_opts=(-o "Dir::Etc::SourceList=/dev/null"
                  -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
                  -o "Dir::State::Lists=$apt_dir/lists"
                  -o "Dir::Cache=$apt_dir/cache"
                  -o "APT::Sandbox::User=root")
        apt-get -qq "${apt_opts[@]}" update
        (cd "$OUT/src" &&
         apt-get -qq "${apt_opts[@]}" source "avro-c=$AVRO_VERSION-1" \
                 >/dev/null)
fi

# --- avro-c, instrumented, static -----------------------------------------
stamp=$AVRO_BUILD/.ews-flags
if [ ! -f "$AVRO_LIB" ] || [ tests/fuzz/avro-c.ignorelist -nt "$AVRO_LIB" ] ||
   [ "$(cat "$stamp" 2>/dev/null)" != "$CC $AVRO_CFLAGS" ]; then
        say "building avro-c with $AVRO_CFLAGS"
        rm -rf "$AVRO_BUILD"
        # An empty build type keeps asserts (no -DNDEBUG) and our -O1.
        cmake -S "$AVRO_SRC" -B "$AVRO_BUILD" -DCMAKE_BUILD_TYPE= \
                -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$AVRO_CFLAGS" \
                >"$OUT/avro-cmake.log" 2>&1 ||
                { cat "$OUT/avro-cmake.log"; exit 1; }
        # Only the static library: the tools and tests are not fuzzed.
        cmake --build "$AVRO_BUILD" --target avro-static -j"$(nproc)" \
                >"$OUT/avro-build.log" 2>&1 ||
                { tail -50 "$OUT/avro-build.log"; exit 1; }
        echo "$CC $AVRO_CFLAGS" >"$stamp"
fi

# The codecs avro-c's CMake found and compiled in (datafile support, never
# used by us, but referenced by the library).
AVRO_LIBS=$(pkg-config --libs jansson)
grep -q '^ZLIB_LIBRARY_RELEASE:FILEPATH=/' "$AVRO_BUILD/CMakeCache.txt" &&
        AVRO_LIBS="$AVRO_LIBS -lz"
grep -q '^LZMA_FOUND:INTERNAL=1' "$AVRO_BUILD/CMakeCache.txt" &&
        AVRO_LIBS="$AVRO_LIBS -llzma"
grep -q '^SNAPPY_LIBRARIES:FILEPATH=/' "$AVRO_BUILD/CMakeCache.txt" &&
        AVRO_LIBS="$AVRO_LIBS -lsnappy"
# What processor/filter_decode*.c use beyond avro-c (the registry client).
EWS_PKGS=jansson
pkg-config --exists libcurl && EWS_PKGS="$EWS_PKGS libcurl"
EWS_PKG_CFLAGS=$(pkg-config --cflags $EWS_PKGS)
EWS_PKG_LIBS="$(pkg-config --libs $EWS_PKGS) -lm"

# --- the decode module and the targets ------------------------------------
# stale OUT INPUT...: true when OUT is missing or older than an input.
stale() {
        local out=$1 f
        shift
        [ -f "$out" ] || return 0
        for f in "$@"; do
                [ "$f" -nt "$out" ] && return 0
        done
        return 1
}

mkdir -p "$OUT/obj" "$OUT/bin"
INC=(-Iprocessor -I"$AVRO_SRC/src" $EWS_PKG_CFLAGS)
headers=(processor/*.h "$stamp")
objs=()
for src in processor/filter_decode*.c processor/ews.c processor/log.c; do
        obj=$OUT/obj/$(basename "${src%.c}").o
        objs+=("$obj")
        if stale "$obj" "$src" "${headers[@]}"; then
                echo "  CC      $src"
                $CC $EWS_CFLAGS "${INC[@]}" -c "$src" -o "$obj"
        fi
done
# A decode source removed since the last build must not stay linked in.
for obj in "$OUT"/obj/filter_decode*.o; do
        [ -f "processor/$(basename "${obj%.o}").c" ] || rm -f "$obj"
done

for t in "${TARGETS[@]}"; do
        bin=$OUT/bin/$t
        if stale "$bin" "tests/fuzz/$t.c" tests/fuzz/*.h "${objs[@]}" \
                "$AVRO_LIB" "${headers[@]}"; then
                echo "  LD      $bin"
                $CC $EWS_CFLAGS -fsanitize=fuzzer "${INC[@]}" \
                        "tests/fuzz/$t.c" "${objs[@]}" "$AVRO_LIB" \
                        -o "$bin" $EWS_PKG_LIBS $AVRO_LIBS
        fi
done
say "ok: ${TARGETS[*]/#/$OUT/bin/}"
