"""PickScore (Kirstain et al. 2023): a CLIP ViT-H/14 fine-tuned on Pick-a-Pic preferences (ecosystem.md 4.5).

score = logit_scale.exp() * cos(image embedding, text embedding), about 18-23 for real images.
Model yuvalkirstain/PickScore_v1 (env FLOWSCALE_PICKSCORE_PATH), processor
laion/CLIP-ViT-H-14-laion2B-s32B-b79K (env FLOWSCALE_PICKSCORE_PROCESSOR).
"""

from __future__ import annotations

import torch

from flowscale.rewards.clip import ClipScorer
from flowscale.rewards.common import cached, location, reward_dtype

PICKSCORE_ID = "yuvalkirstain/PickScore_v1"
PROCESSOR_ID = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
MODEL_ENV = "FLOWSCALE_PICKSCORE_PATH"
PROCESSOR_ENV = "FLOWSCALE_PICKSCORE_PROCESSOR"


class PickScorer(ClipScorer):
    def __init__(self, model_path: str = PICKSCORE_ID, processor_path: str = PROCESSOR_ID,
                 device: str | torch.device | None = None, field: str = "reward") -> None:
        super().__init__(model_path, processor_path, device, scale="logit", field=field, env=MODEL_ENV)


def pick_scorer(device: torch.device, field: str = "reward") -> PickScorer:
    model, processor = location(MODEL_ENV, PICKSCORE_ID), location(PROCESSOR_ENV, PROCESSOR_ID)
    key = ("pickscore", model, processor, str(device), str(reward_dtype(device)))
    return cached(key, lambda: PickScorer(model, processor, device, field))
