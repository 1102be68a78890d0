"""The Gradio app: its named API endpoint /run through gradio_client against a live local server, and its
handlers (config building, record upload, replay) called directly."""

import dataclasses
import json
import time
from pathlib import Path

import pytest
from gradio_client import Client

from flowscale import ConfigError, RunConfig, figures, run
from flowscale.catalog import MODEL_NAMES
from flowscale.trace import RUNTIME_KEYS as TIMING
from flowscale.ui import controls, models, records
from flowscale.ui.replay_tab import ReplayTab, redraw_ui, replay_ui
from flowscale.ui.run_controls import Controls
from flowscale.ui.run_tab import Results, RunTab, stream_session


@pytest.fixture(scope="module")
def client(app_url):
    c = Client(app_url, verbose=False, download_files=False)
    try:
        yield c
    finally:
        c.close()


def without_timings(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING}


def test_run_endpoint_has_the_cli_names_with_defaults(client):
    endpoint = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/run"]
    params = {p["parameter_name"]: p for p in endpoint["parameters"]}
    assert list(params)[:5] == ["model", "method", "process", "nfe", "seed"]
    assert all(p["parameter_has_default"] for p in params.values())
    assert params["model"]["parameter_default"] == "toy2d"


def test_run_streams_updates_and_ends_with_the_record(client):
    job = client.submit(model="toy2d", method="rbf", process="vp-sde", nfe=200, seed=0, api_name="/run")
    updates = list(job)  # every streamed update, in order
    assert len(updates) >= 3
    assert updates[0][0]["status"] == "started" and updates[0][1] is None
    assert any(u[0]["status"] == "running" for u in updates)
    status, record = job.outputs()[-1]
    assert status["status"] == "done"
    assert record["config"]["method"] == "rbf" and record["config"]["process"] == "vp-sde"
    assert record["nfe_used"] == 200 and sum(record["nfe_per_step"]) == 200
    assert record["events"][0]["kind"] == "start"


def test_same_seed_same_record_and_other_settings_keep_defaults(client):
    first = client.predict(model="toy2d", method="smc", process="linear-sde", nfe=150, seed=3, api_name="/run")[1]
    again = client.predict(model="toy2d", method="smc", process="linear-sde", nfe=150, seed=3, api_name="/run")[1]
    assert without_timings(first) == without_timings(again)
    assert first["config"]["steps"] == 25 and first["config"]["preset"] is None  # the model's defaults
    other = client.predict(method="smc", process="linear-sde", nfe=150, seed=4, api_name="/run")[1]
    assert other["final_reward"] != first["final_reward"]


def test_params_reach_the_method(client):
    record = client.predict(
        method="rbf", nfe=200, params={"rbf.variant": "code", "rbf.init_particles": 5}, api_name="/run"
    )[1]
    assert record["config"]["params"]["rbf.variant"] == "code"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"nfe": 0}, "nfe"),
        ({"method": "beam"}, "method"),
        ({"process": "ddim"}, "process"),
        ({"model": "toy3d"}, "model"),
        ({"reward": "point:abc"}, "reward"),
        ({"params": {"rbf.chains": 0}}, "rbf.chains"),  # the exact key the caller sent
    ],
)
def test_bad_input_is_a_clear_error_and_the_server_keeps_serving(client, kwargs, field):
    with pytest.raises(Exception) as info:
        client.predict(api_name="/run", **kwargs)
    message = str(info.value)
    assert f"“{field}”" in message, message
    assert "Traceback" not in message
    status, record = client.predict(nfe=60, seed=1, api_name="/run")
    assert status["status"] == "done" and record["nfe_used"] == 60


def test_a_cancelled_job_stops_and_the_server_keeps_serving(client):
    job = client.submit(method="smc", process="linear-sde", nfe=20000, steps=1000, seed=0, api_name="/run")
    deadline = time.time() + 60
    while not job.outputs() and time.time() < deadline:
        time.sleep(0.05)
    job.cancel()
    deadline = time.time() + 30
    while not job.done() and time.time() < deadline:
        time.sleep(0.1)
    assert job.done()
    assert job.status().code.name == "CANCELLED"  # the whole run takes seconds; it stopped within a step
    assert job.outputs()[-1][1] is None
    assert client.predict(nfe=60, api_name="/run")[0]["status"] == "done"


# ---- handlers, called directly ------------------------------------------------------------------------
def ui_values(**over):
    values = {
        "model": "toy2d",
        "method": "rbf",
        "process": "vp-sde",
        "nfe": 200,
        "steps": 25,
        "seed": 0,
        "preset": "imbalanced4",
        "mixture": controls.preset_rows("imbalanced4"),
        "reward": "point:-2,2",
        "heldout": "logp",
        "prompt": "",
        "g_schedule": "square",
        "g_norm": 3.0,
        "beta_min": 0.1,
        "beta_max": 20.0,
        "grid": "default",
    }
    for s in controls.all_settings():
        values[s.key] = 0 if s.default is None else s.default
    values.update(over)
    return values


