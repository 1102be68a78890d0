"""Faults end a run with a clear message and keep the trace; out-of-memory retries smaller batches."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from run_configs import run_settings

from flowscale import RunConfig, RunFailed, replay, run
from flowscale.config import ConfigError
from flowscale.worlds import build_world
from flowscale.worlds.base import Reward, RewardError


def world_with_reward(fn):
    cfg = RunConfig()
    world = build_world(cfg)
    world.reward = Reward("faulty", fn)
    return cfg, world


def test_nan_reward_stops_with_message_and_keeps_trace():
    calls = {"n": 0}

    def fn(x):
        calls["n"] += 1
        out = -(x**2).sum(-1)
        return out if calls["n"] < 4 else out * float("nan")

    cfg, world = world_with_reward(fn)
    with pytest.raises(RunFailed) as info:
        run(RunConfig(method="smc", process="linear-sde", nfe=200), world=world)
    assert "non-finite" in str(info.value) and "faulty" in str(info.value)
    steps = [e["step"] for e in info.value.events if e["kind"] == "candidates"]
    assert steps == [0, 1, 2]  # the three evaluations before the fault are kept


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_reward_check_finds_one_non_finite_value_and_passes_finite_values_whose_sum_overflows(bad):
    samples = torch.zeros(4, 2)
    huge = torch.tensor([1.7e308, 1.7e308, -1.0, 0.0], dtype=torch.float64)  # finite; the sum is inf
    assert torch.equal(Reward("huge", lambda x: huge)(samples), huge)
    opposite = torch.tensor([float("inf"), -float("inf"), 0.0, 0.0], dtype=torch.float64)  # the sum is NaN
    for values in (huge.clone().index_fill_(0, torch.tensor([2]), bad), opposite):
        with pytest.raises(RewardError, match="'one bad' returned a non-finite value"):
            Reward("one bad", lambda x, v=values: v)(samples)


def test_raising_reward_is_reported_by_name():
    def fn(x):
        raise KeyError("detector crashed")

    cfg, world = world_with_reward(fn)
    with pytest.raises(RunFailed, match="faulty.*KeyError"):
        run(RunConfig(method="bon", nfe=100), world=world)


class OomAbove:
    """A model that 'runs out of memory' for batches above `limit` rows."""

    def __init__(self, inner, limit):
        self.inner, self.limit = inner, limit
        self.name, self.sample_shape, self.device, self.dtype = inner.name, inner.sample_shape, inner.device, inner.dtype
        self.sizes = []

    def velocity(self, x, t, cond):
        if x.shape[0] > self.limit:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.sizes.append(x.shape[0])
        return self.inner.velocity(x, t, cond)


def test_out_of_memory_retries_with_smaller_micro_batches():
    cfg = RunConfig(method="base", particles=40, process="linear-sde", seed=1)
    plain = run(cfg)
    world = build_world(cfg)
    world.model = OomAbove(world.model, 7)
    out = run(cfg, world=world)
    assert torch.equal(out.samples, plain.samples)
    assert max(world.model.sizes) <= 7 and out.record.nfe_used == plain.record.nfe_used


def test_out_of_memory_at_batch_one_fails_clearly():
    cfg = RunConfig(method="base", particles=4)
    world = build_world(cfg)
    world.model = OomAbove(world.model, 0)
    with pytest.raises(RunFailed, match="out of memory even with a micro-batch of 1"):
        run(cfg, world=world)


def test_absurd_budget_is_a_config_error():
    with pytest.raises(ConfigError, match=r"nfe.*\[1, 4000000\]"):
        run(RunConfig(method="rbf", nfe=10**9))


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**run_settings())
def test_ledger_properties(method, process, steps, nfe, seed, variant, batch):
    params = {"rbf.variant": variant, "rbf.init_particles": 2, "rbf.batch": batch} if method == "rbf" else {}
    cfg = RunConfig(method=method, process=process, steps=steps, nfe=nfe, seed=seed, params=params)
    try:
        out = run(cfg)
    except ConfigError as exc:  # budgets too small for a method are refused up front, by name
        assert exc.field in ("nfe", "params") and "nfe" in str(exc)
        return
    rec = out.record
    assert 0 < rec.nfe_used <= nfe
    assert sum(rec.nfe_per_step) == rec.nfe_used
    assert [p[0] for p in rec.best_reward_by_nfe] == sorted(p[0] for p in rec.best_reward_by_nfe)
    assert rec.final_reward == rec.rewards[0]
    extra = rec.to_dict()
    if method == "rbf":
        assert len(extra["quota_per_step"]) == len(rec.nfe_per_step)
    saved = rec.comparable()
    assert replay(saved).record.comparable() == saved
