#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz into build/fuzz/bin/.
#
# Everything the fuzzer should see inside is compiled by clang with the
# fuzzer's coverage and ASan/UBSan: our decode module (processor/
# processor/decode/ and the little it needs), avro-c, and jansson (the JSON
# format's parser). Debian's libavro and libjansson are built without
# either, so both are rebuilt from Debian's own source packages, patches
# applied, so that we fuzz the code we ship against. libcurl (the registry
# client, never called: no registry is configured) stays Debian's.
#
# The source packages are fetched with a private apt configuration under
# build/fuzz/apt/ (a deb-src entry, its own lists and cache): the system's
# apt sources and package lists are neither read nor changed by it.
#
# Idempotent: each step is skipped when its output is newer than its inputs
# and was made with the same flags. Run from anywhere; `make fuzz` calls it.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=build/fuzz
CC=${FUZZ_CC:-clang}
AVRO_PKG=avro-c=1.11.1-1
JANSSON_PKG=jansson=2.14-2
TARGETS=(fuzz_avro fuzz_confluent fuzz_json fuzz_stored)

# UB is a finding, not a warning: stop at the first report.
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined
     -fno-omit-frame-pointer"
LIB_CFLAGS="-g -O1 $SAN -fsanitize=fuzzer-no-link"
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
AVRO_CFLAGS="$LIB_CFLAGS -fno-sanitize=null,object-size,alignment
             -fsanitize-ignorelist=$(pwd)/tests/fuzz/avro-c.ignorelist"
# Not -Werror: clang warns where gcc (the project's compiler) does not, and
# a new clang warning in processor/ must not stop fuzzing.
EWS_CFLAGS="$LIB_CFLAGS -std=c11 -D_GNU_SOURCE -Wall -Wextra"
LIB_CFLAGS=$(echo $LIB_CFLAGS)
AVRO_CFLAGS=$(echo $AVRO_CFLAGS)
EWS_CFLAGS=$(echo $EWS_CFLAGS)

say() { echo "fuzz-build: $*"; }

# libclang-rt-14-dev holds libFuzzer and is only recommended by clang, so
# it is named here; the rest builds the two libraries.
PACKAGES=(clang libclang-rt-14-dev cmake dpkg-dev pkg-config libjansson-dev
          zlib1g-dev liblzma-dev libcurl4-openssl-dev)
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

