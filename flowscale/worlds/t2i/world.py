"""The text-to-image world: FLUX.1-schnell / FLUX.1-dev / SD3 / SD3.5 via diffusers (issue #5).

Samples live in the unpacked latent space [C, H/8, W/8] (float32 for the engine's arithmetic); `decode`
runs the real VAE (images [B, 3, H, W] in [0, 1]); rewards come from `flowscale.rewards`.

Per-model defaults (WorldDefaults):
* flux-schnell: the paper's setting (method.md a.7, b.2): 10 steps on the `exp` grid in process time,
  500 NFE, max batch 5, no shift (schnell's scheduler has shift 1 and no dynamic shifting), no guidance.
* flux-dev: 28 steps, uniform grid in linear time with FluxPipeline's dynamic resolution shift:
  mu = calculate_shift(image tokens) and shift = e^mu, because the engine's shift_times
  t' = s t / (1 + (s - 1) t) equals diffusers' exponential shift e^mu / (e^mu + 1/t - 1) at s = e^mu.
  Guidance embedding 3.5.
* sd3 / sd3.5: 28 steps, uniform grid in linear time with the scheduler's static shift (3.0),
  classifier-free guidance 7.0 (SD3-medium) / 3.5 (SD3.5-large), done inside one velocity call.
  Note: SD3's own pipeline spaces sigmas from 1 to ~0.003 before shifting; the engine's uniform grid
  ends its evaluations at t = shift(1/M) and returns the x0 prediction there.

World settings beyond RunConfig travel in `params` with the `t2i.` prefix (recorded, so records replay):
t2i.guidance_scale, t2i.max_sequence_length, t2i.offload (auto | none | text | model: the memory plan,
memory.py; auto picks the fastest that fits), t2i.preview_vae (an AutoencoderTiny folder for cheap latent
previews), t2i.negative_prompt (SD3). Env FLOWSCALE_CPU_OFFLOAD=1 means t2i.offload=model.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowscale.config import ConfigError, Limits, RunConfig, short
from flowscale.cost_model import CostModel
from flowscale.hub import default_device, default_dtype, env_flag
from flowscale.rewards import DIFFERENTIABLE as REWARD_DIFFERENTIABLE
from flowscale.worlds.base import Reward, World, WorldDefaults
from flowscale.worlds.t2i.adapters import (
    DiffusersFlowAdapter,
    FluxAdapter,
    RandomProjection,
    SD3Adapter,
    TinyPreviewDecoder,
    thumbnails,
)
from flowscale.worlds.t2i.availability import (
    FAMILIES,
    HUB_IDS,
    check_local_folder,
    load_pipeline,
    weights_location,
)
from flowscale.worlds.t2i.memory import (
    OFFLOAD,
    PUBLISHED_PARAMS,
    PUBLISHED_SHAPES,
    MemoryEstimate,
    Plan,
    choose_plan,
    estimate,
    folder_params,
    folder_shapes,
    free_memory,
)

LIMITS = Limits(max_nfe=2000, max_particles=64, max_steps=200, max_prompt_chars=300)
DEFAULT_SIZE = 1024
SIZE_MULTIPLE = 16  # FLUX packs 2x2 latents of an 8x VAE; SD3 has patch 2 on an 8x VAE
PREVIEW_SIZE = 64
DEFAULT_PROMPT = "a photo of three apples and a red book on a wooden table"  # what the app starts with


@dataclass(frozen=True)
class ModelSpec:
    """What differs between the text-to-image models."""

    steps: int
    grid: str
    grid_space: str
    guidance: float | None  # FLUX.1-dev: guidance embedding; SD3: CFG scale; schnell: None
    max_sequence_length: int
    max_batch: int
    nfe: int = 500
    particles: int = 4
    reward: str = "clip"
    heldout: str = "aesthetic"


MODELS: dict[str, ModelSpec] = {
    "flux-schnell": ModelSpec(steps=10, grid="exp", grid_space="process", guidance=None, max_sequence_length=256,
                              max_batch=5),
    "flux-dev": ModelSpec(steps=28, grid="uniform", grid_space="linear", guidance=3.5, max_sequence_length=512,
                          max_batch=5),
    "sd3": ModelSpec(steps=28, grid="uniform", grid_space="linear", guidance=7.0, max_sequence_length=256,
                     max_batch=4),
    "sd3.5": ModelSpec(steps=28, grid="uniform", grid_space="linear", guidance=3.5, max_sequence_length=256,
                       max_batch=4),
}
UNUSED = ("preset", "mixture")  # the 2-D world's settings
PARAM_PREFIXES = ("t2i",)  # the world's own settings in RunConfig.params
DIFFERENTIABLE = REWARD_DIFFERENTIABLE  # rewards that can guide the SDE (dps)
T2I_PARAMS = ("guidance_scale", "max_sequence_length", "offload", "preview_vae", "negative_prompt")

# Rough seconds per NFE of one 1024x1024 image on one H100 in bf16 (transformer + VAE decode + a CLIP-size
# reward): not yet measured (benchmarks/gpu_t2i_bench.py speed --random-weights measures them on a GPU);
# FLOWSCALE_SEC_PER_NFE overrides. SD3 values include the 2 CFG rows. They size a host's GPU-time requests
# (flowscale/ui/zerogpu.py) through the engine's cost model, like every other estimate.
SEC_PER_NFE = {"flux-schnell": 0.30, "flux-dev": 0.30, "sd3": 0.15, "sd3.5": 0.30}
LOAD_SECONDS = 30.0


def _sec_per_nfe(model: str) -> float:
    try:
        return float(os.environ.get("FLOWSCALE_SEC_PER_NFE") or SEC_PER_NFE[model])
    except ValueError:
        return SEC_PER_NFE[model]


COSTS = {model: CostModel(sec_per_call=0.0, sec_per_nfe=_sec_per_nfe(model), reference_pixels=DEFAULT_SIZE**2,
                          load_s=LOAD_SECONDS) for model in SEC_PER_NFE}


def t2i_params(cfg: RunConfig) -> dict[str, Any]:
    """The `t2i.*` entries of cfg.params, checked."""
    out: dict[str, Any] = {}
    for key, value in (cfg.params or {}).items():
        prefix, _, name = key.rpartition(".")
        if prefix != "t2i":
            continue
        if name not in T2I_PARAMS:
            allowed = ", ".join("t2i." + p for p in T2I_PARAMS)
            raise ConfigError("params", f"unknown setting {key!r}; allowed: {allowed}")
        out[name] = value
    try:
        if "guidance_scale" in out:
            out["guidance_scale"] = float(out["guidance_scale"])
            if not (math.isfinite(out["guidance_scale"]) and 0.0 <= out["guidance_scale"] <= 30.0):
                raise ValueError
        if "max_sequence_length" in out:
            out["max_sequence_length"] = int(out["max_sequence_length"])
            if not 1 <= out["max_sequence_length"] <= 512:
                raise ValueError
    except (TypeError, ValueError):
        raise ConfigError("params", "t2i.guidance_scale must be a number in [0, 30] and t2i.max_sequence_length "
                          "an integer in [1, 512]") from None
    if "offload" in out:
        value = str(out["offload"]).lower()
        value = {"1": "model", "true": "model", "yes": "model", "on": "model", "0": "none", "false": "none",
                 "no": "none", "off": "none"}.get(value, value)
        if value not in OFFLOAD:
            raise ConfigError("params", f"t2i.offload must be one of {', '.join(OFFLOAD)} (true = model); got "
                              f"{short(out['offload'])}")
        out["offload"] = value
    return out


def image_size(cfg: RunConfig) -> tuple[int, int]:
    height, width = cfg.height or DEFAULT_SIZE, cfg.width or DEFAULT_SIZE
    for name, value in (("height", height), ("width", width)):
        if value % SIZE_MULTIPLE:
            raise ConfigError(name, f"must be a multiple of {SIZE_MULTIPLE} for {cfg.model}; got {value}")
    return height, width


def flux_shift(pipe: Any, image_seq_len: int) -> float:
    """e^mu of FluxPipeline's dynamic shift when the scheduler uses it, else its static shift."""
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    config = pipe.scheduler.config
    if not config.get("use_dynamic_shifting", False):
        return float(config.get("shift", 1.0))
    mu = calculate_shift(image_seq_len, config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096),
                         config.get("base_shift", 0.5), config.get("max_shift", 1.15))
    return math.exp(mu)


