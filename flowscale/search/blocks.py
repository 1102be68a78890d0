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
from flowscale.search.schedules import decaying
from flowscale.trace import Event


@dataclass(frozen=True)
class BlockParams:
    method: ClassVar[str] = "svdd"  # the name its settings carry (svdd.k, code.k)
    n: int = 2
    k: int | None = None  # None: the largest K with M * N * K <= budget
    block: int = 1
    lam: float = 0.0
    schedule: str = "constant"  # "decay": children per chain decay linearly over the steps (schedules.py)


def children_per_step(budget: int, steps: int, p: BlockParams) -> list[int]:
    """K at each step: constant, or the decaying schedule's particles per step shared by the n chains."""
    if p.schedule == "decay":
        if p.k is not None:
            raise ConfigError(f"{p.method}.k", "a decay schedule sizes every step itself; leave k out")
        ks = [size // p.n for size in decaying(budget, steps)]
        if min(ks) < 1:
            raise ConfigError("nfe", f"{p.method} with a decay schedule needs at least n = {p.n} particles at its "
                              f"last step; nfe={budget} over {steps} steps leaves fewer")
        return ks
    return [block_sizes(budget, steps, p)[1]] * steps


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
    n, ks = p.n, children_per_step(ctx.budget, ctx.steps, p)
    k = ks[0]
    survivors = ctx.evaluate(ctx.start(n).repeat_interleave(k, dim=0), 0)
    yield from ctx.flush()
    step = 0
    while step < ctx.steps - 1:
        # A block's children: K of its last step each (a decaying K never outspends the schedule in a block).
        k_block = ks[min(step + p.block, ctx.steps - 1)]
        if step == 0:  # the first block continues k_block of each chain's identical step-0 copies
            first = [g * k + j for g in range(n) for j in range(k_block)]
            children = survivors if k_block == k else survivors.take(first)
        else:
            children = survivors.repeat(k_block)
        k = k_block
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
    return ordered_result(survivors, best, {"n": n, "k": ks[0] if p.schedule == "constant" else ks})
