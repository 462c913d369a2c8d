"""The BI export: the event archive, offer statistics, retrain reports and catalog as Parquet tables
of fixed schemas, in folders that Power BI, pandas, DuckDB and Spark read as tables (docs/export.md):

    events/date=YYYY-MM-DD/part-0.parquet                the day's (UTC) archived events
    decisions/date=YYYY-MM-DD/part-0.parquet             the day's logged decisions, both loops
    offer_stats_hourly/date=YYYY-MM-DD/part-0.parquet    one row per offer × hour × model
    offer_stats_minutely/date=YYYY-MM-DD/part-0.parquet  one row per offer × minute × model, when the
                                                         statistics documents have a byMinute breakdown
    retrains/date=YYYY-MM-DD/part-0.parquet              one row per kept retrain report
    offers/part-0.parquet, products/part-0.parquet       the catalog, as dimension tables
    _export.json                                         what was exported, when, the window, row counts

Plain Python and Arrow: documents in, tables and Parquet files out. `run` takes its ports (the
composition is shared/export_store.py: the Parquet archive, Cosmos DB, the models container, and
a folder or a blob container to write to). A day's archive is read and written CHUNK hours at a
time, so memory holds a few hours' rows, not the window's. File names and bytes are deterministic,
so exporting a window again overwrites its files; a day of the window left with no rows of a table
loses its file, so the folder always says what the sources hold. A file is published only once
complete: an export that fails midway leaves the files it had not finished as they were.
"""
from __future__ import annotations

import json
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, BinaryIO, Callable, ContextManager, Iterable, Iterator, Mapping, Optional, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .learning import compaction, dataset

TIME = pa.timestamp("us", tz="UTC")
DAY = timedelta(days=1)
# An event's raw batch is filed under the hour it was enqueued, a little after the event's time:
# each chunk is read with the next hour too, so the events at the very end of it are not lost.
LATE = timedelta(hours=1)
CHUNK = timedelta(hours=6)  # a day's archive is read this much at a time: ~7 hours' rows in memory, 1/6 read twice
MANIFEST = "_export.json"  # names starting with "_" are skipped by dataset readers
LAYOUT_VERSION = 1

EVENTS, DECISIONS = compaction.EVENTS, compaction.DECISIONS
OFFER_STATS_HOURLY, OFFER_STATS_MINUTELY = "offer_stats_hourly", "offer_stats_minutely"
RETRAINS, OFFERS, PRODUCTS = "retrains", "offers", "products"

_OFFER = [("offerId", pa.string()), ("title", pa.string()), ("kind", pa.string()), ("category", pa.string())]
_COUNTS = [("modelVersion", pa.string()), ("impressions", pa.int64()), ("clicks", pa.int64()), ("ctr", pa.float64())]
SIDES = ("candidate", "current", "difference")  # the retrain report's evaluation: each policy and their difference
ESTIMATORS = ("ips", "snips", "dr")
FIGURES = ("estimate", "low", "high")


def estimator_column(side: str, estimator: str, figure: str) -> str:
    """The retrains column of one figure of the report's evaluation, e.g. candidateDrEstimate."""
    return f"{side}{estimator.capitalize()}{figure.capitalize()}"


RETRAINS_SCHEMA = pa.schema([
    ("time", TIME), ("loop", pa.string()), ("version", pa.string()), ("currentPolicy", pa.string()),
    ("promoted", pa.bool_()), ("reason", pa.string()), ("heldOutEvents", pa.int64()),
    ("agreementWithBaseline", pa.float64()),
    *[(estimator_column(s, e, f), pa.float64()) for s in SIDES for e in ESTIMATORS for f in FIGURES],
    ("decisions", pa.int64()), ("examples", pa.int64()), ("trainExamples", pa.int64()),
    ("heldOutExamples", pa.int64()), ("dataFrom", TIME), ("dataTo", TIME), ("meanReward", pa.float64()),
    ("fitSeconds", pa.float64()), ("evaluateSeconds", pa.float64()), ("jobSeconds", pa.float64()),
    ("report", pa.string()),
])
OFFERS_SCHEMA = pa.schema([
    *_OFFER, ("discountPercent", pa.float64()), ("minBasket", pa.float64()), ("productIds", pa.string()),
    ("validFrom", TIME), ("validTo", TIME), ("segments", pa.string()), ("devices", pa.string()),
    ("minCategoryAffinity", pa.float64()),
])
PRODUCTS_SCHEMA = pa.schema([("productId", pa.string()), ("name", pa.string()), ("category", pa.string()),
                             ("brand", pa.string()), ("price", pa.float64())])


