"""Deterministic object counter of the Shapes world and the counting rewards built on it.

Pipeline per image (no learned weights): (1) colour segmentation: every pixel goes to the nearest of the
background and the four pure colours in RGB, and counts as an object pixel only if it is within
`COLOUR_RADIUS` of that colour; (2) connected components per colour (scipy.ndimage.label, 4-connected);
(3) components with fewer than `MIN_AREA` pixels are noise and ignored; (4) shape from geometry: the
best IoU among an ideal circle, square and upward triangle fitted to the component's area and centroid
(a clean square fills ~1.0 of its bounding box, a circle ~0.785, a triangle ~0.5; fitting by area and
centroid instead of the bounding box keeps the call stable when a generated object has stray edge pixels).

Rewards take decoded images [B, 3, H, W] in [0, 1] (the engine's format) and a target spec
{(colour, shape): count} (prompts.parse_prompt) or a count vector [12], and return float64 [B]:
    count    = -sum_c (target_c - detected_c)^2 over the 12 classes (absent classes target 0),
    compose  = fraction of the prompt's clauses whose count is exactly right,
    accuracy = 1 if count == 0 else 0.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy import ndimage

from flowscale.worlds.shapes.scenes import BACKGROUND, CLASSES, COLOURS, RGB, Spec, target_vector, vector_to_spec

COLOUR_RADIUS = 0.5  # max RGB distance from a pure colour for a pixel to count as that colour
MIN_AREA = 10  # components smaller than this (pixels) are ignored; the smallest object has ~25
_PALETTE = np.asarray([BACKGROUND] + [RGB[c] for c in COLOURS], dtype=np.float32)  # [5, 3]


def segment(images: np.ndarray) -> np.ndarray:
    """Per-pixel labels [B, H, W]: 0 background/unsure, k = 1..4 for COLOURS[k - 1]. images: [B, 3, H, W]."""
    x = np.moveaxis(np.asarray(images, dtype=np.float32), 1, -1)  # [B, H, W, 3]
    dist = np.sqrt(((x[..., None, :] - _PALETTE) ** 2).sum(-1))  # [B, H, W, 5]
    nearest = dist.argmin(axis=-1)
    confident = np.take_along_axis(dist, nearest[..., None], axis=-1)[..., 0] <= COLOUR_RADIUS
    return np.where(confident, nearest, 0)


@functools.cache
def _centres(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) of an h x w box, read-only and shared (a reward call meets few sizes)."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def template_ious(mask: np.ndarray) -> dict[str, float]:
    """IoU of a component with the ideal circle, square and triangle of the same area and centroid.

    mask: boolean component mask cropped to its bounding box. The templates are fitted from the area A
    and the centroid only (circle radius sqrt(A / pi), square side sqrt(A), upward triangle side
    sqrt(2 A) with its centroid 2/3 of the way down), so a few stray or missing edge pixels barely move
    them; this is what keeps the shape call stable on the ragged objects a model draws.
    """
    pad = 4
    m = np.zeros((mask.shape[0] + 2 * pad, mask.shape[1] + 2 * pad), dtype=bool)
    m[pad:-pad, pad:-pad] = mask
    yy, xx = _centres(*m.shape)
    area = float(m.sum())
    cy, cx = yy[m].mean(), xx[m].mean()
    side, tri = np.sqrt(area), np.sqrt(2.0 * area)
    apex = cy - 2.0 * tri / 3.0
    templates = {
        "circle": (xx - cx) ** 2 + (yy - cy) ** 2 <= area / np.pi,
        "square": (np.abs(xx - cx) <= side / 2) & (np.abs(yy - cy) <= side / 2),
        "triangle": (yy >= apex) & (yy <= apex + tri) & (np.abs(xx - cx) <= (yy - apex) / 2),
    }
    return {k: float((m & t).sum() / (m | t).sum()) for k, t in templates.items()}


def classify_component(mask: np.ndarray) -> str:
    """Shape of one component (boolean mask cropped to its bounding box): the best-fitting template."""
    ious = template_ious(mask)
    return max(ious, key=ious.__getitem__)


# 4-connectivity inside one (image, colour) plane, no links between planes.
_STRUCTURE = np.zeros((3, 3, 3), dtype=bool)
_STRUCTURE[1] = ndimage.generate_binary_structure(2, 1)


def detect_objects_batch(images: torch.Tensor | np.ndarray) -> list[list[tuple[str, str, float, float, int]]]:
    """Objects per image of images [B, 3, H, W] in [0, 1]: [[(colour, shape, cx, cy, area)], ...].

    One ndimage.label call labels every (image, colour) plane at once.
    """
    x = _as_numpy_batch(images)
    labels = segment(x)  # [B, H, W]
    planes = labels[:, None] == np.arange(1, len(COLOURS) + 1)[None, :, None, None]  # [B, 4, H, W]
    b, n_col, h, w = planes.shape
    comp, n = ndimage.label(planes.reshape(b * n_col, h, w), structure=_STRUCTURE)
    areas = np.bincount(comp.ravel(), minlength=n + 1)  # every label's pixel count at once
    found: list[list] = [[] for _ in range(b)]
    for j, sl in enumerate(ndimage.find_objects(comp), start=1):
        if sl is None or areas[j] < MIN_AREA:  # noise: skipped before any per-component work
            continue
        mask = comp[sl][0] == j
        area = int(areas[j])
        plane = sl[0].start
        cy = (sl[1].start + sl[1].stop) / 2.0
        cx = (sl[2].start + sl[2].stop) / 2.0
        found[plane // n_col].append((COLOURS[plane % n_col], classify_component(mask), cx, cy, area))
    return found


def detect_objects(image: np.ndarray | torch.Tensor) -> list[tuple[str, str, float, float, int]]:
    """Objects of one image [3, H, W] in [0, 1]: [(colour, shape, cx, cy, area)]."""
    return detect_objects_batch(image)[0]


def _as_numpy_batch(images: torch.Tensor | np.ndarray) -> np.ndarray:
    x = images.detach().to("cpu", torch.float32).numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images [B, 3, H, W] in [0, 1]; got shape {tuple(x.shape)}")
    return x.astype(np.float32, copy=False)


def detect_counts(images: torch.Tensor | np.ndarray) -> list[dict[tuple[str, str], int]]:
    """Per image, {(colour, shape): count} over all 12 classes. images: [B, 3, H, W] in [0, 1]."""
    out = []
    for objects in detect_objects_batch(images):
        counts = dict.fromkeys(CLASSES, 0)
        for colour, shape, *_ in objects:
            counts[(colour, shape)] += 1
        out.append(counts)
    return out


def detect_vectors(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Detected count vectors float64 [B, 12] (CLASSES order)."""
    return torch.tensor([[c[cls] for cls in CLASSES] for c in detect_counts(images)], dtype=torch.float64)


