"""`python -m ops simulate`: run shoppers headless against a policy and print the CTR curve.

No services: the discrete-event runner of `shared.simulation.headless` shows offers through
the real offers service over in-memory ports, on a simulated clock, so 20,000 impressions
take seconds. For each policy it prints a table per window of impressions (achieved CTR, the
true expected CTR of what was shown, and for the same impressions the expected CTR of a
uniformly random choice and of the oracle), a terminal chart of those curves and a summary
line. Several `--policy` options (or `all`) run on the same world, catalog and seed.

The learning benchmarks reuse `run_headless` (which also takes a chooser of their own and an
`on_events` hook to train on) and `render`.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import click
from tqdm import tqdm

from shared import catalog, events, policy
from shared.catalog_cache import Snapshot
from shared.simulation import headless
from shared.simulation.headless import Options, Result
from shared.simulation.shopper import Behaviour
from shared.learning.loop import Learner
from shared.simulation.world import World, WorldParams

ALL = "all"
LEARNED = "learned"  # the learned ranker, retrained every --retrain-every impressions (shared/learning/loop.py)
_MARKERS = ("●", "◆", "■", "▲", "★", "✚")  # achieved CTRs, one per policy; readable without colours
_RANDOM_MARKER, _ORACLE_MARKER = "·", "○"


@dataclass
class Measured:
    """A headless run's result and how long it took on the wall clock."""

    result: Result
    wall_seconds: float

    @property
    def impressions_per_second(self) -> float:
        return self.result.tally.impressions / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), "wallSeconds": self.wall_seconds,
                "impressionsPerSecond": self.impressions_per_second}


def run_headless(chosen: Union[str, policy.Chooser], options: Options, params: WorldParams = WorldParams(),
                 spec: catalog.CatalogSpec = catalog.CatalogSpec(), progress: bool = True,
                 snapshot: Optional[Snapshot] = None, name: Optional[str] = None,
                 on_events: Callable[[list[events.Event]], None] = lambda batch: None,
                 related: Callable[[], Optional[Any]] = lambda: None) -> Measured:
    """One headless run of `options.impressions` impressions, timed, with a tqdm bar when `progress`.

    `chosen` is a built-in policy's name (headless.POLICIES) or a chooser (then `name` names it
    in the result). Pass the same `snapshot` to several runs to build the catalog once.
    """
    snapshot = snapshot or headless.catalog_snapshot(spec, options.start)
    world = World(params, snapshot.products, snapshot.offers, snapshot.users)
    if isinstance(chosen, str):
        name, chooser = name or chosen, headless.chooser(chosen, world, options.seed)
    else:
        name, chooser = name or "custom", chosen
    simulator = headless.Simulator(world, snapshot, chooser, options, name, on_events, related)
    began = time.perf_counter()
    with tqdm(total=options.impressions, desc=name, unit="imp", disable=not progress or None,
              leave=False) as bar:
        def advance(impressions: int) -> None:
            bar.update(min(impressions, bar.total - bar.n))  # the last page may show more than needed

        result = simulator.run(on_progress=advance)
    return Measured(result, time.perf_counter() - began)


def _lift(ctr: float, random_ctr: float, oracle_ctr: float) -> Optional[float]:
    return (ctr - random_ctr) / (oracle_ctr - random_ctr) if oracle_ctr > random_ctr else None


def window_table(result: Result) -> str:
    """The CTR curve of one run, a row per window."""
    header = f"{'impressions':>11}  {'CTR':>7}  {'expected':>8}  {'random':>7}  {'oracle':>7}  {'lift':>6}"
    lines = [header, "-" * len(header)]
    for p in result.curve:
        lift = _lift(p.ctr, p.random, p.oracle)
        lines.append(f"{p.impressions:>11,}  {p.ctr:>7.4f}  {p.expected:>8.4f}  {p.random:>7.4f}  "
                     f"{p.oracle:>7.4f}  {'' if lift is None else f'{lift:>6.2f}':>6}")
    if not result.curve:
        lines.append("(no complete window: fewer impressions than --window)")
    return "\n".join(lines)


