"""What every search method works with: evaluated particles, the NFE ledger, and the event queue.

A method holds `Batch`es of evaluated particles. `SearchContext.evaluate` is the only place that
spends NFE: it calls the model once per particle, scores the x0 predictions with the given reward,
charges the ledger at the particles' grid indices, and queues a `candidates` event. With reward guidance
(`guidance` = the run's dps > 0) it also takes the reward's gradient through the model and keeps
guidance * grad_x r(x0_hat) with each particle, which `propose` adds to the score of the SDE drift;
particles at the last evaluation time are never proposed from, so they get no gradient. Methods queue
their decisions with `ctx.event(...)` and hand the queue to the caller with `yield from ctx.flush()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from flowscale.models import BudgetExceededError
from flowscale.sampler import FlowSampler
from flowscale.trace import Event
from flowscale.worlds.base import Reward, RewardError

TRACED = 256  # particles per event whose states and rewards are recorded individually, at most
DETAIL_ROWS = 10_000  # candidates per run recorded individually; later events are summarised (records stay small)
MIN_WIDTH = 16  # a run of many steps still traces this many particles per event


def trace_width(calls: int) -> int:
    """Particles traced per event for a run of `calls` evaluation batches: all 256 for short runs, fewer for
    long ones, so that the run's detail stays near DETAIL_ROWS (4096 particles x 200 steps: 50 per step)."""
    return max(MIN_WIDTH, min(TRACED, DETAIL_ROWS // max(calls, 1)))


_PER_PARTICLE = ("x", "u", "x0", "reward", "ids", "step")  # Batch's tensors with one row per particle, guide aside


@dataclass
class Batch:
    """Evaluated particles: state x at grid index step, its velocity u, x0 prediction and reward."""

    x: torch.Tensor
    u: torch.Tensor
    x0: torch.Tensor
    reward: torch.Tensor  # float64 [B]
    ids: torch.Tensor  # int64 [B], unique per evaluated candidate in the run
    step: torch.Tensor  # int64 [B]
    guide: torch.Tensor | None = None  # [B, ...] score guidance (DPS); None when unguided or at the last step
    at: int | None = None  # the grid index every particle sits at, when they share one (None: not known)

    def __len__(self) -> int:
        return self.x.shape[0]

    def take(self, index: torch.Tensor | list[int] | int) -> Batch:
        if isinstance(index, int):  # one particle: views of its rows, no gather (nothing writes into a Batch)
            lo = index + len(self) if index < 0 else index
            if not 0 <= lo < len(self):
                raise IndexError(f"particle {index} of a batch of {len(self)}")
            return self.rows(lo, lo + 1)
        idx = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        on = idx.to(self.x.device)
        guide = None if self.guide is None else self.guide[on]
        return Batch(self.x[on], self.u[on], self.x0[on], self.reward[idx], self.ids[idx], self.step[idx], guide,
                     self.at)

    def rows(self, lo: int, hi: int) -> Batch:
        """Particles lo..hi-1 as views of this batch's tensors (no copy)."""
        return self._each(lambda t: t[lo:hi])

    def _each(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        """The batch with fn applied to every per-particle tensor (the guide too, when there is one)."""
        guide = None if self.guide is None else fn(self.guide)
        return Batch(*(fn(getattr(self, f)) for f in _PER_PARTICLE), guide, self.at)

    @staticmethod
    def cat(batches: list[Batch]) -> Batch:
        fields = (torch.cat([getattr(b, f) for b in batches]) for f in _PER_PARTICLE)
        guided = [b.guide for b in batches if b.guide is not None]
        # Unguided members (last-step particles, never proposed from) get a zero guide beside guided ones.
        guide = None if not guided else torch.cat(
            [b.guide if b.guide is not None else torch.zeros_like(b.x) for b in batches])
        shared = {b.at for b in batches}
        return Batch(*fields, guide, shared.pop() if len(shared) == 1 else None)

    def repeat(self, k: int) -> Batch:
        """Each particle k times in a row: [a, a, b, b] for k = 2 (children of one parent are contiguous)."""
        if len(self) == 1:  # one particle (an RBF chain's state): k broadcast views of its row, no gather
            return self._each(lambda t: t.expand(k, *t.shape[1:]))
        return self.take(torch.arange(len(self)).repeat_interleave(k))


class Ledger:
    """Exact NFE accounting per evaluation time, with the running best reward."""

    def __init__(self, budget: int, n_times: int) -> None:
        self.budget = budget
        self.nfe_per_step = [0] * n_times
        self.best_reward_by_nfe: list[list[float]] = []
        self._used = 0  # = sum(nfe_per_step), kept as charges come (read several times per evaluation)

    @property
    def used(self) -> int:
        return self._used

    @property
    def left(self) -> int:
        return self.budget - self.used

    def reserve(self, n: int) -> None:
        if self.used + n > self.budget:
            raise BudgetExceededError(f"{self.used} + {n} NFE would exceed the budget of {self.budget}")

    def charge(self, steps: torch.Tensor, rewards: torch.Tensor, at: int | None = None) -> float:
        """Charge one NFE per particle at its grid index (`at`: the index they all share, when known); returns
        the batch's best reward."""
        n = steps.numel()
        self.reserve(n)
        if at is not None:
            self.nfe_per_step[at] += n
        elif int(steps[0]) == int(steps[-1]) and bool((steps == steps[0]).all()):  # every particle at one time
            self.nfe_per_step[int(steps[0])] += n
        else:
            for k, count in zip(*torch.unique(steps, return_counts=True), strict=True):
                self.nfe_per_step[int(k)] += int(count)
        self._used += n
        top = float(rewards.max())
        best = max(top, self.best_reward_by_nfe[-1][1]) if self.best_reward_by_nfe else top
        self.best_reward_by_nfe.append([self.used, best])
        return top


class SearchContext:
    """Everything a search method needs; the method owns no randomness but `generator`."""

    def __init__(
        self,
        sampler: FlowSampler,
        grid: torch.Tensor,
        reward: Reward,
        decode: Callable[[torch.Tensor], torch.Tensor],
        project: Callable[[torch.Tensor], torch.Tensor],
        generator: torch.Generator,
        budget: int,
        previews: Callable[[torch.Tensor], Any] | None = None,
        width: int = TRACED,
        guidance: float = 0.0,
        latent_previews: Callable[[torch.Tensor], Any] | None = None,
    ) -> None:
        self.sampler = sampler
        self.guidance = guidance
        self.reward = reward
        self.decode = decode
        self.project = project
        self.generator = generator
        self.previews = previews
        self.latent_previews = latent_previews
        self.preview_time_s = 0.0
        self.width = width
        self.detail_rows = DETAIL_ROWS
        self.detail_left = DETAIL_ROWS  # rows of full detail still to record (the last step is always traced)
        self.summarised = 0  # candidates events recorded as summaries only
        self.narrowed = 0  # candidates events that traced fewer particles than they evaluated
        self.reward_time_s = 0.0
        self._next_id = 0
        self._pending: list[Event] = []
        # The method's own live budget record (RBF quota/rollover per step, SMC ESS per step): the
        # engine copies it into the trace after every event, so no consumer has to re-derive it.
        self.plan: dict[str, Any] = {}
        self.grid = torch.as_tensor(grid, dtype=torch.float64)
        self.grid_list = self.grid.tolist()  # what the trace records; rebuilt only when the grid changes
        self.ledger = Ledger(budget, self.steps)
        sampler.prefill(self.grid)  # every grid time's factors at once: no scalar work per step

    # --- the grid ---------------------------------------------------------------------------------
    def set_grid(self, grid: torch.Tensor) -> None:
        """Replace the evaluation grid (only before the first evaluation; SoP uses its own times)."""
        if self.ledger.used:
            raise RuntimeError("the grid cannot change after evaluations were charged")
        self.grid = torch.as_tensor(grid, dtype=torch.float64)
        self.grid_list = self.grid.tolist()
        self.ledger = Ledger(self.ledger.budget, self.steps)
        self.sampler.prefill(self.grid)

    @property
    def steps(self) -> int:
        """M: the number of evaluation times (the grid holds M + 1 points ending at 0)."""
        return self.grid.shape[0] - 1

    @property
    def budget(self) -> int:
        return self.ledger.budget

    # --- spending -----------------------------------------------------------------------------------
    def evaluate(self, x: torch.Tensor, step: int | torch.Tensor, parents: torch.Tensor | None = None) -> Batch:
        """Evaluate particles x sitting at grid index step (scalar or [B]); costs len(x) NFE."""
        n = x.shape[0]
        at = int(step) if isinstance(step, int) or torch.as_tensor(step).ndim == 0 else None
        steps = (torch.full((n,), at, dtype=torch.long) if at is not None
                 else torch.as_tensor(step, dtype=torch.long).expand(n).clone())
        self.ledger.reserve(n)  # before the model runs: a method bug must not spend past the budget
        # One shared time is a 0-dim tau: the sampler's cached factors, and no per-particle time to gather.
        tau = self.grid[at] if at is not None else self.grid[steps]
        last = self.steps - 1
        guide = None
        if self.guidance and (at < last if at is not None else bool((steps < last).any())):
            u, x0, decoded, reward, guide = self._guided(x, tau)
        else:
            u, x0 = self.sampler.evaluate(x, tau)
            start = time.perf_counter()
            decoded = self.decode(x0)
            reward = self.reward(decoded)
            self.reward_time_s += time.perf_counter() - start
        first_id = self._next_id
        ids = torch.arange(first_id, first_id + n)
        self._next_id += n
        top = self.ledger.charge(steps, reward, at)
        batch = Batch(x, u, x0, reward, ids, steps, guide, at)
        # Per-particle detail for the first `width` particles of an event, and only while the run's detail
        # budget lasts (the last step's candidates, the run's result, are always traced): records stay small
        # and cheap to build; the summaries cover every particle.
        last_step = at == last if at is not None else bool((steps == last).all())
        traced = min(n, self.width) if last_step else min(n, self.width, self.detail_left)
        self.detail_left -= 0 if last_step else traced
        shown = slice(0, traced)
        payload: dict[str, Any] = {"n": n}
        if traced:
            payload.update({
                "t": [self.grid_list[at]] * traced if at is not None else self.grid[steps[shown]].tolist(),
                "ids": list(range(first_id, first_id + traced)),  # = ids[shown].tolist(), without a tensor op
                "parents": parents[shown].tolist() if parents is not None else [-1] * traced,
                "states": self.project(x[shown]).tolist(),
                "x0": self.project(x0[shown]).tolist(),
                "rewards": reward[shown].tolist(),
            })
        else:
            self.summarised += 1
        self.narrowed += int(0 < traced < n)
        payload.update(reward_max=top, reward_mean=float(reward.mean()))
        if at is None and bool((steps[shown] != steps[0]).any()):  # chains at different times in one batch (RBF)
            payload["steps"] = steps[shown].tolist()
        if self.previews is not None and traced:
            start = time.perf_counter()
            # from the x0 latents (a tiny autoencoder) when the world has such a decoder, else from the images
            # the reward already decoded (a resize: no second decode)
            payload["_previews"] = (self.latent_previews(x0[shown]) if self.latent_previews is not None
                                    else self.previews(decoded[shown]))
            self.preview_time_s += time.perf_counter() - start
        payload["_books"] = self.books()
        self._pending.append(Event("candidates", at if at is not None else int(steps.max()), self.ledger.used, payload))
        return batch

    def _guided(self, x: torch.Tensor, tau: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """u, x0, decoded, reward and the score guidance of a guided evaluation (one backward per particle)."""
        def objective(x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            start = time.perf_counter()
            decoded = self.decode(x0)
            values = self.reward.graded(decoded)
            self.reward_time_s += time.perf_counter() - start
            return values, decoded

        u, x0, reward, grad, decoded = self.sampler.evaluate_guided(x, tau, objective)
        if not bool(torch.isfinite(grad).all()):
            raise RewardError(f"reward '{self.reward.name}' has a non-finite gradient (NaN or inf); lower dps")
        return u, x0, decoded, reward, (self.guidance * grad).to(x.dtype)

    def start(self, n: int) -> torch.Tensor:
        """n fresh starting noises."""
        return self.sampler.prior(n, self.generator)

    def propose(self, batch: Batch) -> torch.Tensor:
        """Move every particle one step down its grid (step -> step + 1); no NFE."""
        if batch.at is not None:  # one shared time: 0-dim times, the sampler's cached step factors
            if batch.at >= self.steps - 1:
                raise RuntimeError("cannot step past the last evaluation time")
            tau, tau_next = self.grid[batch.at], self.grid[batch.at + 1]
        else:
            if bool((batch.step >= self.steps - 1).any()):
                raise RuntimeError("cannot step past the last evaluation time")
            tau, tau_next = self.grid[batch.step], self.grid[batch.step + 1]
        return self.sampler.propose(batch.x, batch.u, tau, tau_next, self.generator, batch.guide)

    # --- events ------------------------------------------------------------------------------------
    def event(self, kind: str, step: int, **data: Any) -> None:
        self._pending.append(Event(kind, step, self.ledger.used, {**data, "_books": self.books()}))

    def books(self) -> dict[str, Any]:
        """The ledger and the method's plan as they stand now. Events are queued and flushed in batches, so
        each carries the books of the moment it was made (streamed, never saved) for the trace to copy."""
        return {
            "nfe_per_step": list(self.ledger.nfe_per_step),
            "curve": len(self.ledger.best_reward_by_nfe),
            "plan": {k: list(v) if isinstance(v, list) else v for k, v in self.plan.items()},
        }

    def flush(self) -> Iterator[Event]:
        pending, self._pending = self._pending, []
        yield from pending


@dataclass
class SearchResult:
    """Final x0 predictions [P, ...] (the returned sample first), their given rewards, and the id of the
    candidate returned (its lineage is what the trace draws)."""

    samples: torch.Tensor
    rewards: torch.Tensor
    extra: dict[str, Any]
    returned_id: int = -1


def ordered_result(final: Batch, chosen: int, extra: dict[str, Any] | None = None) -> SearchResult:
    """A result whose first sample is final[chosen], followed by the others in their order."""
    order = [chosen] + [i for i in range(len(final)) if i != chosen]
    picked = final.take(order)
    return SearchResult(picked.x0, picked.reward, extra or {}, int(picked.ids[0]))
