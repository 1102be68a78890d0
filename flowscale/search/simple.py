"""No search or the simplest search: `ode` / `base` (independent trajectories) and Best-of-N (method.md b.3)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import torch

from flowscale.config import ConfigError
from flowscale.search.context import Batch, SearchContext, SearchResult, ordered_result
from flowscale.trace import Event


def simulate(ctx: SearchContext, n: int) -> Generator[Event, None, Batch]:
    """n independent trajectories down the whole grid, evaluated at every time (n * M NFE)."""
    batch = ctx.evaluate(ctx.start(n), 0)
    yield from ctx.flush()
    for step in range(1, ctx.steps):
        batch = ctx.evaluate(ctx.propose(batch), step, parents=batch.ids)
        yield from ctx.flush()
    return batch


@dataclass(frozen=True)
class BaseParams:
    """`base`: P independent samples of the process and no selection; `ode` is P = 1 on the Linear-ODE."""

    particles: int = 1


def run_base(ctx: SearchContext, p: BaseParams) -> Generator[Event, None, SearchResult]:
    final = yield from simulate(ctx, p.particles)
    return ordered_result(final, 0)


@dataclass(frozen=True)
class BonParams:
    """Best-of-N: N = budget // steps trajectories (the remainder of the budget is left unspent)."""

    n: int | None = None


def bon_size(budget: int, steps: int, n: int | None) -> int:
    field = "nfe" if n is None else "bon.n"
    n = budget // steps if n is None else n
    if n < 1 or n * steps > budget:
        raise ConfigError(field, f"bon needs n * steps <= nfe with n >= 1; nfe={budget}, steps={steps}, n={n}")
    return n


def run_bon(ctx: SearchContext, p: BonParams) -> Generator[Event, None, SearchResult]:
    n = bon_size(ctx.budget, ctx.steps, p.n)
    final = yield from simulate(ctx, n)
    best = int(torch.argmax(final.reward))
    ctx.event("select", ctx.steps - 1, mode="argmax", kept=[int(final.ids[best])])
    yield from ctx.flush()
    return ordered_result(final, best, {"bon_n": n})
