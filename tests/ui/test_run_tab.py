"""The Run tab's handlers called directly, on a tab whose components are their own names."""

import dataclasses
import json

import gradio as gr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowscale import RunConfig
from flowscale.ui.panels import View
from flowscale.ui.replay_tab import ReplayTab, redraw_ui
from flowscale.ui.run_controls import Controls
from flowscale.ui.run_tab import Results, RunTab, clear_for_model, latest, play, scrub, stream_session


def fake_tab() -> RunTab:
    return RunTab(Controls(names={}, c={"model": "model"}), Results(**{f.name: f.name for f in
                                                                      dataclasses.fields(Results)}))


def finished_view(tab: RunTab, **cfg) -> View:
    final = list(stream_session(tab, RunConfig(**cfg), None, lambda *a, **k: None, with_bon=False))[-1]
    return final["state"]


def test_switching_the_world_clears_the_previous_worlds_results():
    tab = fake_tab()
    view = finished_view(tab, method="rbf", process="vp-sde", nfe=60, steps=6)
    same = clear_for_model(tab, view, "toy2d")
    assert "state" not in same and same["layers"]["visible"] is True  # the same world keeps its results
    other = clear_for_model(tab, view, "shapes")
    assert other["state"] is None and other["record_file"]["visible"] is False
    assert "Press" in other["plot_paths"].layout.annotations[0].text
    assert other["layers"]["visible"] is False and other["image_results"]["visible"] is True


def test_scrub_pins_a_step_and_latest_unpins_it():
    tab = fake_tab()
    view = finished_view(tab, method="smc", process="linear-sde", nfe=60, steps=6)
    drawn = scrub(tab.results, view, 3, ["pruned"])
    assert view.pinned == 3 and drawn["story"].startswith("**Step 3**")
    assert drawn["plot_paths"].layout.title.subtitle.text.startswith("step 3")
    assert scrub(tab.results, view, 99, ["pruned"])["story"].startswith("**Step 5**")  # clamped to the run
    back = latest(tab.results, view, ["pruned"])
    assert view.pinned is None and "finished" in back["plot_paths"].layout.title.subtitle.text


def test_play_walks_every_later_step(monkeypatch):
    monkeypatch.setattr("flowscale.ui.run_tab.PLAY_STEP_S", 0.0)
    tab = fake_tab()
    view = finished_view(tab, method="bon", process="linear-ode", nfe=60, steps=6)
    frames = list(play(tab.results, view, 2, []))
    assert [f["scrubber"]["value"] for f in frames] == [2, 3, 4, 5]
    assert [f["story"][:10] for f in frames] == ["**Step 2**", "**Step 3**", "**Step 4**", "**Step 5**"]


scalars = st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers(-5, 5) | st.text(max_size=6)
record_json = st.recursive(scalars,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                               st.sampled_from(["config", "events", "kind", "step", "nfe_total", "ids", "parents", "t",
                                                "states", "x0", "rewards", "nfe_per_step", "model", "method"]),
                               inner, max_size=5), max_leaves=25)


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(record=record_json, base=st.booleans())
def test_fuzzed_uploads_are_redrawn_or_refused_with_a_message(record, base, tmp_path):
    if base:  # start from a real record's shape with fuzzed parts, to get past the first checks
        record = {"config": {"method": "bon"}, "events": [{"kind": "candidates", "step": 0, "nfe_total": 1,
                                                           "ids": record, "parents": [0], "t": [1.0]}]}
    path = tmp_path / "upload.json"
    path.write_text(json.dumps(record))
    tab = fake_tab()
    try:
        redraw_ui(ReplayTab("upload", "replay", "redraw", "status"), tab, "tabs", str(path), [])
    except gr.Error as exc:
        assert len(str(exc)) < 420 and "Traceback" not in str(exc)


def test_latest_or_a_scrub_stops_a_play_under_way(monkeypatch):
    monkeypatch.setattr("flowscale.ui.run_tab.PLAY_STEP_S", 0.0)
    tab = fake_tab()
    view = finished_view(tab, method="bon", process="linear-ode", nfe=60, steps=6)
    walk = play(tab.results, view, 1, [])
    assert next(walk)["scrubber"]["value"] == 1
    back = latest(tab.results, view, [])  # pressed while Play was between frames
    assert list(walk) == []  # no later frame draws over the finished run
    assert view.pinned is None and "finished" in back["plot_paths"].layout.title.subtitle.text
    walk = play(tab.results, view, 1, [])
    next(walk)
    scrub(tab.results, view, 4, [])
    assert list(walk) == [] and view.pinned == 4
