#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time: scripts/fuzz.sh BUILD_DIR SECONDS
# Corpora live in tests/fuzz/corpus/<target>/ (new inputs are added there),
# dictionaries in tests/fuzz/<target>.dict. Exits non-zero if a target crashed.
set -uo pipefail
build=${1:?build dir}
secs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
failed=0
passed=0
for src in "$root"/tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  bin="$build/$name"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $name was not built" >&2
    failed=$((failed + 1))
    continue
  fi
  corpus="$root/tests/fuzz/corpus/$name"
  mkdir -p "$corpus"
  dict=()
  [ -f "$root/tests/fuzz/$name.dict" ] && dict=(-dict="$root/tests/fuzz/$name.dict")
  art=$(mktemp -d)
  # New inputs go to a scratch dir (first); the checked-in corpus is read-only.
  mkdir -p "$art/corpus"
  echo "fuzz: $name for ${secs}s"
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$art/" "${dict[@]}" "$art/corpus" "$corpus" >"$art/log" 2>&1; then
    passed=$((passed + 1))
    grep -E "stat::number_of_executed_units|cov:" "$art/log" | tail -2
  else
    failed=$((failed + 1))
    tail -40 "$art/log"
    echo "fuzz: $name FAILED; artifacts in $art" >&2
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
