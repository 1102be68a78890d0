"""LAION aesthetic predictor v2 (improved-aesthetic-predictor; method.md e, ecosystem.md 4.3).

score = MLP(normalize(CLIP ViT-L/14 image embedding)), MLP = Linear(768,1024) Dropout Linear(1024,128) Dropout
Linear(128,64) Dropout Linear(64,16) Linear(16,1), no activations; about 1-10 ("sac+logos+ava1-l14-linearMSE").

The head weights are not on the hub under a stable id; get `sac+logos+ava1-l14-linearMSE.pth` (3.7 MB) from
github.com/christophschuhmann/improved-aesthetic-predictor and convert it once to safetensors:

    python -m flowscale.rewards.aesthetic sac+logos+ava1-l14-linearMSE.pth aesthetic_head.safetensors
    export FLOWSCALE_AESTHETIC_HEAD=$PWD/aesthetic_head.safetensors

(a .pth is also accepted directly; it is read with torch.load(weights_only=True)). The CLIP image tower
comes from FLOWSCALE_CLIP_PATH or openai/clip-vit-large-patch14.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from flowscale.config import ConfigError
from flowscale.models import graph_mode
from flowscale.rewards.clip import CLIP_ENV, CLIP_ID
from flowscale.rewards.common import batched, cached, clip_pixels, load_hf, location, resolve_device, reward_dtype

HEAD_ENV = "FLOWSCALE_AESTHETIC_HEAD"
HEAD_KEYS = ("layers.0", "layers.2", "layers.4", "layers.6", "layers.7")


def load_head_state(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(str(path), map_location="cpu", weights_only=True)


def build_head(state: dict[str, torch.Tensor]) -> nn.Module:
    """The MLP with the original module indices (0, 2, 4, 6, 7), sized from the state dict."""
    shapes = [tuple(state[f"{k}.weight"].shape) for k in HEAD_KEYS]
    (h1, d), (h2, _), (h3, _), (h4, _), (out, _) = shapes
    head = nn.Module()
    head.layers = nn.Sequential(nn.Linear(d, h1), nn.Dropout(0.2), nn.Linear(h1, h2), nn.Dropout(0.2),
                                nn.Linear(h2, h3), nn.Dropout(0.1), nn.Linear(h3, h4), nn.Linear(h4, out))
    head.load_state_dict(state)
    return head.eval()


def convert_head(pth: str | Path, out: str | Path) -> None:
    """Convert the original .pth state dict to safetensors (the format FLOWSCALE_AESTHETIC_HEAD expects)."""
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in load_head_state(pth).items()}
    build_head(state)  # checks the keys and shapes
    save_file(state, str(out))


class _VisionTower:
    """CLIPVisionModelWithProjection from a full CLIPModel folder (or a vision-only one).

    The vision sub-config of a CLIPConfig does not always carry the top-level projection_dim, so it is
    copied over before loading (the text tower's weights are skipped).
    """

    @staticmethod
    def from_pretrained(location: str, **kwargs):
        from transformers import AutoConfig, CLIPVisionModelWithProjection

        config = AutoConfig.from_pretrained(location, **kwargs)
        if getattr(config, "vision_config", None) is not None:
            vision = config.vision_config
            vision.projection_dim = config.projection_dim
            config = vision
        return CLIPVisionModelWithProjection.from_pretrained(location, config=config, **kwargs)


class AestheticScorer:
    """CLIP vision tower (with projection) + the LAION MLP head."""

    def __init__(self, head_path: str, clip_path: str = CLIP_ID, device: str | torch.device | None = None,
                 field: str = "reward", batch: int = 16) -> None:
        from transformers import CLIPImageProcessor

        if not Path(head_path).is_file():
            raise ConfigError(field, f"aesthetic head weights not found: {head_path} (see {HEAD_ENV} in docs/t2i.md)")
        self.device = resolve_device(device)
        self.dtype = reward_dtype(self.device)
        try:
            head = build_head(load_head_state(head_path))
        except Exception as exc:  # wrong file: say so instead of a traceback
            raise ConfigError(field, f"cannot read aesthetic head {head_path}: {type(exc).__name__}: {exc}") from exc
        self.head = head.to(self.device, torch.float32).requires_grad_(False)
        self.vision = load_hf(_VisionTower, clip_path, field, "CLIP vision tower", CLIP_ENV)
        self.vision.to(self.device, self.dtype).eval().requires_grad_(False)
        self.processor = load_hf(CLIPImageProcessor, clip_path, field, "CLIP image processor", CLIP_ENV)
        dim = self.head.layers[0].in_features
        if self.vision.config.projection_dim != dim:
            raise ConfigError(field, f"aesthetic head takes {dim}-d embeddings but {clip_path} gives "
                              f"{self.vision.config.projection_dim}-d (use CLIP ViT-L/14)")
        self.batch = batch

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """float64 [B] on the CPU; differentiable in images that carry a graph (reward guidance)."""
        outs = []
        with graph_mode(images):
            for chunk in batched(images, self.batch):
                px = clip_pixels(chunk, self.processor, self.device, self.dtype)
                emb = F.normalize(self.vision(pixel_values=px).image_embeds.float(), dim=-1)
                outs.append(self.head.layers(emb)[:, 0])
        return torch.cat(outs).to("cpu", torch.float64)


def aesthetic_scorer(device: torch.device, field: str = "reward") -> AestheticScorer:
    head = os.environ.get(HEAD_ENV)
    if not head:
        raise ConfigError(field, f"the aesthetic reward needs the LAION head weights: set {HEAD_ENV} to a "
                          "safetensors (or .pth) file; see docs/t2i.md")
    clip = location(CLIP_ENV, CLIP_ID)
    key = ("aesthetic", head, clip, str(device), str(reward_dtype(device)))
    return cached(key, lambda: AestheticScorer(head, clip, device, field))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: python -m flowscale.rewards.aesthetic IN.pth OUT.safetensors", file=sys.stderr)
        sys.exit(2)
    convert_head(sys.argv[1], sys.argv[2])
    print(f"wrote {sys.argv[2]}")
