"""FLUX.1-schnell's speed with random weights: no download, real sizes (or a toy size for a CPU and CI).

The transformer and the VAE are built by diffusers from FLUX.1-schnell's published configs (19 double and
38 single blocks, 24 heads of 128, T5 width 4096, CLIP pooled 768; VAE 128-256-512-512, 16 latent
channels), with random weights, in bf16 on a GPU (fp32 on a CPU). Timed: seconds per NFE against batch size,
VAE decode with the full VAE and with a tiny autoencoder (AutoencoderTiny, 16 latent channels), peak GPU
memory, and the projected time of RBF at 500 NFE for rbf.batch 1 and 8. Weights do not change the time.

`calibration` sets what was measured beside the constants the engine assumes before it has a GPU: the
activation memory per sample of a transformer call and of a decode, implied as the (tokens x width) and
(pixels x channels) tensor counts that flowscale/worlds/t2i/memory.py calls BLOCK_TENSORS and DECODE_TENSORS;
a reward-guided (DPS) evaluation's forward and backward through the transformer with gradient checkpointing,
as the GUIDED_FACTOR on the forward's activations and as seconds against a plain call; and seconds per NFE
(transformer + full VAE decode, no reward) against world.SEC_PER_NFE. On a CPU the memory figures are None.

    python benchmarks/gpu_t2i_bench.py speed --random-weights --size 1024 --batches 1,2,4,8,16
    python benchmarks/gpu_t2i_bench.py speed --random-weights --toy --size 64 --batches 1,2   # CPU, seconds
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import torch

FLUX_SCHNELL_TRANSFORMER = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38,
                                attention_head_dim=128, num_attention_heads=24, joint_attention_dim=4096,
                                pooled_projection_dim=768, guidance_embeds=False, axes_dims_rope=(16, 56, 56))
FLUX_VAE = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
                latent_channels=16, norm_num_groups=32, scaling_factor=0.3611, shift_factor=0.1159,
                use_quant_conv=False, use_post_quant_conv=False)
TINY_AE = dict(in_channels=3, out_channels=3, latent_channels=16)
# Toy sizes keep every code path (joint and single blocks, rotary axes that sum to the head width).
TOY_TRANSFORMER = dict(FLUX_SCHNELL_TRANSFORMER, num_layers=1, num_single_layers=1, attention_head_dim=16,
                       num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=16, axes_dims_rope=(4, 6, 6))
TOY_VAE = dict(FLUX_VAE, down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
               block_out_channels=[16, 16], layers_per_block=1, norm_num_groups=8)
TOY_TINY_AE = dict(TINY_AE, encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8))
T5_TOKENS = 256  # flowscale's default for FLUX.1-schnell (the released code uses 512)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(fn: Any, device: torch.device, repeats: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(toy: bool, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any, Any]:
    from diffusers import AutoencoderKL, AutoencoderTiny, FluxTransformer2DModel

    torch.manual_seed(0)
    # Parameters are made on the device in their final dtype: building in float32 and casting would hold 48 GB
    # and then 24 more for the 12B transformer, more than most GPUs have (the paper's A6000 has 48 GB).
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            transformer = FluxTransformer2DModel(**(TOY_TRANSFORMER if toy else FLUX_SCHNELL_TRANSFORMER))
            vae = AutoencoderKL(**(TOY_VAE if toy else FLUX_VAE))
            tiny = AutoencoderTiny(**(TOY_TINY_AE if toy else TINY_AE))
    finally:
        torch.set_default_dtype(default)
    # (.to casts only what a constructor made in an explicit dtype; the parameters are already in dtype)
    return transformer.to(dtype).eval(), vae.to(dtype).eval(), tiny.to(dtype).eval()


def _fit(points: dict[int, float]) -> tuple[float, float]:
    """seconds(batch) = a + c * batch by least squares (one point: all cost per sample)."""
    if len(points) == 1:
        (b, t), = points.items()
        return 0.0, t / b
    xs, ys = list(points), list(points.values())
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    c = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return max(0.0, my - c * mx), max(c, 0.0)


def _timed(fn: Any, device: torch.device, repeats: int, base: int) -> tuple[float, int | None]:
    """(median seconds of fn, bytes allocated at its peak above `base`, the weights; None on a CPU)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = _median_time(fn, device, repeats)
    return seconds, torch.cuda.max_memory_allocated(device) - base if device.type == "cuda" else None


