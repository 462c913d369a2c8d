"""bench/pages.py's figures: percentiles of the measured load times, named per page."""
from __future__ import annotations

from bench import pages


def test_the_summary_names_each_percentile_and_takes_them_from_the_sorted_times():
    times = [0.9, 0.1, 0.3, 0.2, 0.5, 0.4, 0.8, 0.7, 0.6, 1.2]
    figures = pages._summary("store_load", times)
    assert figures == {"store_load_p50_s": 0.55, "store_load_p95_s": 1.2, "store_load_max_s": 1.2}

