"""Held-out counting verifier of the Shapes world: a small CNN that predicts the 12 class counts.

It is computed differently from the deterministic detector (detector.py) on purpose: it is a learned
model, trained (`python -m flowscale.train verifier`) on procedural scenes with random corruption
(Gaussian blur, pixel noise, colour/contrast jitter, sub-pixel shifts), and it counts by density
regression: a fully convolutional net maps the image to 12 density maps (16x16, one per class) trained
to put unit mass at every object centre; a class count is the number of peaks (3x3 local maxima above 0.5) of its map (or, with
count_method "sum", the rounded map sum / blob mass). It is the held-out metric next to the detector reward used by
the search, so that a search that games the detector shows up as a gap between the two.

Held-out reward: -sum_c (target_c - predicted_c)^2 with predicted_c the peak count of class c in [0, 6]; accuracy = 1 where
it is 0. Inputs are decoded images [B, 3, H, W] in [0, 1]; outputs float64 [B].
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from flowscale.models import graph_mode
from flowscale.worlds.shapes.scenes import (
    CLASS_INDEX,
    CLASSES,
    MAX_OBJECTS,
    Spec,
    random_scene,
    render_spec,
    sample_spec,
    target_vector,
)

ASSETS = Path(__file__).resolve().parents[3] / "assets" / "shapes"
WEIGHTS_NAME = "verifier.safetensors"
CONFIG_NAME = "verifier.json"
DEFAULT_CONFIG: dict[str, Any] = {
    "width": 24,
    "n_classes": len(CLASSES),
    "max_count": MAX_OBJECTS,
    "count_method": "peaks",  # "peaks": local maxima above peak_threshold; "sum": rounded map sum / BLOB_MASS
    "peak_threshold": 0.5,
}
DENSITY_SIGMA = 1.0  # std (in 16x16 output pixels) of the Gaussian put at each object centre
BLOB_MASS = 2.0 * np.pi * DENSITY_SIGMA**2  # mass of one object's blob (its peak is then ~1)


class CountNet(nn.Module):
    """Fully convolutional density counter: images [B, 3, 32, 32] -> density maps [B, 12, 16, 16].

    Each object contributes a Gaussian blob of mass BLOB_MASS (peak ~1) at its centre in its class channel;
    counts are the map sums / BLOB_MASS.
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = {**DEFAULT_CONFIG, **(config or {})}
        w = self.config["width"]
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(w, w, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=2, dilation=2),
            nn.GELU(),
            nn.Conv2d(2 * w, self.config["n_classes"], 1),
        )

    def forward(self, images01: torch.Tensor) -> torch.Tensor:
        return self.net(images01 * 2.0 - 1.0)

    def counts(self, images01: torch.Tensor) -> torch.Tensor:
        """Counts [B, 12]: real-valued map sums / BLOB_MASS, or the number of peaks (count_method)."""
        maps = self.forward(images01)
        if self.config["count_method"] == "sum":
            return maps.sum(dim=(2, 3)) / BLOB_MASS
        # a peak is a 3x3 local maximum above the threshold (one object's blob peaks near 1)
        peaks = (maps == F.max_pool2d(maps, 3, stride=1, padding=1)) & (maps > self.config["peak_threshold"])
        return peaks.sum(dim=(2, 3)).to(maps.dtype)


