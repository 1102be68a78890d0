"""Interpolants x_t = alpha_t * x0 + sigma_t * eps as small frozen value objects.

Convention (method.md a.1): t = 1 is pure noise, t = 0 is data, generation runs with t decreasing.
Every interpolant returns its coefficients and their time derivatives as a `Coeffs` record, and
inverts its signal-to-noise ratio rho = alpha / sigma back to a time (needed for SNR matching, a.6).
Coefficient maths runs in float64 whatever the model's dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

BETA_MIN, BETA_MAX = 0.1, 20.0  # the VP path of Song et al. and of the paper (method.md a.4)


@dataclass(frozen=True)
class Coeffs:
    """alpha_t, sigma_t and their derivatives d/dt, each a float64 tensor shaped like t."""

    alpha: torch.Tensor
    sigma: torch.Tensor
    d_alpha: torch.Tensor
    d_sigma: torch.Tensor


def _as_time(t: torch.Tensor | float) -> torch.Tensor:
    return torch.as_tensor(t, dtype=torch.float64)


@dataclass(frozen=True)
class LinearInterpolant:
    """The rectified-flow / CondOT path of FLUX and SD3: alpha = 1 - t, sigma = t."""

    name: str = "linear"

    def coeffs(self, t: torch.Tensor | float) -> Coeffs:
        t = _as_time(t)
        return Coeffs(1.0 - t, t.clone(), -torch.ones_like(t), torch.ones_like(t))

    def t_from_snr(self, rho: torch.Tensor | float) -> torch.Tensor:
        # rho = (1 - t) / t  =>  t = 1 / (1 + rho)
        return 1.0 / (1.0 + _as_time(rho))


@dataclass(frozen=True)
class VPInterpolant:
    """Variance-preserving path with a linear beta schedule (method.md a.5).

    T(s) = beta_min s + (beta_max - beta_min) s^2 / 2, alpha = exp(-T/2), sigma = sqrt(1 - exp(-T)).
    Note alpha_1 = exp(-5.025) ~ 0.0066 with the defaults: s = 1 is not exactly pure noise.
    """

    beta_min: float = BETA_MIN
    beta_max: float = BETA_MAX
    name: str = "vp"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.beta_min) and math.isfinite(self.beta_max)):
            raise ValueError("beta_min and beta_max must be finite")
        if not 0.0 < self.beta_min < self.beta_max:
            raise ValueError(
                f"beta range must satisfy 0 < beta_min < beta_max, got ({self.beta_min}, {self.beta_max})"
            )

    def _integral(self, s: torch.Tensor) -> torch.Tensor:
        return self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s**2

    def coeffs(self, s: torch.Tensor | float) -> Coeffs:
        s = _as_time(s)
        big_t = self._integral(s)
        d_big_t = self.beta_min + (self.beta_max - self.beta_min) * s
        alpha = torch.exp(-0.5 * big_t)
        sigma = torch.sqrt(-torch.expm1(-big_t))
        d_alpha = -0.5 * d_big_t * alpha
        d_sigma = 0.5 * d_big_t * torch.exp(-big_t) / sigma
        return Coeffs(alpha, sigma, d_alpha, d_sigma)

    def t_from_snr(self, rho: torch.Tensor | float) -> torch.Tensor:
        # rho^2 = alpha^2 / sigma^2 = 1 / (exp(T) - 1)  =>  T = log(1 + 1 / rho^2); solve the quadratic for s.
        rho = _as_time(rho)
        big_t = torch.log1p(1.0 / rho**2)
        span = self.beta_max - self.beta_min
        return (-self.beta_min + torch.sqrt(self.beta_min**2 + 2.0 * span * big_t)) / span


Interpolant = LinearInterpolant | VPInterpolant
