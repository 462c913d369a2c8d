"""The dashboard's statistics from projected documents (shared/stats.py), over plain fakes."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from shared import events, projections, stats
from shared.projections import Delivered
from tests import eventfactory as ef
from tests.eventfactory import BASE

from .offer_fakes import offer

NOW = BASE + timedelta(minutes=10, seconds=30)  # 03:10:30: the window's last minute is 03:10
CATALOG = (offer("of-1", "category_discount", "books"), offer("of-2", "free_shipping"))


def at(minute: int, second: int = 0) -> datetime:
    return BASE + timedelta(minutes=minute, seconds=second)


def documents(raws: list[dict], partition: str = "0") -> projections.Replayed:
    return projections.replay([Delivered(partition, i, events.parse(r)) for i, r in enumerate(raws)])


RAWS = [
    ef.shown("u", "d-1", ("of-1", "of-2"), "m-1", time=at(0, 30)),  # before the window
    ef.shown("u", "d-2", ("of-1",), "m-2", time=at(2, 10)),
    ef.clicked("u", "d-2", "of-1", time=at(3)),  # a click without an impression in its minute
    ef.shown("u", "d-3", ("of-3",), "m-1", time=at(9, 1)),  # of-3 is no longer in the catalog
    ef.clicked("u", "d-3", "of-3", time=at(9, 59)),
    *(ef.view("u", time=at(9, s)) for s in (2, 3, 4)),
    ef.shown("u", "d-4", ("of-2",), "m-1", time=at(10, 1)),  # the current minute
]


def build(raws=RAWS, minutes: int = 10, reports=(), simulation=None, catalog=CATALOG, now=NOW) -> dict:
    replayed = documents(raws)
    return stats.build(stats.Window.ending(now, minutes), replayed.offer_stats.values(),
                       replayed.traffic_stats.values(), catalog, reports, simulation or {"state": "idle"}, now)


def test_the_window_is_whole_minutes_ending_with_the_current_one():
    window = stats.Window.ending(datetime(2026, 11, 22, 23, 5, 12, 999, tzinfo=timezone.utc), 60)
    keys = window.keys()
    assert (keys[0], keys[-1], len(keys)) == ("2026-11-22T22:06:00Z", "2026-11-22T23:05:00Z", 60)
    assert window.hours() == ("2026-11-22T22:00:00Z", "2026-11-22T23:00:00Z")
    # one minute: the last complete minute (for eventsPerSecond) may be in the hour before
    assert stats.Window.ending(datetime(2026, 11, 22, 23, 0, 30, tzinfo=timezone.utc), 1).hours() == (
        "2026-11-22T22:00:00Z", "2026-11-22T23:00:00Z")


def test_every_minute_of_the_window_is_in_the_series_with_its_counts_and_events():
    body = build()
    assert (body["from"], body["to"], body["bucketSeconds"]) == ("2026-11-22T03:01:00Z", "2026-11-22T03:10:00Z", 60)
    assert body["generatedAt"] == "2026-11-22T03:10:30Z"
    series = {s["time"][14:16]: s for s in body["series"]}
    assert list(series) == [f"{m:02d}" for m in range(1, 11)]  # oldest first, zeros included
    assert series["01"] == {"time": "2026-11-22T03:01:00Z", "impressions": 0, "clicks": 0, "ctr": None,
                            "events": 0, "eventsPerSecond": 0.0}
    assert (series["02"]["impressions"], series["03"]["clicks"], series["03"]["ctr"]) == (1, 1, None)
    assert series["09"] == {"time": "2026-11-22T03:09:00Z", "impressions": 1, "clicks": 1, "ctr": 1.0,
                            "events": 5, "eventsPerSecond": round(5 / 60, 3)}
    assert (series["10"]["impressions"], series["10"]["events"]) == (1, 1)
    assert body["totals"] == {"impressions": 3, "clicks": 2, "ctr": round(2 / 3, 6), "events": 8}
    assert body["eventsPerSecond"] == round(5 / 60, 3)  # 03:09, the last complete minute


def test_models_are_ranked_by_impressions_and_their_series_hold_the_minutes_with_impressions():
    by_model = build()["byModel"]
    assert [(m["version"], m["impressions"], m["clicks"]) for m in by_model] == [("m-1", 2, 1), ("m-2", 1, 1)]
    assert by_model[1]["ctr"] == 1.0
    assert by_model[1]["series"] == [{"time": "2026-11-22T03:02:00Z", "impressions": 1, "clicks": 0, "ctr": 0.0}]
    assert [s["time"][14:16] for s in by_model[0]["series"]] == ["09", "10"]


def test_kinds_and_top_offers_come_from_the_catalog_and_an_unknown_offer_is_still_counted():
    body = build()
    assert [(k["kind"], k["impressions"], k["clicks"]) for k in body["byKind"]] == [
        ("category_discount", 1, 1), ("free_shipping", 1, 0), (stats.UNKNOWN_KIND, 1, 1)]
    assert body["offers"] == [
        {"offerId": "of-1", "title": "offer of-1", "kind": "category_discount", "category": "books",
         "impressions": 1, "clicks": 1, "ctr": 1.0,  # shown at 03:02, clicked at 03:03 (a minute without impressions)
         "series": [{"time": "2026-11-22T03:02:00Z", "impressions": 1, "clicks": 0, "ctr": 0.0}]},
        {"offerId": "of-3", "title": "of-3", "kind": stats.UNKNOWN_KIND, "category": None,
         "impressions": 1, "clicks": 1, "ctr": 1.0,
         "series": [{"time": "2026-11-22T03:09:00Z", "impressions": 1, "clicks": 1, "ctr": 1.0}]},
        {"offerId": "of-2", "title": "offer of-2", "kind": "free_shipping", "category": None,
         "impressions": 1, "clicks": 0, "ctr": 0.0,
         "series": [{"time": "2026-11-22T03:10:00Z", "impressions": 1, "clicks": 0, "ctr": 0.0}]}]


def test_the_top_ten_offers_are_by_clicks_then_impressions():
    raws = []
    for i in range(12):
        raws += [ef.shown("u", f"d-{i}", (f"o-{i:02d}",), "m-1", time=at(5), id=f"s-{i}-{j}") for j in range(i % 3 + 1)]
        raws += [ef.clicked("u", f"d-{i}", f"o-{i:02d}", time=at(6)) for _ in range(1 if i in (4, 8) else 0)]
    offers = build(raws)["offers"]
    assert [o["offerId"] for o in offers] == ["o-08", "o-04", "o-02", "o-05", "o-11", "o-01", "o-07", "o-10",
                                              "o-00", "o-03"]


def test_an_empty_window_has_zeros_and_null_ctrs_and_no_groups():
    body = build(raws=[ef.view("u", time=at(0, 5))], minutes=3)
    assert body["totals"] == {"impressions": 0, "clicks": 0, "ctr": None, "events": 0}
    assert len(body["series"]) == 3 and body["byModel"] == [] and body["byKind"] == [] and body["offers"] == []
    assert body["eventsPerSecond"] == 0.0


def test_documents_written_before_by_minute_add_nothing_and_break_nothing():
    old = {"id": "of-1:2026112203", "offerId": "of-1", "hour": "2026-11-22T03:00:00Z", "impressions": 9,
           "clicks": 3, "byModel": {"m-1": {"impressions": 9, "clicks": 3}}, "watermarks": {"0": 4}}
    body = stats.build(stats.Window.ending(NOW, 10), [old], [], CATALOG, [], {}, NOW)
    assert body["totals"]["impressions"] == 0 and body["offers"] == [] and body["byKind"] == []


def report(version: str, trained: str, promoted: bool, with_evaluation: bool = True) -> dict:
    body = {"version": version, "trainedAt": trained, "current": "baseline-1", "promoted": promoted,
            "reason": f"{'promoted' if promoted else 'not promoted'}: ...", "data": {}}
    if with_evaluation:
        body["evaluation"] = {"candidate": {"dr": {"estimate": 0.12, "low": 0.1, "high": 0.14},
                                            "ips": {"estimate": 1, "low": 0, "high": 2}},
                              "current": {"dr": {"estimate": 0.08, "low": 0.07, "high": 0.09}}}
    return body


def test_promotions_are_the_retrain_reports_newest_first_with_their_estimates():
    reports = [report(f"m{i:02d}", f"2026-11-22T0{i // 10}:{i % 10}0:00Z", i % 2 == 0) for i in range(25)]
    reports.append(report("m-few", "2026-11-22T03:00:00Z", False, with_evaluation=False))
    promotions = build(reports=reports)["promotions"]
    assert len(promotions) == stats.PROMOTIONS
    assert promotions[0] == {"version": "m-few", "time": "2026-11-22T03:00:00Z", "promoted": False,
                             "reason": "not promoted: ...", "candidate": None, "current": None}
    assert promotions[1] == {"version": "m24", "time": "2026-11-22T02:40:00Z", "promoted": True,
                             "reason": "promoted: ...", "candidate": {"estimate": 0.12, "low": 0.1, "high": 0.14},
                             "current": {"version": "baseline-1", "estimate": 0.08, "low": 0.07, "high": 0.09}}
    assert [p["version"] for p in promotions[1:]] == [f"m{i:02d}" for i in range(24, 5, -1)]


def test_the_simulation_status_is_passed_through():
    simulation = {"state": "running", "ctr": 0.1, "curve": [{"minute": 0, "impressions": 3}]}
    assert build(simulation=simulation)["simulation"] == simulation


class FakePorts:
    """Ports over replayed documents, counting the reads; `down` makes Cosmos DB fail."""

    def __init__(self, raws=RAWS):
        self.replayed = documents(raws)
        self.hours: list[tuple[str, str]] = []
        self.down = False
        self.now = NOW

    def _read(self, docs):
        def read(first, last):
            if self.down:
                raise stats.Unavailable("Cosmos DB container offerstats: ServiceRequestError: refused")
            self.hours.append((first, last))
            return [d for d in docs.values() if first <= d["hour"] <= last]
        return read

    def ports(self) -> stats.Ports:
        return stats.Ports(offer_stats=self._read(self.replayed.offer_stats),
                           traffic=self._read(self.replayed.traffic_stats), offers=lambda: CATALOG,
                           reports=lambda: [], simulation=lambda: {"state": "idle"}, clock=lambda: self.now)


def test_the_answer_reads_the_hours_of_the_window():
    fake = FakePorts()
    fake.now = BASE + timedelta(hours=1, minutes=0, seconds=5)  # 04:00:05, 90 minutes back is 02:31
    body = stats.answer(90, fake.ports())
    assert fake.hours == [("2026-11-22T02:00:00Z", "2026-11-22T04:00:00Z")] * 2
    assert body["totals"]["impressions"] == 5 and body["eventsPerSecond"] == 0.0


def test_answers_are_kept_for_two_seconds_per_window_and_failures_too():
    fake = FakePorts()
    clock = [100.0]
    answers = stats.Answers(fake.ports(), monotonic=lambda: clock[0])
    first = answers.get(10)
    assert answers.get(10) is first and len(fake.hours) == 2  # offer statistics and traffic, once
    answers.get(5)
    assert len(fake.hours) == 4  # another window is another answer
    clock[0] += 2.0
    fake.down = True
    with pytest.raises(stats.Unavailable, match="offerstats"):
        answers.get(10)
    fake.down = False
    with pytest.raises(stats.Unavailable):  # the failure is kept as long as an answer would be
        answers.get(10)
    clock[0] += 2.0
    assert answers.get(10) == first and len(fake.hours) == 6


def test_callers_arriving_together_get_one_answer_made_once():
    fake = FakePorts()
    slow = fake.ports()
    reads = []

    def offer_stats(first, last):
        reads.append(first)
        time.sleep(0.05)
        return slow.offer_stats(first, last)

    answers = stats.Answers(stats.Ports(**{**slow.__dict__, "offer_stats": offer_stats}))
    results = []
    threads = [threading.Thread(target=lambda: results.append(answers.get(10))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reads) == 1 and len(results) == 8 and all(r is results[0] for r in results)
