#!/usr/bin/env bash
# Creates .venv-infra: checkov (pinned in infra/requirements-infra.txt) for the offline checks
# of the Bicep template in tests/infra. checkov gets a virtualenv of its own because its
# dependency pins (packaging, pycep-parser, boto3, ...) would clash with the app's.
#
# Idempotent and fast when already done: a stamp keyed on the requirements file and the
# interpreter. Uses $PYTHON (default python3), the interpreter `make` uses for .venv.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.venv-infra
REQS=infra/requirements-infra.txt
PYTHON="${PYTHON:-python3}"

say() { echo "infra-venv: $*"; }

stamp_key() {
  { cat "$REQS"; "$VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1
}

STAMP="$VENV/.installed"
up_to_date() { [ -x "$VENV/bin/checkov" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_key 2>/dev/null)" ]; }
if up_to_date; then
  say "$VENV is up to date"
  exit 0
fi

# One install at a time (make test may run in several shells of the same checkout).
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/offerloop-infra-venv-$(pwd | sha256sum | cut -c1-12).lock"
  flock 9
  if up_to_date; then say "$VENV is up to date"; exit 0; fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
rm -f "$STAMP"
say "installing checkov into $VENV (a minute or two, once)…"
# -qq: the machine's pip config adds index locations that pip warns about on every package.
"$VENV/bin/python" -m pip install -qq --disable-pip-version-check -r "$REQS"
stamp_key >"$STAMP"
say "$VENV is ready ($("$VENV/bin/checkov" --version))"
