"""Where text-to-image weights come from, and loading them once.

A model is loaded from a local diffusers folder (`--model-path DIR`, `from_pretrained(DIR)`) or, without a
path, from its hub id, but only when the hub can be reached (or the weights already sit in the local
Hugging Face cache). Offline (`HF_HUB_OFFLINE=1` or no network), gated or missing weights become a
`ConfigError` naming `model` or `model_path` with what to do, never a traceback.

Loaded pipelines live in a module-level cache keyed by (model, location, dtype, device, offload), guarded by
a lock; callers treat them as read-only. The same hub/offline logic (`load_pretrained`) serves the reward
models in `flowscale.rewards`.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from flowscale.config import ConfigError

T = TypeVar("T")

HUB_IDS = {
    "flux-schnell": "black-forest-labs/FLUX.1-schnell",
    "flux-dev": "black-forest-labs/FLUX.1-dev",
    "sd3": "stabilityai/stable-diffusion-3-medium-diffusers",
    "sd3.5": "stabilityai/stable-diffusion-3.5-large",
}
FAMILIES = {"flux-schnell": "flux", "flux-dev": "flux", "sd3": "sd3", "sd3.5": "sd3"}
PIPELINE_CLASSES = {"flux": "FluxPipeline", "sd3": "StableDiffusion3Pipeline"}
_TRUE = ("1", "true", "yes", "on")

_PIPELINES: dict[tuple, Any] = {}
_LOCK = threading.RLock()
_NET: dict[str, tuple[float, bool]] = {}


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
            msg = (f"{what}: {location} is not in the local Hugging Face cache and the hub is offline or "
                   f"unreachable; download it on a machine with internet (hf download {location} --local-dir DIR) "
                   f"and {hint}")
        else:
            msg = f"{what}: cannot load {location} from the hub: {type(exc).__name__}: {exc}"
        raise ConfigError(field, msg) from exc


def pipeline_class_of(folder: Path) -> str | None:
    index = folder / "model_index.json"
    if not index.is_file():
        return None
    try:
        return str(json.loads(index.read_text()).get("_class_name"))
    except (OSError, json.JSONDecodeError):
        return None


def check_local_folder(model: str, model_path: str) -> Path:
    """The folder of --model-path, checked to hold the pipeline class the model needs."""
    folder = Path(model_path).expanduser()
    if not folder.is_dir():
        raise ConfigError("model_path", f"folder not found: {model_path}")
    cls = pipeline_class_of(folder)
    expected = PIPELINE_CLASSES[FAMILIES[model]]
    if cls is None:
        raise ConfigError("model_path", f"{model_path} has no readable model_index.json; it must be a diffusers "
                          f"pipeline folder (e.g. `hf download {HUB_IDS[model]} --local-dir DIR`)")
    if cls != expected:
        raise ConfigError("model_path", f"{model_path} holds a {cls}, but --model {model} needs a {expected}")
    return folder


def _load(model: str, location: str, local: bool, dtype: torch.dtype) -> Any:
    from diffusers import DiffusionPipeline

    def loader(loc: str, local_only: bool) -> Any:
        return DiffusionPipeline.from_pretrained(loc, dtype=dtype, local_files_only=local_only)

    field = "model_path" if local else "model"
    pipe = load_pretrained(loader, location, field, f"{model} weights", hint="pass it as --model-path DIR")
    expected = PIPELINE_CLASSES[FAMILIES[model]]
    if type(pipe).__name__ != expected:
        raise ConfigError(field, f"{location} loaded as {type(pipe).__name__}, but {model} needs a {expected}")
    return pipe


def load_pipeline(model: str, model_path: str | None, device: torch.device, dtype: torch.dtype,
                  offload: bool = False) -> Any:
    """The diffusers pipeline of `model` (cached): eval mode, on `device` or CPU-offloaded to it.

    Args:
        model: a key of HUB_IDS.
        model_path: a local diffusers folder, or None for the hub id.
        offload: enable_model_cpu_offload (CUDA only): weights stay on the CPU until a module runs.
    """
    local = model_path is not None
    location = str(check_local_folder(model, model_path)) if local else HUB_IDS[model]
    offload = offload and device.type == "cuda"
    key = (model, location, str(dtype), str(device), offload)
    with _LOCK:
        if key in _PIPELINES:
            return _PIPELINES[key]
        pipe = _load(model, location, local, dtype)
        if offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        for module in pipe.components.values():
            if isinstance(module, torch.nn.Module):
                module.eval().requires_grad_(False)
        pipe.set_progress_bar_config(disable=True)
        _PIPELINES[key] = pipe
        return pipe


def clear_cache() -> None:
    """Forget every loaded pipeline (tests; freeing GPU memory)."""
    with _LOCK:
        _PIPELINES.clear()
