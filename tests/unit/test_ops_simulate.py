"""`python -m ops simulate` on a tiny catalog: the tables, the chart, the summary and the JSON file."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from ops import simulate as sim
from shared.catalog import CatalogSpec
from shared.simulation.headless import Options
from shared.simulation.world import WorldParams

TINY = ["--products", "80", "--offers", "12", "--categories", "4", "--catalog-users", "120", "--users", "40"]


def invoke(*args: str):
    return CliRunner().invoke(sim.simulate, [*TINY, *args], catch_exceptions=False)


def test_simulate_prints_the_curve_the_chart_and_the_summary_and_writes_json(tmp_path):
    path = tmp_path / "out" / "sim.json"
    path.parent.mkdir()
    result = invoke("--impressions", "300", "--window", "100", "--policy", "baseline", "--policy", "oracle",
                    "--world", "base_rate=0.04", "--json", str(path))

    assert result.exit_code == 0, result.output
    out = result.output
    for policy in ("baseline", "oracle"):
        assert f"{policy} — CTR per window of 100 impressions" in out
        summary = re.search(rf"^{policy}: CTR (\S+) · random CTR (\S+) · oracle CTR (\S+) · lift fraction (\S+) · "
                            r"([\d,]+) impressions, .* in (\S+) s \(([\d,]+) impressions/s\)$", out, re.M)
        assert summary, out
        assert int(summary.group(5).replace(",", "")) >= 300
    assert "CTR per window of 100 impressions" in out and "impressions" in out
    assert "● baseline policy" in out and "○ oracle (expected)" in out  # the chart's legend
    assert re.search(r"^\s+100\s+\d\.\d{4}\s+\d\.\d{4}\s+\d\.\d{4}\s+\d\.\d{4}", out, re.M)  # a window row

    document = json.loads(path.read_text())
    assert document["world"]["base_rate"] == 0.04 and document["world"]["seed"] == 7
    assert [run["policy"] for run in document["runs"]] == ["baseline", "oracle"]
    for run in document["runs"]:
        assert len(run["curve"]) == 3
        assert [p["impressions"] >= 100 * (i + 1) for i, p in enumerate(run["curve"])] == [True] * 3
        assert run["impressions"] >= 300 and run["wallSeconds"] > 0 and run["impressionsPerSecond"] > 0
    oracle = document["runs"][1]
    assert oracle["ctr"] > oracle["randomCtr"]
    assert oracle["expectedCtr"] == pytest.approx(oracle["oracleCtr"])  # the oracle shows the oracle's choice


def test_all_runs_every_built_in_policy_once():
    result = invoke("--impressions", "50", "--window", "50", "--policy", "all", "--policy", "random")

    assert result.exit_code == 0, result.output
    assert re.findall(r"^(\w+): CTR ", result.output, re.M) == ["baseline", "random", "oracle"]


def test_an_unknown_world_key_is_a_usage_error_naming_it_and_the_known_keys():
    result = CliRunner().invoke(sim.simulate, [*TINY, "--impressions", "10", "--world", "base_rat=0.1"])

    assert result.exit_code == 2
    assert "Invalid value for --world: unknown world parameter 'base_rat'" in result.output
    assert "base_rate" in result.output


@pytest.mark.parametrize("item, message", [("base_rate=abc", "base_rate must be float, got 'abc'"),
                                           ("base_rate=1.5", "base_rate must be between 0 and 1"),
                                           ("fidelity", "'fidelity' is not key=value")])
def test_a_bad_world_value_is_a_usage_error(item, message):
    result = CliRunner().invoke(sim.simulate, [*TINY, "--impressions", "10", "--world", item])

    assert result.exit_code == 2
    assert message in result.output


def test_world_values_take_the_fields_types_and_the_runs_seed():
    params = sim.parse_world(["concentration=0.5", "seed=3"], seed=11)
    assert params == WorldParams(seed=3, concentration=0.5)
    assert sim.parse_world([], seed=11).seed == 11
    assert isinstance(sim.parse_world(["seed=4"], seed=0).seed, int)


def test_run_headless_is_reusable_with_a_chooser_of_ones_own_and_repeats_itself():
    spec = CatalogSpec(products=80, offers=12, categories=4, users=120)
    options = Options(impressions=120, users=30, seed=5, window=40)
    seen = []
    first = sim.run_headless("random", options, WorldParams(seed=5), spec, progress=False)
    again = sim.run_headless("random", options, WorldParams(seed=5), spec, progress=False,
                             on_events=seen.extend)
    assert first.result.sequence == again.result.sequence and first.result.sequence
    assert len(first.result.curve) == 3 and seen  # the hook saw the events

    from shared import policy
    custom = sim.run_headless(policy.greedy, options, WorldParams(seed=5), spec, progress=False, name="greedy")
    assert custom.result.policy == "greedy" and custom.result.tally.impressions >= 120
