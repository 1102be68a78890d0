"""SVDD and CoDe: N chains, K children each, selection every L steps (method.md b.4, b.5).

Each of the N survivors is replicated K times; every child runs L steps of the process on its own
(each step evaluated: N * K NFE per step) and then one child per group survives: the argmax of the
reward, or a draw from softmax(r / lambda) when lambda > 0. SVDD is the case L = 1. As in the released
code, the first evaluation scores N * K identical copies at tau_0, so the total is exactly
M * N * K NFE (500 for M = 10, N = 2, K = 25).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import ClassVar

import torch

from flowscale.config import ConfigError
from flowscale.search.context import SearchContext, SearchResult, ordered_result
from flowscale.trace import Event


@dataclass(frozen=True)
class BlockParams:
    method: ClassVar[str] = "svdd"  # the name its settings carry (svdd.k, code.k)
    n: int = 2
    k: int | None = None  # None: the largest K with M * N * K <= budget
    block: int = 1
    lam: float = 0.0


def block_sizes(budget: int, steps: int, p: BlockParams) -> tuple[int, int]:
    k = budget // (steps * p.n) if p.k is None else p.k
    if k < 1 or steps * p.n * k > budget:
        field = "nfe" if p.k is None else f"{p.method}.k"
        raise ConfigError(field, f"{p.method} needs steps * n * k <= nfe with n, k >= 1; nfe={budget}, steps={steps}, "
                          f"n={p.n}, k={k}")
    return p.n, k


def select_in_groups(rewards: torch.Tensor, k: int, lam: float, generator: torch.Generator) -> torch.Tensor:
    """Index of one survivor per contiguous group of k: argmax, or softmax(r / lam) sampling."""
    groups = rewards.reshape(-1, k)
    if lam > 0:
        probs = torch.softmax(groups / lam, dim=1)
        local = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    else:
        local = groups.argmax(1)
    return torch.arange(groups.shape[0]) * k + local


def run_blocks(ctx: SearchContext, p: BlockParams) -> Generator[Event, None, SearchResult]:
    n, k = block_sizes(ctx.budget, ctx.steps, p)
    survivors = ctx.evaluate(ctx.start(n).repeat_interleave(k, dim=0), 0)
    yield from ctx.flush()
    step = 0
    while step < ctx.steps - 1:
        children = survivors if step == 0 else survivors.repeat(k)
        for _ in range(min(p.block, ctx.steps - 1 - step)):
            children = ctx.evaluate(ctx.propose(children), step + 1, parents=children.ids)
            step += 1
        keep = select_in_groups(children.reward, k, p.lam, ctx.generator)
        survivors = children.take(keep)
        ctx.event("select", step, mode="argmax" if p.lam == 0 else "softmax", kept=survivors.ids.tolist())
        yield from ctx.flush()
    if ctx.steps == 1:  # a one-step grid: the first evaluation is also the last
        survivors = survivors.take(select_in_groups(survivors.reward, k, 0.0, ctx.generator))
    best = int(torch.argmax(survivors.reward))
    return ordered_result(survivors, best, {"n": n, "k": k})
