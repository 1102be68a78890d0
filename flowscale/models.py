"""The model interface every world implements, and the wrapper that counts what we spend.

A flow model answers `velocity(x, t, cond)` in the linear convention of method.md a.1: x is [B, ...]
(batch first), t is a float64 [B] tensor of linear times (1 = noise, 0 = data), cond is whatever the
world's `encode_condition` returned (None in the 2-D world), and the result is u = E[eps - x0 | x_t].

`CountedModel` is the only way the engine calls a model: it counts NFE exactly (one velocity of one
particle is one NFE), splits large batches into micro-batches, and measures the time spent inside.
"""

from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class FlowModel(Protocol):
    name: str
    sample_shape: tuple[int, ...]
    device: torch.device
    dtype: torch.dtype

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor: ...


class BudgetExceededError(RuntimeError):
    """A method asked for more model evaluations than its budget allows (an engine bug, never user error)."""


class ModelOutOfMemoryError(RuntimeError):
    """The model ran out of memory even one particle at a time."""


def graph_mode(x: torch.Tensor) -> torch.inference_mode:
    """Inference mode unless x is part of a reward-guided (DPS) evaluation: a state that requires grad
    keeps its autograd graph through the model, the decoder and the reward; everything else builds none."""
    return torch.inference_mode(not (x.requires_grad and torch.is_grad_enabled()))


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


class CountedModel:
    """Counts NFE, micro-batches and times calls of a FlowModel.

    Args:
        model: the wrapped flow model.
        max_batch: the largest batch passed to the model in one call (memory bound).
        nfe_limit: optional hard ceiling; a call that would pass it raises BudgetExceededError.
    """

    def __init__(self, model: FlowModel, max_batch: int = 4096, nfe_limit: int | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1; got {max_batch}")
        self.model = model
        self.max_batch = max_batch
        self.nfe_limit = nfe_limit
        self.nfe = 0
        self.calls = 0
        self.model_time_s = 0.0
        self.grad_evals = 0  # backward passes (one per particle) of reward-guided evaluations (DPS)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        n = x.shape[0]
        if self.nfe_limit is not None and self.nfe + n > self.nfe_limit:
            raise BudgetExceededError(f"{self.nfe} + {n} NFE would exceed the limit of {self.nfe_limit}")
        t = torch.as_tensor(t, dtype=torch.float64).expand(n) if torch.as_tensor(t).ndim == 0 else t
        outputs = []
        start = time.perf_counter()
        lo = 0
        while lo < n:
            hi = min(n, lo + self.max_batch)
            try:
                outputs.append(self.model.velocity(x[lo:hi], t[lo:hi], cond))
            except (RuntimeError, MemoryError) as exc:
                if not is_out_of_memory(exc) and not isinstance(exc, MemoryError):
                    raise
                if self.max_batch == 1:
                    raise ModelOutOfMemoryError(
                        f"{self.model.name} ran out of memory even with a micro-batch of 1: {exc}"
                    ) from exc
                # Retry the same slice with half the micro-batch; the smaller size sticks for the run.
                self.max_batch = max(1, self.max_batch // 2)
                if x.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            self.calls += 1
            lo = hi
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        self.model_time_s += time.perf_counter() - start
        self.nfe += n
        return torch.cat(outputs) if len(outputs) > 1 else outputs[0]