def make_adapter(cfg: RunConfig, pipe: Any, height: int, width: int, params: dict[str, Any],
                 decode_batch: int | None = None, device: torch.device | None = None) -> DiffusersFlowAdapter:
    spec = MODELS[cfg.model]
    guidance = params.get("guidance_scale", spec.guidance)
    seq = params.get("max_sequence_length", spec.max_sequence_length)
    decode_batch = decode_batch or spec.max_batch
    try:
        if FAMILIES[cfg.model] == "flux":
            return FluxAdapter(pipe, cfg.model, height, width, guidance, seq, decode_batch=decode_batch, device=device)
        return SD3Adapter(pipe, cfg.model, height, width, 0.0 if guidance is None else guidance, seq,
                          decode_batch=decode_batch, device=device)
    except ValueError as exc:
        raise ConfigError("height", str(exc)) from None


def world_defaults(cfg: RunConfig, adapter: DiffusersFlowAdapter, reward: Reward,
                   heldout: Reward | None) -> WorldDefaults:
    spec = MODELS[cfg.model]
    shift = 1.0
    if spec.grid_space == "linear":
        shift = (flux_shift(adapter.pipe, adapter.image_seq_len) if isinstance(adapter, FluxAdapter)
                 else float(adapter.pipe.scheduler.config.get("shift", 1.0)))
    return WorldDefaults(steps=spec.steps, grid=spec.grid, grid_space=spec.grid_space, nfe=spec.nfe,
                         particles=spec.particles, reward=reward.name,
                         heldout=None if heldout is None else heldout.name, max_batch=spec.max_batch, shift=shift)


