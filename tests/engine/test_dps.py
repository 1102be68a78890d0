"""Reward-gradient guidance (DPS, paper App. E.1): what it does to the samples, and its exact accounting."""

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowscale.config import ConfigError, RunConfig
from flowscale.models import ModelOutOfMemoryError
from flowscale.run import RunFailed, run
from flowscale.search import SEARCH_METHODS
from flowscale.worlds import build_world
from flowscale.worlds.base import Reward
from flowscale.worlds.toy2d import PRESETS, GaussianMixture, GaussianMixtureFlow

GM = GaussianMixture.from_dict(PRESETS["imbalanced4"])
RARE = 3  # imbalanced4's (-2, 2) mode: 5 % of the data


def occupancy(record) -> torch.Tensor:
    samples = torch.tensor(record.samples_2d)
    assert bool(torch.isfinite(samples).all())
    return torch.bincount(GM.component_of(samples), minlength=4).double() / len(samples)


@pytest.mark.parametrize("process", ["linear-sde", "vp-sde"])
def test_guidance_moves_samples_to_the_rewarded_mode_and_zero_keeps_the_data(process):
    cfg = RunConfig(method="base", process=process, particles=1500, steps=40, reward="point:-2,2", seed=3)
    plain = occupancy(run(cfg).record)
    guided = occupancy(run(dataclasses.replace(cfg, dps=2.0)).record)
    assert abs(plain[RARE] - 0.05) < 0.02  # dps 0 keeps the data weights
    assert guided[RARE] > 0.3  # far above its data weight of 0.05
    assert guided[RARE] > 6 * plain[RARE]


def counting_world(cfg: RunConfig):
    """The 2-D world of cfg with its reward wrapped so that every backward pass through it is counted."""
    world = build_world(cfg)
    seen = []

    def fn(x):
        values = world.reward.fn(x)
        if values.requires_grad:
            values.register_hook(lambda g: seen.append(g.shape[0]))
        return values

    return dataclasses.replace(world, reward=Reward(world.reward.name, fn, differentiable=True)), seen


SDES = ["linear-sde", "vp-sde"]


@settings(max_examples=25, deadline=None)
@given(method=st.sampled_from(("base", *SEARCH_METHODS)), process=st.sampled_from(SDES), steps=st.integers(2, 8),
       nfe=st.integers(20, 240), seed=st.integers(0, 2**31), batch=st.sampled_from([1, 3]),
       variant=st.sampled_from(["paper", "code"]))
def test_guidance_keeps_the_forward_ledger_and_counts_every_backward_pass(method, process, steps, nfe, seed, batch,
                                                                        variant):
    params = {"rbf.variant": variant, "rbf.init_particles": 2, "rbf.batch": batch} if method == "rbf" else {}
    cfg = RunConfig(method=method, process=process, steps=steps, nfe=nfe, seed=seed, params=params,
                    particles=3 if method == "base" else None, reward="point:-2,2")
    try:
        plain = run(cfg).record
    except ConfigError:
        return  # a budget this method cannot fit (test_faults checks how it is refused)
    guided_cfg = dataclasses.replace(cfg, dps=0.7)
    world, backward_rows = counting_world(guided_cfg)
    guided = run(guided_cfg, world=world).record
    assert guided.nfe_used <= guided.nfe_budget and guided.nfe_used == sum(guided.nfe_per_step)
    if method != "rbf":  # RBF's moves depend on the rewards; every other method spends a fixed plan
        assert guided.nfe_per_step == plain.nfe_per_step
    assert guided.extra["grad_evals"] == sum(backward_rows) > 0
    assert "grad_evals" not in plain.extra


def test_a_base_run_takes_one_gradient_per_particle_and_step_but_the_last():
    cfg = RunConfig(method="base", process="linear-sde", particles=5, steps=7, dps=1.0)
    record = run(cfg).record
    assert record.nfe_used == 35 and record.extra["grad_evals"] == 5 * 6


@pytest.mark.parametrize(("changes", "needle"), [
    ({"process": "linear-ode"}, "linear-sde or vp-sde"),
    ({"process": "linear-sde", "g_norm": 0.0}, "g_norm"),
    ({"method": "ode", "process": "linear-sde"}, "unguided"),
    ({"process": "linear-sde", "dps": -1.0}, "[0, 10000]"),
    ({"process": "linear-sde", "dps": float("nan")}, "finite"),
])
def test_guidance_settings_that_cannot_work_are_refused(changes, needle):
    cfg = dataclasses.replace(RunConfig(method="base", dps=1.0), **changes)
    with pytest.raises(ConfigError) as err:
        run(cfg)
    assert err.value.field == "dps" and needle in str(err.value)


def test_a_reward_that_is_not_differentiable_is_named():
    cfg = RunConfig(model="shapes", method="base", process="linear-sde", particles=2, steps=4, reward="count",
                    dps=1.0)
    with pytest.raises(ConfigError) as err:
        run(cfg)
    assert err.value.field == "dps" and "'count' is not differentiable" in str(err.value)
    assert "soft-count" in str(err.value) and "brightness" in str(err.value)


class FlakyBackward(torch.autograd.Function):
    """Identity whose backward runs out of memory for more than `limit` rows (a GPU's activation memory)."""

    limit = 4

    @staticmethod
    def forward(ctx, x):
        ctx.rows = x.shape[0]
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        if ctx.rows > FlakyBackward.limit:
            raise RuntimeError("CUDA out of memory (simulated)")
        return grad


class TightMemoryFlow(GaussianMixtureFlow):
    def velocity(self, x, t, cond=None):
        return super().velocity(FlakyBackward.apply(x) if x.requires_grad else x, t, cond)


def test_a_guided_run_out_of_memory_halves_its_micro_batch_and_keeps_the_ledger_exact():
    cfg = RunConfig(method="bon", process="linear-sde", nfe=80, steps=5, dps=1.0, max_batch=16)
    world = dataclasses.replace(build_world(cfg), model=TightMemoryFlow(GM))
    record = run(cfg, world=world).record  # the engine checks the model's counter against the ledger
    reference = run(cfg).record
    assert record.nfe_used == reference.nfe_used == 80
    assert record.extra["grad_evals"] == reference.extra["grad_evals"] == 16 * 4
    assert record.samples_2d == reference.samples_2d  # micro-batching changes nothing but memory


def test_a_guided_run_that_cannot_fit_one_particle_fails_with_its_trace():
    FlakyBackward.limit = 0
    try:
        cfg = RunConfig(method="base", process="linear-sde", particles=2, steps=3, dps=1.0)
        world = dataclasses.replace(build_world(cfg), model=TightMemoryFlow(GM))
        with pytest.raises(RunFailed) as err:
            run(cfg, world=world)
        assert "single particle" in str(err.value)
        assert isinstance(err.value.__cause__, ModelOutOfMemoryError)
    finally:
        FlakyBackward.limit = 4
