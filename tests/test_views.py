"""The app's pure views: trace events and records in, plotly figures and tables out (no gradio)."""

import json
import sys

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from flowscale import RunConfig, run
from flowscale.search import SEARCH_METHODS
from flowscale.ui import views


def names(fig: go.Figure) -> set[str]:
    return {t.name for t in fig.data if t.name}


def title(fig: go.Figure) -> str:
    return fig.layout.title.text


# A hand-made trace: two fresh noises (0, 1) at step 0; 0 has children 2 and 3 at step 1 (1 is pruned);
# 3 has child 4 at step 2, which the run returned.
START = {
    "kind": "start",
    "step": -1,
    "nfe_total": 0,
    "grid": [1.0, 0.5, 0.25, 0.0],
    "config": {
        "model": "toy2d",
        "method": "rbf",
        "process": "linear-sde",
        "nfe": 5,
        "reward": "point:1,1",
        "heldout": "logp",
        "params": {},
    },
    "world": {"mixture": {"means": [[1.0, 1.0], [-1.0, -1.0]], "stds": [0.3, 0.3], "weights": [0.5, 0.5]}},
}


def candidates(step, nfe, ids, parents, rewards, t):
    n = len(ids)
    return {
        "kind": "candidates",
        "step": step,
        "nfe_total": nfe,
        "n": n,
        "t": [t] * n,
        "ids": ids,
        "parents": parents,
        "states": [[0.1 * i, -0.1 * i] for i in ids],
        "x0": [[0.2 * i, 0.2 * i] for i in ids],
        "rewards": rewards,
        "reward_max": max(rewards),
        "reward_mean": sum(rewards) / n,
    }


EVENTS = [
    START,
    candidates(0, 2, [0, 1], [-1, -1], [-3.0, -4.0], 1.0),
    candidates(1, 4, [2, 3], [0, 0], [-2.0, -1.0], 0.5),
    {"kind": "budget", "step": 1, "nfe_total": 4, "chain": 0, "mode": "accept", "rollover": 2},
    candidates(2, 5, [4], [3], [-0.5], 0.25),
]
RECORD = {
    "config": START["config"],
    "final_reward": -0.5,
    "samples_2d": [[0.8, 0.8]],
    "nfe_used": 5,
    "nfe_budget": 5,
    "nfe_per_step": [2, 2, 1],
    "grid": START["grid"],
    "heldout_reward": -2.0,
    "quota_per_step": [2, 2, 1],
    "rollover_per_step": [0, 0, 2],
    "best_reward_by_nfe": [[2, -3.0], [4, -1.0], [5, -0.5]],
    "wall_time_s": 0.1,
}


def test_read_trace_flattens_candidates_and_keeps_the_running_best():
    trace = views.read_trace(EVENTS)
    assert trace.ids.tolist() == [0, 1, 2, 3, 4]
    assert trace.steps.tolist() == [0, 0, 1, 1, 2]
    assert trace.curve == [(2, -3.0), (4, -1.0), (5, -0.5)]
    assert trace.config["method"] == "rbf"
    assert views.nfe_per_step(EVENTS) == [2, 2, 1]


def test_lineage_and_split_of_a_finished_run():
    trace = views.read_trace(EVENTS)
    assert views.returned_id(trace, RECORD) == 4
    assert [int(trace.ids[r]) for r in views.lineage(trace, 4)] == [0, 3, 4]
    rows = views.split_paths(trace, RECORD)
    assert sorted(int(trace.ids[r]) for r in rows.pruned) == [1, 2]  # leaves before the last step
    assert [int(trace.ids[r]) for r in rows.current] == [4]
    assert sorted(int(trace.ids[r]) for r in rows.continued) == [0, 3]


def test_untraced_particles_still_count_towards_the_budget():
    big = candidates(0, 300, [0, 1], [-1, -1], [0.0, 1.0], 1.0)
    big["n"] = 300  # the engine traces only the first particles of a large batch
    assert views.nfe_per_step([START, big])[:1] == [300]


def test_paths_figure_of_the_2d_world_shows_density_target_lineage_and_baseline():
    background = views.density_background(START["world"], "point:1,1", lam=1.0, n=24)
    baseline = [START, candidates(0, 1, [0], [-1], [-2.0], 1.0), candidates(1, 2, [1], [0], [-1.5], 0.5)]
    fig = views.trajectories_figure(EVENTS, RECORD, background=background, baseline_events=baseline)
    assert title(fig) == "<b>Particle paths — RBF · Linear-SDE</b>"
    assert "finished" in fig.layout.title.subtitle.text
    assert {
        "data density p(x)",
        "pruned / rejected candidates",
        "lineage of the returned sample",
        "returned sample x̂0",
        "ODE baseline: path → its sample",
        "reward target (point:1,1)",
    } <= names(fig)
    assert any(n.startswith("reward-tilted target") for n in names(fig))
    assert fig.layout.images[0].source.startswith("data:image/png;base64,")
    assert fig.layout.xaxis.title.text == "x₁" and fig.layout.yaxis.title.text == "x₂"
    assert fig.layout.yaxis.scaleanchor == "x"  # equal aspect: distances look like distances


def test_layers_switch_parts_of_the_paths_figure_off():
    background = views.density_background(START["world"], "point:1,1", n=24)
    fig = views.trajectories_figure(EVENTS, RECORD, background=background, layers=["pruned"])
    assert not fig.layout.images
    assert "data density p(x)" not in names(fig)
    assert "pruned / rejected candidates" in names(fig)


def test_a_running_trace_marks_its_newest_batch_as_current():
    fig = views.trajectories_figure(EVENTS[:3], None)
    assert "current particles" in names(fig)
    assert "running" in fig.layout.title.subtitle.text


