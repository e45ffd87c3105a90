# shellcheck shell=bash
# Sourced by the serve benchmarks: one way to start a server and wait for it.

# serve_start BIN LOG ARGS...: starts `BIN serve --port 0 ARGS...` with its
# log in LOG, and waits (two minutes at most) until /ready answers 200.
# Sets SERVER (its pid) and ADDRESS (host:port); fails naming the log.
serve_start() {
  local bin=$1 log=$2
  shift 2
  "$bin" serve --port 0 "$@" 2>"$log" &
  SERVER=$!
  ADDRESS=""
  for _ in $(seq 1 2400); do
    ADDRESS=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$log" | head -1)
    if [ -n "$ADDRESS" ] && curl -sf "http://$ADDRESS/ready" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  echo "$bin serve did not become ready; its log ($log):" >&2
  tail -5 "$log" >&2
  return 1
}

# serve_stop: SIGTERM to the server serve_start started, and its exit.
serve_stop() {
  kill -TERM "$SERVER"
  wait "$SERVER" || true
}
