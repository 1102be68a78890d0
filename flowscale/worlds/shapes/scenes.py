"""Procedural "Shapes world" scenes: 1-6 coloured circles, squares and triangles on a black 32x32 canvas.

Every scene is a pure function of a seed (a `numpy.random.Generator`, never global state) and comes
with its exact object list. Objects are drawn hard-edged (a pixel belongs to a shape when its centre
does), with pure saturated colours, and never touch: bounding boxes keep a gap of >= 2 px, so the
connected components of one colour are exactly the objects and `detector.py` is exact on clean scenes.

Model space is float32 in [-1, 1], [3, H, W]; `to_uint8` / `from_uint8` convert to and from HWC uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow")
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# The 12 (colour, shape) classes in their fixed order; a count vector indexes this tuple.
CLASSES: tuple[tuple[str, str], ...] = tuple((c, s) for c in COLOURS for s in SHAPES)
CLASS_INDEX: dict[tuple[str, str], int] = {cls: i for i, cls in enumerate(CLASSES)}
RGB: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
}
BACKGROUND: tuple[float, float, float] = (0.0, 0.0, 0.0)
IMAGE_SIZE = 32
MIN_SIZE, MAX_SIZE = 7, 10
MAX_OBJECTS = 6
GAP = 2  # free pixels kept between the bounding boxes of two objects

Spec = dict  # {(colour, shape): count}


@dataclass(frozen=True)
class SceneObject:
    """One object: colour, shape, centre (cx, cy) in pixels (x right, y down) and size in pixels.

    The object occupies the box [x0, x0 + size) x [y0, y0 + size) with x0 = cx - size / 2.
    """

    colour: str
    shape: str
    cx: float
    cy: float
    size: int

    def as_tuple(self) -> tuple[str, str, float, float, int]:
        return (self.colour, self.shape, self.cx, self.cy, self.size)


@lru_cache(maxsize=8)
def _pixel_centres(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float64) + 0.5
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


def shape_mask(shape: str, x0: int, y0: int, size: int, image_size: int = IMAGE_SIZE) -> np.ndarray:
    """Boolean [H, W] mask of one shape in the box with top-left (x0, y0) and side `size`."""
    yy, xx = _pixel_centres(image_size)  # pixel centres
    inside_box = (xx >= x0) & (xx < x0 + size) & (yy >= y0) & (yy < y0 + size)
    if shape == "square":
        return inside_box
    if shape == "circle":
        r = size / 2.0
        return (xx - x0 - r) ** 2 + (yy - y0 - r) ** 2 <= r * r
    if shape == "triangle":
        # Upward isosceles triangle: apex at the top centre, base on the bottom edge.
        half_width = (yy - y0) / size * (size / 2.0)
        return inside_box & (np.abs(xx - x0 - size / 2.0) <= half_width)
    raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")


def render(objects: list[SceneObject], image_size: int = IMAGE_SIZE) -> np.ndarray:
    """Draw objects on the background. Returns float32 [3, H, W] in [0, 1]."""
    image = np.empty((3, image_size, image_size), dtype=np.float32)
    image[:] = np.asarray(BACKGROUND, dtype=np.float32)[:, None, None]
    for obj in objects:
        x0, y0 = round(obj.cx - obj.size / 2), round(obj.cy - obj.size / 2)
        mask = shape_mask(obj.shape, x0, y0, obj.size, image_size)
        image[:, mask] = np.asarray(RGB[obj.colour], dtype=np.float32)[:, None]
    return image


def _place_boxes(rng: np.random.Generator, n: int, image_size: int) -> list[tuple[int, int, int]] | None:
    """Up to 200 tries of rejection sampling for n non-overlapping boxes (x0, y0, size)."""
    hi = MAX_SIZE if n <= 3 else (9 if n <= 4 else 8)
    for _ in range(200):
        boxes: list[tuple[int, int, int]] = []
        for _ in range(n):
            for _ in range(50):
                size = int(rng.integers(MIN_SIZE, hi + 1))
                x0 = int(rng.integers(0, image_size - size + 1))
                y0 = int(rng.integers(0, image_size - size + 1))
                if all(
                    x0 >= bx + bs + GAP or bx >= x0 + size + GAP or y0 >= by + bs + GAP or by >= y0 + size + GAP
                    for bx, by, bs in boxes
                ):
                    boxes.append((x0, y0, size))
                    break
            else:
                break
        if len(boxes) == n:
            return boxes
    return None


def _grid_boxes(rng: np.random.Generator, n: int, image_size: int) -> list[tuple[int, int, int]]:
    """Fallback layout that always succeeds: n random cells of a 3x3 grid, size 7, jittered."""
    cell = image_size // 3
    cells = rng.permutation(9)[:n]
    boxes = []
    for c in cells:
        size = MIN_SIZE
        jitter = cell - size - GAP
        x0 = (int(c) % 3) * cell + int(rng.integers(0, jitter + 1))
        y0 = (int(c) // 3) * cell + int(rng.integers(0, jitter + 1))
        boxes.append((x0, y0, size))
    return boxes


def layout_objects(
    rng: np.random.Generator, classes: list[tuple[str, str]], image_size: int = IMAGE_SIZE
) -> list[SceneObject]:
    """Place one object of each listed (colour, shape) class at random, non-overlapping positions."""
    n = len(classes)
    if not 1 <= n <= MAX_OBJECTS:
        raise ValueError(f"a scene holds 1 to {MAX_OBJECTS} objects; got {n}")
    boxes = _place_boxes(rng, n, image_size) or _grid_boxes(rng, n, image_size)
    return [
        SceneObject(colour, shape, x0 + size / 2.0, y0 + size / 2.0, size)
        for (colour, shape), (x0, y0, size) in zip(classes, boxes, strict=True)
    ]


def sample_spec(rng: np.random.Generator, max_total: int = MAX_OBJECTS) -> Spec:
    """A random prompt-like count spec: one or two (colour, shape) classes, total count 1..max_total.

    With two classes each gets >= 1 object (so the total is >= 2). Keys are in CLASSES order.
    """
    two = bool(rng.random() < 0.5)
    if two:
        i, j = sorted(int(k) for k in rng.choice(len(CLASSES), size=2, replace=False))
        total = int(rng.integers(2, max_total + 1))
        first = int(rng.integers(1, total))
        return {CLASSES[i]: first, CLASSES[j]: total - first}
    k = int(rng.integers(len(CLASSES)))
    return {CLASSES[k]: int(rng.integers(1, max_total + 1))}


def spec_to_vector(spec: Spec) -> torch.Tensor:
    """Count vector float32 [12] in CLASSES order (classes absent from the spec count 0)."""
    v = torch.zeros(len(CLASSES), dtype=torch.float32)
    for cls, count in spec.items():
        v[CLASS_INDEX[tuple(cls)]] = float(count)
    return v


def target_vector(target: Spec | torch.Tensor) -> torch.Tensor:
    """A spec or a count vector as a float64 [12] target (what the count rewards compare against)."""
    if isinstance(target, dict):
        return spec_to_vector(target).to(torch.float64)
    return torch.as_tensor(target, dtype=torch.float64).reshape(-1)


def vector_to_spec(v: torch.Tensor) -> Spec:
    """Inverse of spec_to_vector: the non-zero (rounded) counts."""
    counts = [round(float(x)) for x in torch.as_tensor(v).reshape(-1)]
    return {cls: c for cls, c in zip(CLASSES, counts, strict=True) if c > 0}


def render_spec(rng: np.random.Generator, spec: Spec, image_size: int = IMAGE_SIZE) -> tuple[np.ndarray, list]:
    """Render a scene holding exactly the objects of `spec`, in random order and positions.

    Returns (image float32 [3, H, W] in [0, 1], objects [(colour, shape, cx, cy, size)]).
    """
    classes = [tuple(cls) for cls, count in spec.items() for _ in range(int(count))]
    classes = [classes[i] for i in rng.permutation(len(classes))]
    objects = layout_objects(rng, classes, image_size)
    return render(objects, image_size), [o.as_tuple() for o in objects]


def random_scene(seed: int | np.random.Generator, image_size: int = IMAGE_SIZE) -> tuple[np.ndarray, list]:
    """A scene with 1-6 objects of independent random classes.

    Returns (image float32 [3, H, W] in [0, 1], objects [(colour, shape, cx, cy, size)]).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = int(rng.integers(1, MAX_OBJECTS + 1))
    classes = [CLASSES[int(k)] for k in rng.integers(len(CLASSES), size=n)]
    objects = layout_objects(rng, classes, image_size)
    return render(objects, image_size), [o.as_tuple() for o in objects]


