"""Sequential Monte Carlo with the model's own proposal (method.md b.6; DAS-style twisting).

Weights start at exp(r(x0_hat | tau_0) / lambda). Before each step, if the effective sample size
ESS = 1 / sum(w_bar^2) falls below threshold * N, ancestors are drawn (multinomial or systematic) and
the weights reset to 1. Each particle then takes one step (1 NFE) and its weight is multiplied by the
incremental potential exp((r_new - r_parent) / lambda). N = budget // steps particles; the returned
sample is the final particle of highest reward (the released code's final pick is index-mismatched).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import torch

from flowscale.config import ConfigError
from flowscale.search.context import SearchContext, SearchResult, ordered_result
from flowscale.search.schedules import decaying
from flowscale.trace import Event

RESAMPLERS = ("multinomial", "systematic")


@dataclass(frozen=True)
class SmcParams:
    n: int | None = None
    lam: float = 1.0
    ess_threshold: float = 1.0
    resampling: str = "multinomial"
    schedule: str = "constant"  # "decay": the released code's linearly decaying population (schedules.py)


def ess(log_w: torch.Tensor) -> float:
    w = torch.softmax(log_w, 0)
    return float(1.0 / (w**2).sum())


def resample(log_w: torch.Tensor, scheme: str, generator: torch.Generator, size: int | None = None) -> torch.Tensor:
    """Ancestor indices [size] (default: as many as there are weights) drawn in proportion to the weights."""
    w = torch.softmax(log_w, 0)
    n = w.shape[0] if size is None else size
    if scheme == "multinomial":
        return torch.multinomial(w, n, replacement=True, generator=generator)
    # systematic: one uniform offset, N evenly spaced pointers through the cumulative weights
    u0 = torch.rand((), generator=generator, dtype=torch.float64)
    pointers = (u0 + torch.arange(n, dtype=torch.float64)) / n
    return torch.searchsorted(torch.cumsum(w, 0), pointers).clamp(max=w.shape[0] - 1)


def smc_size(budget: int, steps: int, n: int | None) -> int:
    """N = budget // steps particles unless set; a ConfigError when N * steps exceeds the budget."""
    size = budget // steps if n is None else n
    if size < 1 or size * steps > budget:
        raise ConfigError("nfe" if n is None else "smc.n",
                          f"smc needs n * steps <= nfe with n >= 1; nfe={budget}, steps={steps}, n={size}")
    return size


def smc_sizes(budget: int, steps: int, p: SmcParams) -> list[int]:
    """The population at each step: constant N, or the decaying schedule (which sets N itself)."""
    if p.schedule == "decay":
        if p.n is not None:
            raise ConfigError("smc.n", "a decay schedule sizes every step itself; leave smc.n out")
        return decaying(budget, steps)
    return [smc_size(budget, steps, p.n)] * steps


def run_smc(ctx: SearchContext, p: SmcParams) -> Generator[Event, None, SearchResult]:
    sizes = smc_sizes(ctx.budget, ctx.steps, p)  # lam, ess_threshold, resampling: checked in settings
    n = sizes[0]
    particles = ctx.evaluate(ctx.start(n), 0)
    log_w = particles.reward / p.lam
    parent_reward = particles.reward
    yield from ctx.flush()
    ess_per_step: list[float] = []
    ctx.plan["ess_per_step"] = ess_per_step  # live: the trace shows it as the run goes
    for step in range(1, ctx.steps):
        current_ess = ess(log_w)
        ess_per_step.append(current_ess)
        # A shrinking population (decay) is resampled to its next size at every step.
        if sizes[step] != n or current_ess < p.ess_threshold * n * (1 - 1e-9):  # equal weights never resample
            n = sizes[step]
            ancestors = resample(log_w, p.resampling, ctx.generator, n)
            particles = particles.take(ancestors)
            parent_reward = parent_reward[ancestors]
            log_w = torch.zeros(n, dtype=torch.float64)
            ctx.event("resample", step - 1, ess=current_ess, ancestors=particles.ids.tolist())
        particles = ctx.evaluate(ctx.propose(particles), step, parents=particles.ids)
        log_w = log_w + (particles.reward - parent_reward) / p.lam
        parent_reward = particles.reward
        ctx.event("select", step, mode="reweight", ess=ess(log_w), log_weights=log_w.tolist())
        yield from ctx.flush()
    best = int(torch.argmax(particles.reward))
    return ordered_result(
        particles, best, {"n": sizes[0] if p.schedule == "constant" else sizes, "ess_per_step": ess_per_step}
    )
