"""The figures package: Traces in, plotly figures, tables and step stories out (no gradio, no world, no search)."""

import json
import subprocess
import sys

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from hand_trace import EVENTS, RECORD, START, candidates

from flowscale import RunConfig, figures, run, stream
from flowscale.search import SEARCH_METHODS
from flowscale.trace import Trace
from flowscale.worlds.toy2d import background


def names(fig: go.Figure) -> set[str]:
    return {t.name for t in fig.data if t.name}


def title(fig: go.Figure) -> str:
    return fig.layout.title.text


BACKGROUND = background(START["world"], "point:1,1", lam=1.0, n=24)


def finished() -> Trace:
    return Trace.from_record(RECORD)


def test_a_record_loads_into_a_trace_with_the_ledger_and_flat_candidates():
    trace = finished()
    assert trace.candidates.ids.tolist() == [0, 1, 2, 3, 4]
    assert trace.candidates.steps.tolist() == [0, 0, 1, 1, 2]
    assert trace.best_reward_by_nfe == [[2, -3.0], [4, -1.0], [5, -0.5]]
    assert trace.config["method"] == "rbf" and trace.nfe_per_step == [2, 2, 1]
    assert trace.eval_steps() == [0, 1, 2] and trace.nfe_at_step(1) == 4


def test_lineage_and_split_of_a_finished_run():
    trace = finished()
    rows = figures.particles.split_paths(trace)
    assert trace.returned_id == 4
    assert [int(trace.candidates.ids[r]) for r in trace.lineage(4)] == [0, 3, 4]
    assert sorted(int(rows.cands.ids[r]) for r in rows.pruned) == [1, 2]  # leaves before the last step
    assert [int(rows.cands.ids[r]) for r in rows.current] == [4]
    assert sorted(int(rows.cands.ids[r]) for r in rows.continued) == [0, 3]


def test_at_a_scrubbed_step_the_run_is_drawn_as_it_stood():
    rows = figures.particles.split_paths(finished(), step=1)
    assert rows.cands.ids.tolist() == [0, 1, 2, 3]  # nothing evaluated after step 1 ended
    assert sorted(int(rows.cands.ids[r]) for r in rows.current) == [2, 3]


def test_untraced_particles_still_count_towards_the_budget():
    out = run(RunConfig(method="base", process="linear-ode", particles=300, steps=3))
    first = out.trace.events[1]
    assert first["n"] == 300 and len(first["ids"]) == 256  # the engine traces only the first particles
    assert out.trace.nfe_per_step == [300, 300, 300]


def test_paths_figure_of_the_2d_world_shows_density_target_lineage_and_baseline():
    baseline = Trace.from_record({"events": [
        dict(START, config=dict(START["config"], method="ode")),
        candidates(0, 1, [0], [-1], [-2.0], 1.0), candidates(1, 2, [1], [0], [-1.5], 0.5)]})
    fig = figures.trajectories_figure(finished(), background=BACKGROUND, baseline=baseline)
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
    fig = figures.trajectories_figure(finished(), background=BACKGROUND, layers=["pruned"])
    assert not fig.layout.images
    assert "data density p(x)" not in names(fig)
    assert "pruned / rejected candidates" in names(fig)


def test_a_running_trace_marks_its_newest_batch_as_current():
    fig = figures.trajectories_figure(Trace.from_record({"events": EVENTS[:3]}))
    assert "current particles" in names(fig)
    assert "running" in fig.layout.title.subtitle.text


def test_a_scrubbed_step_rings_its_candidates_and_says_which_step():
    fig = figures.trajectories_figure(finished(), background=BACKGROUND, step=1)
    assert "candidates of step 1" in names(fig)
    assert fig.layout.title.subtitle.text.startswith("step 1 (t = 0.50)")


