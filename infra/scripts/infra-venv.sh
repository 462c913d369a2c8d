#!/usr/bin/env bash
# Creates .venv-infra: checkov (pinned in infra/requirements-infra.txt) for the offline checks
# of the Bicep template in tests/infra. checkov gets a virtualenv of its own because its
# dependency pins (packaging, pycep-parser, boto3, ...) would clash with the app's.
# Idempotent and fast when already done (local/pinned-venv.sh). Uses $PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash local/pinned-venv.sh .venv-infra infra/requirements-infra.txt
echo "infra-venv: checkov $(.venv-infra/bin/checkov --version)"
