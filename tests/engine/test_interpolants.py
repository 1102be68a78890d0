"""Interpolants and conversions against closed forms and the exact Gaussian-mixture posterior."""

import torch

from flowscale.convert import (
    converted_velocity,
    eps_from_velocity,
    score_from_velocity,
    snr_matched_map,
    velocity_from_x0_eps,
    x0_from_velocity,
)
from flowscale.interpolants import LinearInterpolant, VPInterpolant
from flowscale.worlds.toy2d import PRESETS, GaussianMixture, GaussianMixtureFlow

GM = GaussianMixture.from_dict(PRESETS["imbalanced4"])
LIN, VP = LinearInterpolant(), VPInterpolant()


def points(n: int = 256, seed: int = 0) -> torch.Tensor:
    return 3.0 * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_snr_inverse_round_trips():
    t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    for interp in (LIN, VP):
        c = interp.coeffs(t)
        assert torch.allclose(interp.t_from_snr(c.alpha / c.sigma), t, atol=1e-10)


def test_derivatives_match_finite_differences():
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    for interp in (LIN, VP):
        c, up, down = interp.coeffs(t), interp.coeffs(t + h), interp.coeffs(t - h)
        assert torch.allclose(c.d_alpha, (up.alpha - down.alpha) / (2 * h), rtol=1e-6, atol=1e-8)
        assert torch.allclose(c.d_sigma, (up.sigma - down.sigma) / (2 * h), rtol=1e-6, atol=1e-8)


def test_linear_to_vp_closed_forms():
    """t_s = sigma_bar / (alpha_bar + sigma_bar), c_s = alpha_bar + sigma_bar, and their derivatives (method.md a.6)."""
    s = torch.linspace(0.05, 1.0, 20, dtype=torch.float64)
    m = snr_matched_map(LIN, VP, s)
    v = VP.coeffs(s)
    assert torch.allclose(m.t, v.sigma / (v.alpha + v.sigma), atol=1e-12)
    assert torch.allclose(m.scale, v.alpha + v.sigma, atol=1e-12)
    assert torch.allclose(m.d_t, (v.alpha * v.d_sigma - v.sigma * v.d_alpha) / (v.alpha + v.sigma) ** 2, atol=1e-10)
    assert torch.allclose(m.d_scale, v.d_alpha + v.d_sigma, atol=1e-10)


def test_paper_grid_row_matches_method_notes():
    """Row k = 9 of the table in method.md a.7: s = 0.43589 -> FLUX t = 0.70868, c = 1.30511."""
    m = snr_matched_map(LIN, VP, torch.tensor([0.43589], dtype=torch.float64))
    assert abs(float(m.t[0]) - 0.70868) < 1e-4 and abs(float(m.scale[0]) - 1.30511) < 1e-4


def test_converted_velocity_equals_analytic_vp_velocity():
    model = GaussianMixtureFlow(GM)
    x = points()
    for s_value in (0.95, 0.6, 0.3, 0.1):
        s = torch.full((x.shape[0],), s_value, dtype=torch.float64)
        m = snr_matched_map(LIN, VP, s)
        u_bar = converted_velocity(x, m, model.velocity(x / m.scale[:, None], m.t, None))
        c = VP.coeffs(s)
        x0, eps, _ = GM.posterior(x, c)
        exact = velocity_from_x0_eps(x0, eps, c)
        assert (u_bar - exact).abs().max() < 1e-10, s_value


def test_x0_eps_and_score_from_velocity_match_posterior():
    model = GaussianMixtureFlow(GM)
    x = points(seed=1)
    for interp in (LIN, VP):
        for t_value in (0.9, 0.5, 0.2, 0.02):
            t = torch.full((x.shape[0],), t_value, dtype=torch.float64)
            c = interp.coeffs(t)
            x0, eps, gamma = GM.posterior(x, c)
            u = velocity_from_x0_eps(x0, eps, c)
            assert (x0_from_velocity(x, u, c) - x0).abs().max() < 1e-9
            assert (eps_from_velocity(x, u, c) - eps).abs().max() < 1e-9
            # analytic score of the noisy mixture: sum_k gamma_k * -(x - alpha mu_k) / v_k
            var = c.alpha[:, None] ** 2 * GM.stds[None] ** 2 + c.sigma[:, None] ** 2
            diff = x[:, None, :] - c.alpha[:, None, None] * GM.means[None]
            score = (gamma[..., None] * -diff / var[..., None]).sum(1)
            assert (score_from_velocity(x, u, c) - score).abs().max() < 1e-8
    # the linear model itself is the posterior velocity
    t = torch.full((x.shape[0],), 0.4, dtype=torch.float64)
    x0, eps, _ = GM.posterior(x, LIN.coeffs(t))
    assert (model.velocity(x, t, None) - (eps - x0)).abs().max() < 1e-12


def test_x0_prediction_is_invariant_under_conversion():
    """The VP x0 prediction on (x_bar, u_bar) equals the linear one on (x_bar / c, u) (method.md g.1)."""
    model = GaussianMixtureFlow(GM)
    x = points(seed=2)
    s = torch.full((x.shape[0],), 0.7, dtype=torch.float64)
    m = snr_matched_map(LIN, VP, s)
    u = model.velocity(x / m.scale[:, None], m.t, None)
    vp_x0 = x0_from_velocity(x, converted_velocity(x, m, u), VP.coeffs(s))
    lin_x0 = x0_from_velocity(x / m.scale[:, None], u, LIN.coeffs(m.t))
    assert (vp_x0 - lin_x0).abs().max() < 1e-10
