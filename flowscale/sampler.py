"""A flow model bound to a process: evaluate (one NFE per particle) and propose (free).

`evaluate(x, tau)` returns the process-interpolant velocity and the x0 prediction at process time tau.
For VP processes the linear model is converted by SNR matching (method.md a.6): the model is called
once, on x / c_s at linear time t_s. `propose` takes one Euler or Euler-Maruyama step with noise drawn
from the run's own generator, always on the CPU, so results do not depend on the device or on how
particles are batched.

`evaluate_guided` is the same evaluation with the gradient of an objective of the x0 prediction (DPS):
the forward passes are the NFE as always; the backward passes, one per particle, are counted apart
(`CountedModel.grad_evals`). It runs forward and backward one micro-batch at a time, so the autograd graph
of at most `max_batch` particles is alive at once, and halves the micro-batch when that runs out of memory.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from flowscale.convert import bcast, conversion_factors, snr_matched_map, x0_factors
from flowscale.interpolants import LinearInterpolant
from flowscale.models import CountedModel, ModelOutOfMemoryError, is_out_of_memory
from flowscale.processes import Process, StepFactors, apply_step, step_factors

_LINEAR = LinearInterpolant()
MEMO_SIZE = 16384  # cached time factors per sampler (a grid of 2000 steps fills 4001)
Objective = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # x0_hat -> (values [B], aux [B, ...])


def compact_time(tau: torch.Tensor) -> torch.Tensor:
    """A 0-dim time when every particle sits at the same time: coefficients are then computed once."""
    if tau.ndim == 1 and tau.numel() > 1 and bool((tau == tau[0]).all()):
        return tau[0]
    return tau


@dataclass(frozen=True)
class TimeFactors:
    """What an evaluation at one process time needs besides the model, broadcast-ready for the states:
    the model's linear time, the conversion's input scale and output factors (VP processes), and the
    x0 prediction's factors (x0_hat = x0_u * u - x0_x * x)."""

    t_model: torch.Tensor
    x0_u: torch.Tensor
    x0_x: torch.Tensor
    in_scale: torch.Tensor | None = None  # the model sees x / in_scale
    conv_x: torch.Tensor | None = None  # u = conv_x * x + conv_u * u_model
    conv_u: torch.Tensor | None = None


def _unbound(factors: Any, n: int) -> list[Any]:
    """A dataclass of [n] tensors (or None fields) as n dataclasses of 0-dim tensors."""
    values = [getattr(factors, f.name) for f in dataclasses.fields(factors)]
    columns = [v.unbind() if v is not None else (None,) * n for v in values]
    return [type(factors)(*row) for row in zip(*columns, strict=True)]


