"""Rollover Budget Forcing (paper Alg. 2, method.md b.1; released code, b.2).

Each of N chains walks down the grid one transition at a time, drawing candidates (1 NFE each) from
its current state. The chains' candidates of one round are evaluated together in one batch.

`paper` variant: one initial noise per chain; the budget left after the N initial evaluations is
split uniformly over the M - 1 transitions of every chain (the remainder goes to the last transition).
A chain moves on at the first candidate whose reward beats its best so far (r*) and rolls its unused
quota over to the next transition; when the quota is spent without improvement it moves to the
step's best candidate (r* unchanged). The last transition has no next step to roll into, so it spends
its whole quota and keeps its best candidate. The returned sample is the best chain's final sample.

`code` variant: best-of-`init_particles` initialisation per chain, base quota
q0 = floor((B - N * init) / (M * N)), rollover Q <- (Q - j) + q0, no move once the chain reaches the last
transition (all leftover budget lands there), rounds continue while used + N < B (498 of 500 NFE with
the defaults), and the output is the best current-step candidate across chains.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import torch

from flowscale.config import ConfigError
from flowscale.search.context import Batch, SearchContext, SearchResult, ordered_result
from flowscale.trace import Event

VARIANTS = ("paper", "code")


@dataclass(frozen=True)
class RbfParams:
    variant: str = "paper"
    chains: int = 2
    init_particles: int | None = None  # paper: 1, code: 25


@dataclass(eq=False)
class Chain:
    """One RBF chain: its current state (an evaluated particle), r*, quota and the step's best candidate."""

    index: int
    state: Batch
    best_ever: float
    quota: int
    drawn: int = 0
    step_best: Batch | None = None
    done: bool = False

    @property
    def k(self) -> int:
        return int(self.state.step[0])

    def note(self, cand: Batch) -> None:
        if self.step_best is None or float(cand.reward[0]) > float(self.step_best.reward[0]):
            self.step_best = cand

    def move(self, to: Batch, quota: int) -> None:
        self.state, self.quota, self.drawn, self.step_best = to, quota, 0, None


def _initial(ctx: SearchContext, chains: int, per_chain: int) -> Generator[Event, None, Batch]:
    """Best-of-per_chain starting particles, one per chain."""
    first = ctx.evaluate(ctx.start(chains * per_chain), 0)
    keep = first.reward.reshape(chains, per_chain).argmax(1) + torch.arange(chains) * per_chain
    starts = first.take(keep)
    if per_chain > 1:
        ctx.event("select", 0, mode="argmax", kept=starts.ids.tolist())
    yield from ctx.flush()
    return starts


def _draw(ctx: SearchContext, active: list[Chain]) -> Batch:
    """One candidate per active chain, evaluated in one batch."""
    states = Batch.cat([c.state for c in active])
    return ctx.evaluate(ctx.propose(states), states.step + 1, parents=states.ids)


def run_rbf(ctx: SearchContext, p: RbfParams) -> Generator[Event, None, SearchResult]:
    runner = _run_paper if p.variant == "paper" else _run_code
    return (yield from runner(ctx, p))


def _ledger(ctx: SearchContext) -> tuple[list[int], list[int]]:
    return [0] * ctx.steps, [0] * ctx.steps


def _budget_event(ctx: SearchContext, chain: Chain, mode: str, rollover: int, quota: int, r_star: float,
                  taken: Batch) -> None:
    """A chain leaves a transition: how (accept / forced / final), what it drew against which r*, what it took.

    The event sits at the candidates' grid index; `rollover` NFE carry into the next transition.
    """
    ctx.event("budget", chain.k + 1, chain=chain.index, mode=mode, rollover=rollover, drawn=chain.drawn,
              quota=quota, r_star=r_star, taken=int(taken.ids[0]), reward=float(taken.reward[0]))


def rbf_quota(budget: int, steps: int, p: RbfParams) -> tuple[int, int]:
    """(initial particles per chain, base quota q0) of a variant, or a ConfigError when the budget cannot
    give every chain one candidate per transition."""
    n, m = p.chains, steps
    if p.variant == "paper":
        init = p.init_particles or 1
        spare = budget - n * init
        if m < 2 or spare < n * (m - 1):
            raise ConfigError("nfe", f"rbf (paper) needs nfe >= chains * (init_particles + steps - 1) = "
                              f"{n * (init + m - 1)} and steps >= 2; got nfe={budget}, steps={m}")
        return init, spare // (n * (m - 1))
    init = p.init_particles or 25
    q0 = (budget - n * init) // (m * n)
    if m < 2 or q0 < 1:
        raise ConfigError("nfe", f"rbf (code) needs (nfe - chains * init_particles) // (steps * chains) >= 1 and "
                          f"steps >= 2; got nfe={budget}, chains={n}, init_particles={init}, steps={m}")
    return init, q0


