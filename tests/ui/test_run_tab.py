"""The Run tab's handlers called directly, on a tab whose components are their own names."""

import dataclasses

from flowscale import RunConfig
from flowscale.ui.panels import View
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