class ShapesVerifier:
    """Inference wrapper: predicted counts and the held-out rewards."""

    def __init__(self, net: CountNet, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()

    @classmethod
    def from_pretrained(cls, folder: str | Path = ASSETS, device: str | torch.device = "cpu") -> ShapesVerifier:
        """Load verifier.json + verifier.safetensors from `folder` (default: the shipped assets/shapes)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(f"{folder} must hold {CONFIG_NAME} and {WEIGHTS_NAME}")
        config = json.loads((folder / CONFIG_NAME).read_text())
        net = CountNet({k: v for k, v in config.items() if k in DEFAULT_CONFIG})
        net.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
        return cls(net, device)

    def predict_counts(self, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Predicted counts float64 [B, 12], integers in [0, 6] (CLASSES order) of images [B, 3, H, W] in [0, 1]."""
        x = torch.as_tensor(images).to(self.device, torch.float32)
        out = []
        with torch.inference_mode():
            for lo in range(0, x.shape[0], batch):
                counts = self.net.counts(x[lo : lo + batch].clamp(0, 1))
                out.append(counts.round().clamp(0, self.net.config["max_count"]))
        return torch.cat(out).to("cpu", torch.float64)

    def soft_counts(self, images: torch.Tensor) -> torch.Tensor:
        """Real-valued counts float64 [B, 12]: each density map's sum / BLOB_MASS. Differentiable in the images
        (autograd flows through the net), so it can guide the SDE; the peak counts stay the held-out score."""
        x = torch.as_tensor(images).to(self.device, torch.float32).clamp(0, 1)
        with graph_mode(x):
            counts = self.net.forward(x).sum(dim=(2, 3)) / BLOB_MASS
        return counts.to("cpu", torch.float64)

    def soft_count_reward(self, images: torch.Tensor, target: Spec | torch.Tensor) -> torch.Tensor:
        """-sum_c (target_c - soft_count_c)^2, float64 [B]: a smooth stand-in for the count reward."""
        return -((self.soft_counts(images) - target_vector(target)) ** 2).sum(dim=1)

    def count_reward(self, images: torch.Tensor, target: Spec | torch.Tensor) -> torch.Tensor:
        """Held-out reward -sum_c (target_c - predicted_c)^2, float64 [B]."""
        return -((self.predict_counts(images) - target_vector(target)) ** 2).sum(dim=1)

    def count_accuracy(self, images: torch.Tensor, target: Spec | torch.Tensor) -> torch.Tensor:
        """1.0 where all 12 predicted counts equal the target, float64 [B]."""
        return (self.count_reward(images, target) == 0).to(torch.float64)


def corrupt(images01: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random mild corruption of a batch [B, 3, H, W] in [0, 1]: shift, blur, colour jitter, noise."""
    b = images01.shape[0]
    x = images01
    # Sub-pixel shift via bilinear resampling (dx, dy in [-0.5, 0.5] px).
    shift = (torch.rand(b, 2, generator=gen) - 0.5) / 16.0  # in normalised [-1, 1] coords: 1 px = 1/16
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # Gaussian blur with sigma in [0, 1.0] px (3x3 kernel per image).
    sigma = torch.rand(b, generator=gen) * 1.0 + 1e-3
    k1 = torch.exp(-torch.tensor([1.0, 0.0, 1.0])[None, :] / (2 * sigma[:, None] ** 2))
    k1 = k1 / k1.sum(dim=1, keepdim=True)
    kernel = k1[:, :, None] * k1[:, None, :]  # [B, 3, 3]
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    x = F.conv2d(xp.reshape(1, b * 3, *xp.shape[2:]), kernel.repeat_interleave(3, 0)[:, None], groups=b * 3)
    x = x.reshape(b, 3, *images01.shape[2:])
    # Colour / contrast jitter and an offset, then pixel noise.
    scale = 0.8 + 0.3 * torch.rand(b, 3, 1, 1, generator=gen)
    offset = 0.15 * (torch.rand(b, 3, 1, 1, generator=gen) - 0.5)
    x = x * scale + offset
    noise_std = 0.12 * torch.rand(b, 1, 1, 1, generator=gen)
    x = x + noise_std * torch.randn(x.shape, generator=gen)
    return x.clamp(0.0, 1.0)


def density_target(objects: list, size: int = 16, image_size: int = 32) -> torch.Tensor:
    """[12, size, size] map with a Gaussian of mass BLOB_MASS at each object centre in its class channel."""
    scale = size / image_size
    grid = np.arange(size) + 0.5
    target = np.zeros((len(CLASSES), size, size), dtype=np.float32)
    for colour, shape, cx, cy, _ in objects:
        gx = np.exp(-((grid - cx * scale) ** 2) / (2 * DENSITY_SIGMA**2))
        gy = np.exp(-((grid - cy * scale) ** 2) / (2 * DENSITY_SIGMA**2))
        blob = gy[:, None] * gx[None, :]
        target[CLASS_INDEX[(colour, shape)]] += blob / blob.sum() * BLOB_MASS
    return torch.from_numpy(target)


def sample_training_batch(rng: np.random.Generator, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clean scenes (half prompt-like specs, half fully random scenes), counts [B, 12], densities [B, 12, 16, 16]."""
    images, counts, densities = [], [], []
    for i in range(batch):
        if i % 2 == 0:
            spec = sample_spec(rng)
            image, objects = render_spec(rng, spec)
        else:
            image, objects = random_scene(rng)
        v = torch.zeros(len(CLASSES))
        for colour, shape, *_ in objects:
            v[CLASS_INDEX[(colour, shape)]] += 1
        images.append(image)
        counts.append(v)
        densities.append(density_target(objects))
    return torch.as_tensor(np.stack(images)), torch.stack(counts), torch.stack(densities)


def clean_accuracy(verifier: ShapesVerifier, n: int = 1000, seed: int = 12345) -> float:
    """Exact-count accuracy (all 12 counts right) on n clean random scenes."""
    rng = np.random.default_rng(seed)
    images, counts, _ = sample_training_batch(rng, n)
    return float((verifier.predict_counts(images) == counts.double()).all(dim=1).double().mean())


def train_verifier(args: argparse.Namespace) -> None:
    """Train CountNet (density MSE + count L1) on corrupted procedural scenes; export to assets/shapes/."""
    from safetensors.torch import save_file
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed + 1)
    gen = torch.Generator().manual_seed(args.seed + 1)
    torch.manual_seed(args.seed + 1)  # parameter init only
    net = CountNet()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    start = time.time()
    loss_avg = None
    for step in tqdm(range(args.steps), mininterval=20, desc="verifier"):
        images, counts, density = sample_training_batch(rng, args.batch)
        pred = net(corrupt(images, gen))
        # dense squared error per image on the maps + a small squared error on the counts
        dense = ((pred - density) ** 2).sum(dim=(1, 2, 3)).mean()
        count_err = ((pred.sum(dim=(2, 3)) / BLOB_MASS - counts) ** 2).sum(dim=1).mean()
        loss = dense + 0.1 * count_err
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        if (step + 1) % args.log_every == 0:
            print(f"step {step + 1} loss {loss_avg:.4f} elapsed {(time.time() - start) / 60:.1f} min", flush=True)
    net.eval()
    verifier = ShapesVerifier(net)
    acc = clean_accuracy(verifier)
    export = Path(args.export) if args.export else ASSETS
    export.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(export / WEIGHTS_NAME))
    config = {
        **net.config,
        "model": "shapes-verifier",
        "training": {
            "steps": args.steps,
            "batch": args.batch,
            "lr": args.lr,
            "seed": args.seed,
            "wall_time_s": round(time.time() - start, 1),
            "final_loss_ema": loss_avg,
            "parameters": sum(p.numel() for p in net.parameters()),
            "clean_exact_count_accuracy_1000": acc,
        },
    }
    (export / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    print(f"done: clean exact-count accuracy {acc:.3f}; exported to {export}", flush=True)
