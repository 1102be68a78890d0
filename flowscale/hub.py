"""Hub, device and dtype helpers shared by the worlds and the reward models (one place, no world imports).

`load_pretrained` loads weights from a local folder or, when it can be reached, the Hugging Face hub, and
turns offline, gated or missing weights into a `ConfigError` naming the field, never a traceback.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from flowscale.config import ConfigError

T = TypeVar("T")
_TRUE = ("1", "true", "yes", "on")
_NET: dict[str, tuple[float, bool]] = {}
_LOCK = threading.RLock()


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def hub_offline() -> bool:
    """True when the user switched the hub off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    return env_flag("HF_HUB_OFFLINE") or env_flag("TRANSFORMERS_OFFLINE")


def network_reachable(timeout: float = 2.0) -> bool:
    """Whether the hub endpoint accepts a TCP connection (checked at most once a minute)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    name, _, port = host.partition(":")
    now = time.monotonic()
    cached = _NET.get(host)
    if cached is not None and now - cached[0] < 60.0:
        return cached[1]
    try:
        with socket.create_connection((name, int(port or 443)), timeout=timeout):
            ok = True
    except OSError:
        ok = False
    _NET[host] = (now, ok)
    return ok


def default_device() -> torch.device:
    """FLOWSCALE_DEVICE if set, else CUDA when available, else CPU."""
    name = os.environ.get("FLOWSCALE_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def default_dtype(device: torch.device) -> torch.dtype:
    """FLOWSCALE_DTYPE (float32, bfloat16, float16) if set, else bfloat16 on CUDA and float32 on CPU."""
    name = os.environ.get("FLOWSCALE_DTYPE")
    if name:
        if name not in _DTYPES:
            raise ConfigError("model", f"FLOWSCALE_DTYPE must be one of {', '.join(_DTYPES)}; got {name!r}")
        return _DTYPES[name]
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _error_kind(exc: BaseException) -> str:
    """'gated', 'missing' or 'other', from the exception chain of a failed from_pretrained."""
    seen: BaseException | None = exc
    text = ""
    while seen is not None:
        name = type(seen).__name__
        text += f" {name} {seen}"
        if name == "GatedRepoError":
            return "gated"
        if name in ("RepositoryNotFoundError", "LocalEntryNotFoundError", "OfflineModeIsEnabled", "EntryNotFoundError"):
            return "missing"
        seen = seen.__cause__ or seen.__context__
    low = text.lower()
    if "gated" in low or "401" in low or "403" in low or "access to model" in low:
        return "gated"
    if "offline" in low or "cannot find the requested files" in low or "connect" in low or "not found" in low:
        return "missing"
    return "other"


def looks_like_path(location: str) -> bool:
    return location.startswith(("/", ".", "~")) or os.path.exists(location) or "\\" in location


def load_pretrained(loader: Callable[[str, bool], T], location: str, field: str, what: str, env: str = "",
                    hint: str = "") -> T:
    """Call loader(location, local_files_only) with errors turned into ConfigError(field, ...).

    A location that is an existing folder (or looks like a path) is loaded locally only; otherwise it is a
    hub id, fetched when the hub is reachable and read from the local cache when it is not.
    """
    hint = hint or (f"point {env} at that folder" if env else "pass that folder")
    if looks_like_path(location):
        path = Path(location).expanduser()
        if not path.exists():
            raise ConfigError(field, f"{what}: folder not found: {location}")
        try:
            return loader(str(path), True)
        except Exception as exc:  # a broken folder can raise anything; say which and why
            raise ConfigError(field, f"{what}: cannot load {location}: {type(exc).__name__}: {exc}") from exc
    offline = hub_offline() or not network_reachable()
    try:
        return loader(location, offline)
    except Exception as exc:
        kind = _error_kind(exc)
        if kind == "gated":
            msg = (f"{what}: access to {location} is gated; accept its licence on huggingface.co and log in "
                   f"(hf auth login), or download it elsewhere and {hint}")
        elif offline:
            msg = (f"{what}: {location} is not in the local cache and the hub is offline or unreachable; fetch it "
                   f"elsewhere (hf download {location} --local-dir DIR), then {hint}")
        else:
            msg = f"{what}: cannot load {location} from the hub: {type(exc).__name__}: {exc}"
        raise ConfigError(field, msg) from exc
