"""Shared plumbing of the image rewards: one loaded copy per model, devices, CLIP-style preprocessing.

Every reward takes decoded images [B, 3, H, W] float in [0, 1] (any device) and returns float64 [B] on the
CPU, larger is better. Models load once per (kind, location, device, dtype) into a module-level cache
guarded by a lock, and run under torch.inference_mode in micro-batches.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.nn.functional as F

from flowscale.hub import load_pretrained

T = TypeVar("T")

_MODELS: dict[tuple, Any] = {}
_LOCK = threading.RLock()
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cached(key: tuple, build: Callable[[], T]) -> T:
    """The object for key, built once (thread-safe); callers must treat it as read-only."""
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = build()
        return _MODELS[key]


def clear_cache() -> None:
    with _LOCK:
        _MODELS.clear()


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def reward_dtype(device: torch.device) -> torch.dtype:
    """FLOWSCALE_REWARD_DTYPE (float32, bfloat16, float16) if set, else float32."""
    name = os.environ.get("FLOWSCALE_REWARD_DTYPE", "float32")
    return _DTYPES.get(name, torch.float32)


def location(env: str, default: str) -> str:
    """The model location: env var if set (a local folder or another hub id), else the hub id."""
    return os.environ.get(env) or default


def load_hf(cls: Any, where: str, field: str, what: str, env: str, **kwargs: Any) -> Any:
    """cls.from_pretrained(where) with hub/offline errors as ConfigError(field)."""
    return load_pretrained(lambda loc, local: cls.from_pretrained(loc, local_files_only=local, **kwargs),
                           where, field, what, env)


def _edge(size: Any, key: str) -> int | None:
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return None if value is None else int(value)


def clip_pixels(images: torch.Tensor, image_processor: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """CLIP preprocessing on tensors: resize the shorter side (bicubic, antialiased), centre crop, normalise.

    Args:
        images: [B, 3, H, W] in [0, 1].
        image_processor: a CLIPImageProcessor (reads size, crop_size, image_mean, image_std).
    """
    x = images.to(device, torch.float32).clamp(0, 1)
    size, crop = image_processor.size, image_processor.crop_size
    short = _edge(size, "shortest_edge") or _edge(size, "height") or 224
    ch, cw = (_edge(crop, "height") or short), (_edge(crop, "width") or short)
    h, w = x.shape[-2:]
    scale = short / min(h, w)
    nh, nw = max(ch, round(h * scale)), max(cw, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    top, left = (nh - ch) // 2, (nw - cw) // 2
    x = x[..., top:top + ch, left:left + cw]
    mean = torch.tensor(image_processor.image_mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(image_processor.image_std, device=device).view(1, 3, 1, 1)
    return ((x - mean) / std).to(dtype)


def to_uint8_hwc(images: torch.Tensor) -> list:
    """[B, 3, H, W] in [0, 1] -> list of uint8 [H, W, 3] numpy arrays (what PIL-based processors expect)."""
    arr = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(arr)


def batched(images: torch.Tensor, size: int):
    for lo in range(0, images.shape[0], size):
        yield images[lo:lo + size]