class FlowSampler:
    """Args: state_dtype: the dtype of states, noise, velocities and x0 predictions (None: the model's own);
    bfloat16 reproduces the released code, which keeps its latents and noise in bf16.

    The time-only factors of an evaluation or a step depend on the grid times alone: `prefill(grid)` computes
    those of every grid time and every step down the grid in one vectorised pass (the same arithmetic as
    convert/processes, element for element), and any other time's are computed once when first met; a run
    then does no scalar coefficient work per step (for a cheap model that work cost more than the step).
    """

    def __init__(self, model: CountedModel, process: Process, cond: Any, state_dtype: torch.dtype | None = None) -> None:
        self.model = model
        self.process = process
        self.cond = cond
        inner = model.model
        self.shape = tuple(inner.sample_shape)
        self.device = inner.device
        self.dtype = state_dtype or inner.dtype
        self.cast = state_dtype is not None  # round every state the engine keeps to this dtype
        self._memo: dict[tuple, Any] = {}

    def _cached(self, key: tuple, make: Callable[[], Any]) -> Any:
        value = self._memo.get(key)
        if value is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            value = self._memo[key] = make()
        return value

    def prefill(self, grid: torch.Tensor) -> None:
        """Cache the factors of every time of `grid` (float64 [M + 1], decreasing) and of each step to the next."""
        times = grid.tolist()
        if len(times) < 2 or any(b > a for a, b in zip(times, times[1:])):
            return  # (not a grid a run steps down; its times are computed as they come)
        like = torch.empty(0, dtype=self.dtype, device=self.device)  # 1-D: one factor per time, unreshaped
        key = (self.dtype, self.device, 1 + len(self.shape))  # what a state of this sampler is
        for t, factors in zip(times, _unbound(self._time_factors(grid, like), len(times)), strict=True):
            self._memo.setdefault(("eval", t, *key), factors)
        steps = _unbound(step_factors(self.process, grid[:-1], grid[1:], like), len(times) - 1)
        for t, t_next, factors in zip(times, times[1:], steps, strict=False):
            self._memo.setdefault(("step", t, t_next, *key), factors)

    def time_factors(self, tau: torch.Tensor, like: torch.Tensor) -> TimeFactors:
        """The factors of an evaluation at process time tau (0-dim: cached; [B]: per particle)."""
        if tau.ndim == 0:
            return self._cached(("eval", float(tau), like.dtype, like.device, like.ndim),
                                lambda: self._time_factors(tau, like))
        return self._time_factors(tau, like)

    def _time_factors(self, tau: torch.Tensor, like: torch.Tensor) -> TimeFactors:
        x0_u, x0_x = x0_factors(self.process.interpolant.coeffs(tau), like)
        if not self.process.is_converted:
            return TimeFactors(tau, x0_u, x0_x)
        m = snr_matched_map(_LINEAR, self.process.interpolant, tau)
        conv_x, conv_u = conversion_factors(m, like)
        return TimeFactors(m.t, x0_u, x0_x, bcast(m.scale, like), conv_x, conv_u)

    def step_factors(self, tau: torch.Tensor, tau_next: torch.Tensor, like: torch.Tensor) -> StepFactors:
        """The factors of one step from tau to tau_next (both 0-dim: cached)."""
        if tau.ndim == 0 and tau_next.ndim == 0:
            return self._cached(("step", float(tau), float(tau_next), like.dtype, like.device, like.ndim),
                                lambda: step_factors(self.process, tau, tau_next, like))
        return step_factors(self.process, tau, tau_next, like)

    def prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n draws of the starting noise x_1 ~ N(0, I) (also for VP: method.md a.5)."""
        return self.noise((n, *self.shape), generator)

    def noise(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        # drawn in float32 (float64 for float64 states) and then cast, as the released code casts its CPU draws
        z = torch.randn(shape, generator=generator, dtype=torch.float64 if self.dtype == torch.float64 else torch.float32)
        return z.to(device=self.device, dtype=self.dtype)

    def evaluate(self, x: torch.Tensor, tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, x0_hat) at process times tau (float64, scalar or [B]); costs x.shape[0] NFE."""
        n = x.shape[0]
        f = self.time_factors(compact_time(torch.as_tensor(tau, dtype=torch.float64)), x)
        if f.in_scale is None:
            u = self.model.velocity(x, f.t_model.expand(n), self.cond)
        else:
            u_model = self.model.velocity(x / f.in_scale, f.t_model.expand(n), self.cond)
            u = f.conv_x * x + f.conv_u * u_model  # (in this order: a guided run's gradients sum in a fixed order)
        x0 = f.x0_u * u - f.x0_x * x
        return (u.to(self.dtype), x0.to(self.dtype)) if self.cast else (u, x0)

    def evaluate_guided(
        self, x: torch.Tensor, tau: torch.Tensor, objective: Objective
    ) -> tuple[torch.Tensor, ...]:
        """(u, x0_hat, values [B], grad_x values, aux) at process times tau, where objective(x0_hat) = (values,
        aux) (aux: anything per particle the caller keeps, e.g. the decoded images); len(x) NFE and as many
        backward passes. The gradient flows through the model (and any conversion), as in DPS."""
        n = x.shape[0]
        tau = torch.as_tensor(tau, dtype=torch.float64).expand(n) if torch.as_tensor(tau).ndim == 0 else tau
        parts: list[tuple[torch.Tensor, ...]] = []
        lo = 0
        while lo < n:
            hi = min(n, lo + self.model.max_batch)
            counted = self.model.nfe
            try:
                parts.append(self._guided_slice(x[lo:hi], tau[lo:hi], objective))
            except (RuntimeError, MemoryError) as exc:
                if not is_out_of_memory(exc) and not isinstance(exc, MemoryError):
                    raise
                self.model.nfe = counted  # a slice whose backward failed is not an evaluation: it is retried
                if hi - lo == 1:
                    raise ModelOutOfMemoryError(f"{self.model.model.name} ran out of memory computing the reward "
                                                f"gradient of a single particle: {exc}") from exc
                self.model.max_batch = max(1, (hi - lo) // 2)  # the smaller size sticks for the run
                if x.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            lo = hi
        return tuple(torch.cat([p[i] for p in parts]) for i in range(5))

    def _guided_slice(self, x: torch.Tensor, tau: torch.Tensor, objective: Objective) -> tuple[torch.Tensor, ...]:
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            u, x0 = self.evaluate(leaf, tau)
            values, aux = objective(x0)
            (grad,) = torch.autograd.grad(values.sum(), leaf)
        self.model.grad_evals += x.shape[0]
        return u.detach(), x0.detach(), values.detach(), grad.detach(), aux.detach()

    def propose(
        self,
        x: torch.Tensor,
        u: torch.Tensor,
        tau: torch.Tensor,
        tau_next: torch.Tensor,
        generator: torch.Generator,
        guide: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One step of the process from tau to tau_next; draws noise only for stochastic processes.
        `guide` (DPS) is added to the score in the SDE drift."""
        noise = self.noise(tuple(x.shape), generator) if self.process.stochastic else None
        f = self.step_factors(compact_time(torch.as_tensor(tau, dtype=torch.float64)),
                              compact_time(torch.as_tensor(tau_next, dtype=torch.float64)), x)
        moved = apply_step(self.process, f, x, u, noise, guide)
        return moved.to(self.dtype) if self.cast else moved
