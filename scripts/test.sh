#!/usr/bin/env bash
# Runs every test Portico has against one build, as `make test` does:
#   scripts/test.sh BUILD_DIR        (e.g. build/asan)
#
#   1. unit tests:        ctest --output-on-failure in BUILD_DIR
#   2. integration tests: pytest tests/integration with PORTICO_BIN=BUILD_DIR/portico
#   3. newcomer smoke:    scripts/run.sh on examples/portico.conf (as `make run`),
#                         fetch the printed URLs with curl, stop with SIGTERM
#
# The last line is exactly "summary: N passed, M failed" (unit test programs +
# pytest tests + smoke checks). Exits non-zero if anything failed or nothing ran.
# PT_LONG=1 also runs the tests marked @pytest.mark.long.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
BUILD_DIR=${1:?usage: scripts/test.sh BUILD_DIR}
BUILD_DIR=$(cd "$BUILD_DIR" 2>/dev/null && pwd || echo "$REPO/$BUILD_DIR")
BIN="$BUILD_DIR/portico"
LOG_DIR="$BUILD_DIR/test-logs"
mkdir -p "$LOG_DIR"

unit_pass=0 unit_fail=0 py_pass=0 py_fail=0 smoke_pass=0 smoke_fail=0

section() { printf '\n==== %s ====\n' "$*"; }

# ---------------------------------------------------------------- unit tests
section "unit tests (ctest in $BUILD_DIR)"
if [ -f "$BUILD_DIR/CTestTestfile.cmake" ]; then
  (cd "$BUILD_DIR" && ctest --output-on-failure --timeout 300) 2>&1 | tee "$LOG_DIR/ctest.log"
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$LOG_DIR/ctest.log" | tail -n1)
  if [ -n "$line" ]; then
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
    unit_fail=$failed
    unit_pass=$((total - failed))
  else
    echo "test.sh: no ctest summary (no unit tests ran?)"
  fi
else
  echo "test.sh: $BUILD_DIR has no CTest configuration (build it with 'make asan')"
  unit_fail=1
fi

# ---------------------------------------------------------- integration tests
section "integration tests (pytest, PORTICO_BIN=$BIN)"
PORTICO_BIN="$BIN" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration 2>&1 \
  | tee "$LOG_DIR/pytest.log"
# the last summary line: "3 failed, 150 passed, 2 skipped, 1 error in 12.3s"
pyline=$(grep -E '(passed|failed|error|errors|no tests ran)' "$LOG_DIR/pytest.log" \
         | grep -E ' in [0-9.]+s' | tail -n1)
count() { grep -oE "[0-9]+ $1" <<<"$pyline" | head -n1 | awk '{print $1}'; }
py_pass=$(count passed); py_pass=${py_pass:-0}
pf=$(count failed); pe=$(count 'errors?')
py_fail=$(( ${pf:-0} + ${pe:-0} ))
if [ -z "$pyline" ]; then
  echo "test.sh: no pytest summary line (pytest crashed?)"
  py_fail=$((py_fail + 1))
elif [ $((py_pass + py_fail)) -eq 0 ]; then
  echo "test.sh: pytest ran no tests"
  py_fail=1
fi

# ---------------------------------------------------------------- smoke test
section "newcomer smoke test (scripts/run.sh $BIN examples/portico.conf)"
smoke() {  # smoke NAME COMMAND...: one check
  local name=$1; shift
  if "$@" >"$LOG_DIR/smoke-step.log" 2>&1; then
    echo "  ok    $name"
    smoke_pass=$((smoke_pass + 1))
  else
    echo "  FAIL  $name"
    sed 's/^/        /' "$LOG_DIR/smoke-step.log" | head -n 20
    smoke_fail=$((smoke_fail + 1))
  fi
}
fetch() { curl -sS --noproxy '*' --max-time 5 "$@"; }
wait_up() {  # wait_up URL: until it answers (20 s)
  for _ in $(seq 1 200); do
    if fetch -o /dev/null "$1" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "portico exited early"; return 1; fi
    sleep 0.1
  done
  echo "no answer from $1 within 20 s"
  return 1
}
# The whole answer is read first: grep -q stopping early would fail curl (SIGPIPE).
body_has() { local url=$1 want=$2 body; body=$(fetch -f "$url") && grep -qF -- "$want" <<<"$body" \
               || { echo "$url: no '$want'"; return 1; }; }
header_has() { local url=$1 want=$2 head; head=$(fetch -f -o /dev/null -D - "$url") \
                 && tr -d '\r' <<<"$head" | grep -qiF -- "$want" \
                 || { echo "$url: no header '$want'"; return 1; }; }

out="$LOG_DIR/smoke-run.log"
if [ -x "$BIN" ]; then
  bash scripts/run.sh "$BIN" examples/portico.conf >"$out" 2>&1 </dev/null &
  pid=$!   # run.sh execs portico: this is portico's pid
  smoke "portico starts and answers /healthz" wait_up http://localhost:8080/healthz
  urls=$(grep -oE 'http://[^ ]+' "$out" | sort -u)
  smoke "run.sh printed URLs" test -n "$urls"
  for u in $urls; do
    smoke "GET $u" fetch -f -o /dev/null "$u"
  done
  smoke "/ is the demo page through the proxy" body_has http://localhost:8080/ "Portico is running"
  smoke "/ carries X-Served-By: portico" header_has http://localhost:8080/ "x-served-by: portico"
  smoke "/healthz says ok" body_has http://localhost:8080/healthz "ok"
  smoke "/style.css is text/css" header_has http://localhost:8080/style.css "content-type: text/css"
  smoke "/logo.svg is served" header_has http://localhost:8080/logo.svg "content-type: image/svg+xml"
  smoke "/about.html is served" body_has http://localhost:8080/about.html "About this demo"
  smoke "admin /status reports config_generation" body_has http://127.0.0.1:9901/status '"config_generation"'
  smoke "admin /metrics has portico_requests_total" body_has http://127.0.0.1:9901/metrics "portico_requests_total"
  smoke "admin /upstreams shows demo_site up" body_has http://127.0.0.1:9901/upstreams '"state":"up"'
  smoke "admin /metrics has the demo_site server" body_has http://127.0.0.1:9901/metrics 'portico_upstream_server_up{upstream="demo_site"'
  stop_ok() {
    kill -TERM "$pid" 2>/dev/null || { echo "not running"; return 1; }
    for _ in $(seq 1 150); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid"; wait "$pid" 2>/dev/null; echo "still running 15 s after SIGTERM"; return 1
    fi
    wait "$pid"; local rc=$?
    [ "$rc" -eq 0 ] || { echo "exit status $rc"; return 1; }
  }
  smoke "SIGTERM stops it with exit status 0" stop_ok
  smoke "no sanitizer report" bash -c "! grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' '$out'"
  echo "  (output in $out)"
else
  echo "  FAIL  $BIN does not exist"
  smoke_fail=$((smoke_fail + 1))
fi

# ------------------------------------------------------------------ summary
passed=$((unit_pass + py_pass + smoke_pass))
failed=$((unit_fail + py_fail + smoke_fail))
section "summary"
printf '  unit test programs: %d passed, %d failed\n' "$unit_pass" "$unit_fail"
printf '  integration tests:  %d passed, %d failed%s\n' "$py_pass" "$py_fail" \
  "${pyline:+  ($pyline)}"
printf '  smoke checks:       %d passed, %d failed\n' "$smoke_pass" "$smoke_fail"
echo "summary: $passed passed, $failed failed"
if [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ] || [ "$((unit_pass + unit_fail))" -eq 0 ]; then
  exit 1
fi
exit 0
