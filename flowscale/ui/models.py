"""What the app offers per model, with no gradio: availability (never raises), rewards, defaults, prompts.

The facts come from the worlds themselves (DEFAULTS, REWARDS, DEFAULT_PROMPT, an optional
`availability(model)`); this module only asks and caches successes.
"""

from __future__ import annotations

import functools
from typing import Any

from flowscale.catalog import MODEL_NAMES, WORLD_GROUPS, world_group
from flowscale.config import ConfigError, RunConfig
from flowscale.worlds import world_module

TOY2D_REWARDS = ("point:-2,2", "point:2,-2", "point:0,3", "point:3,0", "region:-3,1,-1,3", "region:1,-3,3,-1", "logp")
TOY2D_HELDOUT = ("logp", "none", "point:-2,2", "point:2,2")
TOY2D_REWARD_INFO = "point:X,Y · region:X0,Y0,X1,Y1 · logp"
TOY2D_STEPS = 25  # the app's 2-D start: fewer steps than the world's default keep the picture readable
IMAGE_NFE = 100  # a CPU-friendly first budget for image worlds; the slider goes higher
# Method settings the app starts a world with, chosen by measurement (docs/results/bench_rbf_batch_*.json):
# on the 40 Shapes bench prompts RBF with rbf.batch=8 counted as well as one-at-a-time draws (accuracy 0.675
# at 100 NFE, 0.725 at 500, the same as batch 1) in 1.83 s instead of 4.62 s at 500 NFE. In the 2-D world the
# app keeps the paper's draw: there batch 8 was worse at 100 NFE (-8.34 against -6.35) though better at 500.
WORLD_SETTINGS = {"shapes": {"rbf.batch": 8}}
APP_DEFAULTS = {"model": "toy2d", "method": "rbf", "process": "vp-sde", "nfe": 200, "seed": 0}  # the first run


def model_status(model: str) -> str | None:
    """None if the model can run here; otherwise a one-line reason (never raises).

    A world module may define `availability(model) -> str | None`. Without one: the 2-D world only needs
    to import; a small world (shapes) is built once with its defaults; a text-to-image model is looked
    up in the local Hugging Face cache and on the hub, without loading any weights.
    """
    try:
        _probe(model)
    except ConfigError as exc:
        return str(exc).split(": ", 1)[-1]
    except Exception as exc:  # noqa: BLE001 - a half-built or broken world must not take the app down
        return f"{type(exc).__name__}: {exc}"
    return None


@functools.cache
def _probe(model: str) -> bool:
    """Raises when the model cannot run. Only successes are cached (functools.cache keeps no exceptions), so a
    model whose weights appear later becomes available without a restart."""
    module = world_module(model)
    check = getattr(module, "availability", None)
    if callable(check):
        reason = check(model)
        if reason:
            raise ConfigError("model", reason)
    elif model == "shapes":  # small: build it (the held-out reward is checked when a run asks for it)
        module.build_world(RunConfig(model=model, heldout="none"))
    elif model in getattr(module, "MODELS", {}):
        _check_hub_weights(model)
    return True


def _check_hub_weights(model: str) -> None:
    """Text-to-image weights: in the local Hugging Face cache, or downloadable from a reachable hub."""
    from huggingface_hub import try_to_load_from_cache

    from flowscale import hub
    from flowscale.worlds.t2i.availability import HUB_IDS, check_local_folder, host_folders

    folder = host_folders().get(model)
    if folder is not None:  # the host serves this model from its own folder
        check_local_folder(model, folder)
        return
    repo = HUB_IDS[model]
    try:
        cached = try_to_load_from_cache(repo, "model_index.json")
    except Exception:  # noqa: BLE001 - an unusual cache layout: ask the hub instead
        cached = None
    if isinstance(cached, str):
        return
    if hub.hub_offline():
        raise ConfigError("model", f"{repo} is not in the local Hugging Face cache and the hub is switched off")
    if not hub.network_reachable():
        raise ConfigError("model", f"{repo} is not in the local Hugging Face cache and the hub cannot be reached")


def status_markdown(model: str, limit: int = 260) -> str:
    """Whether the model can run here, and why not; a world with several models lists them all."""
    lines = []
    names = WORLD_GROUPS[world_group(model)]
    for name in names if model in names else (model,):
        reason = model_status(name)
        shown = f"**{name}**" if name == model else name
        if reason is None:
            lines.append(f"✓ {shown} is available.")
        else:
            if len(reason) > limit:
                reason = reason[:limit].rsplit(" ", 1)[0] + " …"
            lines.append(f"⚠ {shown} is not available here: {reason}")
    note = getattr(world_module(model), "hardware_note", None)
    if callable(note) and note(model):
        lines.append(note(model))
    return "  \n".join(lines)


def available_models() -> list[str]:
    """The models that can run here (what a visitor may pick)."""
    return [m for m in MODEL_NAMES if model_status(m) is None]


def model_settings(model: str) -> Any:
    """The model's defaults (steps, nfe, reward, heldout) when its world can be imported, else None."""
    try:
        module = world_module(model)
    except Exception:  # noqa: BLE001 - a world that cannot be imported has no defaults
        return None
    return getattr(module, "DEFAULTS", None) or getattr(module, "MODELS", {}).get(model)


def default_prompt(model: str) -> str | None:
    """The prompt a model's world uses when none is given (image worlds), else None."""
    try:
        return getattr(world_module(model), "DEFAULT_PROMPT", None)
    except Exception:  # noqa: BLE001 - a world that cannot be imported has no defaults
        return None


def world_rewards(model: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Given and held-out reward specs offered in the dropdowns (free text is accepted as well)."""
    if model == "toy2d":
        return TOY2D_REWARDS, TOY2D_HELDOUT
    try:
        module = world_module(model)
        names = getattr(module, "REWARD_SPECS", None) or getattr(module, "REWARDS", None)
        if names is None:
            from flowscale.rewards import REWARD_NAMES as names
    except Exception:  # noqa: BLE001 - a world that cannot be imported has no defaults
        return (), ("none",)
    names = tuple(names)
    defaults = model_settings(model)
    given = _first(getattr(defaults, "reward", None), names)
    held = _first(getattr(defaults, "heldout", None), names)
    return given, (*held, "none")


def _first(value: str | None, names: tuple[str, ...]) -> tuple[str, ...]:
    return names if not value else (value, *(n for n in names if n != value))


def fits(model: str, spec: str | None, offered: tuple[str, ...]) -> bool:
    """Whether a reward spec could belong to this model's world (the world itself checks it fully)."""
    if not spec or spec in offered or spec == "none":
        return bool(spec)
    if model == "toy2d":
        return spec == "logp" or spec.startswith(("point:", "region:"))
    return not offered  # free text only where the world offers no list


def start_values(model: str) -> dict[str, Any]:
    """Steps, budget, rewards and prompt a newly picked model starts with."""
    given, held = world_rewards(model)
    out: dict[str, Any] = {"reward": given[0] if given else "", "heldout": held[0], "prompt": default_prompt(model),
                           "rbf.batch": WORLD_SETTINGS.get(model, {}).get("rbf.batch", 1)}
    defaults = model_settings(model)
    if model == "toy2d":
        out.update(steps=TOY2D_STEPS, nfe=APP_DEFAULTS["nfe"])
    elif defaults is not None:
        out.update(steps=defaults.steps, nfe=min(defaults.nfe, IMAGE_NFE))
    return out