def measure(size: int, batches: list[int], repeats: int, toy: bool = False) -> dict[str, Any]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    transformer, vae, tiny = build(toy, device, dtype)
    base = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0  # the three models' weights
    cfg = transformer.config
    latent = size // 8  # the VAE downsamples by 8 (2 ** (blocks - 1)) ...
    if toy:
        latent = size // 2
    seq = (latent // 2) ** 2  # ... and FLUX packs 2 x 2 latent patches into one token of 64 channels
    tokens = T5_TOKENS if not toy else 8
    out: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "dtype": str(dtype),
        "size": size, "toy": toy, "t5_tokens": tokens,
        "params": {"transformer": sum(p.numel() for p in transformer.parameters()),
                   "vae": sum(p.numel() for p in vae.parameters()), "tiny_ae": sum(p.numel() for p in tiny.parameters())},
        "s_per_call": {}, "s_per_nfe": {}, "peak_gb": {},
    }
    forward_act: dict[int, int | None] = {}
    with torch.inference_mode():
        for b in batches:
            args = _inputs(cfg, b, seq, tokens, device, dtype)
            t, forward_act[b] = _timed(lambda a=args: transformer(**a), device, repeats, base)
            out["s_per_call"][b] = t
            out["s_per_nfe"][b] = t / b
            if forward_act[b] is not None:
                out["peak_gb"][b] = (forward_act[b] + base) / 1e9
        z = torch.randn(1, 16, latent, latent, device=device, dtype=dtype)
        vae_s, decode_act = _timed(lambda: vae.decode(z), device, repeats, base)
        out["decode_s"] = {"vae": vae_s, "tiny_ae": _median_time(lambda: tiny.decode(z), device, repeats)}
    guided_s, guided_act = _guided(transformer, _inputs(cfg, 1, seq, tokens, device, dtype), device, base, repeats)
    out["calibration"] = calibration(out, cfg, vae.config, dtype, seq, tokens, size, toy, forward_act, decode_act,
                                     guided_s, guided_act, base)
    a, c = _fit(out["s_per_call"])
    decode = out["decode_s"]["vae"]
    # RBF at 500 NFE, 2 chains (the paper's setting): batch B draws 2 * B candidates per model call, each of
    # which is decoded for the reward; calls = 1 + (500 - 2) / (2 * B).
    out["rbf_500_projected_s"] = {
        batch: (1 + math.ceil(498 / (2 * batch))) * (a + c * 2 * batch) + 500 * decode for batch in (1, 8)
    }
    out["fit_s_per_call"] = {"fixed": a, "per_sample": c}
    return out


def _inputs(cfg: Any, b: int, seq: int, tokens: int, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """A transformer call's inputs for b samples of `seq` image tokens and `tokens` text tokens."""
    return dict(
        hidden_states=torch.randn(b, seq, cfg.in_channels, device=device, dtype=dtype),
        encoder_hidden_states=torch.randn(b, tokens, cfg.joint_attention_dim, device=device, dtype=dtype),
        pooled_projections=torch.randn(b, cfg.pooled_projection_dim, device=device, dtype=dtype),
        timestep=torch.full((b,), 0.5, device=device, dtype=dtype),
        img_ids=torch.zeros(seq, 3, device=device, dtype=dtype),
        txt_ids=torch.zeros(tokens, 3, device=device, dtype=dtype),
        return_dict=False,
    )


def _guided(transformer: Any, args: dict[str, Any], device: torch.device, base: int,
            repeats: int) -> tuple[float, int | None]:
    """Seconds and peak activation bytes of one sample's forward and backward to its input, with gradient
    checkpointing, as a reward-guided evaluation runs (the world turns checkpointing on; weights get no
    gradient)."""
    transformer.requires_grad_(False)
    transformer.enable_gradient_checkpointing()
    x = args["hidden_states"]

    def step() -> None:
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            (out,) = transformer(**{**args, "hidden_states": leaf})
            torch.autograd.grad(out.float().square().mean(), leaf)

    try:
        return _timed(step, device, repeats, base)
    finally:
        transformer.disable_gradient_checkpointing()


def calibration(out: dict[str, Any], cfg: Any, vae_cfg: Any, dtype: torch.dtype, seq: int, tokens: int, size: int,
                toy: bool, forward_act: dict[int, int | None], decode_act: int | None, guided_s: float,
                guided_act: int | None, base: int) -> dict[str, Any]:
    """The measured figures beside the constants of flowscale/worlds/t2i/memory.py and world.SEC_PER_NFE."""
    from flowscale.worlds.t2i import memory, world

    width = cfg.num_attention_heads * cfg.attention_head_dim
    channels = vae_cfg.block_out_channels[0]
    unit = torch.finfo(dtype).bits // 8
    per_block = {b: None if a is None else a / (b * (seq + tokens) * width * unit) for b, a in forward_act.items()}
    result: dict[str, Any] = {
        "weights_gb": base / 1e9 if base else None,
        "BLOCK_TENSORS": {"now": memory.BLOCK_TENSORS, "implied": per_block},
        "DECODE_TENSORS": {"now": memory.DECODE_TENSORS,
                           "implied": None if decode_act is None else decode_act / (size * size * channels * unit)},
        "GUIDED_FACTOR": {"now": memory.GUIDED_FACTOR,
                          "implied": None if guided_act is None or not forward_act.get(1) else guided_act / forward_act[1]},
        "guided_s_per_nfe": guided_s,
        "guided_over_plain": guided_s / out["s_per_call"][1] if 1 in out["s_per_call"] else None,
        "SEC_PER_NFE": {"now": world.SEC_PER_NFE["flux-schnell"],
                        "transformer_and_decode": {b: t + out["decode_s"]["vae"] for b, t in out["s_per_nfe"].items()}},
    }
    if not toy:  # the memory model's own activation estimate at this size, with the constants it has now
        est = {b: memory.estimate("flux-schnell", "flux", {"transformer": 0}, (width, channels), unit, (size, size),
                                  tokens, b, 1) for b in forward_act}
        result["estimate_activation_gb"] = {b: e.transformer_per_sample * b / 1e9 for b, e in est.items()}
        result["measured_activation_gb"] = {b: None if a is None else a / 1e9 for b, a in forward_act.items()}
        result["estimate_decode_gb"] = est[min(est)].decode_per_image / 1e9
        result["measured_decode_gb"] = None if decode_act is None else decode_act / 1e9
    return result
