#!/usr/bin/env bash
# Creates .venv-recommenders: Microsoft Recommenders (pinned in bench/requirements-recommenders.txt)
# for the MovieLens benchmark's SAR comparison (bench/movielens.py runs bench/recommenders_sar.py
# in it). A virtualenv of its own: recommenders pins pandas and friends the app does not need.
# Idempotent and fast when already done (local/pinned-venv.sh). Uses $PYTHON (default python3).
# Exits non-zero, saying why, when it cannot be made.
set -euo pipefail
cd "$(dirname "$0")/.."
# --no-deps: the requirements file is the whole set (see its header).
bash local/pinned-venv.sh .venv-recommenders bench/requirements-recommenders.txt --no-deps
CHECK='import recommenders, recommenders.models.sar, recommenders.datasets.python_splitters, recommenders.evaluation.python_evaluation; print(recommenders.__version__)'
echo "recommenders-venv: recommenders $(.venv-recommenders/bin/python -c "$CHECK")"
