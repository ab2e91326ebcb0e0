#!/usr/bin/env bash
# Fuzzes one target (tests/fuzz/build.sh must have built it) for a number
# of seconds and prints libFuzzer's closing figures:
#
#   tests/fuzz/run.sh fuzz_json 60
#
# The run reads the committed seeds (tests/fuzz/corpus/<target>/) and
# regressions, and keeps what it finds new in build/fuzz/corpus-<target>/,
# which later runs start from. Crashes, leaks and timeouts are written to
# build/fuzz/crashes/<target>/; the full log is build/fuzz/logs/<target>.log.
# Exit status: non-zero when the target failed.
set -uo pipefail
cd "$(dirname "$0")/../.."

target=$1
seconds=${2:-60}
bin=build/fuzz/bin/$target
work=build/fuzz/corpus-$target
crashes=build/fuzz/crashes/$target
log=build/fuzz/logs/$target.log

if [ ! -x "$bin" ]; then
        echo "fuzz $target: $bin missing (tests/fuzz/build.sh)"
        exit 2
fi
mkdir -p "$work" "$crashes" "$(dirname "$log")"
dict=()
[ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")

echo "fuzz $target: ${seconds}s"
"$bin" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$crashes/" "${dict[@]}" \
        "$work" "tests/fuzz/corpus/$target" "tests/fuzz/found/$target" \
        "tests/fuzz/regressions/$target" \
        >"$log" 2>&1
rc=$?

# The last status line (#N DONE cov: ... ft: ... corp: ...) and the stats,
# which libFuzzer prints twice when a leak check fails at exit: the last.
say() { sed "s/^/fuzz $target: /"; }
grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse)' "$log" |
        tail -1 | say
stats='number_of_executed_units|average_exec_per_sec|new_units_added'
stats="$stats|peak_rss_mb"
grep -E "^stat::($stats):" "$log" |
        awk -F: '{ v[$3] = $0; if (!($3 in seen)) { seen[$3]; k[n++] = $3 } }
                 END { for (i = 0; i < n; i++) print v[k[i]] }' | say
if [ "$rc" != 0 ]; then
        grep -E '^(SUMMARY|==[0-9]+==ERROR)' "$log" | head -3 | say
        sed -n "s|.*Test unit written to \(.*\)|\1|p" "$log" |
                while read -r f; do
                        echo "FAILED on $f; to keep it as a regression:"
                        echo "  cp $f tests/fuzz/regressions/$target/"
                done | say
        echo "full log: $log" | say
fi
exit "$rc"
