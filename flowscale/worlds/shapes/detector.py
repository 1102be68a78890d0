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

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from flowscale.worlds.shapes.scenes import BACKGROUND, CLASSES, COLOURS, RGB, Spec, target_vector, vector_to_spec

COLOUR_RADIUS = 0.5  # max RGB distance from a pure colour for a pixel to count as that colour
MIN_AREA = 10  # components smaller than this (pixels) are ignored; the smallest object has ~25
_PALETTE = np.asarray([BACKGROUND] + [RGB[c] for c in COLOURS], dtype=np.float32)  # [5, 3]


def segment(images: np.ndarray) -> np.ndarray:
    """Per-pixel labels [B, H, W] (int8): 0 background/unsure, k = 1..4 for COLOURS[k - 1]. images: [B, 3, H, W]."""
    x = np.asarray(images, dtype=np.float32)
    channels = x[:, 0], x[:, 1], x[:, 2]
    # The distance to each palette colour, sqrt(((r - p_r)^2 + (g - p_g)^2) + (b - p_b)^2), on whole colour
    # planes: the same float32 values as one [B, H, W, 5, 3] array, with each distinct term computed once (the
    # palette's levels are 0 and 1: six squares and four red-green sums serve the five colours). The nearest
    # colour is the first of equal distances, as argmin's. A pixel with a NaN channel is NaN away from every
    # colour, so the running minimum never mixes NaN with a number; it ends as background either way.
    squares: dict[tuple[int, float], np.ndarray] = {}
    sums: dict[tuple[float, float], np.ndarray] = {}

    def square(c: int, level: float) -> np.ndarray:
        if (c, level) not in squares:
            d = channels[c] - level
            squares[c, level] = np.multiply(d, d, out=d)
        return squares[c, level]

    nearest = np.zeros(channels[0].shape, dtype=np.int8)
    best = closer = None
    for k, (pr, pg, pb) in enumerate(_PALETTE.tolist()):
        if (pr, pg) not in sums:
            sums[pr, pg] = square(0, pr) + square(1, pg)
        d = np.sqrt(sums[pr, pg] + square(2, pb))
        if best is None:
            best, closer = d, np.empty(d.shape, dtype=bool)
            continue
        np.less(d, best, out=closer)
        np.copyto(nearest, k, where=closer)
        np.minimum(best, d, out=best)
    nearest[~(best <= COLOUR_RADIUS)] = 0
    return nearest


TEMPLATES = ("circle", "square", "triangle")  # in this order: the first of equal IoUs wins
PAD = 4  # pixels of empty border around a component's bounding box where the templates are fitted
CHUNK_PIXELS = 2_000_000  # box pixels per vectorised fit (bounds the memory of one chunk of components)


def template_ious(mask: np.ndarray) -> dict[str, float]:
    """IoU of a component with the ideal circle, square and triangle of the same area and centroid.

    mask: boolean component mask cropped to its bounding box. The templates are fitted from the area A
    and the centroid only (circle radius sqrt(A / pi), square side sqrt(A), upward triangle side
    sqrt(2 A) with its centroid 2/3 of the way down), on the box padded by PAD pixels, so a few stray or
    missing edge pixels barely move them; this is what keeps the shape call stable on the ragged objects a
    model draws.
    """
    ys, xs = np.nonzero(mask)
    ious = fit_templates(np.array([mask.shape[0]]), np.array([mask.shape[1]]), np.zeros(len(ys), dtype=np.int64), ys, xs)
    return {k: float(v) for k, v in zip(TEMPLATES, ious[0], strict=True)}


