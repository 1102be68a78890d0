"""The run trace: the single data flow of flowscale.

A run emits a stream of `Event`s (the app draws from it as it arrives); `RunRecord` gathers the resolved
config, every event, the ledger and the final outputs, and is saved as record.json. Keys of event data
that start with "_" (image previews) are streamed but never saved, so records stay small.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVENT_KINDS = ("start", "candidates", "select", "resample", "budget", "done")


@dataclass
class Event:
    """One step event. step is the index of the evaluation time in the run's grid (-1: whole run)."""

    kind: str
    step: int
    nfe_total: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        saved = {k: v for k, v in self.data.items() if not k.startswith("_")}
        return {"kind": self.kind, "step": self.step, "nfe_total": self.nfe_total, **saved}


@dataclass
class RunRecord:
    config: dict[str, Any]
    versions: dict[str, str]
    grid: list[float]
    events: list[dict[str, Any]]
    nfe_budget: int
    nfe_used: int
    nfe_per_step: list[int]
    best_reward_by_nfe: list[list[float]]
    final_reward: float
    heldout_reward: float | None
    accuracy: float | None
    rewards: list[float]
    heldout_rewards: list[float] | None
    samples_2d: list[list[float]]
    details: list[dict] | None
    wall_time_s: float
    model_time_s: float
    reward_time_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.update(out.pop("extra"))
        return out

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(_jsonable(self.to_dict()), indent=1, allow_nan=False))

    def comparable(self) -> dict[str, Any]:
        """The record without timings: what must match exactly when a run is replayed."""
        data = self.to_dict()
        for key in ("wall_time_s", "model_time_s", "reward_time_s"):
            data.pop(key)
        return _jsonable(data)


def _jsonable(value: Any) -> Any:
    """Plain JSON: finite floats only (a NaN in a record is a bug we want to see as None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def load_record(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
