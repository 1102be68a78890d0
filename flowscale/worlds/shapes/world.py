"""Run-config entry point of the Shapes world: our own conditional image flow model on procedural scenes.

The model, the detector and the held-out verifier live beside this file; this module turns a run
config (prompt, rewards, model folder) into a World. The shipped weights in assets/shapes load through
`ShapesFlowModel.from_pretrained`, the same path a user's own checkpoint (--model-path DIR) takes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from flowscale.config import ConfigError, Limits, RunConfig
from flowscale.cost_model import CostModel
from flowscale.worlds.base import Reward, World, WorldDefaults
from flowscale.worlds.shapes import detector, image_rewards
from flowscale.worlds.shapes.model import ShapesFlowModel
from flowscale.worlds.shapes.prompts import parse_prompt, prompt_to_vector, vocabulary
from flowscale.worlds.shapes.verifier import ShapesVerifier

T = TypeVar("T")
ASSETS = Path(__file__).resolve().parents[3] / "assets" / "shapes"
DEFAULT_PROMPT = "3 red circles and 2 blue squares"
REWARDS = ("count", "compose", "verifier", "soft-count", "brightness", "jpeg-compressibility")
DIFFERENTIABLE = ("soft-count", "brightness")  # rewards that can guide the SDE (dps)
LIMITS = Limits(max_nfe=5000, max_particles=1024, max_steps=200)
UNUSED = ("preset", "mixture", "height", "width")
# Measured on the 2-core machine, one thread: 13 ms per evaluation batch plus 2.4 ms per image-NFE
# (batch 2: 18 ms a call; batch 32: 89 ms); times 1.5 for a shared server.
COST = CostModel(sec_per_call=0.020, sec_per_nfe=0.0036)  # the scenes are 32 x 32; mixtures are the 2-D world's
DEFAULTS = WorldDefaults(
    steps=20,
    grid="uniform",
    grid_space="process",  # uniform in the process's own time: measured better for VP-SDE than mapped linear
    nfe=500,
    particles=8,
    reward="count",
    heldout="verifier",
    max_batch=256,
)

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str], object] = {}  # read-only once loaded: one copy per folder, shared by all runs


def _cached(kind: str, folder: str | Path, loader: Callable[[str], T], field: str) -> T:
    key = (kind, str(Path(folder).resolve()))
    with _LOCK:
        if key not in _LOADED:
            try:
                _LOADED[key] = loader(key[1])
            except (FileNotFoundError, OSError, RuntimeError, KeyError, ValueError) as exc:
                raise ConfigError(field, f"cannot load the shapes {kind} from {folder}: {exc}") from None
        return _LOADED[key]  # type: ignore[return-value]


def load_model(folder: str | Path) -> ShapesFlowModel:
    return _cached("model", folder, ShapesFlowModel.from_pretrained, "model_path")


def load_verifier(folder: str | Path = ASSETS) -> ShapesVerifier:
    return _cached("verifier", folder, ShapesVerifier.from_pretrained, "heldout")


def make_reward(spec: str, target: torch.Tensor) -> Reward:
    """A reward of the Shapes world for the prompt's target count vector."""
    def exact(im: torch.Tensor) -> torch.Tensor:  # the detector's exact count: the accuracy of every counting reward
        return detector.count_accuracy(im, target)

    if spec in ("count", "compose"):
        score = detector.count_reward if spec == "count" else detector.compose_reward
        return Reward(spec, lambda im: score(im, target), accuracy_fn=exact, details_fn=detector.count_details)
    if spec == "verifier":
        verifier = load_verifier()
        return Reward("verifier", lambda im: verifier.count_reward(im, target),
                      accuracy_fn=lambda im: verifier.count_accuracy(im, target))
    if spec == "soft-count":
        # The verifier's density maps summed (smooth in the image): a reward DPS can follow, judged by the
        # detector's exact count, a different counter.
        soft = load_verifier()
        return Reward("soft-count", lambda im: soft.soft_count_reward(im, target), accuracy_fn=exact,
                      details_fn=detector.count_details, differentiable=True)
    if spec == "brightness":
        return Reward("brightness", image_rewards.brightness, differentiable=True)
    if spec == "jpeg-compressibility":
        return Reward("jpeg-compressibility", image_rewards.jpeg_compressibility)
    raise ValueError(f"must be one of {', '.join(REWARDS)}; got {spec!r}")


def _projection(dim: int) -> torch.Tensor:
    # A fixed random 2-D projection of the flattened image, the same for every run (for trajectory plots).
    g = torch.Generator().manual_seed(0)
    return torch.randn(dim, 2, generator=g, dtype=torch.float64) / dim**0.5


def thumbnails(images: torch.Tensor) -> np.ndarray:
    """uint8 [B, H, W, 3] previews of decoded images in [0, 1]."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def save_outputs(decoded: torch.Tensor, out_dir: str) -> list[str]:
    """result.png (the returned sample, upscaled 4x with nearest neighbours) and grid.png (all returned)."""
    from PIL import Image

    out = Path(out_dir)
    pics = thumbnails(decoded)
    first = Image.fromarray(pics[0]).resize((pics.shape[2] * 4, pics.shape[1] * 4), Image.NEAREST)
    first.save(out / "result.png")
    cols = min(8, len(pics))
    rows = (len(pics) + cols - 1) // cols
    h, w = pics.shape[1:3]
    grid = np.full((rows * (h + 2), cols * (w + 2), 3), 255, dtype=np.uint8)
    for i, p in enumerate(pics):
        r, c = divmod(i, cols)
        grid[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = p
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(out / "grid.png")
    return [str(out / "result.png"), str(out / "grid.png")]


def build_world(cfg: RunConfig) -> World:
    if cfg.preset is not None or cfg.mixture is not None:
        raise ConfigError("preset" if cfg.preset is not None else "mixture", "applies to toy2d only")
    prompt = cfg.prompt if cfg.prompt is not None else DEFAULT_PROMPT
    try:
        spec = parse_prompt(prompt)
    except ValueError as exc:
        raise ConfigError("prompt", str(exc)) from None
    target = prompt_to_vector(prompt).to(torch.float64)
    model = load_model(cfg.model_path or ASSETS)
    rewards = {}
    for name, value in (("reward", cfg.reward or DEFAULTS.reward), ("heldout", cfg.heldout or DEFAULTS.heldout)):
        if value == "none" and name == "heldout":
            rewards[name] = None
            continue
        try:
            rewards[name] = make_reward(value, target)
        except ValueError as exc:
            raise ConfigError(name, str(exc)) from None
    projection = _projection(int(np.prod(model.sample_shape)))
    return World(
        name="shapes",
        model=model,
        cond=target.to(torch.float32),
        reward=rewards["reward"],
        heldout=rewards["heldout"],
        decode=ShapesFlowModel.decode,
        project=lambda x: x.reshape(x.shape[0], -1).to(torch.float64) @ projection,
        defaults=DEFAULTS,
        info={
            "prompt": prompt,
            "target": {f"{c} {s}": n for (c, s), n in spec.items()},
            "model_path": str(cfg.model_path or "assets/shapes"),
            "vocabulary": vocabulary(),
        },
        save_outputs=save_outputs,
        previews=thumbnails,
    )
