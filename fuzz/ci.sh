#!/usr/bin/env bash
# A short, bounded fuzzing run for CI: each target replays its committed corpus
# (fuzz/corpus/<target>/) and then mutates for at most FUZZ_SECONDS (default 20 s) or
# FUZZ_RUNS executions (default 200000), whichever comes first. Exits non-zero on a crash,
# a hang (a unit slower than 5 s; 30 s for windows_yaml, see below), or an input that needs
# more than 512 MB; the input is left in fuzz/artifacts/<target>/ and printed. windows_yaml's
# limit is FUZZ_WINDOWS_TIMEOUT (default 30 s): its target evaluates each window some 25
# times under the sanitizer, and windows whose walks run to their 5000-step bound take up to
# 17 s of that (tens of milliseconds per evaluation in a release build; fuzz/README.md); a
# real hang still fails. The seed is fixed (FUZZ_SEED, default 1) so that a run is
# reproducible as far as libFuzzer allows (a unit near a time limit can still go either
# way); give FUZZ_SEED=0 for a random one (libFuzzer's default).
#
# Needs only the stable Rust toolchain and a C++ compiler (libFuzzer is C++; g++ does):
# cargo-fuzz is installed when missing, and RUSTC_BOOTSTRAP=1 lets stable rustc take the
# -Z flags (sanitizer, coverage instrumentation) cargo-fuzz passes.
#
#   bash fuzz/ci.sh                     # all targets
#   bash fuzz/ci.sh cron                # some targets
#   FUZZ_SECONDS=600 bash fuzz/ci.sh    # longer
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTC_BOOTSTRAP=1
# Its own target directory: instrumented builds share nothing with the main crate's.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
runs="${FUZZ_RUNS:-200000}"
seconds="${FUZZ_SECONDS:-20}"
seed="${FUZZ_SEED:-1}"
unit_timeout() {
    case "$1" in
        windows_yaml) echo "${FUZZ_WINDOWS_TIMEOUT:-30}" ;;
        *) echo 5 ;;
    esac
}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(review windows_yaml cron)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
fi
if ! command -v c++ >/dev/null 2>&1; then
    echo "fuzz/ci.sh: libFuzzer needs a C++ compiler (apt-get install g++)" >&2
    exit 2
fi

echo "== cargo fuzz build (${targets[*]})"
for target in "${targets[@]}"; do
    cargo fuzz build "$target"
done

status=0
for target in "${targets[@]}"; do
    timeout="$(unit_timeout "$target")"
    echo "== cargo fuzz run $target (seed $seed, at most $runs runs, ${seconds}s, ${timeout}s per unit)"
    # New inputs go to a scratch directory: the committed corpus is only read.
    scratch="$(mktemp -d)"
    if ! cargo fuzz run "$target" "$scratch" "fuzz/corpus/$target" -- \
        -seed="$seed" -runs="$runs" -max_total_time="$seconds" -rss_limit_mb=512 -timeout="$timeout" \
        -dict="fuzz/dict/$target.dict" -print_final_stats=1 2>"$scratch.log"; then
        # From the first sign of trouble to the end: the panic, the stack, the input.
        awk '/panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|ALARM/ {p = 1} p' "$scratch.log" \
            | head -n 200
        echo "fuzz/ci.sh: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
        status=1
    else
        grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$scratch.log" || true
        echo "$target: ok"
    fi
    rm -rf "$scratch" "$scratch.log"
done
exit "$status"
