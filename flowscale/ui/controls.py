"""The app's controls -> a RunConfig, in one place (no gradio). Field names are the CLI's.

Method settings come from the methods' own params dataclasses (`flowscale.search.method_settings`);
0 in a number box means "automatic" for settings that allow None. Only settings that differ from their
defaults go into RunConfig.params, so a record names what the user changed.
"""

from __future__ import annotations

import math
from typing import Any

from flowscale.catalog import MODEL_NAMES
from flowscale.config import ConfigError, RunConfig
from flowscale.run import ode_baseline
from flowscale.search import SEARCH_METHODS, Setting, method_settings
from flowscale.ui.models import APP_DEFAULTS
from flowscale.worlds.toy2d import PRESET_TARGETS, PRESETS

PROCESSES = (("Linear-ODE", "linear-ode"), ("Linear-SDE", "linear-sde"), ("VP-SDE", "vp-sde"))
CONFIG_DEFAULTS = RunConfig()  # g_schedule, g_norm, beta_min, beta_max: the engine's defaults, shown as is


def all_settings() -> list[Setting]:
    return [s for m in SEARCH_METHODS for s in method_settings(m)]


def number(values: dict[str, Any], key: str, kind: type = int) -> Any:
    """A required whole or real number from a control, or a ConfigError naming it."""
    value = values.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigError(key, "is required")
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        raise ConfigError(key, f"must be a number; got {value!r}") from None
    if not math.isfinite(parsed):
        raise ConfigError(key, f"must be a finite number; got {value!r}")
    if kind is int:
        if not parsed.is_integer():
            raise ConfigError(key, f"must be a whole number; got {value!r}")
        return int(parsed)
    return parsed


def params_for(method: str, values: dict[str, Any]) -> dict[str, Any]:
    """The method's settings that differ from its defaults, as RunConfig.params keys ("rbf.variant")."""
    params: dict[str, Any] = {}
    for s in method_settings(method):
        if s.key not in values:
            continue
        if s.kind in (int, float):
            value = number(values, s.key, s.kind)
            if s.optional and value == 0:
                value = None
        else:
            value = values[s.key]
        if value != s.default:
            params[s.key] = value
    return params


def preset_rows(preset: str) -> list[list[float]]:
    p = PRESETS[preset]
    return [[round(m[0], 4), round(m[1], 4), s, w] for m, s, w in zip(p["means"], p["stds"], p["weights"], strict=True)]


def preset_reward(preset: str) -> str:
    """The given reward a preset starts with: its rarest mode."""
    x, y = PRESET_TARGETS.get(preset, (0.0, 0.0))
    return f"point:{x:g},{y:g}"


def mixture_from_table(table: Any, preset: str) -> tuple[str | None, dict | None]:
    """(preset, None) when the table still shows that preset, else (None, mixture dict)."""
    rows = table.values.tolist() if hasattr(table, "values") else list(table or [])
    parsed = []
    for i, row in enumerate(rows, start=1):
        cells = list(row)[:4]
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        try:
            parsed.append([float(c) for c in cells])
        except (TypeError, ValueError):
            raise ConfigError("mixture", f"row {i}: x, y, std and weight must all be numbers; got {cells}") from None
        if len(parsed[-1]) != 4:
            raise ConfigError("mixture", f"row {i}: needs 4 values (x, y, std, weight)")
    if not parsed:
        raise ConfigError("mixture", "the table needs at least one row (x, y, std, weight)")
    if preset in PRESETS and _same_rows(parsed, preset_rows(preset)):
        return preset, None
    return None, {"means": [[r[0], r[1]] for r in parsed], "stds": [r[2] for r in parsed],
                  "weights": [r[3] for r in parsed]}


def _same_rows(a: list[list[float]], b: list[list[float]]) -> bool:
    return len(a) == len(b) and all(
        abs(x - y) < 1e-3 for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=False)
    )


def build_config(values: dict[str, Any], method: str | None = None) -> RunConfig:
    """A RunConfig from the app's named values; `method` overrides the selected one (compare view)."""
    model = values.get("model") or APP_DEFAULTS["model"]
    method = method or values.get("method") or APP_DEFAULTS["method"]
    if model not in MODEL_NAMES:
        raise ConfigError("model", f"must be one of {', '.join(MODEL_NAMES)}; got {model!r}")
    preset = mixture = prompt = None
    if model == "toy2d":
        preset, mixture = mixture_from_table(values.get("mixture"), values.get("preset") or "")
    else:
        prompt = (values.get("prompt") or "").strip() or None
    grid = values.get("grid") or "default"
    cfg = RunConfig(
        model=model,
        method=method,
        process=values.get("process") or APP_DEFAULTS["process"],
        nfe=number(values, "nfe"),
        steps=number(values, "steps"),
        seed=number(values, "seed"),
        reward=(values.get("reward") or "").strip() or None,
        heldout=(values.get("heldout") or "").strip() or None,
        preset=preset,
        mixture=mixture,
        prompt=prompt,
        grid=None if grid == "default" else grid,
        g_schedule=values.get("g_schedule") or CONFIG_DEFAULTS.g_schedule,
        g_norm=number(values, "g_norm", float),
        beta_min=number(values, "beta_min", float),
        beta_max=number(values, "beta_max", float),
        params=params_for(method, values) if method in SEARCH_METHODS else {},
        recipe="paper" if values.get("paper") else None,
        dps=number(values, "dps", float) if "dps" in values else CONFIG_DEFAULTS.dps,
    )
    return ode_baseline(cfg) if method == "ode" else cfg  # the unguided baseline of every comparison
