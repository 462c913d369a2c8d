#!/usr/bin/env bash
# Installs redis-server from the OS packages when it is missing (Debian/Ubuntu), or says how to.
set -euo pipefail
command -v redis-server >/dev/null && exit 0
if command -v apt-get >/dev/null; then
  run=()
  [ "$(id -u)" = 0 ] || run=(sudo -n)
  echo "installing redis-server with apt-get…"
  if "${run[@]}" apt-get update -qq && \
     DEBIAN_FRONTEND=noninteractive "${run[@]}" apt-get install -y -qq redis-server >/dev/null; then
    exit 0
  fi
fi
echo "offerloop: redis-server is needed and could not be installed here; install it (Debian/Ubuntu: apt-get install redis-server, macOS: brew install redis) and run again" >&2
exit 1
