"""Generative processes: which interpolant the sampler runs in, and how much noise it injects.

A process is a frozen value object; stepping is a pure function of (x, u, tau, tau_next, noise), so
search methods can branch, rewind and restart particles freely (no hidden step counters).

Reverse-time SDE with the ODE's marginals for any g >= 0 (method.md a.3, paper Eq. 7-9):
    dx = [u - (g^2 / 2) * score] dt + g dw,  integrated from tau to tau_next = tau - dt (dt > 0),
so one Euler-Maruyama step is
    x' = x + (-u + g^2 / 2 * score) * dt + g * sqrt(dt) * z,   z ~ N(0, I),
with g evaluated at the start time tau, in the process's own time (VP time s for VP processes).
g = 0 is the deterministic Euler step x' = x - dt * u.

Reward guidance (DPS, paper App. E.1 Eq. 30) adds a term to the score inside the SDE drift only:
    score* = score + dps * grad_x r(x0_hat(x)),
so the step becomes x' = x + (-u + g^2 / 2 * score*) dt + g sqrt(dt) z. The ODE has no score term to guide,
so guidance needs a stochastic process with g > 0 (run.prepare refuses anything else).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from flowscale.convert import bcast, eps_factors
from flowscale.interpolants import BETA_MAX, BETA_MIN, Interpolant, LinearInterpolant, VPInterpolant

PROCESS_NAMES = ("linear-ode", "linear-sde", "vp-ode", "vp-sde")
G_SCHEDULES = ("square", "linear", "constant", "sin")


G_SCHEDULE, G_NORM = "square", 3.0  # the paper's diffusion g(t) = 3 t^2 (method.md a.5)


@dataclass(frozen=True)
class Diffusion:
    """g(t) = norm * schedule(t); the paper's choice is square with norm 3 (g = 3 t^2)."""

    schedule: str = G_SCHEDULE
    norm: float = G_NORM

    def __post_init__(self) -> None:
        if self.schedule not in G_SCHEDULES:
            raise ValueError(f"g_schedule must be one of {', '.join(G_SCHEDULES)}; got {self.schedule!r}")
        if not (math.isfinite(self.norm) and self.norm >= 0):
            raise ValueError(f"g_norm must be a finite number >= 0; got {self.norm}")

    def g(self, t: torch.Tensor) -> torch.Tensor:
        if self.schedule == "square":
            shape = t**2
        elif self.schedule == "linear":
            shape = t.clone()
        elif self.schedule == "constant":
            shape = torch.ones_like(t)
        else:  # sin
            shape = torch.sin(0.5 * math.pi * t)
        return self.norm * shape


@dataclass(frozen=True)
class Process:
    """A named process: the interpolant it runs in and, when stochastic, its diffusion coefficient."""

    name: str
    interpolant: Interpolant
    stochastic: bool
    diffusion: Diffusion

    @property
    def is_converted(self) -> bool:
        """True when the model (always linear) must be converted to the process's interpolant."""
        return not isinstance(self.interpolant, LinearInterpolant)


def make_process(
    name: str,
    g_schedule: str = G_SCHEDULE,
    g_norm: float = G_NORM,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> Process:
    """Build one of PROCESS_NAMES; a clear ValueError names anything not allowed."""
    if name not in PROCESS_NAMES:
        raise ValueError(f"process must be one of {', '.join(PROCESS_NAMES)}; got {name!r}")
    family, kind = name.split("-")
    interpolant: Interpolant = (
        LinearInterpolant() if family == "linear" else VPInterpolant(beta_min=beta_min, beta_max=beta_max)
    )
    return Process(name, interpolant, kind == "sde", Diffusion(g_schedule, g_norm))


@dataclass(frozen=True)
class StepFactors:
    """The time-only factors of one step from tau to tau_next, broadcast-ready for states of one dtype: a
    sampler computes them once per pair of grid times and reuses them at every visit (for a cheap model the
    scalar arithmetic costs more than the step itself). None fields: the deterministic step has no noise."""

    dt: torch.Tensor
    eps_x: torch.Tensor | None = None  # eps_hat = eps_x * x - eps_u * u
    eps_u: torch.Tensor | None = None
    sigma: torch.Tensor | None = None  # score = -eps_hat / sigma
    half_g2: torch.Tensor | None = None  # g^2 / 2
    noise_scale: torch.Tensor | None = None  # g * sqrt(dt)


def step_factors(process: Process, tau: torch.Tensor, tau_next: torch.Tensor, like: torch.Tensor) -> StepFactors:
    """The factors of process_step for states like `like` (tau, tau_next: float64 scalars or [B])."""
    dt = torch.as_tensor(tau, dtype=torch.float64) - torch.as_tensor(tau_next, dtype=torch.float64)
    if bool((dt < 0).any()):
        raise ValueError("process_step integrates toward data: tau_next must not exceed tau")
    if not process.stochastic or process.diffusion.norm == 0.0:
        return StepFactors(bcast(dt, like))
    tau = torch.as_tensor(tau, dtype=torch.float64)
    g = process.diffusion.g(tau)
    c = process.interpolant.coeffs(tau)
    eps_x, eps_u = eps_factors(c, like)
    return StepFactors(bcast(dt, like), eps_x, eps_u, bcast(c.sigma, like), bcast(0.5 * g**2, like),
                       bcast(g * torch.sqrt(dt), like))


def apply_step(
    process: Process,
    f: StepFactors,
    x: torch.Tensor,
    u: torch.Tensor,
    noise: torch.Tensor | None,
    guide: torch.Tensor | None = None,
) -> torch.Tensor:
    """process_step with its factors given (the same arithmetic, in the same order, as score_from_velocity)."""
    if f.noise_scale is None:
        if guide is not None:
            raise ValueError(f"reward guidance enters the SDE drift's score term; {process.name} with g = "
                             f"{process.diffusion.norm:g} has none")
        return x - f.dt * u
    if noise is None:
        raise ValueError(f"process {process.name} needs noise for its Euler-Maruyama step")
    # score = -(eps_x x - eps_u u) / sigma (+ guide); drift = -u + g^2/2 score; x + dt drift + g sqrt(dt) noise:
    # the same operations in the same order, in place on one fresh tensor (a - b is a + (-b) and addition
    # commutes, so each value is bit for bit the written formula's): for a cheap model, the step's new tensors
    # cost more than its arithmetic
    score = f.eps_x * x
    score.sub_(f.eps_u * u).neg_().div_(f.sigma)
    if guide is not None:
        score.add_(guide.to(score.dtype))
    moved = score.mul_(f.half_g2).sub_(u).mul_(f.dt).add_(x)
    return moved.add_(f.noise_scale * noise)


def process_step(
    process: Process,
    x: torch.Tensor,
    u: torch.Tensor,
    tau: torch.Tensor,
    tau_next: torch.Tensor,
    noise: torch.Tensor | None,
    guide: torch.Tensor | None = None,
) -> torch.Tensor:
    """One Euler (ODE) or Euler-Maruyama (SDE) step from tau to tau_next < tau.

    Args:
        x, u: [B, ...] state and the process-interpolant velocity at (x, tau).
        tau, tau_next: float64 times, scalars or [B] (particles may sit at different times).
        noise: standard normal like x; required for stochastic processes with g > 0.
        guide: optional [B, ...] term added to the score (DPS: dps * grad_x r(x0_hat)); SDE only.
    """
    return apply_step(process, step_factors(process, tau, tau_next, x), x, u, noise, guide)
