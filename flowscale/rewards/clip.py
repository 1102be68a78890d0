"""CLIP score: 100 * cos(image embedding, text embedding) with openai/clip-vit-large-patch14 (ecosystem.md 4.1).

We do NOT clip at 0 (torchmetrics' CLIPScore does): for search, a ranking signal below 0 is still a signal.
Real images score about 15-35. Embeddings are the projected `pooler_output` of get_image_features /
get_text_features (transformers 5 returns a ModelOutput, not a tensor).

The same class with `scale="logit"` is PickScore's scorer: logit_scale.exp() * cos (pickscore.py).
Weights: FLOWSCALE_CLIP_PATH (a local folder, or another hub id), default the hub id.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from flowscale.models import graph_mode
from flowscale.rewards.common import batched, cached, clip_pixels, load_hf, location, resolve_device, reward_dtype

CLIP_ID = "openai/clip-vit-large-patch14"
CLIP_ENV = "FLOWSCALE_CLIP_PATH"


class ClipScorer:
    """Text-image similarity of a CLIPModel.

    Args:
        model_path: folder or hub id of a CLIPModel.
        processor_path: folder or hub id of its CLIPProcessor (default: model_path).
        scale: "cos100" (100 * cos, the CLIP score) or "logit" (logit_scale.exp() * cos, PickScore).
    """

    def __init__(self, model_path: str = CLIP_ID, processor_path: str | None = None,
                 device: str | torch.device | None = None, scale: str = "cos100", field: str = "reward",
                 env: str = CLIP_ENV, batch: int = 16) -> None:
        from transformers import CLIPModel, CLIPProcessor

        if scale not in ("cos100", "logit"):
            raise ValueError(f"scale must be cos100 or logit; got {scale!r}")
        self.device = resolve_device(device)
        self.dtype = reward_dtype(self.device)
        self.model = load_hf(CLIPModel, model_path, field, "CLIP model", env).to(self.device, self.dtype).eval()
        self.model.requires_grad_(False)
        self.processor = load_hf(CLIPProcessor, processor_path or model_path, field, "CLIP processor", env)
        self.scale = scale
        self.batch = batch
        self._text: dict[str, torch.Tensor] = {}

    @torch.no_grad()  # not inference mode: a guided run saves this tensor for its backward pass
    def text_embedding(self, prompt: str) -> torch.Tensor:
        """L2-normalised text embedding [D] (cached per prompt)."""
        if prompt not in self._text:
            tok = self.processor.tokenizer([prompt], padding="max_length", truncation=True,
                                           max_length=self.model.config.text_config.max_position_embeddings,
                                           return_tensors="pt").to(self.device)
            out = self.model.get_text_features(input_ids=tok.input_ids, attention_mask=tok.attention_mask)
            emb = out.pooler_output if hasattr(out, "pooler_output") else out
            self._text[prompt] = F.normalize(emb.float(), dim=-1)[0]
        return self._text[prompt]

    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings [B, D] of images [B, 3, H, W] in [0, 1]; differentiable in images
        that carry a graph (reward guidance)."""
        outs = []
        with graph_mode(images):
            for chunk in batched(images, self.batch):
                px = clip_pixels(chunk, self.processor.image_processor, self.device, self.dtype)
                out = self.model.get_image_features(pixel_values=px)
                emb = out.pooler_output if hasattr(out, "pooler_output") else out
                outs.append(F.normalize(emb.float(), dim=-1))
        return torch.cat(outs)

    def score(self, images: torch.Tensor, prompt: str) -> torch.Tensor:
        """float64 [B] on the CPU."""
        cos = self.image_embeddings(images) @ self.text_embedding(prompt)
        factor = 100.0 if self.scale == "cos100" else float(self.model.logit_scale.detach().exp())
        return (factor * cos).to("cpu", torch.float64)


def clip_scorer(device: torch.device, field: str = "reward", model_path: str | None = None) -> ClipScorer:
    """The shared CLIP scorer (FLOWSCALE_CLIP_PATH or the hub id) on `device`."""
    where = model_path or location(CLIP_ENV, CLIP_ID)
    key = ("clip", where, str(device), str(reward_dtype(device)))
    return cached(key, lambda: ClipScorer(where, device=device, field=field))
