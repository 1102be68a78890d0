"""Where text-to-image weights come from, and loading them once.

A model is loaded from a local diffusers folder (`--model-path DIR`, `from_pretrained(DIR)`) or, without a
path, from its hub id, but only when the hub can be reached (or the weights already sit in the local
Hugging Face cache). Offline (`HF_HUB_OFFLINE=1` or no network), gated or missing weights become a
`ConfigError` naming `model` or `model_path` with what to do, never a traceback.

Loaded pipelines live in a module-level cache keyed by (model, location, dtype, device, placement), guarded by
a lock; callers treat them as read-only. The same hub/offline logic (`load_pretrained`) serves the reward
models in `flowscale.rewards`.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, TypeVar

import torch

from flowscale.config import ConfigError
from flowscale.hub import (  # noqa: F401 - hub_offline and network_reachable are re-exported for callers here
    hub_offline,
    load_pretrained,
    looks_like_path,
    network_reachable,
)

T = TypeVar("T")

HUB_IDS = {
    "flux-schnell": "black-forest-labs/FLUX.1-schnell",
    "flux-dev": "black-forest-labs/FLUX.1-dev",
    "sd3": "stabilityai/stable-diffusion-3-medium-diffusers",
    "sd3.5": "stabilityai/stable-diffusion-3.5-large",
}
FAMILIES = {"flux-schnell": "flux", "flux-dev": "flux", "sd3": "sd3", "sd3.5": "sd3"}
PIPELINE_CLASSES = {"flux": "FluxPipeline", "sd3": "StableDiffusion3Pipeline"}

_PIPELINES: dict[tuple, Any] = {}
_LOCK = threading.RLock()
TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")  # used once per prompt: may live on the CPU


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


def host_folders() -> dict[str, str]:
    """Local diffusers folders a host serves, from FLOWSCALE_MODELS ("flux-schnell=/models/FLUX.1-schnell,
    sd3.5=/models/sd35"). The app and /run use them when no path is given; visitors never name paths."""
    raw = os.environ.get("FLOWSCALE_MODELS", "").strip()
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, eq, folder = item.partition("=")
        if not eq or name.strip() not in HUB_IDS or not folder.strip():
            raise ConfigError("FLOWSCALE_MODELS", f"takes MODEL=FOLDER[,MODEL=FOLDER...] with MODEL one of "
                              f"{', '.join(HUB_IDS)}; got {item[:80]!r}")
        out[name.strip()] = folder.strip()
    return out


def weights_location(model: str, model_path: str | None) -> tuple[str | None, str]:
    """(local folder or None, where it came from): the run's --model-path, else the host's folder, else None
    (the hub id)."""
    if model_path is not None:
        return model_path, "model_path"
    folder = host_folders().get(model)
    return (folder, "FLOWSCALE_MODELS") if folder else (None, "hub")


HINT = "CLI: --model-path DIR; app host: FLOWSCALE_MODELS=MODEL=DIR"


def _load(model: str, location: str, local: bool, dtype: torch.dtype) -> Any:
    from diffusers import DiffusionPipeline

    def loader(loc: str, local_only: bool) -> Any:
        return DiffusionPipeline.from_pretrained(loc, dtype=dtype, local_files_only=local_only)

    field = "model_path" if local else "model"
    pipe = load_pretrained(loader, location, field, f"{model} weights", hint=HINT)
    expected = PIPELINE_CLASSES[FAMILIES[model]]
    if type(pipe).__name__ != expected:
        raise ConfigError(field, f"{location} loaded as {type(pipe).__name__}, but {model} needs a {expected}")
    return pipe


def load_pipeline(model: str, model_path: str | None, device: torch.device, dtype: torch.dtype,
                  placement: str = "gpu") -> Any:
    """The diffusers pipeline of `model` (cached): eval mode, on `device` or CPU-offloaded to it.

    Args:
        model: a key of HUB_IDS.
        model_path: a local diffusers folder, or None: the host's folder (FLOWSCALE_MODELS), else the hub id.
        placement: a memory plan (memory.PLANS; CUDA only, a CPU holds everything): "gpu" moves every component
            to the device; "text-cpu" leaves the text encoders on the CPU, where they encode the prompt once per
            run; "model-offload" is enable_model_cpu_offload (one component at a time on the GPU).
    """
    model_path, _ = weights_location(model, model_path)
    local = model_path is not None
    location = str(check_local_folder(model, model_path)) if local else HUB_IDS[model]
    placement = placement if device.type == "cuda" else "gpu"
    key = (model, location, str(dtype), str(device), placement)
    with _LOCK:
        if key in _PIPELINES:
            return _PIPELINES[key]
        pipe = _load(model, location, local, dtype)
        if placement == "model-offload":
            pipe.enable_model_cpu_offload(device=device)
        elif placement == "text-cpu":
            for name, module in pipe.components.items():
                if isinstance(module, torch.nn.Module) and name not in TEXT_ENCODERS:
                    module.to(device)
        else:
            pipe.to(device)
        for module in pipe.components.values():
            if isinstance(module, torch.nn.Module):
                module.eval().requires_grad_(False)
                # Reward guidance (dps) differentiates through the transformer and the VAE: recompute their
                # activations in the backward pass instead of keeping them (takes effect only under autograd).
                if getattr(module, "_supports_gradient_checkpointing", False):
                    module.enable_gradient_checkpointing()
        pipe.set_progress_bar_config(disable=True)
        _PIPELINES[key] = pipe
        return pipe


def clear_cache() -> None:
    """Forget every loaded pipeline (tests; freeing GPU memory)."""
    with _LOCK:
        _PIPELINES.clear()
