#!/usr/bin/env bash
# Creates .venv-recommenders: Microsoft Recommenders (pinned in bench/requirements-recommenders.txt)
# for the MovieLens benchmark's SAR comparison (bench/movielens.py runs bench/recommenders_sar.py
# in it). A virtualenv of its own: recommenders pins pandas and friends the app does not need.
#
# Idempotent and fast when already done: a stamp keyed on the requirements file and the
# interpreter. Uses $PYTHON (default python3). Exits non-zero, saying why, when it cannot be made.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-recommenders
REQS=bench/requirements-recommenders.txt
PYTHON="${PYTHON:-python3}"
CHECK='import recommenders, recommenders.models.sar, recommenders.datasets.python_splitters, recommenders.evaluation.python_evaluation; print(recommenders.__version__)'

say() { echo "recommenders-venv: $*"; }

stamp_key() {
  { cat "$REQS"; "$VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1
}

STAMP="$VENV/.installed"
up_to_date() { [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_key 2>/dev/null)" ]; }
if up_to_date; then
  say "$VENV is up to date"
  exit 0
fi

# One install at a time (benchmarks may run in several shells of the same checkout).
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/offerloop-recommenders-venv-$(pwd | sha256sum | cut -c1-12).lock"
  flock 9
  if up_to_date; then say "$VENV is up to date"; exit 0; fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
rm -f "$STAMP"
say "installing recommenders into $VENV (a minute, once)…"
# --no-deps: the requirements file is the whole set (see its header). -qq: the machine's pip
# config adds index locations that pip warns about on every package.
"$VENV/bin/python" -m pip install -qq --disable-pip-version-check --no-deps -r "$REQS"
version="$("$VENV/bin/python" -c "$CHECK")"
stamp_key >"$STAMP"
say "$VENV is ready (recommenders $version)"
