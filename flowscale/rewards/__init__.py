"""Image rewards for the text-to-image worlds, as engine `Reward`s built from spec strings.

Specs (all take decoded images [B, 3, H, W] in [0, 1] and give float64 [B], larger is better):
    clip                  100 * cos(CLIP image, prompt) with openai/clip-vit-large-patch14   (clip.py)
    aesthetic             LAION aesthetic predictor v2 (head weights from FLOWSCALE_AESTHETIC_HEAD) (aesthetic.py)
    pickscore             PickScore_v1: logit_scale * cos                                     (pickscore.py)
    count | count:N=K,..  -sum (target - detected)^2 with Grounding DINO; accuracy and counts   (grounding_counting.py)
    brightness            mean luminance (weight-free)               (flowscale.worlds.shapes.image_rewards)
    jpeg-compressibility  -(JPEG kB at quality 95) (weight-free)     (flowscale.worlds.shapes.image_rewards)
    vqascore              P("Yes") from a separate VQAScore server (FLOWSCALE_VQASCORE_URL)   (vqascore_client.py)
Heavy imports happen only when a reward is made; models load once and are shared (common.cached).
"""

from __future__ import annotations

import torch

from flowscale.config import ConfigError
from flowscale.worlds.base import Reward

REWARD_NAMES = ("clip", "aesthetic", "pickscore", "count", "brightness", "jpeg-compressibility", "vqascore")
DIFFERENTIABLE = ("clip", "aesthetic", "brightness")  # rewards that can guide the SDE (dps)


def check_reward_spec(spec: str, field: str = "reward") -> None:
    """Name check only (no weights): ConfigError(field) for an unknown spec."""
    name = spec.partition(":")[0] if isinstance(spec, str) else None
    if name not in REWARD_NAMES or (name != "count" and ":" in spec):
        raise ConfigError(field, f"must be one of {', '.join(REWARD_NAMES)} (or count:NAME=N,...); got {spec!r}")


def make_image_reward(spec: str, prompt: str | None, device: str | torch.device | None = None,
                      field: str = "reward") -> Reward:
    """The Reward of a spec string for a prompt; missing weights or servers raise ConfigError(field)."""
    from flowscale.rewards.common import resolve_device

    check_reward_spec(spec, field)
    dev = resolve_device(device)
    name = spec.partition(":")[0]
    if name in ("brightness", "jpeg-compressibility"):
        from flowscale.worlds.shapes.image_rewards import brightness, jpeg_compressibility

        return Reward(spec, brightness if name == "brightness" else jpeg_compressibility,
                      differentiable=name == "brightness")
    if name in ("clip", "pickscore", "vqascore") and not prompt:
        raise ConfigError(field, f"{name} scores images against a prompt; give --prompt")
    if name == "clip":
        from flowscale.rewards.clip import clip_scorer

        clip = clip_scorer(dev, field)
        return Reward(spec, lambda images: clip.score(images, prompt), differentiable=True)
    if name == "pickscore":
        from flowscale.rewards.pickscore import pick_scorer

        pick = pick_scorer(dev, field)
        return Reward(spec, lambda images: pick.score(images, prompt))
    if name == "aesthetic":
        from flowscale.rewards.aesthetic import aesthetic_scorer

        return Reward(spec, aesthetic_scorer(dev, field).score, differentiable=True)
    if name == "vqascore":
        from flowscale.rewards.vqascore_client import vqascore_client

        vqa = vqascore_client(field)
        return Reward(spec, lambda images: vqa.score(images, prompt))
    from flowscale.rewards.grounding_counting import check_targets, count_reward_fns, grounding_counter

    targets = check_targets(spec, prompt, field)
    reward, accuracy, details = count_reward_fns(grounding_counter(dev, field), targets)
    return Reward(spec, reward, accuracy_fn=accuracy, details_fn=details)


__all__ = ["DIFFERENTIABLE", "REWARD_NAMES", "check_reward_spec", "make_image_reward"]
