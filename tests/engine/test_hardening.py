"""Hostile input to the engine: every setting checked against its range before anything is allocated, errors
that name the exact field in one bounded line, costs estimated before a run, records bounded."""

import json
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowscale import ConfigError, RunConfig, figures, run
from flowscale.config import MAX_MESSAGE
from flowscale.cost import check_request
from flowscale.run import estimate_run, prepare
from flowscale.safe_json import check_record, loads
from flowscale.search import context
from flowscale.trace import Trace
from flowscale.worlds.toy2d import GaussianMixture


def refused(cfg: RunConfig) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        prepare(cfg)
    return info.value


def test_a_tiny_sop_gap_is_refused_at_once_without_allocating():
    tracemalloc.start()
    start = time.perf_counter()
    error = refused(RunConfig(method="sop", params={"sop.forward": 1e-8, "sop.backward": 2e-8}))
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert error.field == "sop.backward" and "renoise rounds" in str(error)
    assert elapsed < 1.0 and peak < 20e6  # on main: 7.7 s and 1.5 GB before the refusal


@pytest.mark.parametrize("params, field", [
    ({"rfb.variant": "code"}, "rfb.variant"),  # a typo in the method name
    ({"smc.lam": 0.5}, "smc.lam"),  # another method's setting
    ({"rbf.chains": 10**12}, "rbf.chains"),
    ({"rbf.variant": "fast"}, "rbf.variant"),
    ({"rbf.chains": True}, "rbf.chains"),  # a boolean is not a number
    ({"variant": "code"}, "variant"),
])
def test_setting_keys_and_values_are_checked_by_name(params, field):
    error = refused(RunConfig(method="rbf", params=params))
    assert error.field == field


@pytest.mark.parametrize("method, params, field", [
    ("smc", {"smc.ess_threshold": float("nan")}, "smc.ess_threshold"),
    ("smc", {"smc.ess_threshold": "nan"}, "smc.ess_threshold"),
    ("smc", {"smc.lam": 0}, "smc.lam"),
    ("svdd", {"svdd.lam": -5}, "svdd.lam"),
    ("svdd", {"svdd.k": 10**9}, "svdd.k"),
    ("bon", {"bon.n": float("inf")}, "bon.n"),
])
def test_non_finite_and_out_of_range_values_are_errors(method, params, field):
    assert refused(RunConfig(method=method, params=params)).field == field


@pytest.mark.parametrize("cfg, field", [
    (RunConfig(height=64), "height"),
    (RunConfig(model_path="/tmp"), "model_path"),
    (RunConfig(model="shapes", preset="rare"), "preset"),
    (RunConfig(method="rbf", particles=5), "particles"),
])
def test_options_a_world_or_method_does_not_use_are_errors(cfg, field):
    assert refused(cfg).field == field


@pytest.mark.parametrize("mixture", [
    {"means": [[0, 0], [1, 1]], "stds": [1, 1], "weights": [1e308, 1e308]},
    {"means": [[0, 0], [1, 1]], "stds": [True, 1], "weights": [1, 1]},
    {"means": [[0, True]], "stds": [1], "weights": [1]},
    {"means": [[[0, 0]]], "stds": [1], "weights": [1]},
])
def test_bad_mixtures_are_refused_by_name(mixture):
    assert refused(RunConfig(mixture=mixture)).field == "mixture"


def test_a_huge_value_is_never_echoed_back_whole():
    error = refused(RunConfig(method="rbf", params={"rbf.chains": "x" * 1_000_000}))
    assert len(str(error)) <= MAX_MESSAGE and "\n" not in str(error)


def test_deep_or_invalid_json_is_one_config_error():
    for text in ("[" * 5000 + "]" * 5000, '{"a": ' * 3000 + "1" + "}" * 3000, "{not json", "\x00\x01"):
        with pytest.raises(ConfigError):
            loads(text, "mixture")
    for record in ([1, 2], {"events": []}, {"config": {}, "events": {}}, {"config": {}, "events": [{"kind": 1}]},
                   {"config": {}, "events": [{"kind": "candidates", "step": 0, "nfe_total": 1, "ids": [1]}]}):
        with pytest.raises(ConfigError):
            check_record(record)


