#!/usr/bin/env bash
# Installs every package Portico needs to build, test and benchmark.
# Idempotent: installs only what is missing. Debian packages only.
# Server packages (nginx, haproxy, varnish, h2o, redis) must never start
# their services: tests start their own instances on free ports, and the
# Debian defaults would fight over ports 80 and 6081.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang-14 libclang-rt-14-dev llvm-14
  libpcre2-dev libcmocka-dev
  curl python3 python3-pytest python3-httpx python3-h2 python3-matplotlib
  nginx-light haproxy wrk nghttp2-client valgrind strace procps
  libjansson-dev libxxhash-dev prometheus python3-dnslib
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "deps: installing ${missing[*]}"
# Refuse every service start while packages install (policy-rc.d exit 101).
policy=/usr/sbin/policy-rc.d
had_policy=0
if [ -e "$policy" ]; then had_policy=1; fi
if [ "$had_policy" -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
fi
cleanup() { if [ "$had_policy" -eq 0 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Keep the packaged services from starting at boot or on later upgrades.
for svc in nginx haproxy prometheus; do
  if command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable "$svc" >/dev/null 2>&1 || true
  fi
done
# If something started anyway (no policy-rc.d support), stop it.
for svc in nginx haproxy prometheus; do
  pkill -x "$svc" 2>/dev/null || true
done