def check_reward_specs(cfg: RunConfig, spec: ModelSpec) -> tuple[str, str]:
    """(reward spec, held-out spec), checked by name only (cheap: before any weights load)."""
    from flowscale.rewards import check_reward_spec

    reward_spec = cfg.reward or spec.reward
    if reward_spec == "none":
        raise ConfigError("reward", "the given reward cannot be none")
    check_reward_spec(reward_spec, "reward")
    heldout_spec = cfg.heldout or spec.heldout
    if heldout_spec != "none":
        check_reward_spec(heldout_spec, "heldout")
    return reward_spec, heldout_spec


def _rewards(cfg: RunConfig, spec: ModelSpec, device: torch.device) -> tuple[Reward, Reward | None, str | None]:
    """(reward, heldout, note): a defaulted held-out reward that cannot load is skipped with a note."""
    from flowscale.rewards import make_image_reward

    reward_spec, heldout_spec = check_reward_specs(cfg, spec)
    reward = make_image_reward(reward_spec, cfg.prompt, device, field="reward")
    if heldout_spec == "none":
        return reward, None, None
    try:
        return reward, make_image_reward(heldout_spec, cfg.prompt, device, field="heldout"), None
    except ConfigError as exc:
        if cfg.heldout is not None:
            raise
        return reward, None, f"default held-out reward skipped: {exc}"


