"""SDEs built from the ODE must sample the same distribution: checked against the exact mixture."""

import pytest
import torch

from flowscale import RunConfig, run
from flowscale.worlds.toy2d import PRESETS, GaussianMixture

GM = GaussianMixture.from_dict(PRESETS["imbalanced4"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "process",
    ["linear-ode", "linear-sde", "vp-sde"],
)
def test_process_reproduces_mixture(process):
    # g = 3 t^2 (linear-sde) and g = 3 s^2 in VP time (vp-sde) are the defaults.
    out = run(RunConfig(method="base", process=process, steps=200, particles=4000, seed=0))
    x = out.samples
    assert x.shape == (4000, 2)
    comp = GM.component_of(x)
    occupancy = torch.bincount(comp, minlength=4).double() / x.shape[0]
    assert (occupancy - GM.weights).abs().max() <= 0.02, occupancy
    for k in range(4):
        std = float((x[comp == k] - GM.means[k]).std())
        assert abs(std / float(GM.stds[k]) - 1) <= 0.10, (k, std)


def test_coarse_grid_discretisation_is_visible():
    """The paper's 10-step exp grid is badly discretised for a non-distilled model (method.md h):
    the test pins that the engine reproduces this known failure rather than hiding it."""
    out = run(RunConfig(method="base", process="vp-sde", steps=10, grid="exp", particles=2000, seed=0))
    comp = GM.component_of(out.samples)
    std = float((out.samples[comp == 0] - GM.means[0]).std())
    assert std > 1.3 * float(GM.stds[0])