def test_ui_values_become_a_run_config_with_only_changed_method_settings():
    cfg = controls.build_config(ui_values(**{"rbf.variant": "code", "smc.lam": 0.5}))
    assert cfg.preset == "imbalanced4" and cfg.mixture is None
    assert cfg.params == {"rbf.variant": "code"}  # other methods' settings stay out of the record
    edited = controls.preset_rows("imbalanced4")
    edited[0][2] = 0.8
    cfg = controls.build_config(ui_values(mixture=edited))
    assert cfg.preset is None and cfg.mixture["stds"][0] == 0.8
    with pytest.raises(ConfigError) as info:
        controls.build_config(ui_values(mixture=[["a", 1, 1, 1]]))
    assert info.value.field == "mixture"
    with pytest.raises(ConfigError) as info:
        controls.build_config(ui_values(seed=None))
    assert info.value.field == "seed"


def fake_tab() -> RunTab:
    """A Run tab whose components are their own names: updates come back keyed by name."""
    results = Results(**{f.name: f.name for f in dataclasses.fields(Results)})
    return RunTab(Controls(), results)


def test_session_streams_baseline_method_and_bon_then_writes_the_record(tmp_path):
    tab = fake_tab()
    cfg = controls.build_config(ui_values(nfe=100, steps=10))
    updates = list(stream_session(tab, cfg, None, lambda *a, **k: None))
    drawn = [u for u in updates if "plot_paths" in u]
    assert len(drawn) >= 3  # at least the end of each phase
    final = updates[-1]
    view = final["state"]
    assert view.baseline.config["method"] == "ode" and view.bon.config["method"] == "bon"
    assert view.method.record.nfe_used == 100
    path = final["record_file"]["value"]
    saved = json.loads(Path(path).read_text())
    assert without_timings(saved) == without_timings(view.method.record.saved())
    assert final["status"].startswith("**Done**")


def test_uploaded_records_are_checked_before_anything_runs(tmp_path):
    record = __import__("flowscale").run(RunConfig(method="bon", process="linear-sde", nfe=50, steps=5)).record.saved()
    good = tmp_path / "record.json"
    good.write_text(json.dumps(record))
    assert records.read_upload(str(good))["config"]["method"] == "bon"
    cases = {
        "big.json": "{" + " " * (records.MAX_RECORD_BYTES + 1) + "}",
        "bad.json": "{not json",
        "list.json": "[1, 2]",
        "unknown.json": json.dumps({"config": {"model": "toy2d", "evil": 1}}),
        "path.json": json.dumps({"config": {"model": "toy2d", "model_path": "/etc"}}),
        "record.txt": json.dumps(record),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError):
            records.read_upload(str(tmp_path / name))


def test_replay_of_a_downloaded_record_is_identical(tmp_path):
    tab = fake_tab()
    replay = ReplayTab("upload", "replay", "redraw", "replay_status")
    cfg = controls.build_config(ui_values(method="svdd", nfe=100, steps=10, seed=5))
    final = list(stream_session(tab, cfg, None, lambda *a, **k: None, with_bon=False))[-1]
    path = final["record_file"]["value"]
    updates = list(replay_ui(replay, tab, "tabs", path, ["pruned"], lambda *a, **k: None))
    assert "Replay identical" in updates[-1]["replay_status"]
    tampered = json.loads(Path(path).read_text())
    tampered["final_reward"] += 1.0
    other = tmp_path / "tampered.json"
    other.write_text(json.dumps(tampered))
    updates = list(replay_ui(replay, tab, "tabs", str(other), ["pruned"], lambda *a, **k: None))
    assert "Replay differs" in updates[-1]["replay_status"] and "final_reward" in updates[-1]["replay_status"]
    drawn = redraw_ui(replay, tab, "tabs", path, ["density", "pruned"])
    assert drawn["plot_paths"].layout.title.text.startswith("<b>Particle paths")
    assert drawn["state"].method.views() == final["state"].method.views()  # the record loads back into the trace


def test_unavailable_models_get_a_reason_not_a_crash():
    assert models.model_status("toy2d") is None
    assert "toy3d" in models.model_status("toy3d")
    for model in MODEL_NAMES:
        assert models.status_markdown(model).startswith(("✓", "⚠"))


def test_compare_fills_a_row_per_method_in_order_and_notes_what_cannot_fit():
    from flowscale.ui.compare_tab import METHODS, CompareTab, compare_ui

    # 30 NFE over 25 steps: too little for RBF (the Run tab's own method) and some others, a note each
    values = ui_values(nfe=30, steps=25)
    tab = CompareTab(*(f.name for f in dataclasses.fields(CompareTab)))
    run_tab = RunTab(Controls(names={k: k for k in values}), fake_tab().results)
    updates = list(compare_ui(tab, run_tab, values, progress=lambda *a, **k: None))
    assert updates[-1]["status"].startswith("**Done**")
    rows = updates[-1]["table"]
    assert [r[0] for r in rows] == [figures.METHOD_LABELS.get(m, m) for m in METHODS]
    ran = {r[0]: r for r in rows if r[4] is not None}
    assert {"ODE baseline", "BoN", "SMC"} <= set(ran) and all(r[4] <= 30 for r in ran.values())
    notes = {r[0]: r[7] for r in rows if r[4] is None}
    assert "RBF" in notes and all("nfe" in n for n in notes.values())  # a method that could not run says why
    solo = run(controls.build_config(values, method="bon")).record
    assert ran["BoN"][2] == float(f"{solo.final_reward:.4g}")  # the row is the record of the run made alone
