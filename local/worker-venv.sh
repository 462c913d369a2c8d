#!/usr/bin/env bash
# Creates .venv-worker: Python 3.13 with the Azure Functions Python worker's indexing
# library (azure-functions-runtime) and the app's requirements.txt, for tests/worker.
#
# Idempotent and fast when already done: a stamp keyed on requirements.txt and the pins
# below. Without a Python 3.13 it says so in one line and exits 0 (tests/worker then skips).
#   PYTHON313=/path/to/python3.13 bash local/worker-venv.sh   # use that interpreter
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-worker
# The worker's indexing code, and protobuf for the gRPC message types the worker builds
# (the version range the worker itself is developed against: protobuf~=5.29.0).
WORKER_PINS=(azure-functions-runtime==1.3.0 azurefunctions-extensions-base==1.2.0 protobuf==5.29.6)
# azure-functions comes in two lines: 1.x for Python <= 3.12 and 2.x for Python >= 3.13 (their
# decorators, which write the bindings, are the same). A 1.x pin in requirements.txt can't
# install on 3.13, so here it is swapped for this 2.x pin; any other pin is kept as it is.
AZURE_FUNCTIONS_313=azure-functions==2.3.0

say() { echo "worker-venv: $*"; }

is_py313() { [ -n "$1" ] && "$1" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; }

find_py313() {
  local cand
  # A pyenv shim named python3.13 may be on PATH yet fail when 3.13 isn't the active
  # version, so every candidate is run, not just looked up.
  for cand in "${PYTHON313:-}" "$(command -v python3.13 2>/dev/null || true)"; do
    if is_py313 "$cand"; then echo "$cand"; return 0; fi
  done
  local root
  root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
  for cand in $(ls -d "$root"/versions/3.13*/bin/python3.13 2>/dev/null | sort -rV); do
    if is_py313 "$cand"; then echo "$cand"; return 0; fi
  done
  return 1
}

stamp_key() {
  { cat requirements.txt; printf '%s\n' "${WORKER_PINS[@]}" "$AZURE_FUNCTIONS_313"; "$VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1
}

STAMP="$VENV/.installed"
up_to_date() { [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_key 2>/dev/null)" ]; }
if up_to_date; then
  say "$VENV is up to date"
  exit 0
fi

if ! PY313="$(find_py313)"; then
  say "no Python 3.13 found (python3.13 on PATH or \$(pyenv root)/versions/3.13*/bin/python3.13; or set PYTHON313=...): skipping $VENV, so tests/worker will skip"
  exit 0
fi

# One install at a time (make test may run in several shells of the same checkout).
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/offerloop-worker-venv-$(pwd | sha256sum | cut -c1-12).lock"
  flock 9
  if up_to_date; then say "$VENV is up to date"; exit 0; fi
fi

if ! is_py313 "$VENV/bin/python"; then
  say "creating $VENV with $PY313"
  rm -rf "$VENV"
  "$PY313" -m venv "$VENV"
fi
REQS="$VENV/requirements-worker.txt"
if grep -Eiq '^azure[-_]functions[[:space:]]*==[[:space:]]*1\.' requirements.txt; then
  say "requirements.txt pins $(grep -Ei '^azure[-_]functions[[:space:]]*==' requirements.txt | tr -d ' ') (Python <= 3.12); $VENV uses $AZURE_FUNCTIONS_313, its Python 3.13 counterpart"
  { grep -Eiv '^azure[-_]functions[[:space:]]*==' requirements.txt; echo "$AZURE_FUNCTIONS_313"; } >"$REQS"
else
  cp requirements.txt "$REQS"
fi
rm -f "$STAMP"
say "installing ${WORKER_PINS[*]} and the app's requirements into $VENV…"
# -qq: the machine's pip config adds index locations that pip warns about on every package.
"$VENV/bin/python" -m pip install -qq --disable-pip-version-check "${WORKER_PINS[@]}" -r "$REQS"
stamp_key >"$STAMP"
say "$VENV is ready ($("$VENV/bin/python" -V))"