def summary(run: Measured) -> str:
    """One line: CTR, random and oracle CTRs, lift fraction, wall time and impressions/s."""
    r = run.result
    return (f"{r.policy}: CTR {r.ctr:.4f} · random CTR {r.rate('random'):.4f} · "
            f"oracle CTR {r.rate('oracle'):.4f} · lift fraction {r.lift():.2f} · {r.tally.impressions:,} impressions, {r.tally.clicks:,} clicks, "
            f"{r.tally.actions:,} actions in {run.wall_seconds:.1f} s ({run.impressions_per_second:,.0f} impressions/s)")


def chart(results: Sequence[Result], width: int = 100, height: int = 20, colour: bool = False) -> str:
    """The curves as text: each run's achieved CTR per window, and the first run's expected CTR of a
    random choice and of the oracle (the same world and pages, so the other runs' are close to it)."""
    import plotext  # imported here: only the chart needs it

    drawn = [r for r in results if r.curve]
    if not drawn:
        return ""
    first = drawn[0]
    expected = [("oracle (expected)", _ORACLE_MARKER, first.curve, "oracle"),
                ("random choice (expected)", _RANDOM_MARKER, first.curve, "random")]
    achieved = [(f"{r.policy} policy" if r.policy in headless.POLICIES else r.policy, _MARKERS[i % len(_MARKERS)],
                 r.curve, "ctr") for i, r in enumerate(drawn)]
    series = expected + achieved  # drawn in this order: the achieved curves stay on top
    figure = plotext.figure
    figure.clear()
    figure.plot_size(width, height)
    figure.theme("clear")
    for _, marker, curve, field in series:
        figure.draw(figure.signal([p.impressions for p in curve], [getattr(p, field) for p in curve],
                                  marker=marker).lines())
    top = max(getattr(p, field) for _, _, curve, field in series for p in curve)
    figure.ruler(axis=1).lim(0, top * 1.05 if top > 0 else 1)
    last = max(p.impressions for r in drawn for p in r.curve)
    ticks = _ticks(last)
    figure.ruler(axis=0).ticks(ticks, [f"{t:,}" for t in ticks])
    figure.title(f"CTR per window of {first.options.window:,} impressions")
    figure.label("impressions", axis=0)
    text = figure.build().string(colorless=not colour)
    figure.clear()
    legend = "   ".join(f"{marker} {label}" for label, marker, _, _ in achieved + expected)
    return f"{text.rstrip()}\n    {legend}"


def _ticks(last: int, count: int = 6) -> list[int]:
    """About `count` round impression counts up to `last`."""
    raw = last / count
    step = next(m * 10 ** e for e in range(0, 12) for m in (1, 2, 5) if m * 10 ** e >= raw)
    return list(range(step, last + 1, step)) or [last]


def render(runs: Sequence[Measured], echo: Callable[[str], None] = click.echo,
           colour: Optional[bool] = None) -> None:
    """Print each run's table per window, one chart of all the curves, then a summary line per run."""
    for run in runs:
        echo(f"\n{run.result.policy} — CTR per window of {run.result.options.window:,} impressions")
        echo(window_table(run.result))
    columns = shutil.get_terminal_size((100, 24)).columns
    text = chart([r.result for r in runs], width=max(60, min(columns, 120)),
                 colour=sys.stdout.isatty() if colour is None else colour)
    if text:
        echo("")
        echo(text)
    echo("")
    for run in runs:
        echo(summary(run))


def _world_types() -> dict[str, type]:
    hints = typing.get_type_hints(WorldParams)
    return {f.name: hints[f.name] for f in fields(WorldParams)}


def parse_world(values: Sequence[str], seed: int) -> WorldParams:
    """`key=value` overrides onto WorldParams (its seed defaults to the run's); raises click.BadParameter."""
    types = _world_types()
    overrides: dict[str, Any] = {"seed": seed}
    for item in values:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--world")
        if key not in types:
            raise click.BadParameter(f"unknown world parameter {key!r}; known: {', '.join(types)}",
                                     param_hint="--world")
        try:
            overrides[key] = types[key](raw.strip())
        except ValueError:
            raise click.BadParameter(f"{key} must be {types[key].__name__}, got {raw!r}",
                                     param_hint="--world") from None
    try:
        return WorldParams.from_dict(overrides)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--world") from None


