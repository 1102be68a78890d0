"""Method settings as users give them ("rbf.variant=code", {"smc.lam": 0.5}) -> the params dataclasses.

Every setting has a declared range (RANGES) or set of names (CHOICES), checked before anything is
allocated or run; a bad one is a ConfigError naming the exact key the user typed, in one short line.
Keys must belong to the run's method (or to the world, e.g. `t2i.*`): an unknown prefix or another
method's key is an error, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from flowscale.config import ConfigError, clip, short
from flowscale.search.methods import METHODS
from flowscale.search.rbf import VARIANTS
from flowscale.search.schedules import SCHEDULES
from flowscale.search.smc import RESAMPLERS

CHOICES = {"rbf.variant": VARIANTS, "smc.resampling": RESAMPLERS, "smc.schedule": SCHEDULES,
           "svdd.schedule": SCHEDULES, "code.schedule": SCHEDULES}  # settings that take one of a few names
FIXED = {"svdd.block"}  # fields of a params dataclass that are not free choices (SVDD is the block-1 case)
MAX_COUNT = 100_000  # particles, chains, children, steps per solve: far above any budget a world allows
# (low, high, low_open): the allowed interval of every numeric setting; None (automatic) is always allowed
# where the field's type admits it.
RANGES: dict[str, tuple[float, float, bool]] = {
    "ode.particles": (1, MAX_COUNT, False),
    "base.particles": (1, MAX_COUNT, False),
    "bon.n": (1, MAX_COUNT, False),
    "sop.n": (1, MAX_COUNT, False),
    "sop.k": (1, MAX_COUNT, False),
    "sop.t_seed": (0.0, 1.0, True),
    "sop.forward": (0.0, 1.0, True),
    "sop.backward": (0.0, 2.0, True),
    "sop.solve_steps": (1, MAX_COUNT, False),
    "smc.n": (1, MAX_COUNT, False),
    "smc.lam": (0.0, 1e6, True),
    "smc.ess_threshold": (0.0, 1.0, False),
    **{f"{m}.{key}": r for m in ("code", "svdd")  # the block methods share their settings
       for key, r in (("n", (1, MAX_COUNT, False)), ("k", (1, MAX_COUNT, False)), ("lam", (0.0, 1e6, False)))},
    "code.block": (1, 10_000, False),
    "svdd.block": (1, 1, False),  # SVDD is the block-1 case
    "rbf.chains": (1, MAX_COUNT, False),
    "rbf.init_particles": (1, MAX_COUNT, False),
    "rbf.batch": (1, 1024, False),
}


@dataclasses.dataclass(frozen=True)
class Setting:
    """One method setting as a user sees it: key "rbf.variant", its type, default and allowed names.

    optional: None is allowed and means "automatic" (e.g. bon.n = budget // steps).
    """

    key: str
    kind: type
    default: Any
    optional: bool
    choices: tuple[str, ...] = ()


def method_settings(method: str) -> list[Setting]:
    """The user-settable fields of a method's params dataclass, read once from its type hints."""
    cls = METHODS[method][0]
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        key = f"{method}.{f.name}"
        if key in FIXED:
            continue
        options = typing.get_args(hints[f.name]) or (hints[f.name],)
        kind = next(k for k in (bool, int, float, str) if k in options)
        out.append(Setting(key, kind, f.default, type(None) in options, CHOICES.get(key, ())))
    return out


def check_method(method: Any) -> None:
    """Method names are checked here, where the methods live."""
    if not isinstance(method, str) or method not in METHODS:
        raise ConfigError("method", f"must be one of {', '.join(METHODS)}; got {short(method)}")


def check_param_keys(method: str, params: dict[str, Any], world_prefixes: tuple[str, ...] = ()) -> None:
    """Every key names the run's method (or one of the world's own prefixes, e.g. "t2i")."""
    for key in params:
        prefix, dot, _ = str(key).partition(".")
        if not dot or not prefix:
            raise ConfigError(clip(key), f"a setting is METHOD.KEY, e.g. {method}.n; got {short(key)}")
        if prefix in world_prefixes or prefix == method:
            continue
        if prefix in METHODS:
            raise ConfigError(clip(key), f"is a setting of {prefix}, but this run's method is {method}")
        allowed = ", ".join((*METHODS, *world_prefixes))
        raise ConfigError(clip(key), f"unknown method {short(prefix)}; settings start with one of {allowed}")


def without_method_params(params: dict[str, Any]) -> dict[str, Any]:
    """The settings that belong to no method (a world's own, e.g. t2i.guidance_scale)."""
    return {k: v for k, v in params.items() if str(k).partition(".")[0] not in METHODS}


def params_dict(method: str, params: Any) -> dict[str, Any]:
    """Every field of a resolved params dataclass as {"method.field": value}: what the trace records."""
    return {f"{method}.{f.name}": getattr(params, f.name) for f in dataclasses.fields(params)}


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Turn a CLI/JSON value into the type a params field declares (booleans are never numbers)."""
    options = typing.get_args(hint) or (hint,)
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        if type(None) in options:
            return None
        raise ConfigError(key, "cannot be none")
    for kind in (bool, int, float, str):
        if kind not in options:
            continue
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            continue
        if isinstance(value, bool) or (kind is not str and not isinstance(value, (int, float, str))):
            continue
        try:
            if kind is int and isinstance(value, float) and not value.is_integer():
                continue
            if kind is int and isinstance(value, str) and not value.strip().lstrip("-").isdigit():
                continue
            if kind is str and not isinstance(value, str):
                continue
            return kind(value)
        except (TypeError, ValueError, OverflowError):
            continue
    names = " or ".join(k.__name__ for k in (int, float, str, bool) if k in options)
    raise ConfigError(key, f"must be {names}" + (" or none" if type(None) in options else "") + f"; got {short(value)}")


def _check_value(key: str, value: Any) -> None:
    if value is None or isinstance(value, str) and key not in CHOICES:
        return
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(key, f"must be one of {', '.join(CHOICES[key])}; got {short(value)}")
    if key in RANGES:
        lo, hi, open_low = RANGES[key]
        ok = math.isfinite(value) and (lo < value if open_low else lo <= value) and value <= hi
        if not ok:
            left = "(" if open_low else "["
            what = "an integer" if isinstance(value, int) else "a finite number"
            raise ConfigError(key, f"must be {what} in {left}{lo:g}, {hi:g}]; got {short(value)}")


def method_params(method: str, values: dict[str, Any]) -> Any:
    """Build the params dataclass of `method` from {"method.field": value}; other methods' keys are skipped
    here (check_param_keys refuses them where a run is prepared)."""
    check_method(method)
    cls = METHODS[method][0]
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for raw_key, value in values.items():
        prefix, _, key = str(raw_key).rpartition(".")
        if prefix and prefix != method:
            continue
        if key not in fields:
            allowed = ", ".join(f"{method}.{f}" for f in sorted(fields)) or "none"
            raise ConfigError(clip(raw_key), f"unknown setting for method {method}; allowed: {allowed}")
        coerced = _coerce(value, hints[key], f"{method}.{key}")
        _check_value(f"{method}.{key}", coerced)
        kwargs[key] = coerced
    return cls(**kwargs)
