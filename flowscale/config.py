"""The run config: what goes into the engine, validated field by field.

Every field that is None takes the world's default when the run is resolved; the resolved config is
what record.json stores, so a record replays exactly. Errors are `ConfigError`s naming the field and
what is allowed; the CLI prints them as one line and exits 2, the app shows them as a message.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from flowscale.grids import GRID_KINDS, GRID_SPACES
from flowscale.interpolants import BETA_MAX, BETA_MIN
from flowscale.processes import G_NORM, G_SCHEDULE, G_SCHEDULES, PROCESS_NAMES

__all__ = ["GRID_KINDS", "GRID_SPACES", "G_SCHEDULES", "PROCESS_NAMES", "STATE_DTYPES", "ConfigError", "Limits", "RunConfig", "clip",
           "short", "validate", "validate_types"]  # the allowed names are re-exported: the CLI and the app offer what validate accepts


STATE_DTYPES = ("float64", "float32", "bfloat16")  # bfloat16: the released code's latents, noise and times
MAX_DPS = 1e4  # guidance scales beyond this only overflow the drift
MAX_MESSAGE = 300  # characters of one error line: a hostile value is never echoed back whole


def clip(text: Any, limit: int = 60) -> str:
    """Text on one line, at most `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def short(value: Any, limit: int = 48) -> str:
    """A value as an error message shows it: its repr, on one line, at most `limit` characters."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails is still named
        text = f"<{type(value).__name__}>"
    return clip(text, limit)


class ConfigError(ValueError):
    """A bad setting; `field` names it (as the CLI flag or API keyword without dashes). One line, bounded."""

    def __init__(self, field_name: str, message: str) -> None:
        field_name = clip(field_name, 60)
        super().__init__(clip(f"{field_name}: {message}", MAX_MESSAGE))
        self.field = field_name


@dataclass(frozen=True)
class Limits:
    """Hard bounds per world: what one request may cost."""

    max_nfe: int = 20000
    max_particles: int = 4096
    max_steps: int = 1000
    max_prompt_chars: int = 300


@dataclass(frozen=True)
class RunConfig:
    model: str = "toy2d"
    method: str = "base"
    process: str = "linear-ode"
    nfe: int | None = None
    steps: int | None = None
    particles: int | None = None
    seed: int = 0
    reward: str | None = None
    heldout: str | None = None
    preset: str | None = None
    mixture: dict[str, Any] | None = None
    prompt: str | None = None
    model_path: str | None = None
    height: int | None = None
    width: int | None = None
    grid: str | None = None
    grid_space: str | None = None
    shift: float | None = None
    g_schedule: str = G_SCHEDULE
    g_norm: float = G_NORM
    beta_min: float = BETA_MIN
    beta_max: float = BETA_MAX
    max_batch: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    recipe: str | None = None  # "paper": the released code's setting (flowscale/recipes.py)
    dps: float = 0.0  # reward-gradient guidance scale in the SDE drift's score (paper App. E.1); 0 = off
    state_dtype: str | None = None  # dtype of the sampler's state, noise and grid times; None = the model's own

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> RunConfig:
        if not isinstance(data, dict):
            raise ConfigError("config", "must be a JSON object")
        names = {f.name for f in dataclasses.fields(RunConfig)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(unknown[0], f"unknown setting; allowed: {', '.join(sorted(names))}")
        return RunConfig(**data)


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer in [{lo}, {hi}]; got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be in [{lo}, {hi}]; got {value}")


def _check_float(name: str, value: Any, lo: float, hi: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number in [{lo:g}, {hi:g}]; got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be in [{lo:g}, {hi:g}]; got {value}")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...] | list[str]) -> None:
    if value is not None and value not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {value!r}")


REQUIRED = ("model", "method", "process", "g_schedule")  # text settings that cannot be None


def validate_types(cfg: RunConfig) -> None:
    """The JSON shape of a config from outside (API, records): text fields text, params a flat mapping."""
    for name in ("model", "method", "process", "reward", "heldout", "preset", "prompt", "model_path", "grid",
                 "grid_space", "g_schedule", "recipe", "state_dtype"):
        value = getattr(cfg, name)
        if value is None and name in REQUIRED:
            raise ConfigError(name, "is required")
        if value is not None and not isinstance(value, str):
            raise ConfigError(name, f"must be text; got {short(value)}")
    for name in ("seed", "g_norm", "beta_min", "beta_max", "dps"):
        if getattr(cfg, name) is None:
            raise ConfigError(name, "is required")
    if cfg.mixture is not None and not isinstance(cfg.mixture, dict):
        raise ConfigError("mixture", f"must be an object with means, stds and weights; got {short(cfg.mixture)}")
    if not isinstance(cfg.params, dict):
        raise ConfigError("params", f'must be an object of method settings, e.g. {{"rbf.variant": "code"}}; got '
                          f"{short(cfg.params)}")
    for key, value in cfg.params.items():
        if not isinstance(key, str) or not (value is None or isinstance(value, (str, int, float, bool))):
            raise ConfigError("params", f"{short(key)}: each setting is a name and one value; got {short(value)}")


def validate(cfg: RunConfig, limits: Limits) -> None:
    """Static checks that need no model; the world and the method check the rest."""
    validate_types(cfg)
    if not isinstance(cfg.method, str):
        raise ConfigError("method", f"must be a method name; got {cfg.method!r}")
    _check_choice("process", cfg.process, PROCESS_NAMES)
    _check_choice("grid", cfg.grid, GRID_KINDS)
    _check_choice("grid_space", cfg.grid_space, GRID_SPACES)
    _check_choice("g_schedule", cfg.g_schedule, G_SCHEDULES)
    _check_choice("state_dtype", cfg.state_dtype, STATE_DTYPES)
    _check_int("nfe", cfg.nfe, 1, limits.max_nfe)
    _check_int("steps", cfg.steps, 1, limits.max_steps)
    _check_int("particles", cfg.particles, 1, limits.max_particles)
    _check_int("seed", cfg.seed, 0, 2**63 - 1)
    _check_int("max_batch", cfg.max_batch, 1, 65536)
    _check_int("height", cfg.height, 16, 2048)
    _check_int("width", cfg.width, 16, 2048)
    _check_float("g_norm", cfg.g_norm, 0.0, 100.0)
    _check_float("beta_min", cfg.beta_min, 1e-6, 1e3)
    _check_float("beta_max", cfg.beta_max, 1e-6, 1e3)
    _check_float("shift", cfg.shift, 1e-3, 1e3)
    _check_float("dps", cfg.dps, 0.0, MAX_DPS)
    if cfg.dps:
        if cfg.method == "ode":
            raise ConfigError("dps", "ode is the unguided deterministic baseline; use method base (or a search "
                              "method) with process linear-sde or vp-sde for guidance")
        if not cfg.process.endswith("-sde") or cfg.g_norm == 0:
            raise ConfigError("dps", f"guidance enters the SDE drift's score term, which {cfg.process} with g_norm "
                              f"{cfg.g_norm:g} does not have; use process linear-sde or vp-sde with g_norm > 0")
    if cfg.beta_min >= cfg.beta_max:
        raise ConfigError("beta_max", f"must be greater than beta_min ({cfg.beta_min}); got {cfg.beta_max}")
    if cfg.prompt is not None and (not isinstance(cfg.prompt, str) or len(cfg.prompt) > limits.max_prompt_chars):
        raise ConfigError("prompt", f"must be text of at most {limits.max_prompt_chars} characters")
