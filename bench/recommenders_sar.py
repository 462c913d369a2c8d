"""Microsoft Recommenders' side of the MovieLens benchmark, run in .venv-recommenders by bench/movielens.py.

`python bench/recommenders_sar.py FOLDER` reads what bench/movielens.py wrote to FOLDER:

  ratings.tsv    MovieLens 100k in the file's order (userID, itemID, rating, timestamp)
  settings.json  {"k", "ratio", "seed", "repeats", "splits": [names]}
  NAME/train.txt, NAME/test.txt   a split of offerloop's: row numbers of ratings.tsv, in its order
  NAME/offerloop.tsv              offerloop's top-k lists on it (userID, itemID, prediction: higher first)

and prints one JSON document. For each split: whether Recommenders' own code splits the same rows
in the same order ("current": python_stratified_split; "published": reco_utils' splitter, which
shuffled each user's rows with split_pandas_data_with_ratios), SAR with the quick-start settings
(examples/00_quick_start/sar_movielens.ipynb) fitted on the training rows and its top-k lists for
the test users (seen items removed), its fit and recommend seconds (median of `repeats`), and the
ranking metrics of python_evaluation for SAR's lists and for offerloop's. Standalone: only
Recommenders and its pandas stack are imported.
"""
from __future__ import annotations

import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import recommenders
from recommenders.datasets.python_splitters import python_stratified_split
from recommenders.datasets.split_utils import split_pandas_data_with_ratios
from recommenders.evaluation import python_evaluation as evaluation
from recommenders.models.sar import SAR

COLUMNS = {"col_user": "userID", "col_item": "itemID"}


def quick_start_sar() -> SAR:
    """SAR as the quick-start notebook sets it up."""
    return SAR(col_user="userID", col_item="itemID", col_rating="rating", col_timestamp="timestamp",
               similarity_type="jaccard", time_decay_coefficient=30, timedecay_formula=True, normalize=True)


def reco_utils_split(data: pd.DataFrame, ratio: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """reco_utils' python_stratified_split (before Recommenders 1.0): each user's rows shuffled and cut
    by split_pandas_data_with_ratios, the parts put together by user."""
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it sets a column on slices
        for _, group in data.groupby("userID"):
            parts.append(pd.concat(split_pandas_data_with_ratios(group, [ratio, 1 - ratio], seed=seed, shuffle=True)))
    every = pd.concat(parts)
    return (every[every["split_index"] == 0].drop(columns="split_index"),
            every[every["split_index"] == 1].drop(columns="split_index"))


SPLITTERS = {
    "current": lambda data, ratio, seed: python_stratified_split(data, ratio=ratio, seed=seed, **COLUMNS),
    "published": reco_utils_split}


def metrics(test: pd.DataFrame, top_k: pd.DataFrame, k: int) -> dict:
    """The ranking metrics the notebook reports (binary relevance), with MAP both ways."""
    args = dict(COLUMNS, col_rating="rating", col_prediction="prediction", k=k)
    return {f"precision_at_{k}": float(evaluation.precision_at_k(test, top_k, **args)),
            f"recall_at_{k}": float(evaluation.recall_at_k(test, top_k, **args)),
            f"ndcg_at_{k}": float(evaluation.ndcg_at_k(test, top_k, **args)),
            "map": float(evaluation.map(test, top_k, **args)),
            f"map_at_{k}": float(evaluation.map_at_k(test, top_k, **args))}


def timed(function, repeats: int):
    """The last result and the median seconds of `repeats` calls."""
    seconds, result = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - began)
    return result, statistics.median(seconds)


def same_split(theirs: tuple[pd.DataFrame, pd.DataFrame], train_rows: np.ndarray, test_rows: np.ndarray) -> dict:
    train, test = theirs
    return {"same_rows": bool(set(train.index) == set(train_rows.tolist()) and set(test.index) == set(test_rows.tolist())),
            "same_order": bool(train.index.tolist() == train_rows.tolist() and test.index.tolist() == test_rows.tolist()),
            "train_rows": len(train), "test_rows": len(test)}


def one_split(data: pd.DataFrame, folder: Path, name: str, settings: dict) -> dict:
    k, repeats = int(settings["k"]), int(settings["repeats"])
    train_rows = np.loadtxt(folder / "train.txt", dtype=np.int64, ndmin=1)
    test_rows = np.loadtxt(folder / "test.txt", dtype=np.int64, ndmin=1)
    split = same_split(SPLITTERS[name](data.copy(), settings["ratio"], settings["seed"]), train_rows, test_rows)
    train, test = data.loc[train_rows], data.loc[test_rows]

    def fit() -> SAR:
        model = quick_start_sar()
        model.fit(train)
        return model

    model, fit_s = timed(fit, repeats)
    top_k, recommend_s = timed(lambda: model.recommend_k_items(test, top_k=k, remove_seen=True), repeats)
    offerloop = pd.read_csv(folder / "offerloop.tsv", sep="\t",
                            dtype={"userID": np.int64, "itemID": np.int64, "prediction": np.float64})
    return {"split": split,
            "sar": {"fit_s": fit_s, "recommend_s": recommend_s, **metrics(test, top_k, k),
                    "recommendations": [[int(u), int(i), float(p)] for u, i, p in
                                        top_k[["userID", "itemID", "prediction"]].itertuples(index=False)]},
            "offerloop": metrics(test, offerloop, k)}


def main(folder: Path) -> dict:
    settings = json.loads((folder / "settings.json").read_text())
    # as the notebook has it: ratings as float32
    data = pd.read_csv(folder / "ratings.tsv", sep="\t",
                       dtype={"userID": np.int64, "itemID": np.int64, "rating": np.float32, "timestamp": np.int64})
    return {"versions": {"recommenders": recommenders.__version__, "pandas": pd.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
            "splits": {name: one_split(data, folder / name, name, settings) for name in settings["splits"]}}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
