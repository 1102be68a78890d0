"""The sampler's time factors, computed for a whole grid at once, equal the per-time computation bit for bit."""

import dataclasses

import pytest
import torch

from flowscale.grids import GridSpec, make_grid
from flowscale.models import CountedModel
from flowscale.processes import PROCESS_NAMES, G_SCHEDULES, make_process, step_factors
from flowscale.sampler import FlowSampler


class Shaped:
    """Just what the sampler reads of a model: its sample shape, device and dtype."""

    name, device = "shaped", torch.device("cpu")

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        self.sample_shape, self.dtype = shape, dtype


def fields(factors) -> list:
    return [getattr(factors, f.name) for f in dataclasses.fields(factors)]


def same(a, b) -> bool:
    """Every field equal in dtype and value (NaN matching NaN: the factors at t = 0, never evaluated)."""
    return all((x is None and y is None) or (x.dtype == y.dtype and torch.equal(x, y))
               or (x.dtype == y.dtype and bool(x.isnan()) and bool(y.isnan()))
               for x, y in zip(fields(a), fields(b), strict=True))


@pytest.mark.parametrize("name", PROCESS_NAMES)
@pytest.mark.parametrize("schedule", G_SCHEDULES)
@pytest.mark.parametrize("shape,dtype", [((2,), torch.float64), ((3, 8, 8), torch.float32), ((4,), torch.bfloat16)])
def test_prefilled_factors_equal_the_per_time_ones(name, schedule, shape, dtype):
    process = make_process(name, g_schedule=schedule, g_norm=2.5)
    like = torch.zeros((5, *shape), dtype=dtype)
    for spec in (GridSpec("uniform", 25), GridSpec("exp", 10), GridSpec("uniform", 7, "linear", 3.0)):
        grid = make_grid(spec, process)
        sampler = FlowSampler(CountedModel(Shaped(shape, dtype)), process, None)
        sampler.prefill(grid)
        assert len(sampler._memo) == 2 * len(grid) - 1  # every time, and every step to the next
        fresh = FlowSampler(CountedModel(Shaped(shape, dtype)), process, None)
        for k in range(len(grid)):
            tau = grid[k].clone()
            cached = sampler.time_factors(tau, like)
            assert same(cached, fresh._time_factors(tau, like)), (spec, k)
            if k + 1 < len(grid):
                tau_next = grid[k + 1].clone()
                assert same(sampler.step_factors(tau, tau_next, like), step_factors(process, tau, tau_next, like))
        assert len(sampler._memo) == 2 * len(grid) - 1  # nothing was computed again


def test_a_time_off_the_grid_is_computed_when_met_and_a_rising_grid_is_not_prefilled():
    process = make_process("vp-sde")
    sampler = FlowSampler(CountedModel(Shaped((2,), torch.float64)), process, None)
    sampler.prefill(torch.tensor([0.2, 0.5, 0.0], dtype=torch.float64))
    assert not sampler._memo
    like = torch.zeros(3, 2, dtype=torch.float64)
    off = torch.tensor(0.4321, dtype=torch.float64)
    assert same(sampler.time_factors(off, like), sampler._time_factors(off, like)) and len(sampler._memo) == 1


@pytest.mark.parametrize("name", [n for n in PROCESS_NAMES if n.endswith("sde")])
@pytest.mark.parametrize("shape,dtype", [((2,), torch.float64), ((3, 8, 8), torch.float32), ((4,), torch.bfloat16)])
@pytest.mark.parametrize("per_particle", [False, True])
def test_the_in_place_step_equals_the_written_euler_maruyama_formula_bit_for_bit(name, shape, dtype, per_particle):
    """apply_step works in place on one fresh tensor; every value must equal the formula as written, with and
    without a guide, for one shared time or a time per particle, and the inputs must be left untouched."""
    from flowscale.processes import apply_step

    process = make_process(name, g_norm=2.5)
    g = torch.Generator().manual_seed(0)
    x, u, noise, guide = (torch.randn((6, *shape), generator=g).to(dtype) for _ in range(4))
    tau = torch.linspace(0.3, 0.9, 6, dtype=torch.float64) if per_particle else torch.tensor(0.7, dtype=torch.float64)
    f = step_factors(process, tau, tau - 0.05, x)
    kept = [t.clone() for t in (x, u, noise, guide)]
    for with_guide in (None, guide):
        score = -(f.eps_x * x - f.eps_u * u) / f.sigma
        if with_guide is not None:
            score = score + with_guide.to(score.dtype)
        written = x + f.dt * (-u + f.half_g2 * score) + f.noise_scale * noise
        stepped = apply_step(process, f, x, u, noise, with_guide)
        assert stepped.dtype == written.dtype and torch.equal(stepped, written)
    assert all(torch.equal(a, b) for a, b in zip((x, u, noise, guide), kept, strict=True))
