#!/usr/bin/env bash
# Starts Portico in the foreground, as `make run` does:
#   scripts/run.sh [BIN] [CONF]     (defaults: build/release/portico examples/portico.conf)
# Creates build/run/ (pid file and access log of the example config), prints
# the URLs to open, then execs the binary: Ctrl-C (SIGINT) or SIGTERM stops it.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$REPO/build/release/portico}
CONF=${2:-$REPO/examples/portico.conf}

if [ ! -x "$BIN" ]; then
  echo "run: $BIN is missing; build it with 'make build'" >&2
  exit 1
fi
if [ ! -f "$CONF" ]; then
  echo "run: config $CONF not found" >&2
  exit 1
fi
mkdir -p "$REPO/build/run"

# URLs from the config's listen / admin_listen directives (comments removed).
# "8080" and "*:8080" mean every interface: print localhost for those.
conf_text=$(sed -e 's/#.*$//' "$CONF")
url_for() {
  local a=$1
  case "$a" in
    *:*) local host=${a%:*} port=${a##*:}
         case "$host" in ""|"*"|"0.0.0.0"|"[::]") host=localhost ;; esac
         echo "http://$host:$port/" ;;
    *)   echo "http://localhost:$a/" ;;
  esac
}

echo "Portico: starting $BIN -c $CONF"
while read -r addr; do
  [ -n "$addr" ] && echo "  listening:   $(url_for "$addr")"
done < <(printf '%s\n' "$conf_text" | grep -oE '(^|[;{[:space:]])listen[[:space:]]+[^[:space:];]+' \
           | awk '{print $2}')
# The example config's extra endpoints, when it is the one running.
if printf '%s\n' "$conf_text" | grep -q 'location = /healthz'; then
  port=$(printf '%s\n' "$conf_text" | grep -oE 'listen[[:space:]]+[^[:space:];]+[^;]*default_server' \
         | head -n1 | awk '{print $2}')
  [ -n "$port" ] && echo "  health:      $(url_for "$port")healthz"
fi
admin=$(printf '%s\n' "$conf_text" | grep -oE '(^|[;[:space:]])admin_listen[[:space:]]+[^[:space:];]+' \
        | awk '{print $2}' | tail -n1)
if [ -n "$admin" ] && [ "$admin" != off ]; then
  case "$admin" in *:*) ;; *) admin="127.0.0.1:$admin" ;; esac
  echo "  admin:       http://$admin/status"
  echo "  upstreams:   http://$admin/upstreams"
  echo "  metrics:     http://$admin/metrics"
fi
echo "  stop with Ctrl-C; reload the config with SIGHUP (see the pid file)"

exec "$BIN" -c "$CONF"