def count_reward(images: torch.Tensor, target: Spec | torch.Tensor) -> torch.Tensor:
    """-sum over the 12 classes of (target - detected)^2, float64 [B] (0 is a perfect count)."""
    return -((detect_vectors(images) - target_vector(target)) ** 2).sum(dim=1)


def compose_reward(images: torch.Tensor, target: Spec | torch.Tensor) -> torch.Tensor:
    """Fraction of the prompt's clauses whose class count is exactly right, float64 [B] in [0, 1]."""
    spec = target if isinstance(target, dict) else vector_to_spec(target)
    detected = detect_counts(images)
    return torch.tensor(
        [sum(d[tuple(cls)] == n for cls, n in spec.items()) / len(spec) for d in detected], dtype=torch.float64
    )


def count_accuracy(images: torch.Tensor, target: Spec | torch.Tensor) -> torch.Tensor:
    """Exact-count accuracy: 1.0 where every one of the 12 class counts is right, else 0.0 (float64 [B])."""
    return (count_reward(images, target) == 0).to(torch.float64)


def count_details(images: torch.Tensor) -> list[dict[str, int]]:
    """Detected non-zero counts per image as JSON-able {'red circle': 2, ...} (for traces)."""
    return [{f"{c} {s}": n for (c, s), n in d.items() if n} for d in detect_counts(images)]
