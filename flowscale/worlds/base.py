"""What a world gives the engine: a model, a condition, rewards, and how to show samples.

The engine never knows whether it samples 2-D points or images: it calls the counted model, decodes
x0 predictions with `decode` for the rewards, and projects states to 2-D with `project` for traces.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from flowscale.models import FlowModel


class RewardError(RuntimeError):
    """A reward raised or returned a non-finite value; the run stops with this message."""


@dataclass(frozen=True)
class Reward:
    """A named reward on decoded samples: fn(samples [B, ...]) -> float64 [B], larger is better.

    accuracy_fn (optional) gives 1/0 per sample where the reward defines success (exact counts);
    details_fn (optional) gives a JSON-able dict per sample (e.g. detected counts) for the trace;
    differentiable says fn is a differentiable function of the samples (autograd flows through it), so it
    can guide the SDE (DPS); `graded` is then fn with its graph kept.
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    accuracy_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    details_fn: Callable[[torch.Tensor], list[dict]] | None = None
    differentiable: bool = False

    def __call__(self, samples: torch.Tensor) -> torch.Tensor:
        return self._checked(samples, keep_graph=False)

    def graded(self, samples: torch.Tensor) -> torch.Tensor:
        """fn(samples) as float64 [B] with its autograd graph (differentiable rewards only), checked like a call."""
        if not self.differentiable:
            raise RewardError(f"reward '{self.name}' is not differentiable")
        return self._checked(samples, keep_graph=True)

    def _checked(self, samples: torch.Tensor, keep_graph: bool) -> torch.Tensor:
        try:
            values = torch.as_tensor(self.fn(samples))
            values = values if keep_graph else values.detach()
            if values.dtype != torch.float64 or values.device.type != "cpu":
                values = values.to("cpu", torch.float64)
            values = values.reshape(-1)
        except Exception as exc:  # a third-party reward model may raise anything
            raise RewardError(f"reward '{self.name}' failed: {type(exc).__name__}: {exc}") from exc
        if values.shape[0] != samples.shape[0]:
            raise RewardError(f"reward '{self.name}' returned {values.shape[0]} values for {samples.shape[0]} samples")
        if not _all_finite(values.detach()):
            raise RewardError(f"reward '{self.name}' returned a non-finite value (NaN or inf)")
        return values

    def accuracy(self, samples: torch.Tensor) -> torch.Tensor | None:
        return None if self.accuracy_fn is None else self.accuracy_fn(samples).to(torch.float64)

    def details(self, samples: torch.Tensor) -> list[dict] | None:
        return None if self.details_fn is None else self.details_fn(samples)


def _all_finite(values: torch.Tensor) -> bool:
    # A finite sum means no NaN or inf (either would carry into it), and one reduction costs a cheap reward less
    # than isfinite's elementwise pass; only a sum that overflows or is NaN needs the elementwise test.
    return math.isfinite(float(values.sum())) or bool(torch.isfinite(values).all())


@dataclass(frozen=True)
class WorldDefaults:
    """Per-model defaults; the paper's FLUX.1-schnell setting is only the default for that model."""

    steps: int
    grid: str
    grid_space: str
    nfe: int
    particles: int
    reward: str
    heldout: str | None
    max_batch: int
    shift: float = 1.0
    method_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    name: str
    model: FlowModel
    cond: Any
    reward: Reward
    heldout: Reward | None
    decode: Callable[[torch.Tensor], torch.Tensor]
    project: Callable[[torch.Tensor], torch.Tensor]
    defaults: WorldDefaults
    info: dict[str, Any] = field(default_factory=dict)
    # writes the returned sample for people (result.png in image worlds); gets decoded samples, the returned first
    save_outputs: Callable[[torch.Tensor, str], list[str]] | None = None
    # small images of decoded x0 predictions streamed with candidate events (never saved in records)
    previews: Callable[[torch.Tensor], Any] | None = None
    # the same from x0 predictions in model space (a tiny autoencoder): used instead of `previews` when set
    latent_previews: Callable[[torch.Tensor], Any] | None = None
