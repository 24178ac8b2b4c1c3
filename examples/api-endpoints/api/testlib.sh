# Sourced by every test task: start a private copy of the API, check responses, report.
#
# Each task starts its own server on a free port and stops it when the task's shell exits. A server
# cannot be shared between tasks anyway: the runner stops every process a task started when the
# task ends, so nothing outlives the task that launched it.

API_DIR=$(mktemp -d)
PASSED=0
FAILED=0

stop_api() {
  if [ -n "${API_PID:-}" ]; then
    kill "$API_PID" 2>/dev/null || true
    wait "$API_PID" 2>/dev/null || true
  fi
  rm -rf "$API_DIR"
}
trap stop_api EXIT

start_api() {
  python3 api/server.py --port-file "$API_DIR/port" >"$API_DIR/server.log" 2>&1 &
  API_PID=$!
  for _ in $(seq 100); do
    if [ -s "$API_DIR/port" ]; then break; fi
    sleep 0.05
  done
  if [ ! -s "$API_DIR/port" ]; then
    echo "The API did not start within 5 s:"
    cat "$API_DIR/server.log"
    exit 1
  fi
  BASE="http://127.0.0.1:$(cat "$API_DIR/port")"
  echo "| | Request | Expected | Got |"
  echo "|---|---------|----------|-----|"
}

# check METHOD PATH STATUS [BODY [TEXT]]: the response has STATUS and, if given, contains TEXT.
check() {
  local method=$1 path=$2 want=$3 body=${4:-} text=${5:-} got
  local args=(-s -o "$API_DIR/body" -w '%{http_code}' -X "$method" "$BASE$path")
  if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' --data "$body"); fi
  got=$(curl "${args[@]}" || echo "no answer")
  local request="$method $path${body:+ \`$body\`}"
  local expected="$want${text:+, body has \`$text\`}"
  if [ "$got" = "$want" ] && { [ -z "$text" ] || grep -qF -- "$text" "$API_DIR/body"; }; then
    PASSED=$((PASSED + 1))
    echo "| ✅ | $request | $expected | $got |"
  else
    FAILED=$((FAILED + 1))
    echo "| ❌ | $request | $expected | $got \`$(head -c 200 "$API_DIR/body" 2>/dev/null)\` |"
  fi
}

# finish: print the tally; the task fails if any check failed.
finish() {
  echo
  echo "**$PASSED of $((PASSED + FAILED)) checks passed**"
  [ "$FAILED" -eq 0 ]
}