def _policies(names: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    for name in names or ("baseline",):
        for one in headless.POLICIES if name == ALL else (name,):
            if one not in chosen:
                chosen.append(one)
    return chosen


@click.command()
@click.option("--impressions", default=20_000, show_default=True, type=click.IntRange(1),
              help="Impressions to simulate for each policy.")
@click.option("--policy", "policies", multiple=True, type=click.Choice([*headless.POLICIES, LEARNED, ALL]),
              help="Policy to run; repeat it (or say all: baseline, random, oracle) to compare several on the same "
                   "world and seed. `learned` is offerloop's ranker with 20% exploration, retrained by the retrain "
                   "job's code from the run's own events. [default: baseline]")
@click.option("--retrain-every", default=5000, show_default=True, type=click.IntRange(1),
              help="The learned policy: impressions between retrains.")
@click.option("--seed", default=Options.seed, show_default=True, type=click.IntRange(0),
              help="Seed of the shoppers and (unless --world seed=...) of the world.")
@click.option("--users", default=Options.users, show_default=True, type=click.IntRange(1),
              help="Simulated shoppers, drawn from the catalog's users.")
@click.option("--window", default=Options.window, show_default=True, type=click.IntRange(1),
              help="Impressions per point of the CTR curve.")
@click.option("--slots", default=Behaviour.slots, show_default=True, type=click.IntRange(1, 10),
              help="Offers shown on each page.")
@click.option("--products", default=catalog.CatalogSpec.products, show_default=True, type=click.IntRange(1))
@click.option("--offers", default=catalog.CatalogSpec.offers, show_default=True, type=click.IntRange(1))
@click.option("--categories", default=catalog.CatalogSpec.categories, show_default=True, type=click.IntRange(1))
@click.option("--catalog-users", default=catalog.CatalogSpec.users, show_default=True, type=click.IntRange(1),
              help="Users in the generated catalog.")
@click.option("--catalog-seed", default=catalog.CatalogSpec.seed, show_default=True,
              help="Seed of the generated catalog (as `ops seed --seed`).")
@click.option("--world", "world", multiple=True, metavar="KEY=VALUE",
              help=f"A world parameter; repeatable. Keys: {', '.join(f.name for f in fields(WorldParams))}.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write the results (the runs' figures and curves) to this JSON file.")
def simulate(impressions: int, policies: tuple[str, ...], retrain_every: int, seed: int, users: int, window: int,
             slots: int,
             products: int, offers: int, categories: int, catalog_users: int, catalog_seed: int,
             world: tuple[str, ...], json_path: Optional[Path]) -> None:
    """Simulate shoppers headless for N impressions against a policy and print the CTR curve."""
    params = parse_world(world, seed)
    spec = catalog.CatalogSpec(seed=catalog_seed, products=products, offers=offers, users=catalog_users,
                               categories=categories)
    options = Options(impressions=impressions, users=users, seed=seed, window=window,
                      behaviour=Behaviour(slots=slots))
    began = time.perf_counter()
    snapshot = headless.catalog_snapshot(spec, options.start)
    click.echo(f"catalog of {len(snapshot.products):,} products, {len(snapshot.offers):,} offers and "
               f"{len(snapshot.users):,} users built in {time.perf_counter() - began:.1f} s; "
               f"{users:,} shoppers, seed {seed}")
    runs = []
    for name in _policies(policies):
        if name == LEARNED:
            learner = Learner(retrain_every=retrain_every, seed=seed,
                              segments={u.id: u.segment for u in snapshot.users.values() if u.segment})
            runs.append(run_headless(learner.chooser, options, params, spec, snapshot=snapshot, name=LEARNED,
                                     on_events=learner.on_events, related=lambda: learner.related))
            promoted = [r for r in learner.reports if r.get("promoted")]
            click.echo(f"learned: {len(learner.reports)} retrains, {len(promoted)} promoted; "
                       f"serving {learner.model.version if learner.model else 'the baseline'}")
        else:
            runs.append(run_headless(name, options, params, spec, snapshot=snapshot))
    render(runs)
    if json_path is not None:
        document = {"world": params.to_dict(), "catalog": asdict(spec), "slots": slots, "window": window,
                    "runs": [run.to_dict() for run in runs]}
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        click.echo(f"written to {json_path}")
