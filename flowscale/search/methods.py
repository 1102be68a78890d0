"""The registry: method name -> (params dataclass, runner). `ode` and `base` draw samples without search;
every other method spends one NFE budget through the SearchContext ledger."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from flowscale.search.blocks import BlockParams, run_blocks
from flowscale.search.rbf import RbfParams, run_rbf
from flowscale.search.simple import BaseParams, BonParams, run_base, run_bon
from flowscale.search.smc import SmcParams, run_smc
from flowscale.search.sop import SopParams, run_sop


@dataclasses.dataclass(frozen=True)
class SvddParams(BlockParams):
    """SVDD: selection at every step (block = 1)."""

    method: ClassVar[str] = "svdd"


@dataclasses.dataclass(frozen=True)
class CodeParams(BlockParams):
    """CoDe: selection every `block` steps (the paper uses L = 2)."""

    method: ClassVar[str] = "code"
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
