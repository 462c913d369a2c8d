#!/usr/bin/env bash
# Creates a virtualenv of its own for a tool whose pins would clash with the app's:
#   bash local/pinned-venv.sh VENV REQUIREMENTS [pip install options...]
# (.venv-infra: checkov, infra/scripts/infra-venv.sh; .venv-recommenders: Microsoft Recommenders,
# bench/recommenders-venv.sh).
#
# Idempotent and fast when already done: a stamp keyed on the requirements file and the
# interpreter. Uses $PYTHON (default python3), the interpreter `make` uses for .venv. One
# install at a time per venv (make test or benchmarks may run in several shells of a checkout).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="$1"
REQS="$2"
shift 2
PYTHON="${PYTHON:-python3}"

say() { echo "$(basename "$VENV" | sed 's/^\.venv-//')-venv: $*"; }

stamp_key() {
  { cat "$REQS"; "$VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1
}

STAMP="$VENV/.installed"
up_to_date() { [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_key 2>/dev/null)" ]; }
if up_to_date; then
  say "$VENV is up to date"
  exit 0
fi

if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/offerloop-$(basename "$VENV")-$(pwd | sha256sum | cut -c1-12).lock"
  flock 9
  if up_to_date; then say "$VENV is up to date"; exit 0; fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
rm -f "$STAMP"
say "installing $REQS into $VENV (a minute or two, once)…"
# -qq: the machine's pip config adds index locations that pip warns about on every package.
"$VENV/bin/python" -m pip install -qq --disable-pip-version-check "$@" -r "$REQS"
stamp_key >"$STAMP"
say "$VENV is ready"