def test_image_world_paths_have_a_reward_panel_and_a_projection_panel():
    trace = Trace.from_record(dict(RECORD, events=[dict(START, config=dict(START["config"], model="shapes")),
                                                  *EVENTS[1:]]))
    fig = figures.trajectories_figure(trace)
    assert fig.layout.xaxis.title.text.startswith("denoising step")
    assert fig.layout.yaxis2.title.text == "projection 2"
    assert "lineage of the returned sample" in names(fig)
    assert "candidates of step 2" in names(figures.trajectories_figure(trace, step=2))


def test_budget_figure_stacks_rbf_quota_and_rollover():
    fig = figures.budget_figure(finished())
    assert title(fig) == "<b>NFE per denoising step — RBF · Linear-SDE</b>"
    assert {"planned base quota", "rolled over", "NFE spent"} <= names(fig)
    rollover = next(t for t in fig.data if t.name == "rolled over")
    assert list(rollover.base) == [2, 2, 1]  # stacked on the quota
    assert fig.layout.yaxis.title.text == "model evaluations (NFE)"
    marked = figures.budget_figure(finished(), step=1)
    assert marked.layout.shapes[0].x0 == 0.5 and "step 1: 2 NFE" in marked.layout.annotations[0].text


def test_budget_figure_shows_the_live_rollover_of_a_running_rbf():
    trace = Trace()
    seen = 0
    for event in stream(RunConfig(method="rbf", process="vp-sde", nfe=60, steps=6, seed=3), trace=trace):
        if event.kind == "budget" and event.data["rollover"] and not trace.finished:
            live = figures.budget_figure(trace)
            drawn = list(next(t for t in live.data if t.name == "rolled over").y)
            assert drawn == trace.plan["rollover_per_step"] and sum(drawn) > 0
            seen += 1
    assert seen


def test_reward_figure_has_method_bon_and_baseline_curves_and_cuts_at_a_step():
    bon = Trace.from_record(dict(RECORD, events=[dict(START, config=dict(START["config"], method="bon")),
                                                *EVENTS[1:]], final_reward=-0.9))
    baseline = Trace.from_record(dict(RECORD, events=[dict(START, config=dict(START["config"], method="ode"))],
                                      nfe_used=3, final_reward=-2.5, best_reward_by_nfe=[[1, -3.0], [3, -2.5]]))
    fig = figures.reward_figure(finished(), baseline=baseline, bon=bon)
    assert title(fig) == "<b>Best reward vs. NFE spent</b>"
    assert {"RBF · Linear-SDE", "BoN, same budget · Linear-SDE", "ODE baseline"} <= names(fig)
    assert fig.layout.xaxis.title.text == "NFE spent (model evaluations)"
    assert fig.layout.yaxis.title.text == "best point:1,1 so far"
    cut = figures.reward_figure(finished(), step=1)
    method = next(t for t in cut.data if t.name == "RBF · Linear-SDE")
    assert max(method.x) == 4 and cut.layout.shapes[0].x0 == 4  # the curve stops at step 1's NFE


def test_empty_inputs_give_explanatory_figures():
    for fig in (
        figures.trajectories_figure(None),
        figures.budget_figure(None),
        figures.reward_figure(None),
        figures.compare_figure([]),
    ):
        assert fig.layout.annotations and "Press" in fig.layout.annotations[0].text


@pytest.fixture(scope="module")
def real_runs():
    """One small real run of every search method (toy2d, 10 steps, 100 NFE), with figures drawn from the
    live trace at several points of the run."""
    out = {}
    for method in SEARCH_METHODS:
        trace = Trace()
        drawn = 0
        for i, event in enumerate(stream(RunConfig(method=method, process="linear-sde", nfe=100, steps=10, seed=1),
                                         trace=trace)):
            if i in (1, 2, 5, 12) and event.kind != "done":
                bg = background(trace.world, trace.config["reward"], trace.tilt_lambda, n=24)
                for fig in (figures.trajectories_figure(trace, background=bg), figures.budget_figure(trace),
                            figures.reward_figure(trace), figures.trajectories_figure(trace, step=0)):
                    json.loads(fig.to_json())  # valid, serialisable figures at every point of a run
                drawn += 1
        assert drawn >= 3
        out[method] = trace
    return out


