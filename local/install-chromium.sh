#!/usr/bin/env bash
# Installs Chromium from the OS packages when it is missing (Debian/Ubuntu), for the browser tests
# and `make bench BENCH=pages`. Playwright drives it (CHROMIUM, default /usr/bin/chromium); no
# browser is downloaded from elsewhere. Without it those tests are skipped and say why.
set -euo pipefail
browser="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$browser" ] && exit 0
if command -v apt-get >/dev/null; then
  run=()
  [ "$(id -u)" = 0 ] || run=(sudo -n)
  echo "installing chromium with apt-get (for the browser tests)…"
  if "${run[@]}" apt-get update -qq && \
     DEBIAN_FRONTEND=noninteractive "${run[@]}" apt-get install -y -qq chromium >/dev/null; then
    exit 0
  fi
fi
echo "offerloop: chromium could not be installed here; the browser tests will be skipped (Debian/Ubuntu: apt-get install chromium, or set CHROMIUM to a Chromium binary)" >&2
exit 0
