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

`rbf.batch` = b > 1 (both variants): each chain draws min(b, quota left) candidates from its current state
in one model call (all chains' candidates share the call), instead of one. They are examined in draw order
exactly as Alg. 2 examines its one-at-a-time draws: the first that beats r* is taken and the chain moves
on. The candidates after it in the same call were evaluated too, so they are charged: they count in
`drawn` and shrink the quota rolled over, and the ledger still equals the model's own counter. The taken
candidate has the same distribution as in Alg. 2 (draws are independent given the state); what differs is
the spend: up to b - 1 NFE per accepted move go to candidates Alg. 2 would never have drawn, in exchange
for b times fewer, larger model calls. b = 1 is Alg. 2's draw and the default.
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
    batch: int = 1  # candidates each chain draws per model call (1: Alg. 2's one-at-a-time draw)


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


def _draw(ctx: SearchContext, active: list[Chain], sizes: list[int]) -> list[Batch]:
    """sizes[i] candidates from chain i's current state, all chains' candidates evaluated in one model call;
    returns each chain's candidates in draw order."""
    states = Batch.cat([c.state.repeat(s) for c, s in zip(active, sizes, strict=True) if s])
    cands = ctx.evaluate(ctx.propose(states), states.step + 1, parents=states.ids)
    bounds = [0]
    for s in sizes:
        bounds.append(bounds[-1] + s)
    return [cands.rows(bounds[i], bounds[i + 1]) for i in range(len(sizes))]


def _trim(sizes: list[int], room: int) -> list[int]:
    """Sizes whose sum fits `room`, cut from the last chain backwards (the first chains draw first)."""
    out = list(sizes)
    excess = sum(out) - room
    for i in range(len(out) - 1, -1, -1):
        if excess <= 0:
            break
        cut = min(out[i], excess)
        out[i] -= cut
        excess -= cut
    return out


def run_rbf(ctx: SearchContext, p: RbfParams) -> Generator[Event, None, SearchResult]:
    runner = _run_paper if p.variant == "paper" else _run_code
    return (yield from runner(ctx, p))


def _ledger(ctx: SearchContext) -> tuple[list[int], list[int]]:
    return [0] * ctx.steps, [0] * ctx.steps


def _budget_event(ctx: SearchContext, chain: Chain, mode: str, rollover: int, quota: int, r_star: float,
                  taken: Batch, position: int | None, batch: int) -> None:
    """A chain leaves a transition: how (accept / forced / final), what it drew against which r*, what it took.

    The event sits at the candidates' grid index; `rollover` NFE carry into the next transition. With
    batched draws, `position` is the accepted candidate's place in draw order (`drawn` counts the whole
    batch, every candidate of which was evaluated).
    """
    extra = {"position": position} if batch > 1 and position is not None else {}
    ctx.event("budget", chain.k + 1, chain=chain.index, mode=mode, rollover=rollover, drawn=chain.drawn,
              quota=quota, r_star=r_star, taken=int(taken.ids[0]), reward=float(taken.reward[0]), **extra)


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

    def budget_here(chain: Chain) -> int:
        return chain.quota + (extra_last[chain.index] if chain.k + 1 == m - 1 else 0)

    while any(not c.done for c in chains):
        active = [c for c in chains if not c.done]
        sizes = [min(p.batch, budget_here(c) - c.drawn) for c in active]
        for chain, cands in zip(active, _draw(ctx, active, sizes), strict=True):
            before = chain.drawn
            chain.drawn += len(cands)  # every evaluated candidate is spent, used or not
            last = chain.k + 1 == m - 1
            quota_here = budget_here(chain)
            for j in range(len(cands)):
                cand = cands.take(j)
                chain.note(cand)
                r_star = chain.best_ever
                if float(cand.reward[0]) > r_star and not last:
                    # Rollover: move on at once and carry the unused quota to the next transition.
                    chain.best_ever = float(cand.reward[0])
                    carry = chain.quota - chain.drawn
                    rollover[chain.k + 2] += carry
                    _budget_event(ctx, chain, "accept", carry, quota_here, r_star, cand, before + j + 1, p.batch)
                    chain.move(cand, q0 + carry)
                    break
                if before + j + 1 >= quota_here:
                    # Quota spent: take the step's best candidate (r* stays); the last transition ends the chain.
                    mode = "final" if last else "forced"
                    _budget_event(ctx, chain, mode, 0, quota_here, r_star, chain.step_best, None, p.batch)
                    if last:
                        chain.state, chain.done = chain.step_best, True
                    else:
                        chain.move(chain.step_best, q0)
                    break
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
        # Each chain draws up to `batch` (within its quota while it can still move); the round never takes the
        # ledger past budget - 1, which is where one-at-a-time rounds of n stop (498 of 500 NFE).
        sizes = [min(p.batch, c.quota - c.drawn) if c.k < m - 2 else p.batch for c in chains]
        sizes = _trim(sizes, ctx.budget - 1 - ctx.ledger.used)
        for chain, cands in zip(chains, _draw(ctx, chains, sizes), strict=True):
            before = chain.drawn
            chain.drawn += len(cands)  # every evaluated candidate is spent, used or not
            for j in range(len(cands)):
                cand = cands.take(j)
                chain.note(cand)
                can_move = chain.k < m - 2
                r_star = chain.best_ever
                if float(cand.reward[0]) > r_star:
                    chain.best_ever = float(cand.reward[0])
                    if can_move:
                        carry = chain.quota - chain.drawn
                        quota[chain.k + 2] += q0
                        rollover[chain.k + 2] += carry
                        _budget_event(ctx, chain, "accept", carry, chain.quota, r_star, cand, before + j + 1, p.batch)
                        chain.move(cand, carry + q0)
                        break
                if before + j + 1 == chain.quota and can_move:
                    quota[chain.k + 2] += q0
                    _budget_event(ctx, chain, "forced", 0, chain.quota, r_star, chain.step_best, None, p.batch)
                    chain.move(chain.step_best, q0)
                    break
        yield from ctx.flush()
    # Output: the best candidate of each chain's current step (its current state if it drew none yet).
    finals = Batch.cat([c.step_best if c.step_best is not None else c.state for c in chains])
    best = int(torch.argmax(finals.reward))
    ctx.event("select", int(finals.step[best]), mode="argmax", kept=[int(finals.ids[best])])
    yield from ctx.flush()
    return ordered_result(finals, best, {"quota_per_step": quota, "rollover_per_step": rollover, "base_quota": q0})
