#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (see fuzz/README.md), one after another, each for the
# given number of seconds (default 600), on the nightly toolchain:
#
#   scripts/fuzz.sh [seconds] [target...]     (all targets when none is named)
#
# The committed seeds in fuzz/corpus/<target> are read, never written: what the fuzzer finds
# goes to fuzz/generated/<target> (ignored by git), crashes to fuzz/artifacts/<target>, each
# run's output to fuzz/logs/<target>.log. Exits non-zero when any target crashed.
set -euo pipefail

cd "$(dirname "$0")/.."

seconds="${1:-600}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [seconds] [target...]" >&2
  exit 2
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(service_definitions storage_events object_keys multipart_uploads)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# Outside the tree, away from the stable workspace's build.
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/oscar/fuzz-target}"
mkdir -p fuzz/logs

failed=()
for target in "${targets[@]}"; do
  if [[ ! -f "fuzz/fuzz_targets/$target.rs" ]]; then
    echo "fuzz: no target named $target" >&2
    exit 2
  fi
  mkdir -p "fuzz/generated/$target" "fuzz/artifacts/$target"
  log="fuzz/logs/$target.log"
  echo "fuzz: $target for ${seconds}s (log: $log)"
  status=0
  (cd fuzz && cargo +nightly fuzz run --target-dir "$target_dir" "$target" \
    "generated/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=30 -print_final_stats=1) >"$log" 2>&1 || status=$?
  # libFuzzer's last status line and its execution count.
  grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true
  grep -E '^stat::number_of_executed_units' "$log" | tail -n 1 || true
  if [[ $status -ne 0 ]]; then
    echo "fuzz: $target FAILED (exit $status); crash inputs in fuzz/artifacts/$target:" >&2
    ls -1 "fuzz/artifacts/$target" >&2 || true
    tail -n 40 "$log" >&2
    failed+=("$target")
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crash in ${targets[*]}"