json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=4), max_leaves=12)
FIELDS = ["model", "method", "process", "nfe", "steps", "particles", "seed", "reward", "heldout", "preset", "mixture",
          "prompt", "height", "width", "grid", "grid_space", "shift", "g_schedule", "g_norm", "beta_min", "beta_max",
          "max_batch", "params"]


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(st.sampled_from(FIELDS + ["evil"]), json_values, max_size=5),
       model=st.sampled_from(["toy2d", "shapes", "flux-schnell"]))
def test_fuzzed_configs_are_accepted_or_refused_in_one_line(data, model):
    data = {"model": model, **data} if "model" not in data else data
    try:
        cfg = RunConfig.from_dict(data)
        prepared = prepare(cfg)
        estimate_run(prepared)
    except ConfigError as exc:
        assert len(str(exc)) <= MAX_MESSAGE and "\n" not in str(exc)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(mixture=json_values)
def test_fuzzed_mixtures_raise_only_value_errors(mixture):
    try:
        GaussianMixture.from_dict(mixture)
    except ValueError as exc:
        assert len(str(exc)) < 400


def test_costs_are_estimated_and_capped_before_a_run():
    prepared = prepare(RunConfig(method="rbf", process="vp-sde", nfe=50_000))
    cost = estimate_run(prepared)
    assert cost.calls == 25_000 and cost.nfe == 50_000 and cost.seconds > 30
    with pytest.raises(ConfigError) as info:
        check_request([(prepared[0], cost)], max_seconds=30, max_record_mb=5)
    assert info.value.field == "nfe" and "lower nfe to about" in str(info.value) and "30 s" in str(info.value)
    small = prepare(RunConfig(method="rbf", process="vp-sde", nfe=200))
    check_request([(small[0], estimate_run(small))], max_seconds=30, max_record_mb=5)


def test_long_runs_keep_bounded_records_that_say_so_and_still_replay(monkeypatch):
    monkeypatch.setattr(context, "DETAIL_ROWS", 60)
    cfg = RunConfig(method="base", process="vp-sde", particles=50, steps=10, seed=2)
    out = run(cfg)
    detail = out.record.extra["trace_detail"]
    assert detail["events_summarised"] > 0 and detail["detail_rows"] == 60
    saved = out.record.saved()
    rows = sum(len(e.get("ids", [])) for e in saved["events"] if e["kind"] == "candidates")
    last = sum(len(e.get("ids", [])) for e in saved["events"] if e["kind"] == "candidates" and e["step"] == 9)
    assert rows - last <= 60  # the detail budget, and the final step's candidates always traced
    trace = Trace.from_record(json.loads(json.dumps(saved)))
    assert trace.nfe_per_step == out.record.nfe_per_step and len(figures.budget_figure(trace).data)
    assert run(cfg).record.comparable() == out.record.comparable()


def test_the_readmes_first_example_writes_a_record_the_app_can_read_back():
    out = run(RunConfig(method="base", process="linear-sde", steps=200, particles=4000, preset="imbalanced4"))
    size = len(json.dumps(out.record.saved(), indent=1))
    assert size < 5e6  # on main: 10.2 MB, refused by the app's upload limit
    assert out.record.extra["trace_detail"]["traced_per_event"] == 50


def test_an_infeasible_budget_is_refused_before_a_world_loads_its_weights():
    # No weights exist at this path: the refusal names the budget, so the world was never built.
    cfg = RunConfig(model="flux-schnell", method="svdd", nfe=5, prompt="a cat", model_path="/nonexistent/flux")
    assert refused(cfg).field == "nfe"
    assert refused(RunConfig(model="flux-schnell", method="sop", prompt="a cat", model_path="/nonexistent/flux",
                             params={"sop.forward": 1e-8, "sop.backward": 2e-8})).field == "sop.backward"