def _run_paper(ctx: SearchContext, p: RbfParams) -> Generator[Event, None, SearchResult]:
    n, m = p.chains, ctx.steps
    init, q0 = rbf_quota(ctx.budget, m, p)
    spare = ctx.budget - n * init
    remainder = spare - q0 * n * (m - 1)
    quota, rollover = _ledger(ctx)
    quota[0] = n * init
    for i in range(1, m):
        quota[i] = q0 * n
    quota[m - 1] += remainder
    # The remainder of the uniform split goes to the chains' last transitions, first chains first.
    extra_last = [remainder // n + (1 if c < remainder % n else 0) for c in range(n)]
    ctx.plan.update(quota_per_step=quota, rollover_per_step=rollover, base_quota=q0)  # live, read by the trace

    starts = yield from _initial(ctx, n, init)
    chains = [Chain(c, starts.take(c), float(starts.reward[c]), q0) for c in range(n)]
    while any(not c.done for c in chains):
        active = [c for c in chains if not c.done]
        cands = _draw(ctx, active)
        for i, chain in enumerate(active):
            cand = cands.take(i)
            chain.drawn += 1
            chain.note(cand)
            last = chain.k + 1 == m - 1
            budget_here = chain.quota + (extra_last[chain.index] if last else 0)
            r_star = chain.best_ever
            improved = float(cand.reward[0]) > r_star
            if improved and not last:
                # Rollover: move on at once and carry the unused quota to the next transition.
                chain.best_ever = float(cand.reward[0])
                carry = chain.quota - chain.drawn
                rollover[chain.k + 2] += carry
                _budget_event(ctx, chain, "accept", carry, budget_here, r_star, cand)
                chain.move(cand, q0 + carry)
            elif chain.drawn >= budget_here:
                # Quota spent: take the step's best candidate (r* stays); the last transition ends the chain.
                _budget_event(ctx, chain, "final" if last else "forced", 0, budget_here, r_star, chain.step_best)
                if last:
                    chain.state, chain.done = chain.step_best, True
                else:
                    chain.move(chain.step_best, q0)
        yield from ctx.flush()
    finals = Batch.cat([c.state for c in chains])
    best = int(torch.argmax(finals.reward))
    ctx.event("select", m - 1, mode="argmax", kept=[int(finals.ids[best])])
    yield from ctx.flush()
    return ordered_result(finals, best, {"quota_per_step": quota, "rollover_per_step": rollover, "base_quota": q0})


def _run_code(ctx: SearchContext, p: RbfParams) -> Generator[Event, None, SearchResult]:
    n, m = p.chains, ctx.steps
    init, q0 = rbf_quota(ctx.budget, m, p)
    quota, rollover = _ledger(ctx)
    quota[0] = n * init
    ctx.plan.update(quota_per_step=quota, rollover_per_step=rollover, base_quota=q0)  # live, read by the trace
    starts = yield from _initial(ctx, n, init)
    chains = [Chain(c, starts.take(c), float(starts.reward[c]), q0) for c in range(n)]
    quota[1] = n * q0
    while ctx.ledger.used + n < ctx.budget:
        cands = _draw(ctx, chains)
        for i, chain in enumerate(chains):
            cand = cands.take(i)
            chain.drawn += 1
            chain.note(cand)
            can_move = chain.k < m - 2
            r_star = chain.best_ever
            if float(cand.reward[0]) > r_star:
                chain.best_ever = float(cand.reward[0])
                if can_move:
                    carry = chain.quota - chain.drawn
                    quota[chain.k + 2] += q0
                    rollover[chain.k + 2] += carry
                    _budget_event(ctx, chain, "accept", carry, chain.quota, r_star, cand)
                    chain.move(cand, carry + q0)
                    continue
            if chain.drawn == chain.quota and can_move:
                quota[chain.k + 2] += q0
                _budget_event(ctx, chain, "forced", 0, chain.quota, r_star, chain.step_best)
                chain.move(chain.step_best, q0)
        yield from ctx.flush()
    # Output: the best candidate of each chain's current step (its current state if it drew none yet).
    finals = Batch.cat([c.step_best if c.step_best is not None else c.state for c in chains])
    best = int(torch.argmax(finals.reward))
    ctx.event("select", int(finals.step[best]), mode="argmax", kept=[int(finals.ids[best])])
    yield from ctx.flush()
    return ordered_result(finals, best, {"quota_per_step": quota, "rollover_per_step": rollover, "base_quota": q0})