@pytest.mark.parametrize("method", SEARCH_METHODS)
def test_finished_figures_read_the_ledger_and_every_step_draws(real_runs, method):
    trace = real_runs[method]
    record = trace.record
    assert trace.nfe_per_step == record.nfe_per_step
    assert trace.best_reward_by_nfe[-1][1] == pytest.approx(record.best_reward_by_nfe[-1][1])
    assert trace.returned_id is not None and trace.lineage(trace.returned_id), "the returned sample is traced"
    for step in trace.eval_steps():
        for fig in (figures.trajectories_figure(trace, step=step), figures.budget_figure(trace, step),
                    figures.reward_figure(trace, step=step)):
            json.loads(fig.to_json())
        assert f"**Step {step}**" in figures.step_story(trace, step)


def test_smc_reward_figure_adds_ess_per_step(real_runs):
    fig = figures.reward_figure(real_runs["smc"])
    ess = [t for t in fig.data if t.name == "ESS after reweighting"]
    assert ess and ess[0].yaxis == "y2"
    assert fig.layout.yaxis2.title.text == "ESS"
    assert any("effective sample size per step" in a.text for a in fig.layout.annotations)


def test_compare_table_and_bars(real_runs):
    rows = [figures.compare_row(real_runs[m], m, "linear-sde") for m in SEARCH_METHODS]
    rows.append(figures.compare_row(None, "ode", "linear-ode", note="skipped"))
    assert rows[0][:2] == ["BoN", "Linear-SDE"] and rows[0][4] == real_runs["bon"].record.nfe_used
    assert figures.compare_row(real_runs["bon"].record.saved(), "bon", "linear-sde") == rows[0]  # a worker's record
    fig = figures.compare_figure(rows, "point:-2,2", "logp")
    assert title(fig) == "<b>All methods at the same budget and seed</b>"
    assert list(fig.data[0].x) == [figures.METHOD_LABELS[m] for m in SEARCH_METHODS]
    assert len(figures.COMPARE_HEADERS) == len(rows[0])


def test_side_by_side_table_lists_rewards_and_nfe(real_runs):
    table = figures.side_by_side_markdown([("ODE baseline", None), ("RBF", real_runs["rbf"]),
                                           ("BoN", real_runs["bon"])])
    assert "| **RBF** | **BoN** |" in table  # a missing run is left out
    assert f"{real_runs['rbf'].record.nfe_used} / 100" in table
    assert "held-out reward `logp`" in table


def test_previews_become_crisp_uint8_images_and_counts_a_caption():
    small = torch.rand(3, 8, 8) * 2 - 1  # model space [-1, 1], channels first
    arr = figures.to_uint8_image(small, size=64)
    assert arr.dtype == np.uint8 and arr.shape == (64, 64, 3)
    assert (arr[:8, :8] == arr[0, 0]).all()  # nearest neighbour: each pixel a crisp 8x8 block
    hwc = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    assert figures.to_uint8_image(hwc, size=16).shape == (16, 16, 3)
    strip = figures.preview_strip({2: (hwc, 0.5, 1.25), 0: (hwc, 1.0, 0.5)})
    assert [caption for _, caption in strip] == ["step 0: r=0.5", "step 2: r=1.25"]
    assert [c for _, c in figures.preview_strip({2: (hwc, 0.5, 1.25), 0: (hwc, 1.0, 0.5)}, until=1)] == ["step 0: r=0.5"]
    assert figures.counts_caption([{"red circle": 3, "blue square": 1}]) == "detected: 3 red circle, 1 blue square"
    assert figures.counts_caption([{}]) == "detected: nothing" and figures.counts_caption(None) == ""


def test_figures_load_without_gradio():
    code = "import sys, flowscale.figures; sys.exit(1 if 'gradio' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
