"""The text-to-image world's memory estimate and loading plan (flowscale/worlds/t2i/memory.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, FluxTransformer2DModel, SD3Transformer2DModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

from flowscale.config import ConfigError, RunConfig
from flowscale.worlds.t2i import memory
from flowscale.worlds.t2i import world as t2i
from flowscale.worlds.t2i.availability import load_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from flux_random_speed import FLUX_SCHNELL_TRANSFORMER, FLUX_VAE  # noqa: E402

pytestmark = pytest.mark.usefixtures("offline_single_thread")  # conftest.py

T5_XXL = T5Config(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24, vocab_size=32128,
                  feed_forward_proj="gated-gelu", relative_attention_num_buckets=32)
CLIP_L = CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                        max_position_embeddings=77, vocab_size=49408, projection_dim=768)
CLIP_G = CLIPTextConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
                        max_position_embeddings=77, vocab_size=49408, projection_dim=1280, hidden_act="gelu")
SD3_COMMON = dict(sample_size=128, patch_size=2, in_channels=16, attention_head_dim=64, joint_attention_dim=4096,
                  pooled_projection_dim=2048, out_channels=16, pos_embed_max_size=192)


def test_the_published_counts_are_the_published_configs_counted():
    count = memory.meta_params
    flux = memory.PUBLISHED_PARAMS["flux-schnell"]
    assert count(FluxTransformer2DModel, FLUX_SCHNELL_TRANSFORMER) == flux["transformer"]  # 11.9 B
    assert count(FluxTransformer2DModel, {**FLUX_SCHNELL_TRANSFORMER, "guidance_embeds": True}) == \
        memory.PUBLISHED_PARAMS["flux-dev"]["transformer"]
    assert count(AutoencoderKL, FLUX_VAE) == flux["vae"]
    assert count(T5EncoderModel, T5_XXL) == flux["text_encoder_2"]
    assert count(CLIPTextModel, CLIP_L) == flux["text_encoder"]
    sd35 = memory.PUBLISHED_PARAMS["sd3.5"]
    assert count(CLIPTextModelWithProjection, CLIP_G) == sd35["text_encoder_2"]
    assert count(SD3Transformer2DModel, {**SD3_COMMON, "num_layers": 38, "num_attention_heads": 38,
                                         "caption_projection_dim": 2432, "qk_norm": "rms_norm"}) == sd35["transformer"]
    assert count(SD3Transformer2DModel, {**SD3_COMMON, "num_layers": 24, "num_attention_heads": 24,
                                         "caption_projection_dim": 1536}) == memory.PUBLISHED_PARAMS["sd3"]["transformer"]


@pytest.mark.parametrize("model", ["flux-schnell", "flux-dev", "sd3"])
def test_folder_counts_equal_the_loaded_models_own(pipe_dirs, model):
    family = "flux" if model.startswith("flux") else "sd3"
    counts = memory.folder_params(pipe_dirs[model], family)
    pipe = load_pipeline(model, pipe_dirs[model], torch.device("cpu"), torch.float32)
    for name, n in counts.items():
        assert n == sum(p.numel() for p in getattr(pipe, name).parameters()), name
    hidden, channels = memory.folder_shapes(pipe_dirs[model])
    assert hidden == pipe.transformer.config.num_attention_heads * pipe.transformer.config.attention_head_dim
    assert channels == pipe.vae.config.block_out_channels[0]


def published(model: str = "flux-schnell", size: int = 1024, batch: int = 5, **kw) -> memory.MemoryEstimate:
    return memory.estimate(model, "flux", memory.PUBLISHED_PARAMS[model], memory.PUBLISHED_SHAPES[model], 2,
                           (size, size), 512, batch, 5, ("clip",), **kw)


def test_flux_schnell_at_1024_needs_more_than_a_24_gb_gpu():
    est = published()
    assert est.weights["transformer"] == 2 * 11_891_178_560  # 23.8 GB in bf16, before anything else
    assert est.peak("gpu") > est.peak("text-cpu") >= est.peak("model-offload") > 24e9
    with pytest.raises(ConfigError) as err:
        memory.choose_plan(est, 22 * memory.GB, "auto", "FLUX.1-schnell", (1024, 1024))
    message = str(err.value)
    assert "FLUX.1-schnell needs about" in message and "1024x1024" in message and "22.0 GB free" in message
    assert published(guided=True).peak("gpu") > est.peak("gpu")  # a guided run keeps more activations


def test_the_planner_takes_the_fastest_plan_that_fits():
    est = published()
    gpu, text, model = (est.peak(p) for p in memory.PLANS)
    assert memory.choose_plan(est, gpu + 1, "auto", "F", (1024, 1024)).name == "gpu"
    assert memory.choose_plan(est, text + 1, "auto", "F", (1024, 1024)).name == "text-cpu"
    plan = memory.choose_plan(est, est.peak("model-offload", 1) + 1, "auto", "F", (1024, 1024))
    assert plan.name in ("text-cpu", "model-offload") and plan.micro_batch < 5  # a smaller micro-batch
    with pytest.raises(ConfigError) as err:  # the user fixed max_batch 5: the message says what would fit
        memory.choose_plan(est, est.peak("model-offload", 1) + 1, "auto", "F", (1024, 1024), fixed_batch=True)
    assert err.value.field == "max_batch" and "max_batch" in str(err.value)
    with pytest.raises(ConfigError) as err:  # offload none only allows the whole pipeline on the GPU
        memory.choose_plan(est, text + 1, "none", "F", (1024, 1024))
    assert err.value.field == "params" and "t2i.offload=text fits" in str(err.value)
    assert memory.choose_plan(est, None, "auto", "F", (1024, 1024)).free_bytes is None  # a CPU: no plan needed


def tiny_cfg(pipe_dirs, **kw) -> RunConfig:
    base = dict(model="flux-schnell", model_path=pipe_dirs["flux-schnell"], prompt="a red apple", height=32,
                width=32, steps=4, nfe=24, reward="brightness", heldout="none", method="bon", process="vp-sde")
    return RunConfig(**{**base, **kw})


def test_a_small_free_memory_makes_the_world_offload_or_refuse(pipe_dirs, monkeypatch):
    cfg = tiny_cfg(pipe_dirs)
    plan, est = t2i.memory_plan(cfg, t2i.MODELS["flux-schnell"], torch.device("cpu"), torch.float32, (32, 32), 256,
                                "auto", ("brightness", "none"))
    assert plan.name == "gpu" and plan.free_bytes is None  # on a CPU nothing moves
    squeezed = (est.peak("model-offload") + est.peak("text-cpu")) / 2
    assert est.peak("model-offload") < squeezed < est.peak("text-cpu")
    monkeypatch.setenv("FLOWSCALE_GPU_FREE_GB", str(squeezed / memory.GB))
    world = t2i.build_world(cfg)
    assert world.info["memory"]["plan"] == "model-offload" and world.info["offload"] is True
    assert world.info["memory"]["estimate"]["params"]["transformer"] == sum(
        p.numel() for p in world.model.pipe.transformer.parameters())
    from flowscale.run import run

    record = run(cfg).record  # the plan is in the record, and the run is unchanged by it
    assert record.extra["world"]["memory"]["plan"] == "model-offload" and record.nfe_used == 24
    monkeypatch.setenv("FLOWSCALE_GPU_FREE_GB", str(est.peak("model-offload", 1) / memory.GB / 2))
    with pytest.raises(ConfigError) as err:
        t2i.build_world(cfg)
    assert "needs about" in str(err.value) and "GB free" in str(err.value)


def test_offload_settings_are_checked(pipe_dirs):
    assert t2i.t2i_params(tiny_cfg(pipe_dirs, params={"t2i.offload": "true"}))["offload"] == "model"
    assert t2i.t2i_params(tiny_cfg(pipe_dirs, params={"t2i.offload": "text"}))["offload"] == "text"
    with pytest.raises(ConfigError) as err:
        t2i.t2i_params(tiny_cfg(pipe_dirs, params={"t2i.offload": "sometimes"}))
    assert "auto, none, text, model" in str(err.value)


def test_a_server_without_a_gpu_says_why_text_to_image_does_not_belong_there(monkeypatch):
    from flowscale.ui import models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    note = t2i.hardware_note("flux-schnell")
    assert "no GPU" in note and "FLUX.1-schnell needs one with about 30 GB" in note and "Shapes" in note
    assert note in models.status_markdown("flux-schnell")
    assert "no GPU" not in models.status_markdown("toy2d")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert t2i.hardware_note("flux-schnell") is None
