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
from typing import Any

import torch

from flowscale.convert import bcast, converted_velocity, snr_matched_map, x0_from_velocity
from flowscale.interpolants import LinearInterpolant
from flowscale.models import CountedModel, ModelOutOfMemoryError, is_out_of_memory
from flowscale.processes import Process, process_step

_LINEAR = LinearInterpolant()
Objective = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # x0_hat -> (values [B], aux [B, ...])


def compact_time(tau: torch.Tensor) -> torch.Tensor:
    """A 0-dim time when every particle sits at the same time: coefficients are then computed once."""
    if tau.ndim == 1 and tau.numel() > 1 and bool((tau == tau[0]).all()):
        return tau[0]
    return tau


class FlowSampler:
    """Args: state_dtype: the dtype of states, noise, velocities and x0 predictions (None: the model's own);
    bfloat16 reproduces the released code, which keeps its latents and noise in bf16."""

    def __init__(self, model: CountedModel, process: Process, cond: Any, state_dtype: torch.dtype | None = None) -> None:
        self.model = model
        self.process = process
        self.cond = cond
        inner = model.model
        self.shape = tuple(inner.sample_shape)
        self.device = inner.device
        self.dtype = state_dtype or inner.dtype
        self.cast = state_dtype is not None  # round every state the engine keeps to this dtype

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
        tau = compact_time(torch.as_tensor(tau, dtype=torch.float64))
        if not self.process.is_converted:
            u = self.model.velocity(x, tau.expand(n), self.cond)
        else:
            m = snr_matched_map(_LINEAR, self.process.interpolant, tau)
            u_src = self.model.velocity(x / bcast(m.scale, x), m.t.expand(n), self.cond)
            u = converted_velocity(x, m, u_src)
        x0 = x0_from_velocity(x, u, self.process.interpolant.coeffs(tau))
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
        moved = process_step(self.process, x, u, compact_time(tau), compact_time(tau_next), noise, guide)
        return moved.to(self.dtype) if self.cast else moved
