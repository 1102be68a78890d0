"""GPU memory of a text-to-image run before anything loads, and the loading plan that fits.

Weights: parameters x bytes of every component. Parameter counts come from the component configs of a local
diffusers folder (each model is instantiated on the meta device: exact, nothing allocated) or, for weights
still on the hub, from the published configs (PUBLISHED_PARAMS, computed the same way; tests check both).
Activations: the transformer's peak inside one block at the requested size and micro-batch, the VAE decode
at full resolution, and, for reward guidance, the backward pass through the transformer with gradient
checkpointing. Those three per-sample factors are estimates from the tensor shapes (the constants below say
how), not yet measured on a GPU.

Plans, from fastest to smallest (the world takes the first that fits the free GPU memory):
    gpu            every component on the GPU
    text-cpu       the text encoders stay on the CPU and encode the prompt there (once per run), the rest on the GPU
    model-offload  diffusers' enable_model_cpu_offload: one component on the GPU at a time (the transformer
                   moves over the bus at every step: the slowest plan, the last resort)
each first at the requested micro-batch, then at smaller ones. A run nothing fits is refused with a message
naming what it needs, what the GPU has, and what would fit.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowscale.config import ConfigError
from flowscale.worlds.t2i.availability import TEXT_ENCODERS

GB = 1e9
COMPONENTS = {"flux": ("transformer", "text_encoder", "text_encoder_2", "vae"),
              "sd3": ("transformer", "text_encoder", "text_encoder_2", "text_encoder_3", "vae")}
# Parameters of the published components, counted by instantiating their configs on the meta device
# (tests/worlds/test_t2i_memory.py recounts them): FLUX transformer 19 + 38 blocks of width 3072; T5-XXL
# encoder; CLIP ViT-L/14 text; CLIP ViT-bigG/14 text with projection (SD3); the 16-channel VAE.
_T5, _CLIP_L, _CLIP_G, _VAE = 4_762_310_656, 123_060_480, 694_659_840, 83_819_683
PUBLISHED_PARAMS: dict[str, dict[str, int]] = {
    "flux-schnell": {"transformer": 11_891_178_560, "text_encoder": _CLIP_L, "text_encoder_2": _T5, "vae": _VAE},
    "flux-dev": {"transformer": 11_901_408_320, "text_encoder": _CLIP_L, "text_encoder_2": _T5, "vae": _VAE},
    "sd3": {"transformer": 2_028_328_000, "text_encoder": _CLIP_L, "text_encoder_2": _CLIP_G, "text_encoder_3": _T5,
            "vae": _VAE},
    "sd3.5": {"transformer": 8_056_627_520, "text_encoder": _CLIP_L, "text_encoder_2": _CLIP_G,
              "text_encoder_3": _T5, "vae": _VAE},
}
# Reward models (float32 unless FLOWSCALE_REWARD_DTYPE): CLIP ViT-L/14 whole (clip), its vision tower
# (aesthetic), CLIP ViT-H/14 (pickscore), Grounding DINO base (its model card's count). VQAScore runs elsewhere.
REWARD_PARAMS = {"clip": 427_616_513, "aesthetic": 303_966_208 + 920_000, "pickscore": 986_109_441,
                 "count": 233_000_000}
# (transformer width = heads x head width, channels of the VAE decoder's full-resolution blocks)
PUBLISHED_SHAPES = {"flux-schnell": (3072, 128), "flux-dev": (3072, 128), "sd3": (1536, 128), "sd3.5": (2432, 128)}
CLIP_TOKENS = {"flux": 0, "sd3": 77}  # SD3 joins 77 CLIP tokens to the T5 tokens; FLUX pools CLIP
# Live (tokens x width) tensors at a transformer block's peak in inference: residual, normed input, q, k, v,
# attention output, the 4x MLP hidden before and after its activation (attention itself runs in SDPA).
BLOCK_TENSORS = 14
# Live (pixels x 128 channels) tensors at the VAE decoder's full-resolution peak (two ResNet blocks' worth).
DECODE_TENSORS = 6
# With gradient checkpointing, the backward pass keeps each block's input (57 FLUX blocks) and recomputes
# one block: about 4 times the forward peak.
GUIDED_FACTOR = 5.0
HEADROOM = 1.10  # CUDA context, allocator fragmentation, the prompt embeddings, small buffers
PLANS = ("gpu", "text-cpu", "model-offload")
OFFLOAD = {"auto": PLANS, "none": ("gpu",), "text": ("text-cpu",), "model": ("model-offload",)}  # t2i.offload


def meta_params(module_cls: Any, config: Any) -> int:
    """Parameters of a model class built from a config on the meta device (exact; allocates nothing)."""
    import torch

    with torch.device("meta"):  # a diffusers config is a dict (from_config); a transformers one an object
        model = module_cls.from_config(config) if isinstance(config, dict) else module_cls(config)
    return sum(p.numel() for p in model.parameters())


def folder_shapes(folder: str | Path) -> tuple[int, int]:
    """(transformer width, VAE full-resolution channels) from a diffusers folder's configs."""
    folder = Path(folder)
    transformer = json.loads((folder / "transformer" / "config.json").read_text())
    vae = json.loads((folder / "vae" / "config.json").read_text())
    return (int(transformer["num_attention_heads"]) * int(transformer["attention_head_dim"]),
            int(vae["block_out_channels"][0]))