def save_outputs(images: torch.Tensor, out_dir: str) -> list[str]:
    """result.png (the returned sample, images[0]) and grid.png (every returned sample) in out_dir."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arr = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    paths = [out / "result.png", out / "grid.png"]
    Image.fromarray(arr[0]).save(paths[0])
    n = arr.shape[0]
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    h, w = arr.shape[1:3]
    grid = np.zeros((rows * h, cols * w, 3), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = arr[i]
    Image.fromarray(grid).save(paths[1])
    return [str(p) for p in paths]


def hardware_note(model: str) -> str | None:
    """Why this server is the wrong place for a text-to-image model, from the memory estimate (None on a GPU)."""
    if torch.cuda.is_available():
        return None
    spec = MODELS[model]
    est = estimate(model, FAMILIES[model], PUBLISHED_PARAMS[model], PUBLISHED_SHAPES[model], 2,
                   (DEFAULT_SIZE, DEFAULT_SIZE), spec.max_sequence_length, 1, spec.max_batch, (spec.reward,))
    return (f"ℹ This server has no GPU. {HUB_IDS[model].split('/')[-1]} needs one with about "
            f"{est.peak('text-cpu') / 1e9:.0f} GB free at {DEFAULT_SIZE}² (the memory estimate; README, Hosting); "
            "the 2-D and Shapes worlds run here on the CPU.")


def memory_plan(cfg: RunConfig, spec: ModelSpec, device: torch.device, dtype: torch.dtype, size: tuple[int, int],
                text_tokens: int, offload: str, reward_specs: tuple[str, str]) -> tuple[Plan, MemoryEstimate]:
    """Estimate the run's GPU memory before loading (from the folder's configs, or the published ones for hub
    weights) and choose where the components live; a run that cannot fit is refused here (memory.py)."""
    family = FAMILIES[cfg.model]
    folder, _ = weights_location(cfg.model, cfg.model_path)
    if folder is not None:
        local = check_local_folder(cfg.model, folder)
        counts, shapes = folder_params(local, family), folder_shapes(local)
    else:
        counts, shapes = PUBLISHED_PARAMS[cfg.model], PUBLISHED_SHAPES[cfg.model]
    dtype_bytes = torch.tensor([], dtype=dtype).element_size()
    rewards = tuple(r for r in reward_specs if r != "none")
    est = estimate(cfg.model, family, counts, shapes, dtype_bytes, size, text_tokens,
                   cfg.max_batch or spec.max_batch, spec.max_batch, rewards, reward_bytes=4, guided=bool(cfg.dps))
    plan = choose_plan(est, free_memory(device), offload, HUB_IDS[cfg.model].split("/")[-1], size,
                       fixed_batch=cfg.max_batch is not None)
    return plan, est


def build_world(cfg: RunConfig) -> World:
    """The text-to-image world of a run config; every bad setting is a ConfigError naming its field."""
    spec = MODELS[cfg.model]
    if cfg.preset is not None or cfg.mixture is not None:
        field = "preset" if cfg.preset is not None else "mixture"
        raise ConfigError(field, f"{cfg.model} takes a prompt, not a mixture")
    if not isinstance(cfg.prompt, str) or not cfg.prompt.strip():
        raise ConfigError("prompt", f"{cfg.model} needs a text prompt (--prompt TEXT)")
    height, width = image_size(cfg)
    params = t2i_params(cfg)
    device = default_device()
    dtype = default_dtype(device)
    offload = params.get("offload", "model" if env_flag("FLOWSCALE_CPU_OFFLOAD") else "auto")
    reward_specs = check_reward_specs(cfg, spec)
    text_tokens = params.get("max_sequence_length", spec.max_sequence_length)
    plan, needs = memory_plan(cfg, spec, device, dtype, (height, width), text_tokens, offload, reward_specs)
    pipe = load_pipeline(cfg.model, cfg.model_path, device, dtype, plan.name)
    reward, heldout, note = _rewards(cfg, spec, device)
    adapter = make_adapter(cfg, pipe, height, width, params, decode_batch=min(spec.max_batch, plan.micro_batch),
                           device=device)
    if "preview_vae" in params:
        adapter.preview_decoder = TinyPreviewDecoder(str(params["preview_vae"]), adapter.device, dtype)
    if plan.name == "text-cpu" and device.type == "cuda":
        adapter.text_device = torch.device("cpu")  # the memory plan keeps the text encoders off the GPU
    cond = (adapter.encode_condition(cfg.prompt, str(params.get("negative_prompt", "")))
            if isinstance(adapter, SD3Adapter) else adapter.encode_condition(cfg.prompt))
    info: dict[str, Any] = {
        "model": cfg.model, "model_path": cfg.model_path, "height": height, "width": width,
        "weights": weights_location(cfg.model, cfg.model_path)[1],  # model_path, FLOWSCALE_MODELS or hub
        "latent_shape": list(adapter.sample_shape), "dtype": str(dtype).replace("torch.", ""), "device": str(device),
        "guidance_scale": adapter.guidance_scale, "offload": plan.name != "gpu",
        # what was estimated and which plan it chose (a CPU holds everything: the plan moves nothing there)
        "memory": {**plan.to_dict(), "applied": device.type == "cuda", "estimate": needs.summary()},
        "transformer_rows_per_nfe": getattr(adapter, "transformer_rows_per_nfe", 1),
        "nfe_note": "1 NFE = one velocity of one particle (an SD3 CFG evaluation runs 2 transformer rows)",
    }
    if note:
        info["note"] = note
    return World(
        name=cfg.model,
        model=adapter,
        cond=cond,
        reward=reward,
        heldout=heldout,
        decode=adapter.decode,
        project=RandomProjection(int(np.prod(adapter.sample_shape))),
        defaults=dataclasses.replace(world_defaults(cfg, adapter, reward, heldout), max_batch=plan.micro_batch),
        info=info,
        save_outputs=save_outputs,
        previews=lambda images: thumbnails(images, PREVIEW_SIZE),
        latent_previews=(lambda x0: adapter.preview_latents(x0, PREVIEW_SIZE)) if adapter.preview_decoder else None,
    )