# fetch PACKAGE=VERSION: Debian's source package, unpacked and patched
# into build/fuzz/src/<package>-<upstream version>/.
apt_updated=
fetch() {
        local pkg=${1%%=*} version=${1#*=}
        local dir=$OUT/src/$pkg-${version%-*}
        local apt_dir=$(pwd)/$OUT/apt
        local apt_opts=(-o "Dir::Etc::SourceList=/dev/null"
                        -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
                        -o "Dir::State::Lists=$apt_dir/lists"
                        -o "Dir::Cache=$apt_dir/cache"
                        -o "APT::Sandbox::User=root")

        [ -f "$dir/CMakeLists.txt" ] && return
        say "fetching Debian's $pkg $version source package"
        mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" \
                "$apt_dir/cache/archives/partial" "$OUT/src"
        cat >"$apt_dir/sources.list.d/debian-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        if [ -z "$apt_updated" ]; then
                apt-get -qq "${apt_opts[@]}" update
                apt_updated=1
        fi
        (cd "$OUT/src" && apt-get -qq "${apt_opts[@]}" source "$1" >/dev/null)
}

# build NAME SOURCE TARGET LIBRARY FLAGS CMAKE_ARGS...: one static library
# of a CMake project into build/fuzz/NAME/, again only when the flags or
# the ignorelist they name changed.
build() {
        local name=$1 src=$2 target=$3 lib=$OUT/$1/$4 flags=$5
        local stamp=$OUT/$name/.ews-flags
        shift 5
        local ignorelist=
        [[ $flags =~ -fsanitize-ignorelist=([^ ]+) ]] &&
                ignorelist=${BASH_REMATCH[1]}
        if [ -f "$lib" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$CC $flags" ] &&
           { [ -z "$ignorelist" ] || [ ! "$ignorelist" -nt "$lib" ]; }; then
                return
        fi
        say "building $name with $flags"
        rm -rf "${OUT:?}/$name"
        # An empty build type keeps asserts (no -DNDEBUG) and our -O1.
        cmake -S "$src" -B "$OUT/$name" -DCMAKE_BUILD_TYPE= \
                -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$flags" "$@" \
                >"$OUT/$name-cmake.log" 2>&1 ||
                { cat "$OUT/$name-cmake.log"; exit 1; }
        cmake --build "$OUT/$name" --target "$target" -j"$(nproc)" \
                >"$OUT/$name-build.log" 2>&1 ||
                { tail -50 "$OUT/$name-build.log"; exit 1; }
        echo "$CC $flags" >"$stamp"
}

fetch "$JANSSON_PKG"
fetch "$AVRO_PKG"
JANSSON_SRC=$OUT/src/jansson-2.14
AVRO_SRC=$OUT/src/avro-c-1.11.1
build jansson "$JANSSON_SRC" jansson lib/libjansson.a "$LIB_CFLAGS" \
        -DJANSSON_BUILD_DOCS=OFF -DJANSSON_EXAMPLES=OFF \
        -DJANSSON_WITHOUT_TESTS=ON
# Only avro-c's static library: its tools and tests are not fuzzed. It is
# compiled against Debian's jansson headers, the same 2.14 as ours.
build avro "$AVRO_SRC" avro-static src/libavro.a "$AVRO_CFLAGS"
JANSSON_LIB=$OUT/jansson/lib/libjansson.a
AVRO_LIB=$OUT/avro/src/libavro.a

# The codecs avro-c's CMake found and compiled in (datafile support, never
# used by us, but referenced by the library).
LIBS="$AVRO_LIB $JANSSON_LIB"
cache=$OUT/avro/CMakeCache.txt
grep -q '^ZLIB_LIBRARY_RELEASE:FILEPATH=/' "$cache" && LIBS="$LIBS -lz"
grep -q '^LZMA_FOUND:INTERNAL=1' "$cache" && LIBS="$LIBS -llzma"
grep -q '^SNAPPY_LIBRARIES:FILEPATH=/' "$cache" && LIBS="$LIBS -lsnappy"
LIBS="$LIBS $(pkg-config --libs libcurl) -lm"

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
INC=(-Iprocessor -I"$AVRO_SRC/src" -I"$OUT/jansson/include"
     $(pkg-config --cflags libcurl))
# The headers these sources include, not all of processor/: the other
# stages change more often.
deps=(processor/decode/*.h processor/util/*.h processor/store/codec.h
      "$AVRO_LIB" "$JANSSON_LIB")
objs=()
for src in processor/decode/*.c processor/util/*.c processor/store/codec.c \
           processor/store/names.c; do
        obj=$OUT/obj/${src#processor/}
        obj=${obj%.c}.o
        objs+=("$obj")
        if stale "$obj" "$src" "${deps[@]}"; then
                echo "  CC      $src"
                mkdir -p "$(dirname "$obj")"
                $CC $EWS_CFLAGS "${INC[@]}" -c "$src" -o "$obj"
        fi
done
# A source removed since the last build must not stay linked in.
for obj in $(find "$OUT/obj" -name '*.o'); do
        src=processor/${obj#"$OUT"/obj/}
        [ -f "${src%.o}.c" ] || rm -f "$obj"
done

for t in "${TARGETS[@]}"; do
        bin=$OUT/bin/$t
        if stale "$bin" "tests/fuzz/$t.c" tests/fuzz/*.h "${objs[@]}"; then
                echo "  LD      $bin"
                $CC $EWS_CFLAGS -fsanitize=fuzzer "${INC[@]}" \
                        "tests/fuzz/$t.c" "${objs[@]}" -o "$bin" $LIBS
        fi
done
say "ok: ${TARGETS[*]/#/$OUT/bin/}"
