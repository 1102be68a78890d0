"""Search over Paths (Ma et al. 2025; method.md b.7): solve down, renoise forward, solve back, keep the best.

Times are in the process's own time. N particles are solved from 1 down to t_seed. Then, round after
round, each is replicated K times, renoised forward by `forward` with the interpolant's exact forward
kernel (mean alpha'/alpha * x, variance sigma'^2 - (alpha'/alpha)^2 sigma^2), and solved back by
`backward` > `forward` in `solve_steps` steps; the best child per parent survives (the released code's
choice; the SoP paper keeps a global top N). The last round lands on 0. Each solve step costs one NFE
per particle, and every solve's last evaluation scores the particle by its x0 prediction.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass

import torch

from flowscale.config import ConfigError
from flowscale.convert import bcast
from flowscale.search.context import Batch, SearchContext, SearchResult, ordered_result
from flowscale.trace import Event


@dataclass(frozen=True)
class SopParams:
    n: int = 2
    k: int = 5
    t_seed: float = 0.12
    forward: float = 0.78
    backward: float = 0.81
    solve_steps: int | None = None  # None: as many as the budget allows


def sop_rounds(p: SopParams) -> int:
    """How many renoise + solve rounds reach 0 from t_seed: ceil(t_seed / (backward - forward))."""
    if not (0 < p.t_seed < 1 and 0 < p.forward < p.backward and p.t_seed + p.forward <= 1):
        field = "sop.backward" if p.backward <= p.forward else "sop.forward"
        raise ConfigError(field, "sop needs 0 < t_seed < 1, 0 < forward < backward and t_seed + forward <= 1; got "
                          f"t_seed={p.t_seed:g}, forward={p.forward:g}, backward={p.backward:g}")
    return math.ceil(p.t_seed / (p.backward - p.forward) - 1e-9)


def sop_segments(p: SopParams) -> list[tuple[float, float]]:
    """The (start, end) times of every solve: 1 -> t_seed, then renoise + solve rounds down to 0."""
    segments = [(1.0, p.t_seed)]
    t = p.t_seed
    for _ in range(sop_rounds(p)):
        start = t + p.forward
        t = max(0.0, start - p.backward)
        segments.append((start, t))
    return segments


def sop_plan(budget: int, p: SopParams) -> tuple[list[tuple[float, float]], int]:
    """The solves and the Euler steps per solve; the cost is checked before any segment is built."""
    _, steps = sop_size(budget, p)
    return sop_segments(p), steps


def sop_size(budget: int, p: SopParams) -> tuple[int, int]:
    """(renoise rounds, Euler steps per solve), or a ConfigError naming what does not fit the budget."""
    rounds = sop_rounds(p)
    per_step = p.n + p.n * p.k * rounds  # NFE of one solve step across all particles
    if per_step > budget:  # name what the user changed: the gap, or else the budget
        gap_set = (p.forward, p.backward) != (SopParams.forward, SopParams.backward)
        raise ConfigError("sop.backward" if gap_set else "nfe", f"backward - forward = {p.backward - p.forward:g} needs {rounds} renoise "
                          f"rounds of n * k = {p.n * p.k} NFE per solve step, more than nfe = {budget} allows; "
                          "widen backward - forward or raise nfe")
    steps = budget // per_step if p.solve_steps is None else p.solve_steps
    if steps < 1 or steps * per_step > budget:
        raise ConfigError("nfe" if p.solve_steps is None else "sop.solve_steps",
                          f"sop needs solve_steps * n * (1 + k * rounds) <= nfe; nfe={budget}, n={p.n}, k={p.k}, "
                          f"rounds={rounds}, solve_steps={steps}")
    return rounds, steps


def _renoise(ctx: SearchContext, x: torch.Tensor, t_from: float, t_to: float) -> torch.Tensor:
    interp = ctx.sampler.process.interpolant
    a, b = interp.coeffs(torch.tensor(t_from)), interp.coeffs(torch.tensor(t_to))
    ratio = b.alpha / a.alpha
    std = torch.sqrt((b.sigma**2 - ratio**2 * a.sigma**2).clamp(min=0.0))
    z = ctx.sampler.noise(tuple(x.shape), ctx.generator)
    return bcast(ratio, x) * x + bcast(std, x) * z


def _solve(ctx: SearchContext, x: torch.Tensor, first_index: int, n_steps: int, end: float,
           parents: torch.Tensor | None) -> Generator[Event, None, tuple[Batch, torch.Tensor]]:
    """Evaluate at grid[first_index ...] and step down to `end`; returns (last evaluation, state at end)."""
    batch = None
    for i in range(n_steps):
        batch = ctx.evaluate(x, first_index + i, parents=parents if batch is None else batch.ids)
        t_next = ctx.grid[first_index + i + 1] if i < n_steps - 1 else torch.tensor(end, dtype=torch.float64)
        x = ctx.sampler.propose(batch.x, batch.u, ctx.grid[first_index + i], t_next, ctx.generator, batch.guide)
        yield from ctx.flush()
    return batch, x


def run_sop(ctx: SearchContext, p: SopParams) -> Generator[Event, None, SearchResult]:
    segments, steps = sop_plan(ctx.budget, p)
    times = [torch.linspace(a, b, steps + 1, dtype=torch.float64)[:-1] for a, b in segments]
    ctx.set_grid(torch.cat(times + [torch.zeros(1, dtype=torch.float64)]))
    last, x = yield from _solve(ctx, ctx.start(p.n), 0, steps, segments[0][1], None)
    for r, (start, end) in enumerate(segments[1:], start=1):
        parents = last.ids.repeat_interleave(p.k)
        x = _renoise(ctx, x.repeat_interleave(p.k, dim=0), segments[r - 1][1], start)
        ctx.event("resample", r * steps, mode="renoise", t_from=segments[r - 1][1], t_to=start)
        children, x = yield from _solve(ctx, x, r * steps, steps, end, parents)
        keep = children.reward.reshape(p.n, p.k).argmax(1) + torch.arange(p.n) * p.k
        last, x = children.take(keep), x[keep.to(x.device)]
        ctx.event("select", r * steps + steps - 1, mode="argmax", kept=last.ids.tolist())
        yield from ctx.flush()
    best = int(torch.argmax(last.reward))
    return ordered_result(last, best, {"solve_steps": steps, "segments": segments})
