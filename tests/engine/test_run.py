"""The run: determinism, generator ownership, NFE accounting and the record."""

import dataclasses
import json

import pytest
import torch

from flowscale import ConfigError, RunConfig, replay, run
from flowscale.search import METHODS
from flowscale.trace import RUNTIME_KEYS
from flowscale.worlds import build_world


class CallCounter:
    """Wraps a flow model and counts the particles it was asked about, independently of the engine."""

    def __init__(self, model):
        self.inner = model
        self.name, self.sample_shape = model.name, model.sample_shape
        self.device, self.dtype = model.device, model.dtype
        self.rows = 0

    def velocity(self, x, t, cond):
        self.rows += x.shape[0]
        return self.inner.velocity(x, t, cond)


def test_g_zero_reproduces_the_ode_exactly():
    ode = run(RunConfig(method="base", process="linear-ode", particles=64, seed=3))
    sde = run(RunConfig(method="base", process="linear-sde", g_norm=0.0, particles=64, seed=3))
    assert torch.equal(ode.samples, sde.samples)
    vp_ode = run(RunConfig(method="base", process="vp-ode", particles=64, seed=3))
    vp_sde = run(RunConfig(method="base", process="vp-sde", g_norm=0.0, particles=64, seed=3))
    assert torch.equal(vp_ode.samples, vp_sde.samples)


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("process", ["linear-sde", "vp-sde"])
def test_same_seed_same_result_whatever_the_global_rng(method, process):
    cfg = RunConfig(method=method, process=process, nfe=300, seed=11)
    torch.manual_seed(0)
    a = run(cfg)
    torch.manual_seed(12345)
    torch.rand(1000)  # global state moves: a run must not notice
    b = run(cfg)
    assert torch.equal(a.samples, b.samples)
    assert a.record.comparable() == b.record.comparable()
    c = run(dataclasses.replace(cfg, seed=12))
    if method != "ode":
        assert not torch.equal(a.samples, c.samples)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_reported_nfe_equals_counted_model_calls(method):
    cfg = RunConfig(method=method, process="linear-sde", nfe=400, seed=0)
    world = build_world(cfg)
    counter = CallCounter(world.model)
    world.model = counter
    rec = run(cfg, world=world).record
    assert rec.nfe_used == counter.rows
    assert sum(rec.nfe_per_step) == rec.nfe_used
    assert rec.nfe_used <= rec.nfe_budget
    assert len(rec.nfe_per_step) == len(rec.grid) - 1


def test_micro_batching_changes_nothing_but_calls():
    big = run(RunConfig(method="base", process="vp-sde", particles=100, seed=5))
    small = run(RunConfig(method="base", process="vp-sde", particles=100, seed=5, max_batch=7))
    assert torch.equal(big.samples, small.samples)


def test_record_is_json_and_replays_identically(tmp_path):
    out = run(RunConfig(method="rbf", process="vp-sde", nfe=200, seed=4))
    path = tmp_path / "record.json"
    out.record.save(path)
    saved = json.loads(path.read_text())
    for key in ("config", "nfe_used", "nfe_per_step", "nfe_budget", "events", "best_reward_by_nfe",
                "quota_per_step", "rollover_per_step", "final_reward", "heldout_reward", "versions"):
        assert key in saved, key
    assert saved["config"]["seed"] == 4 and saved["versions"]["torch"] == torch.__version__
    kinds = {e["kind"] for e in saved["events"]}
    assert {"start", "candidates", "budget"} <= kinds
    again = replay(saved).record.comparable()
    assert again == {k: v for k, v in saved.items() if k not in RUNTIME_KEYS}  # timings and threads


def test_stream_events_arrive_step_by_step():
    from flowscale import stream

    kinds = []
    for event in stream(RunConfig(method="base", particles=4, steps=5)):
        kinds.append(event.kind)
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.count("candidates") == 5


@pytest.mark.parametrize(
    "cfg, field",
    [
        (RunConfig(method="nope"), "method"),
        (RunConfig(process="sde"), "process"),
        (RunConfig(method="bon", nfe=10**9), "nfe"),
        (RunConfig(method="bon", nfe=5, steps=25), "nfe"),
        (RunConfig(preset="nope"), "preset"),
        (RunConfig(mixture={"means": [[0, 0]], "stds": [0.0], "weights": [1]}), "mixture"),
        (RunConfig(reward="point:1"), "reward"),
        (RunConfig(method="rbf", params={"rbf.variant": "fast"}), "rbf.variant"),  # the key the user typed
        (RunConfig(method="svdd", params={"svdd.q": 1}), "svdd.q"),
        (RunConfig(beta_min=5.0, beta_max=1.0), "beta_max"),
        (RunConfig(model="nope"), "model"),
    ],
)
def test_bad_configs_name_their_field(cfg, field):
    with pytest.raises(ConfigError) as info:
        run(cfg)
    assert info.value.field == field or field in str(info.value)
