"""Named recipes: a whole setting in one word (`--paper`, RunConfig.recipe = "paper").

"paper" (and "paper-count") is the released code's setting (KAIST-Visual-AI-Group/Flow-Inference-Time-Scaling at b65bb07,
method.md): for FLUX.1-schnell 1024^2, 10 steps on the exp grid in the VP process's time, no shift, micro-
batches of 5, no guidance, a T5 length of 512 and bf16 latents, noise and times (state_dtype); for the methods RBF's released variant (best of 25
initial particles per chain), SMC's lambda from its yaml (0.5) and SoP's 10 Euler steps per solve; the
given reward of its two yaml files: "paper" the compositional task's VQAScore, "paper-count" the
quantity-aware task's Grounding-DINO count. A recipe
fills only what the config leaves unset, so explicit flags win, and the filled values are the config's own:
the record lists every value the recipe chose, and a replay applies nothing new.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flowscale.config import ConfigError, RunConfig

RECIPES = ("paper", "paper-count")  # the two released yaml files: compositional (VQAScore), quantity-aware (count)
# The given reward of each yaml for FLUX.1-schnell, filled only when a run names none: compositional_image/rbf.yaml
# scores with VQAScore (a separate server, FLOWSCALE_VQASCORE_URL), quantity_aware/rbf.yaml with the
# Grounding-DINO count (-RSS). The SMC lambda 0.5 is the compositional yaml's; the quantity yaml names none.
PAPER_REWARDS = {"paper": "vqascore", "paper-count": "count"}
PAPER_MODELS: dict[str, dict[str, Any]] = {
    "flux-schnell": {"height": 1024, "width": 1024, "steps": 10, "grid": "exp", "grid_space": "process",
                     "shift": 1.0, "max_batch": 5, "state_dtype": "bfloat16"},
}
PAPER_MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "flux-schnell": {"t2i.max_sequence_length": 512},  # (schnell has no guidance to switch off)
}
PAPER_METHOD_PARAMS: dict[str, dict[str, Any]] = {
    "rbf": {"rbf.variant": "code", "rbf.init_particles": 25},
    "smc": {"smc.lam": 0.5},
    "sop": {"sop.solve_steps": 10},
}


def apply_recipe(cfg: RunConfig) -> RunConfig:
    """The config with its recipe's values filled in where it leaves them unset (None recipe: unchanged)."""
    if cfg.recipe is None:
        return cfg
    if cfg.recipe not in RECIPES:
        raise ConfigError("recipe", f"must be one of {', '.join(RECIPES)}; got {cfg.recipe!r}")
    model_fields = {**PAPER_MODELS.get(cfg.model, {})}
    if cfg.model in PAPER_MODELS:
        model_fields["reward"] = PAPER_REWARDS[cfg.recipe]
    fields = {k: v for k, v in model_fields.items() if getattr(cfg, k) is None}
    params = {**PAPER_MODEL_PARAMS.get(cfg.model, {}), **PAPER_METHOD_PARAMS.get(cfg.method, {}), **cfg.params}
    return dataclasses.replace(cfg, **fields, params=params)