def folder_params(folder: str | Path, family: str) -> dict[str, int]:
    """Parameters of each component of a local diffusers folder, from its configs alone."""
    import diffusers
    import transformers

    folder = Path(folder)
    index = json.loads((folder / "model_index.json").read_text())
    out: dict[str, int] = {}
    for name in COMPONENTS[family]:
        library, cls_name = index[name]
        cls = getattr(diffusers if library == "diffusers" else transformers, cls_name)
        if library == "diffusers":
            out[name] = meta_params(cls, cls.load_config(folder / name))
        else:
            out[name] = meta_params(cls, transformers.AutoConfig.from_pretrained(folder / name))
    return out


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of each component's weights, the rewards' weights and the activations per sample."""

    model: str
    family: str
    weights: dict[str, int]
    rewards: int
    transformer_per_sample: int
    decode_per_image: int
    micro_batch: int
    decode_batch: int
    params: dict[str, int] = field(default_factory=dict)

    def peak(self, plan: str, micro_batch: int | None = None) -> int:
        """Peak GPU bytes of a run under a plan at a micro-batch (default: the requested one)."""
        b = self.micro_batch if micro_batch is None else micro_batch
        act = max(b * self.transformer_per_sample, min(b, self.decode_batch) * self.decode_per_image)
        text = sum(v for k, v in self.weights.items() if k in TEXT_ENCODERS)
        rest = sum(v for k, v in self.weights.items() if k not in TEXT_ENCODERS)
        if plan == "gpu":
            need = text + rest + self.rewards + act
        elif plan == "text-cpu":
            need = rest + self.rewards + act
        else:  # model-offload: the largest single component with its activations, beside the rewards
            need = max(max(self.weights.values()), self.weights["transformer"] + act) + self.rewards
        return int(need * HEADROOM)

    def summary(self) -> dict[str, Any]:
        return {"weights_gb": {k: round(v / GB, 2) for k, v in self.weights.items()},
                "rewards_gb": round(self.rewards / GB, 2), "params": self.params,
                "activations_gb_per_sample": round(self.transformer_per_sample / GB, 3),
                "decode_gb_per_image": round(self.decode_per_image / GB, 3),
                "peak_gb": {p: round(self.peak(p) / GB, 1) for p in PLANS}}


def estimate(model: str, family: str, params: dict[str, int], shapes: tuple[int, int], dtype_bytes: int,
             size: tuple[int, int], text_tokens: int, micro_batch: int, decode_batch: int,
             rewards: tuple[str, ...] = (), reward_bytes: int = 4, guided: bool = False) -> MemoryEstimate:
    """The memory of a run: component params (folder_params or PUBLISHED_PARAMS) in the pipeline's dtype,
    shapes (folder_shapes or PUBLISHED_SHAPES), the image size and the T5 length of the prompt."""
    height, width = size
    hidden, vae_channels = shapes
    patch = 16  # FLUX: 8x VAE then 2x2 packing; SD3: 8x VAE then patch 2
    tokens = (height // patch) * (width // patch) + text_tokens + CLIP_TOKENS[family]
    factor = GUIDED_FACTOR if guided else 1.0
    per_sample = tokens * hidden * dtype_bytes * BLOCK_TENSORS * factor
    decode = height * width * vae_channels * dtype_bytes * DECODE_TENSORS * factor
    weights = {k: v * dtype_bytes for k, v in params.items()}
    reward_total = sum(REWARD_PARAMS.get(r.partition(":")[0], 0) for r in rewards) * reward_bytes
    return MemoryEstimate(model, family, weights, reward_total, int(per_sample), int(decode), micro_batch,
                          decode_batch, dict(params))


@dataclass(frozen=True)
class Plan:
    name: str
    micro_batch: int
    peak_bytes: int
    free_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        """What the record keeps: the plan, not the free memory it was chosen against (a runtime figure that
        differs from run to run, which would keep a record from replaying identical)."""
        return {"plan": self.name, "micro_batch": self.micro_batch, "peak_gb": round(self.peak_bytes / GB, 1)}


def free_memory(device: Any) -> int | None:
    """Free bytes on the device: FLOWSCALE_GPU_FREE_GB if set (hosts and tests), else CUDA's own count;
    None on a CPU (no plan needed)."""
    forced = os.environ.get("FLOWSCALE_GPU_FREE_GB")
    if forced:
        try:
            return int(float(forced) * GB)
        except ValueError:
            raise ConfigError("model", f"FLOWSCALE_GPU_FREE_GB must be a number of GB; got {forced!r}") from None
    if getattr(device, "type", "cpu") != "cuda":
        return None
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


def choose_plan(est: MemoryEstimate, free: int | None, offload: str, label: str, size: tuple[int, int],
                fixed_batch: bool = False) -> Plan:
    """The fastest plan allowed by `offload` (OFFLOAD) that fits `free` bytes, at the requested micro-batch or
    (unless fixed_batch: the user set max_batch) a smaller one; else a ConfigError naming what the run needs,
    what the GPU has and what would fit. On a CPU (free None) everything stays where it is."""
    plans = OFFLOAD[offload]
    if free is None:
        return Plan(plans[0], est.micro_batch, est.peak(plans[0]), None)
    for b in [est.micro_batch] if fixed_batch else _batches(est.micro_batch):
        for plan in plans:
            need = est.peak(plan, b)
            if need <= free:
                return Plan(plan, b, need, free)
    h, w = size
    fits = [(p, b) for b in _batches(est.micro_batch) for p in PLANS if est.peak(p, b) <= free]
    if fits:  # the settings ruled out what would fit: name it
        plan, b = fits[0]
        settings = [f"t2i.offload={_OFFLOAD_OF[plan]}"] if plan not in plans else []
        settings += [f"max_batch {b}"] if b < est.micro_batch else []
        hint = f"{' with '.join(settings)} fits"
    else:
        hint = "use a GPU with more free memory"
        scale = 512 * 512 / (h * w)
        small = dataclasses.replace(est, transformer_per_sample=int(est.transformer_per_sample * max(scale, 0.25)),
                                    decode_per_image=int(est.decode_per_image * scale))
        if scale < 1 and small.peak("model-offload", 1) <= free:
            hint = "try height/width 512 with t2i.offload=model"
    smallest = est.peak("model-offload", 1)
    field_name = "height" if not fits else "params" if fits[0][0] not in plans else "max_batch"
    raise ConfigError(field_name,
                      f"{label} needs about {est.peak('gpu') / GB:.1f} GB at {h}x{w} with micro-batch "
                      f"{est.micro_batch} (at least {smallest / GB:.1f} GB with model offload and micro-batch 1); "
                      f"this GPU has {free / GB:.1f} GB free: {hint}")


_OFFLOAD_OF = {"gpu": "none", "text-cpu": "text", "model-offload": "model"}


def _batches(b: int) -> list[int]:
    out = [b]
    while out[-1] > 1:
        out.append(out[-1] // 2)
    return out


