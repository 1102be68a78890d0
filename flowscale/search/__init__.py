"""Search methods: each a generator of trace events that returns a SearchResult.

METHODS maps a method name to (params dataclass, runner). `ode` and `base` draw samples without
search; every other method spends one NFE budget through the SearchContext ledger.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

from flowscale.config import ConfigError
from flowscale.search.blocks import BlockParams, run_blocks
from flowscale.search.context import Batch, SearchContext, SearchResult
from flowscale.search.rbf import VARIANTS, RbfParams, run_rbf
from flowscale.search.simple import BaseParams, BonParams, run_base, run_bon
from flowscale.search.smc import RESAMPLERS, SmcParams, run_smc
from flowscale.search.sop import SopParams, run_sop


@dataclasses.dataclass(frozen=True)
class SvddParams(BlockParams):
    """SVDD: selection at every step (block = 1)."""


@dataclasses.dataclass(frozen=True)
class CodeParams(BlockParams):
    """CoDe: selection every `block` steps (the paper uses L = 2)."""

    block: int = 2


METHODS: dict[str, tuple[type, Callable[..., Any]]] = {
    "ode": (BaseParams, run_base),
    "base": (BaseParams, run_base),
    "bon": (BonParams, run_bon),
    "sop": (SopParams, run_sop),
    "smc": (SmcParams, run_smc),
    "code": (CodeParams, run_blocks),
    "svdd": (SvddParams, run_blocks),
    "rbf": (RbfParams, run_rbf),
}
SEARCH_METHODS = ("bon", "sop", "smc", "code", "svdd", "rbf")
CHOICES = {"rbf.variant": VARIANTS, "smc.resampling": RESAMPLERS}  # settings that take one of a few names
FIXED = {"svdd.block"}  # fields of a params dataclass that are not free choices (SVDD is the block-1 case)


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
    if method not in METHODS:
        raise ConfigError("method", f"must be one of {', '.join(METHODS)}; got {method!r}")


def params_dict(method: str, params: Any) -> dict[str, Any]:
    """Every field of a resolved params dataclass as {"method.field": value}: what the trace records."""
    return {f"{method}.{f.name}": getattr(params, f.name) for f in dataclasses.fields(params)}


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Turn a CLI/JSON value into the type a params field declares."""
    options = typing.get_args(hint) or (hint,)
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        if type(None) in options:
            return None
        raise ValueError(f"{key} cannot be none")
    for kind in (bool, int, float, str):
        if kind not in options:
            continue
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false", "1", "0"):
                return str(value).lower() in ("true", "1")
            continue
        try:
            if kind is int and isinstance(value, float) and not value.is_integer():
                continue
            if kind is int and isinstance(value, str) and not value.lstrip("-").isdigit():
                continue
            return kind(value)
        except (TypeError, ValueError):
            continue
    raise ValueError(f"{key} must be of type {hint}; got {value!r}")


def method_params(method: str, values: dict[str, Any]) -> Any:
    """Build the params dataclass of `method` from {"field": value} (keys may carry a "method." prefix)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    cls = METHODS[method][0]
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for raw_key, value in values.items():
        prefix, _, key = raw_key.rpartition(".")
        if prefix and prefix != method:
            continue  # a setting for another method (the app and bench pass all of them)
        if key not in fields:
            allowed = ", ".join(f"{method}.{f}" for f in sorted(fields)) or "none"
            raise ValueError(f"unknown setting {raw_key!r} for method {method}; allowed: {allowed}")
        kwargs[key] = _coerce(value, hints[key], raw_key)
    return cls(**kwargs)




__all__ = ["CHOICES", "METHODS", "SEARCH_METHODS", "Batch", "SearchContext", "SearchResult", "Setting", "check_method",
           "method_params", "method_settings", "params_dict"]