def test_image_world_paths_have_a_reward_panel_and_a_projection_panel():
    fig = views.trajectories_figure(EVENTS, RECORD, image_world=True)
    assert fig.layout.xaxis.title.text.startswith("denoising step")
    assert fig.layout.yaxis2.title.text == "projection 2"
    assert "lineage of the returned sample" in names(fig)


def test_budget_figure_stacks_rbf_quota_and_rollover():
    fig = views.budget_figure(EVENTS, RECORD)
    assert title(fig) == "<b>NFE per denoising step — RBF · Linear-SDE</b>"
    assert {"planned base quota", "rolled over", "NFE spent"} <= names(fig)
    rollover = next(t for t in fig.data if t.name == "rolled over")
    assert list(rollover.base) == [2, 2, 1]  # stacked on the quota
    assert fig.layout.yaxis.title.text == "model evaluations (NFE)"
    live = views.budget_figure(EVENTS)  # while running: rollover from the budget events
    assert list(next(t for t in live.data if t.name == "rolled over").y) == [0, 0, 2]


def test_reward_figure_has_method_bon_and_baseline_curves():
    bon = dict(RECORD, config=dict(RECORD["config"], method="bon"), final_reward=-0.9)
    baseline = dict(
        RECORD,
        config=dict(RECORD["config"], method="ode"),
        nfe_used=3,
        final_reward=-2.5,
        best_reward_by_nfe=[[1, -3.0], [3, -2.5]],
    )
    fig = views.reward_figure(EVENTS, RECORD, baseline=baseline, bon=bon)
    assert title(fig) == "<b>Best reward vs. NFE spent</b>"
    assert {"RBF · Linear-SDE", "BoN, same budget · Linear-SDE", "ODE baseline"} <= names(fig)
    assert fig.layout.xaxis.title.text == "NFE spent (model evaluations)"
    assert fig.layout.yaxis.title.text == "best point:1,1 so far"


def test_empty_inputs_give_explanatory_figures():
    for fig in (
        views.trajectories_figure([]),
        views.budget_figure([]),
        views.reward_figure([]),
        views.compare_figure([]),
    ):
        assert fig.layout.annotations and "Press" in fig.layout.annotations[0].text


@pytest.fixture(scope="module")
def real_runs():
    """One small real run of every search method (toy2d, 10 steps, 100 NFE)."""
    out = {}
    for method in SEARCH_METHODS:
        record = run(RunConfig(method=method, process="linear-sde", nfe=100, steps=10, seed=1)).record
        out[method] = json.loads(json.dumps(record.comparable()))
    return out


@pytest.mark.parametrize("method", SEARCH_METHODS)
def test_live_counts_match_the_ledger_and_every_prefix_draws(real_runs, method):
    record = real_runs[method]
    events = record["events"]
    assert views.nfe_per_step(events) == record["nfe_per_step"]
    assert views.read_trace(events).curve[-1][1] == pytest.approx(record["best_reward_by_nfe"][-1][1])
    trace = views.read_trace(events)
    assert views.returned_id(trace, record) is not None, "the returned sample is found among the candidates"
    background = views.density_background(record["world"], record["config"]["reward"], n=24)
    for k in sorted({1, 2, len(events) // 2, len(events)}):
        partial = events[:k]
        for fig in (
            views.trajectories_figure(partial, background=background),
            views.budget_figure(partial),
            views.reward_figure(partial),
        ):
            json.loads(fig.to_json())  # valid, serialisable figures at every step of a run


def test_smc_reward_figure_adds_ess_per_step(real_runs):
    record = real_runs["smc"]
    fig = views.reward_figure(record["events"], record)
    ess = [t for t in fig.data if t.name == "ESS after reweighting"]
    assert ess and ess[0].yaxis == "y2"
    assert fig.layout.yaxis2.title.text == "ESS"
    assert any("effective sample size per step" in a.text for a in fig.layout.annotations)


def test_compare_table_and_bars(real_runs):
    rows = [views.compare_row(real_runs[m], m, "linear-sde") for m in SEARCH_METHODS]
    rows.append(views.compare_row(None, "ode", "linear-ode", note="skipped"))
    assert rows[0][:2] == ["BoN", "Linear-SDE"] and rows[0][4] == real_runs["bon"]["nfe_used"]
    fig = views.compare_figure(rows, "point:-2,2", "logp")
    assert title(fig) == "<b>All methods at the same budget and seed</b>"
    assert list(fig.data[0].x) == [views.METHOD_LABELS[m] for m in SEARCH_METHODS]
    assert len(views.COMPARE_HEADERS) == len(rows[0])


def test_side_by_side_table_lists_rewards_and_nfe(real_runs):
    table = views.side_by_side_markdown([("ODE baseline", None), ("RBF", real_runs["rbf"]), ("BoN", real_runs["bon"])])
    assert "| **RBF** | **BoN** |" in table  # a missing run is left out
    assert f"{real_runs['rbf']['nfe_used']} / 100" in table
    assert "held-out reward `logp`" in table


def test_previews_become_crisp_uint8_images():
    small = torch.rand(3, 8, 8) * 2 - 1  # model space [-1, 1], channels first
    arr = views.to_uint8_image(small, size=64)
    assert arr.dtype == np.uint8 and arr.shape == (64, 64, 3)
    hwc = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    assert views.to_uint8_image(hwc, size=16).shape == (16, 16, 3)
    strip = views.preview_strip({2: (hwc, 0.5, 1.25), 0: (hwc, 1.0, 0.5)})
    assert [caption for _, caption in strip] == ["step 0: r=0.5", "step 2: r=1.25"]


def test_views_import_no_gradio():
    assert "flowscale.ui.views" in sys.modules
    import subprocess

    code = "import sys, flowscale.ui.views; sys.exit(1 if 'gradio' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
