"""The density picture drawn under the 2-D particle paths (data density blue, tilted target orange).

A picture instead of contour traces: the browser redraws the paths plot at every step, and re-tracing
two filled contours each time is what made the live view stutter. The numbers come from the world
(`flowscale.worlds.background_for`); this module only paints them.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image


def background_png(background: dict[str, Any], density: bool = True, tilted: bool = True, size: int = 300) -> str:
    """The density (blue) and the tilted target (orange) as one PNG data URI."""
    rgba = np.zeros(np.shape(background["density"]) + (4,))
    layers = []
    if density:
        layers.append((np.asarray(background["density"]), (126, 166, 216), 0.85))
    if tilted:
        layers.append((np.sqrt(np.asarray(background["tilted"])), (234, 88, 12), 0.6))
    for value, colour, strength in layers:  # "over" compositing, straight alpha
        alpha = np.clip(value, 0, 1)[..., None] * strength
        out_a = alpha + rgba[..., 3:] * (1 - alpha)
        rgba[..., :3] = np.where(
            out_a > 0,
            (np.asarray(colour) * alpha + rgba[..., :3] * rgba[..., 3:] * (1 - alpha)) / np.maximum(out_a, 1e-12),
            0,
        )
        rgba[..., 3:] = out_a
    white = np.ones(3) * 255
    rgb = rgba[..., :3] * rgba[..., 3:] + white * (1 - rgba[..., 3:])  # onto the white plot background
    pixels = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)[::-1]  # image row 0 is the top (largest y)
    image = Image.fromarray(pixels, "RGB").resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.quantize(96).save(buffer, format="PNG")  # a palette keeps it ~20 kB
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