def objects_to_spec(objects: list) -> Spec:
    """Count the objects of a scene per (colour, shape) class."""
    spec: Spec = {}
    for colour, shape, *_ in objects:
        spec[(colour, shape)] = spec.get((colour, shape), 0) + 1
    return spec


def sample_batch(rng: np.random.Generator, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A training batch: (x0 float32 [B, 3, 32, 32] in [-1, 1], count vectors float32 [B, 12])."""
    images, conds = [], []
    for _ in range(batch):
        spec = sample_spec(rng)
        image, _ = render_spec(rng, spec)
        images.append(image)
        conds.append(spec_to_vector(spec))
    return to_model(np.stack(images)), torch.stack(conds)


def to_model(images01: np.ndarray | torch.Tensor) -> torch.Tensor:
    """[0, 1] images ([..., 3, H, W]) -> float32 model space [-1, 1]."""
    return torch.as_tensor(np.asarray(images01), dtype=torch.float32) * 2.0 - 1.0


def to_uint8(images: torch.Tensor | np.ndarray, model_space: bool = True) -> np.ndarray:
    """[B, 3, H, W] or [3, H, W] images -> uint8 [B, H, W, 3] or [H, W, 3].

    model_space=True reads [-1, 1] values, otherwise [0, 1].
    """
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    x = x.detach().to("cpu", torch.float32)
    if model_space:
        x = (x + 1.0) / 2.0
    x = (x.clamp(0, 1) * 255.0).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    """uint8 [B, H, W, 3] or [H, W, 3] -> float32 [B, 3, H, W] or [3, H, W] in [-1, 1]."""
    x = torch.as_tensor(np.asarray(images)).to(torch.float32) / 255.0
    return x.movedim(-1, -3) * 2.0 - 1.0
