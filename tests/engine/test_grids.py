"""Time grids as pure functions: the paper's exp grid, uniform grids, and the exponential time shift."""

import math

import pytest
import torch

from flowscale.grids import GridSpec, make_grid, shift_times
from flowscale.processes import make_process


def test_exp_grid_is_the_papers_formula_and_ends_at_zero():
    grid = make_grid(GridSpec("exp", 10, "process", 1.0), make_process("linear-sde"))
    k = torch.arange(10, dtype=torch.float64)
    assert torch.allclose(grid[:-1], torch.sqrt(1 - (k / 10) ** 2), atol=1e-12)
    assert grid[0] == 1.0 and grid[-1] == 0.0 and grid.shape == (11,)


def test_uniform_grid_steps_evenly_from_one_to_zero():
    grid = make_grid(GridSpec("uniform", 4, "process", 1.0), make_process("linear-ode"))
    assert grid.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]


@pytest.mark.parametrize("shift", [1.0, 3.0, 0.5])
def test_shift_is_the_exponential_time_shift(shift):
    t = torch.linspace(0.01, 1.0, 50, dtype=torch.float64)
    mu = math.log(shift)
    assert torch.allclose(shift_times(t, shift), math.exp(mu) / (math.exp(mu) + (1 / t - 1)), atol=1e-12)
