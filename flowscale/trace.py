"""The run trace: the single data flow of flowscale.

A run emits a stream of `Event`s; `Trace` is the one object every consumer reads. The engine fills it
as the run goes (`flowscale.stream(cfg, trace=...)`): the resolved config with every method parameter,
the grid, every event, and the views each consumer needs, copied from the engine's own books, never
re-derived from floats:

- `nfe_per_step`, `best_reward_by_nfe`: the NFE ledger (one entry of the curve per evaluation batch);
- `plan`: the method's live budget record (RBF `quota_per_step` / `rollover_per_step`, SMC `ess_per_step`);
- `returned_id`: the id of the candidate the run returned (from the method's own result);
- `candidates`: every traced candidate as flat arrays (ids, parents, steps, t, 2-D states, x0, rewards).

`RunRecord` is the finished trace's saved form (record.json); `Trace.from_record` loads one back into a
Trace. Keys of event data that start with "_" (image previews) are streamed but never saved.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from flowscale.catalog import is_image_model
from flowscale.config import RunConfig

EVENT_KINDS = ("start", "candidates", "select", "resample", "budget", "done")
TIMING_KEYS = ("wall_time_s", "model_time_s", "reward_time_s")
RUNTIME_KEYS = (*TIMING_KEYS, "preview_time_s", "threads")  # how a run went on its machine: not part of what a replay must match
PLAN_KEYS = ("quota_per_step", "rollover_per_step", "base_quota", "ess_per_step")


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

    @staticmethod
    def from_dict(data: dict[str, Any]) -> RunRecord:
        """A record dict (record.json) back into a RunRecord; keys it does not name go to `extra`."""
        names = [f.name for f in fields(RunRecord) if f.name != "extra"]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"not a complete flowscale record: missing {', '.join(missing[:4])}")
        return RunRecord(**{n: data[n] for n in names}, extra={k: v for k, v in data.items() if k not in names})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(jsonable(self.to_dict()), indent=1, allow_nan=False))

    def saved(self) -> dict[str, Any]:
        """The record exactly as record.json stores it (plain JSON, finite floats)."""
        return json.loads(json.dumps(jsonable(self.to_dict()), allow_nan=False))

    def comparable(self) -> dict[str, Any]:
        """The record without timings: what must match exactly when a run is replayed."""
        data = self.to_dict()
        for key in RUNTIME_KEYS:
            data.pop(key, None)
        return jsonable(data)


def expected_replay(record: dict[str, Any]) -> dict[str, Any]:
    """What a replay of a saved record must equal: the record without its runtime keys, with its configs (top
    level and start event) completed by the defaults of settings added since it was made, which a replay
    records as it runs them (a record from before `dps` existed replays with dps 0)."""
    defaults = RunConfig().to_dict()
    out = {k: v for k, v in record.items() if k not in RUNTIME_KEYS}
    if isinstance(out.get("config"), dict):
        out["config"] = {**defaults, **out["config"]}
    events = out.get("events")
    if events and isinstance(events[0], dict) and isinstance(events[0].get("config"), dict):
        out["events"] = [{**events[0], "config": {**defaults, **events[0]["config"]}}, *events[1:]]
    return out


def jsonable(value: Any) -> Any:
    """Plain JSON: finite floats only (a NaN in a record is a bug we want to see as None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def load_record(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def target_lambda(method: str | None, method_params: dict[str, Any], dps: float = 0.0) -> float | None:
    """lambda of the reward-tilted target p0(x) exp(r(x) / lambda) a run samples, or None for a run that
    maximises: SMC's lam; 1 / dps for a reward-guided run (the tilt whose score the guided score is at t = 0)."""
    if method == "smc":
        return float(method_params.get("smc.lam", 1.0))
    return 1.0 / dps if dps else None


def tilt_lambda(method: str | None, method_params: dict[str, Any], dps: float = 0.0) -> float:
    """lambda of the tilted target drawn for a run: its target's (target_lambda), else 1."""
    lam = target_lambda(method, method_params, dps)
    return 1.0 if lam is None else lam


_COLUMNS = ("ids", "parents", "steps", "t", "states", "x0", "rewards", "batch")


@dataclass
class Candidates:
    """Every traced candidate of a (possibly partial) run as flat arrays, in evaluation order.

    batch is the index of the candidates event (= the entry of best_reward_by_nfe) that evaluated it.
    """

    ids: np.ndarray
    parents: np.ndarray
    steps: np.ndarray
    t: np.ndarray
    states: np.ndarray  # [n, 2]
    x0: np.ndarray  # [n, 2]
    rewards: np.ndarray
    batch: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def index_of(self) -> dict[int, int]:
        return {int(i): k for k, i in enumerate(self.ids)}

    def has_children(self) -> np.ndarray:
        return np.isin(self.ids, self.parents[self.parents >= 0])

    def subset(self, rows: np.ndarray) -> Candidates:
        """The candidates at the given rows (a boolean mask or indices), in their order."""
        return Candidates(*(getattr(self, k)[rows] for k in _COLUMNS))


def _points(rows: list[list[float]]) -> np.ndarray:
    """[n, 2] float array; 1-D projections get a zero second coordinate."""
    out = np.zeros((len(rows), 2))
    for i, row in enumerate(rows):
        out[i, : len(row)] = list(row)[:2]
    return out


class Trace:
    """A run as it goes and once it is done; see the module docstring for what each view holds."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.method_params: dict[str, Any] = {}
        self.grid: list[float] = []
        self.world: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.nfe_per_step: list[int] = []
        self.best_reward_by_nfe: list[list[float]] = []
        self.plan: dict[str, Any] = {}
        self.returned_id: int | None = None
        self.record: RunRecord | None = None
        self.previews: dict[int, tuple[Any, float, float]] = {}  # step -> (image, t, reward) of its best
        self._cols: dict[str, list] = {k: [] for k in _COLUMNS}
        self._batches = 0
        self._batch_nfe: list[int] = []
        self._arrays: Candidates | None = None
        self._nfe_after_step: dict[int, int] = {}

    # --- filling (the engine) -----------------------------------------------------------------------
    def append(self, event: Event | dict[str, Any]) -> None:
        """Add one event; candidates also go into the flat columns, with the per-step best preview."""
        saved = event.to_dict() if isinstance(event, Event) else dict(event)
        if saved["kind"] == "done":
            return
        self.events.append(saved)
        if saved["kind"] == "start":
            self.config = dict(saved.get("config") or {})
            self.method_params = dict(saved.get("method_params") or {})
            self.grid = list(saved.get("grid") or [])
            self.world = dict(saved.get("world") or {})
        elif saved["kind"] == "candidates":
            self._add_candidates(saved)
            if isinstance(event, Event) and event.data.get("_previews") is not None:
                self._note_previews(saved, event.data["_previews"])

    def _add_candidates(self, e: dict[str, Any]) -> None:
        """A summarised event (past the run's detail budget) has no per-particle lists: it adds no rows."""
        n = len(e.get("ids") or [])
        steps = e.get("steps") or [int(e["step"])] * n
        if n:
            cols = self._cols
            cols["ids"] += e["ids"]
            cols["parents"] += e["parents"]
            cols["steps"] += steps
            cols["t"] += e["t"]
            cols["states"] += e["states"]
            cols["x0"] += e["x0"]
            cols["rewards"] += e["rewards"]
            cols["batch"] += [self._batches] * n
        self._batches += 1
        self._batch_nfe.append(int(e["nfe_total"]))
        self._arrays = None
        for k in set(steps) | {int(e["step"])}:
            self._nfe_after_step[k] = int(e["nfe_total"])

    def _note_previews(self, e: dict[str, Any], images: Any) -> None:
        if len(images) != len(e.get("rewards") or []):
            return
        for image, t, reward in zip(images, e["t"], e["rewards"], strict=True):
            step = int(e["step"])
            if step not in self.previews or reward > self.previews[step][2]:
                self.previews[step] = (image, float(t), float(reward))

    def sync(self, grid: list[float], nfe_per_step: list[int], curve: list[list[float]], curve_len: int,
             plan: dict[str, Any]) -> None:
        """Copy the engine's books after an event: the ledger (its curve up to `curve_len` entries, the ones
        the event had seen; only the new entries are copied) and the method's live plan."""
        self.grid = grid
        self.nfe_per_step = list(nfe_per_step)
        for i in range(len(self.best_reward_by_nfe), curve_len):
            self.best_reward_by_nfe.append(list(curve[i]))
        self.plan = dict(plan)

    def finish(self, record: RunRecord, returned_id: int) -> None:
        self.record = record
        self.returned_id = returned_id
        self.nfe_per_step = list(record.nfe_per_step)
        self.best_reward_by_nfe = [list(p) for p in record.best_reward_by_nfe]
        self.grid = list(record.grid)
        extra = record.extra
        self.plan = {k: extra[k] for k in PLAN_KEYS if k in extra}

    @staticmethod
    def from_record(data: dict[str, Any]) -> Trace:
        """A saved record (or a partial one: config and events only) loaded back into a Trace."""
        trace = Trace()
        for event in data.get("events") or []:
            trace.append(event)
        if not trace.config:
            trace.config = dict(data.get("config") or {})
        if "nfe_per_step" in data:
            trace.finish(RunRecord.from_dict(data), data.get("returned_id"))
        return trace

    # --- reading (every consumer) -------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.record is not None

    @property
    def method(self) -> str | None:
        return self.config.get("method")

    @property
    def image_world(self) -> bool:
        """Whether samples are images (paths are then drawn as rewards and a projection, not in the plane)."""
        return is_image_model(self.config.get("model") or "toy2d")

    @property
    def tilt_lambda(self) -> float:
        return tilt_lambda(self.method, {**(self.config.get("params") or {}), **self.method_params},
                           float(self.config.get("dps") or 0.0))

    @property
    def nfe_used(self) -> int:
        return sum(self.nfe_per_step)

    @property
    def candidates(self) -> Candidates:
        if self._arrays is None:
            c = self._cols
            self._arrays = Candidates(
                np.asarray(c["ids"], dtype=np.int64),
                np.asarray(c["parents"], dtype=np.int64),
                np.asarray(c["steps"], dtype=np.int64),
                np.asarray(c["t"], dtype=np.float64),
                _points(c["states"]),
                _points(c["x0"]),
                np.asarray(c["rewards"], dtype=np.float64),
                np.asarray(c["batch"], dtype=np.int64),
            )
        return self._arrays

    def eval_steps(self) -> list[int]:
        """The grid indices at which candidates were evaluated so far, in order."""
        return sorted(self._nfe_after_step)

    def nfe_at_step(self, step: int) -> int:
        """NFE spent when the last evaluation at `step` (or before it) was charged."""
        done = [n for k, n in self._nfe_after_step.items() if k <= step]
        return max(done, default=0)

    def batch_nfe(self) -> np.ndarray:
        """NFE spent after each evaluation batch, as the engine stamped it on the candidates event."""
        return np.asarray(self._batch_nfe, dtype=np.int64)

    def events_at(self, step: int, kinds: tuple[str, ...] = ("select", "resample", "budget")) -> list[dict]:
        return [e for e in self.events if e["kind"] in kinds and e["step"] == step]

    def lineage(self, leaf: int | None) -> list[int]:
        """Row indices of `candidates` from the first noise down to the candidate `leaf`."""
        if leaf is None:
            return []
        cands = self.candidates
        index = cands.index_of()
        rows: list[int] = []
        node = leaf
        while node >= 0 and node in index and len(rows) <= len(cands):
            rows.append(index[node])
            node = int(cands.parents[index[node]])
        return rows[::-1]

    def views(self) -> dict[str, Any]:
        """Every derived view as plain data: what must be equal for two traces of one run."""
        c = self.candidates
        return {
            "config": self.config, "method_params": self.method_params, "grid": self.grid,
            "events": self.events, "nfe_per_step": self.nfe_per_step,
            "best_reward_by_nfe": self.best_reward_by_nfe, "plan": self.plan, "returned_id": self.returned_id,
            "eval_steps": self.eval_steps(), "lineage": self.lineage(self.returned_id),
            **{k: getattr(c, k).tolist() for k in _COLUMNS},
        }