def fit_templates(heights: np.ndarray, widths: np.ndarray, comp: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """IoUs [C, 3] (TEMPLATES order) of C components at once: component c has an h x w bounding box and the
    pixels i with comp[i] = c at (ys[i], xs[i]) inside it. The same arithmetic as fitting one padded mask at
    a time, element for element, so the IoUs are equal bit for bit (centroids: sums of half-integers are
    exact in any order; template and overlap sizes are integer counts).
    """
    c_all = len(heights)
    out = np.empty((c_all, len(TEMPLATES)))
    box = (heights + 2 * PAD) * (widths + 2 * PAD)
    lo = 0
    while lo < c_all:  # chunks of components whose padded boxes hold at most CHUNK_PIXELS (at least one)
        hi = lo + max(1, int(np.searchsorted(np.cumsum(box[lo:]), CHUNK_PIXELS, side="right")))
        keep = (comp >= lo) & (comp < hi)
        out[lo:hi] = _fit_chunk(heights[lo:hi] + 2 * PAD, widths[lo:hi] + 2 * PAD, comp[keep] - lo,
                                ys[keep] + PAD, xs[keep] + PAD)
        lo = hi
    return out


def _fit_chunk(hp: np.ndarray, wp: np.ndarray, comp: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    c = len(hp)
    area = np.bincount(comp, minlength=c)
    fy, fx = py + 0.5, px + 0.5  # pixel centres in the padded box
    cy = np.bincount(comp, weights=fy, minlength=c) / area
    cx = np.bincount(comp, weights=fx, minlength=c) / area
    a = area.astype(np.float64)
    side, tri = np.sqrt(a), np.sqrt(2.0 * a)
    apex = cy - 2.0 * tri / 3.0
    half, r2, bottom = side / 2, a / np.pi, apex + tri
    # Each template's pixel count over each padded box (the box's rows x columns). Cells past a box get an
    # infinite offset, which fails every template's test: the same counts as masking them off, in fewer passes.
    rows = np.arange(int(hp.max())) + 0.5
    cols = np.arange(int(wp.max())) + 0.5
    row_in = rows[None] < hp[:, None]
    dy = np.where(row_in, rows[None] - cy[:, None], np.inf)
    dx = np.where(cols[None] < wp[:, None], cols[None] - cx[:, None], np.inf)
    adx = np.abs(dx)
    circle = dx[:, None, :] ** 2 + dy[:, :, None] ** 2 <= r2[:, None, None]
    square_x = np.count_nonzero(adx <= half[:, None], axis=1)
    square_y = np.count_nonzero(np.abs(dy) <= half[:, None], axis=1)
    reach = np.where((rows[None] >= apex[:, None]) & (rows[None] <= bottom[:, None]) & row_in,
                     (rows[None] - apex[:, None]) / 2, -np.inf)  # the triangle's half-width per row (none: -inf)
    triangle = adx[:, None, :] <= reach[:, :, None]
    sizes = np.stack([np.count_nonzero(circle, axis=(1, 2)), square_x * square_y,
                      np.count_nonzero(triangle, axis=(1, 2))], axis=1)
    # Each template's overlap with the component: the template's test at the component's own pixels.
    ddx = fx - cx[comp]
    ddy = fy - cy[comp]
    inside = (
        ddx**2 + ddy**2 <= r2[comp],
        (np.abs(ddx) <= half[comp]) & (np.abs(ddy) <= half[comp]),
        (fy >= apex[comp]) & (fy <= bottom[comp]) & (np.abs(ddx) <= (fy - apex[comp]) / 2),
    )
    overlap = np.stack([np.bincount(comp[t], minlength=c) for t in inside], axis=1)
    return overlap / (area[:, None] + sizes - overlap)


def classify_component(mask: np.ndarray) -> str:
    """Shape of one component (boolean mask cropped to its bounding box): the best-fitting template."""
    ious = template_ious(mask)
    return max(ious, key=ious.__getitem__)


# 4-connectivity in a plane
_CROSS = ndimage.generate_binary_structure(2, 1)


def label_images(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """ndimage.label of every image of a boolean batch [B, H, W] (4-connected, no links between images): labels
    [B, H, W] numbered 1..n in raster order over the batch, and n. It labels the images stacked with a blank row
    between them in one 2-D pass, which numbers them as a 3-D labelling with in-plane links would, in less time."""
    b, h, w = mask.shape
    stacked = np.zeros((b, h + 1, w), dtype=bool)
    stacked[:, :h] = mask
    labels, n = ndimage.label(stacked.reshape(b * (h + 1), w), structure=_CROSS, output=np.intp)
    return labels.reshape(b, h + 1, w)[:, :h], n


@dataclass
class Components:
    """The connected components of every (image, colour) of a label batch [B, H, W] with at least MIN_AREA
    pixels, in ndimage.label's order over the stacked [B * 4, H, W] colour planes (image, then colour, then the
    component's first pixel in raster order). plane = image * 4 + colour index; the box is [top, bottom) x
    [left, right) in the image; the component's pixels are those i with which[i] = its index, at (ys[i], xs[i])."""

    plane: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray
    area: np.ndarray
    which: np.ndarray
    ys: np.ndarray
    xs: np.ndarray


def components(labels: np.ndarray) -> Components:
    """Components of each colour from one labelling of the foreground, on its pixels alone (a few thousand of a
    batch's pixels) instead of four colour planes of the whole batch. A 4-connected piece of one colour is
    exactly a component of that colour's plane; a piece where colours touch (rare) is split by labelling the
    colour planes of its pixels."""
    b, h, w = labels.shape
    n_col = len(COLOURS)
    foreground = labels > 0
    pos = np.flatnonzero(foreground)  # every object pixel, in raster order over the batch
    rows, xs = np.divmod(pos, w)
    image, ys = np.divmod(rows, h)
    comp, n = label_images(foreground)
    key = comp[image, ys, xs]  # the pixel's component
    colour = labels.ravel()[pos] - 1
    pixel_plane = image * n_col + colour
    colours = np.bincount(key * n_col + colour, minlength=(n + 1) * n_col).reshape(n + 1, n_col) > 0
    touching = (colours.sum(1) > 1)[key]
    if touching.any():
        at = pixel_plane[touching], ys[touching], xs[touching]
        planes = np.zeros((b * n_col, h, w), dtype=bool)
        planes[at] = True
        key[touching] = n + label_images(planes)[0][at]
    # Pixels grouped by component; the sort is stable, so each group keeps raster order and starts at its first.
    grouped = np.argsort(key, kind="stable")
    sorted_key = key[grouped]
    starts_group = np.empty(len(key), dtype=bool)
    starts_group[:1] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=starts_group[1:])
    starts = np.flatnonzero(starts_group)
    area = np.diff(starts, append=len(key))
    kept = np.flatnonzero(area >= MIN_AREA)  # noise: dropped before any per-component work
    firsts = grouped[starts[kept]]
    plane = pixel_plane[firsts]
    order = np.argsort((plane * h + ys[firsts]) * w + xs[firsts])  # ndimage.label's order over the stacked planes
    chosen = kept[order]
    rank = np.full(len(starts), -1, dtype=np.intp)  # each group's place in that order (-1: noise)
    rank[chosen] = np.arange(len(kept))
    which = np.empty(len(key), dtype=np.intp)
    which[grouped] = np.repeat(rank, area)
    on = which >= 0
    if len(starts):
        gys, gxs = ys[grouped], xs[grouped]
        top, bottom = np.minimum.reduceat(gys, starts)[chosen], np.maximum.reduceat(gys, starts)[chosen] + 1
        left, right = np.minimum.reduceat(gxs, starts)[chosen], np.maximum.reduceat(gxs, starts)[chosen] + 1
    else:
        top = bottom = left = right = ys[:0]
    return Components(plane[order], top, bottom, left, right, area[chosen], which[on], ys[on], xs[on])


def classify(images: torch.Tensor | np.ndarray) -> tuple[int, Components, np.ndarray]:
    """(B, the components of images [B, 3, H, W] in [0, 1], each one's TEMPLATES index): one labelling finds
    every component of every (image, colour), and one vectorised template fit classifies those that are not
    noise."""
    x = _as_numpy_batch(images)
    c = components(segment(x))
    if not len(c.area):
        return x.shape[0], c, np.zeros(0, dtype=np.intp)
    ious = fit_templates(c.bottom - c.top, c.right - c.left, c.which, c.ys - c.top[c.which], c.xs - c.left[c.which])
    return x.shape[0], c, ious.argmax(1)


def detect_objects_batch(images: torch.Tensor | np.ndarray) -> list[list[tuple[str, str, float, float, int]]]:
    """Objects per image of images [B, 3, H, W] in [0, 1]: [[(colour, shape, cx, cy, area)], ...]."""
    b, c, shapes = classify(images)
    found: list[list] = [[] for _ in range(b)]
    n_col = len(COLOURS)
    rows = zip((c.plane // n_col).tolist(), (c.plane % n_col).tolist(), shapes.tolist(),
               ((c.left + c.right) / 2.0).tolist(), ((c.top + c.bottom) / 2.0).tolist(), c.area.tolist(), strict=True)
    for image, colour, shape, cx, cy, area in rows:
        found[image].append((COLOURS[colour], TEMPLATES[shape], cx, cy, area))
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


# CLASSES index of (colour index, TEMPLATES index)
_CLASS_OF = np.array([[CLASSES.index((colour, shape)) for shape in TEMPLATES] for colour in COLOURS])


def detect_vectors(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Detected count vectors float64 [B, 12] (CLASSES order), counted from the components' arrays at once."""
    b, c, shapes = classify(images)
    n_col = len(COLOURS)
    cls = (c.plane // n_col) * len(CLASSES) + _CLASS_OF[c.plane % n_col, shapes]
    counts = np.bincount(cls, minlength=b * len(CLASSES)).reshape(b, len(CLASSES))
    return torch.from_numpy(counts.astype(np.float64))


def detect_counts(images: torch.Tensor | np.ndarray) -> list[dict[tuple[str, str], int]]:
    """Per image, {(colour, shape): count} over all 12 classes. images: [B, 3, H, W] in [0, 1]."""
    return [dict(zip(CLASSES, row, strict=True)) for row in detect_vectors(images).to(torch.int64).tolist()]


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