@dataclass(frozen=True)
class Table:
    """An exported table: its fixed schema, the column whose UTC date partitions it (None: a
    dimension table, one file) and the columns its rows are sorted by (unique, so the bytes are
    deterministic)."""

    name: str
    schema: pa.Schema
    time: Optional[str]
    order: tuple[str, ...]

    def file(self, day: Optional[date] = None) -> str:
        """`<table>/date=YYYY-MM-DD/part-0.parquet`, or `<table>/part-0.parquet` for a dimension."""
        return f"{self.name}/part-0.parquet" if day is None else f"{self.name}/date={day:%Y-%m-%d}/part-0.parquet"

    def build(self, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
        return self.sort(pa.Table.from_pylist(list(rows), schema=self.schema))

    def sort(self, table: pa.Table) -> pa.Table:
        return compaction.conform(table, self.schema).sort_by([(c, "ascending") for c in self.order])


TABLES: dict[str, Table] = {t.name: t for t in (
    Table(EVENTS, dataset.EVENTS_SCHEMA, "time", ("time", "id")),
    Table(DECISIONS, dataset.DECISIONS_SCHEMA, "time", ("time", "decisionId")),
    Table(OFFER_STATS_HOURLY, pa.schema([("hour", TIME), *_OFFER, *_COUNTS]), "hour",
          ("hour", "offerId", "modelVersion")),
    Table(OFFER_STATS_MINUTELY, pa.schema([("minute", TIME), *_OFFER, *_COUNTS]), "minute",
          ("minute", "offerId", "modelVersion")),
    Table(RETRAINS, RETRAINS_SCHEMA, "time", ("time", "loop", "version")),
    Table(OFFERS, OFFERS_SCHEMA, None, ("offerId",)),
    Table(PRODUCTS, PRODUCTS_SCHEMA, None, ("productId",)),
)}


@dataclass(frozen=True)
class Window:
    """What an export covers: from midnight (UTC) of its first day to `end` (now, usually)."""

    start: datetime
    end: datetime

    @classmethod
    def last_days(cls, days: int, now: datetime) -> "Window":
        """Today (so far) and the days before it: `days` dates in all."""
        if days < 1:
            raise ValueError("an export covers at least one day")
        now = compaction.utc(now)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(midnight - (days - 1) * DAY, now)

    @property
    def dates(self) -> list[date]:
        first, last = self.start.date(), self.end.date()
        return [first + n * DAY for n in range((last - first).days + 1)]

    def day(self, day: date) -> tuple[datetime, datetime]:
        """The first and last instant of that day within the window (both included)."""
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        return max(start, self.start), min(start + DAY - timedelta(microseconds=1), self.end)

    def to_dict(self) -> dict[str, Any]:
        return {"from": compaction.iso(self.start), "to": compaction.iso(self.end),
                "dates": [d.isoformat() for d in self.dates]}


def parse_time(value: Any) -> Optional[datetime]:
    """An aware UTC datetime from ISO text (`Z` or an offset; naive is UTC); None for none."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return compaction.utc(value)
    return compaction.utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def ctr(clicks: int, impressions: int) -> Optional[float]:
    """Clicks per impression (unrounded: BI sums clicks and impressions anyway); None when there were no impressions."""
    return clicks / impressions if impressions else None


def _json(value: Any) -> Optional[str]:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _count_rows(column: str, at: datetime, offer_id: str, offer: Mapping[str, Any],
                counts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per model of a statistics document (or of one of its minutes); a document without
    a byModel breakdown gives one row of its totals, modelVersion null."""
    described = {"offerId": offer_id, "title": offer.get("title"), "kind": offer.get("kind"),
                 "category": offer.get("category")}
    by_model = counts.get("byModel") or {None: counts}
    rows = []
    for version, figures in by_model.items():
        impressions, clicks = int(figures.get("impressions") or 0), int(figures.get("clicks") or 0)
        rows.append({column: at, **described, "modelVersion": version, "impressions": impressions,
                     "clicks": clicks, "ctr": ctr(clicks, impressions)})
    return rows


def offer_stats_hourly(documents: Iterable[Mapping[str, Any]], offers: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The offerstats documents (shared/projections.py) as offer × hour × model rows, described
    by the catalog's offers (title, kind, category; null for an offer no longer in it)."""
    catalog = {o["id"]: o for o in offers}
    rows = [row for doc in documents for row in _count_rows(
        "hour", parse_time(doc["hour"]), doc["offerId"], catalog.get(doc["offerId"], {}), doc)]
    return TABLES[OFFER_STATS_HOURLY].build(rows)


def _minutes(hour: datetime, by_minute: Any) -> Iterable[tuple[datetime, Mapping[str, Any]]]:
    """(minute, counts) of a byMinute breakdown: a mapping from the minute (its number within the
    hour, or its ISO time) to {impressions, clicks[, byModel]}, or a list of such counts each with
    its `minute` or `time`."""
    items = (by_minute.items() if isinstance(by_minute, Mapping)
             else ((c.get("minute", c.get("time")), c) for c in by_minute))
    for key, counts in items:
        if not isinstance(counts, Mapping):
            raise ValueError(f"byMinute counts must be objects, not {counts!r}")
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            yield hour + timedelta(minutes=int(key)), counts
        else:
            yield parse_time(key), counts


def offer_stats_minutely(documents: Iterable[Mapping[str, Any]],
                         offers: Sequence[Mapping[str, Any]]) -> Optional[pa.Table]:
    """The documents' byMinute breakdowns as offer × minute × model rows; None when no document has one."""
    catalog = {o["id"]: o for o in offers}
    rows, found = [], False
    for doc in documents:
        if doc.get("byMinute") is None:
            continue
        found = True
        for minute, counts in _minutes(parse_time(doc["hour"]), doc["byMinute"]):
            rows.extend(_count_rows("minute", minute, doc["offerId"], catalog.get(doc["offerId"], {}), counts))
    return TABLES[OFFER_STATS_MINUTELY].build(rows) if found else None


def _int(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def retrain_row(loop: str, report: Mapping[str, Any]) -> dict[str, Any]:
    """One retrain report (shared/learning/retrain.py) as a flat row; the whole report is kept as text."""
    evaluation, data, timings = (report.get(k) or {} for k in ("evaluation", "data", "timings"))
    row = {"time": parse_time(report.get("trainedAt")), "loop": loop, "version": report.get("version"),
           "currentPolicy": report.get("current"), "promoted": bool(report.get("promoted")),
           "reason": report.get("reason"), "heldOutEvents": _int(evaluation.get("heldOutEvents")),
           "agreementWithBaseline": evaluation.get("agreementWithBaseline")}
    for side in SIDES:
        for estimator in ESTIMATORS:
            figures = (evaluation.get(side) or {}).get(estimator) or {}
            row.update({estimator_column(side, estimator, f): figures.get(f) for f in FIGURES})
    row.update(decisions=_int(data.get("decisions")), examples=_int(data.get("examples")),
               trainExamples=_int(data.get("trainExamples")), heldOutExamples=_int(data.get("heldOutExamples")),
               dataFrom=parse_time(data.get("from")), dataTo=parse_time(data.get("to")),
               meanReward=data.get("meanReward"), fitSeconds=timings.get("fitSeconds"),
               evaluateSeconds=timings.get("evaluateSeconds"), jobSeconds=report.get("jobSeconds"),
               report=_json(report))
    return row


def retrains(reports: Iterable[tuple[str, Mapping[str, Any]]]) -> pa.Table:
    """(loop, report) pairs as rows; a report without its trainedAt time is left out."""
    return TABLES[RETRAINS].build([retrain_row(loop, r) for loop, r in reports if r.get("trainedAt")])


def offers_table(documents: Iterable[Mapping[str, Any]]) -> pa.Table:
    """The offers dimension (shared/catalog.py's offer documents); lists and rules as JSON text."""
    rows = []
    for doc in documents:
        rules = doc.get("rules") or {}
        rows.append({"offerId": doc["id"], "title": doc.get("title"), "kind": doc.get("kind"),
                     "category": doc.get("category"), "discountPercent": doc.get("discountPercent"),
                     "minBasket": doc.get("minBasket"), "productIds": _json(doc.get("productIds")),
                     "validFrom": parse_time(doc.get("validFrom")), "validTo": parse_time(doc.get("validTo")),
                     "segments": _json(rules.get("segments")), "devices": _json(rules.get("devices")),
                     "minCategoryAffinity": rules.get("minCategoryAffinity")})
    return TABLES[OFFERS].build(rows)


def products_table(documents: Iterable[Mapping[str, Any]]) -> pa.Table:
    """The products dimension (shared/catalog.py's product documents)."""
    return TABLES[PRODUCTS].build([{"productId": d["id"], "name": d.get("name"), "category": d.get("category"),
                                    "brand": d.get("brand"), "price": d.get("price")} for d in documents])


def by_date(table: pa.Table, column: str) -> dict[date, pa.Table]:
    """The table's rows by the UTC date of `column`, in date order; rows with no time are left out."""
    dates = pc.cast(table.column(column), pa.date32())
    return {day: table.filter(pc.equal(dates, pa.scalar(day, type=pa.date32())))
            for day in sorted(d for d in pc.unique(dates).to_pylist() if d is not None)}


@dataclass
class ExportPorts:
    """Where the export reads and writes (shared/export_store.py wires the real ones)."""

    # (start, end, decision columns or None for all) -> (events, decisions) with start <= time <= end
    load: Callable[[datetime, datetime, Optional[Sequence[str]]], tuple[pa.Table, pa.Table]]
    offer_stats: Callable[[datetime, datetime], Iterable[Mapping[str, Any]]]  # documents of the hours from..to
    reports: Callable[[Sequence[date]], Iterable[tuple[str, Mapping[str, Any]]]]  # (loop, report) kept on those days
    offers: Callable[[], Sequence[Mapping[str, Any]]]
    products: Callable[[], Sequence[Mapping[str, Any]]]
    # a file to write: it replaces the one of that name when the block ends without an error, else it is dropped
    create: Callable[[str], ContextManager[BinaryIO]]
    delete: Callable[[str], None]  # a name that may not exist
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


def steps(window: Window) -> int:
    """How many times `run` reports progress: the catalog, the statistics, the retrains, each day's archive."""
    return 3 + len(window.dates)


class _Part:
    """One file of a table, written a table at a time (a row group or more each); it is created with
    its first rows, so a day without any has no file."""

    def __init__(self, ports: ExportPorts, spec: Table, day: Optional[date], files: ExitStack):
        self.ports, self.spec, self.day, self.files = ports, spec, day, files
        self.name = spec.file(day)
        self.rows = 0
        self.writer: Optional[pq.ParquetWriter] = None

    def add(self, table: pa.Table, empty_ok: bool = False) -> None:
        if table.num_rows == 0 and not empty_ok:
            return
        if self.writer is None:
            file = self.files.enter_context(self.ports.create(self.name))
            self.writer = pq.ParquetWriter(file, self.spec.schema, compression=compaction.COMPRESSION,
                                           write_statistics=True)
            self.files.callback(self.writer.close)  # the footer, before the file is published
        self.writer.write_table(self.spec.sort(table))
        self.rows += table.num_rows


class _Writer:
    """Writes a run's files and counts their rows for the manifest."""

    def __init__(self, ports: ExportPorts, window: Window):
        self.ports, self.window = ports, window
        self.tables: dict[str, dict[str, Any]] = {}

    @contextmanager
    def parts(self, name: str, days: Sequence[Optional[date]]) -> Iterator[dict[Optional[date], _Part]]:
        """The table's files of these days (None: its one file), published together at the end of the
        block; the days left without rows lose their file."""
        spec = TABLES[name]
        with ExitStack() as files:
            parts = {day: _Part(self.ports, spec, day, files) for day in days}
            yield parts
        entry = self.tables.setdefault(name, {"rows": 0, "files": []} if spec.time is None else
                                       {"rows": 0, "files": [], "byDate": {}})
        for day, part in parts.items():
            if part.writer is None:
                self.ports.delete(part.name)
                continue
            entry["rows"] += part.rows
            entry["files"].append(part.name)
            if day is not None:
                entry["byDate"][day.isoformat()] = part.rows

    def dimension(self, name: str, table: pa.Table) -> None:
        with self.parts(name, [None]) as parts:
            parts[None].add(table, empty_ok=True)

    def by_date(self, name: str, table: pa.Table) -> None:
        """The table's rows of each of the window's days to that day's file."""
        found = by_date(table, TABLES[name].time)
        with self.parts(name, self.window.dates) as parts:
            for day, part in parts.items():
                part.add(found.get(day, table.slice(0, 0)))

    def archive(self, day: date, load: Callable[..., tuple[pa.Table, pa.Table]], candidates: bool) -> None:
        """One day's events and decisions, CHUNK at a time (each read with LATE more)."""
        start, end = self.window.day(day)
        columns = None if candidates else [c for c in dataset.DECISIONS_SCHEMA.names if c != "candidates"]
        with self.parts(EVENTS, [day]) as events, self.parts(DECISIONS, [day]) as decisions:
            while start <= end:
                last = min(start + CHUNK - timedelta(microseconds=1), end)
                read, made = load(start, min(last + LATE, self.window.end), columns)
                read = compaction.between(read, start, last)
                events[day].add(read if candidates else without_decision_data(read))
                decisions[day].add(compaction.between(made, start, last))
                start = last + timedelta(microseconds=1)


def without_decision_data(events: pa.Table) -> pa.Table:
    """The events with the `data` of decision events (offer.shown, personalizer.ranked: the decisions
    table's rows, candidates and all) null."""
    decision = pc.is_in(events.column("type"), value_set=pa.array(sorted(dataset.LOOPS), pa.string()))
    data = pc.if_else(decision, pa.scalar(None, pa.string()), events.column("data"))
    return events.set_column(events.schema.get_field_index("data"), "data", data)


def run(ports: ExportPorts, window: Window, candidates: bool = True,
        progress: Callable[[str], None] = lambda step: None) -> dict[str, Any]:
    """Export the window: the catalog, the offer statistics, the retrain reports, then the archive a
    day at a time, each CHUNK of hours at a time (so about that many hours' rows are in memory at
    once); the manifest last. Returns the manifest. Without `candidates`, the candidates' features
    (~12 KB a decision) are left out: decisions.candidates and the decision events' data are null."""
    writer = _Writer(ports, window)
    offers = list(ports.offers())
    writer.dimension(OFFERS, offers_table(offers))
    writer.dimension(PRODUCTS, products_table(ports.products()))
    progress("catalog")
    documents = list(ports.offer_stats(window.start, window.end))
    writer.by_date(OFFER_STATS_HOURLY, offer_stats_hourly(documents, offers))
    minutely = offer_stats_minutely(documents, offers)
    if minutely is not None:
        writer.by_date(OFFER_STATS_MINUTELY, compaction.between(minutely, window.start, window.end, "minute"))
    progress("offer statistics")
    writer.by_date(RETRAINS, compaction.between(retrains(ports.reports(window.dates)), window.start, window.end))
    progress("retrains")
    for day in window.dates:
        writer.archive(day, ports.load, candidates)
        progress(f"archive {day.isoformat()}")
    manifest = {"layout": LAYOUT_VERSION, "exportedAt": compaction.iso(ports.clock()), "window": window.to_dict(),
                "format": "Parquet (zstd), Hive-style partitions date=YYYY-MM-DD; docs/export.md",
                "decisionCandidates": candidates,
                "tables": {name: {**writer.tables[name], "partitionedBy": "date" if TABLES[name].time else None,
                                  "columns": {f.name: str(f.type) for f in TABLES[name].schema}}
                           for name in TABLES if name in writer.tables}}
    with ports.create(MANIFEST) as file:
        file.write(json.dumps(manifest, indent=1).encode("utf-8"))
    return manifest
