"""Conversions between a velocity and the quantities search needs, for any interpolant.

With D_t = d_alpha * sigma - alpha * d_sigma (method.md a.2):
    x0_hat = (sigma * u - d_sigma * x) / D          (posterior mean, the "Tweedie" prediction)
    eps_hat = (d_alpha * x - alpha * u) / D
    score = -eps_hat / sigma                        (paper Eq. 8)
and the interpolant conversion of a.6: a path x_bar_s = c_s * x_{t_s} of the target interpolant is the
source path at the SNR-matched time t_s, scaled by c_s = sigma_bar_s / sigma_{t_s}. Its velocity is
    u_bar_s(x_bar) = (dc/ds / c) * x_bar + c * dt/ds * u_{t_s}(x_bar / c)
which costs exactly one call of the source model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from flowscale.interpolants import Coeffs, Interpolant


def bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-particle (or scalar) coefficient reshaped to broadcast over like's trailing dims."""
    v = v.to(dtype=like.dtype, device=like.device)
    if v.ndim == 0:
        return v
    return v.reshape(v.shape + (1,) * (like.ndim - v.ndim))


def _denominator(c: Coeffs) -> torch.Tensor:
    return c.d_alpha * c.sigma - c.alpha * c.d_sigma


def x0_factors(c: Coeffs, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) with x0_hat = a * u - b * x, broadcast-ready for states like `like` (time-only: cacheable)."""
    d = _denominator(c)
    return bcast(c.sigma / d, like), bcast(c.d_sigma / d, like)


def x0_from_velocity(x: torch.Tensor, u: torch.Tensor, c: Coeffs) -> torch.Tensor:
    a, b = x0_factors(c, x)
    return a * u - b * x


def eps_factors(c: Coeffs, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) with eps_hat = a * x - b * u, broadcast-ready for states like `like`."""
    d = _denominator(c)
    return bcast(c.d_alpha / d, like), bcast(c.alpha / d, like)


def eps_from_velocity(x: torch.Tensor, u: torch.Tensor, c: Coeffs) -> torch.Tensor:
    a, b = eps_factors(c, x)
    return a * x - b * u


def score_from_velocity(x: torch.Tensor, u: torch.Tensor, c: Coeffs) -> torch.Tensor:
    return -eps_from_velocity(x, u, c) / bcast(c.sigma, x)


def velocity_from_x0_eps(x0: torch.Tensor, eps: torch.Tensor, c: Coeffs) -> torch.Tensor:
    """u = d_alpha * x0 + d_sigma * eps: the conditional velocity, also the marginal one for posterior means."""
    return bcast(c.d_alpha, x0) * x0 + bcast(c.d_sigma, x0) * eps


@dataclass(frozen=True)
class TimeScaleMap:
    """Where a target-interpolant time s lands on the source path: x_bar_s = scale * x_{t}."""

    t: torch.Tensor
    scale: torch.Tensor
    d_t: torch.Tensor
    d_scale: torch.Tensor


def snr_matched_map(source: Interpolant, target: Interpolant, s: torch.Tensor) -> TimeScaleMap:
    """SNR-matched time t_s = rho^-1(rho_bar(s)) and scale c_s = sigma_bar_s / sigma_{t_s} (method.md a.6)."""
    tgt = target.coeffs(s)
    t = source.t_from_snr(tgt.alpha / tgt.sigma)
    src = source.coeffs(t)
    scale = tgt.sigma / src.sigma
    d_t = src.sigma**2 * (tgt.sigma * tgt.d_alpha - tgt.alpha * tgt.d_sigma) / (
        tgt.sigma**2 * (src.sigma * src.d_alpha - src.alpha * src.d_sigma)
    )
    d_scale = (src.sigma * tgt.d_sigma - tgt.sigma * src.d_sigma * d_t) / src.sigma**2
    return TimeScaleMap(t=t, scale=scale, d_t=d_t, d_scale=d_scale)


def conversion_factors(m: TimeScaleMap, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) with u_bar_s = a * x_bar + b * u_{t_s}(x_bar / c_s), broadcast-ready for states like `like`."""
    return bcast(m.d_scale / m.scale, like), bcast(m.scale * m.d_t, like)


def converted_velocity(
    x_bar: torch.Tensor, m: TimeScaleMap, source_velocity_at: torch.Tensor
) -> torch.Tensor:
    """u_bar_s from the source model's velocity evaluated at (x_bar / c_s, t_s)."""
    a, b = conversion_factors(m, x_bar)
    return a * x_bar + b * source_velocity_at
