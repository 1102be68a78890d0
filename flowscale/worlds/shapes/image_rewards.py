"""Weight-free image rewards shared by the Shapes and text-to-image worlds.

Both take decoded images [B, 3, H, W] in [0, 1] (float, any device) and return float64 [B] on the CPU,
larger is better:
    brightness(images)           = mean Rec.601 luminance 0.299 R + 0.587 G + 0.114 B, in [0, 1]
                                   (differentiable: autograd flows through it, so it can guide the SDE);
    jpeg_compressibility(images) = -(JPEG size in kB) at quality 95 via PIL (as in DDPO, Black et al. 2023).
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

_LUMA = (0.299, 0.587, 0.114)


def _check(images: torch.Tensor, keep_graph: bool = False) -> torch.Tensor:
    x = torch.as_tensor(images)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images [B, 3, H, W] in [0, 1]; got shape {tuple(x.shape)}")
    return (x if keep_graph else x.detach()).to("cpu", torch.float64).clamp(0.0, 1.0)


def brightness(images: torch.Tensor) -> torch.Tensor:
    """Mean luminance per image, float64 [B] in [0, 1] (keeps the autograd graph of images that have one)."""
    x = _check(images, keep_graph=True)
    luma = torch.tensor(_LUMA, dtype=torch.float64).view(1, 3, 1, 1)
    return (x * luma).sum(dim=1).mean(dim=(1, 2))


def jpeg_size_kb(image_uint8: np.ndarray, quality: int = 95) -> float:
    """Size in kB (1000 bytes) of one [H, W, 3] uint8 image saved as JPEG at `quality`."""
    buffer = io.BytesIO()
    Image.fromarray(image_uint8).save(buffer, format="JPEG", quality=quality)
    return buffer.tell() / 1000.0


def jpeg_compressibility(images: torch.Tensor, quality: int = 95) -> torch.Tensor:
    """-(JPEG size in kB) per image at quality 95, float64 [B]; smaller files score higher."""
    x = _check(images)
    arrays = (x * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return torch.tensor([-jpeg_size_kb(np.ascontiguousarray(a), quality) for a in arrays], dtype=torch.float64)
