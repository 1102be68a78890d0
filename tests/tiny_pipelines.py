"""Tiny random FLUX / SD3 pipelines and tokenizers built offline (ecosystem.md 3.7), for the tests of the
text-to-image world and the image rewards."""

from __future__ import annotations

import string

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
)


def tiny_clip_tokenizer(max_len: int = 77) -> CLIPTokenizer:
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase + string.digits + ".,!?'-":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_len)


def tiny_t5_tokenizer() -> T5Tokenizer:
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(c, -5.0) for c in string.ascii_lowercase + string.digits]
    pieces += [("\u2581" + c, -4.0) for c in string.ascii_lowercase]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def _clip_config() -> CLIPTextConfig:
    return CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
                          num_attention_heads=4, num_hidden_layers=2, vocab_size=128, projection_dim=32,
                          max_position_embeddings=77)


def _t5() -> T5EncoderModel:
    return T5EncoderModel(T5Config(vocab_size=128, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
                                   relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1))


def _vae(channels: int) -> AutoencoderKL:
    return AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
                         latent_channels=channels, norm_num_groups=1, use_quant_conv=False,
                         use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035)


def tiny_flux(guidance_embeds: bool) -> FluxPipeline:
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
                                         guidance_embeds=guidance_embeds)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0 if guidance_embeds else 1.0,
                                                use_dynamic_shifting=guidance_embeds)
    return FluxPipeline(scheduler=scheduler, vae=_vae(1), text_encoder=CLIPTextModel(_clip_config()),
                        text_encoder_2=_t5(), tokenizer=tiny_clip_tokenizer(), tokenizer_2=tiny_t5_tokenizer(),
                        transformer=transformer)


def tiny_sd3() -> StableDiffusion3Pipeline:
    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(sample_size=32, patch_size=1, in_channels=4, num_layers=1,
                                        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
                                        joint_attention_dim=32, pooled_projection_dim=64, out_channels=4)
    return StableDiffusion3Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=_vae(4),
        text_encoder=CLIPTextModelWithProjection(_clip_config()),
        text_encoder_2=CLIPTextModelWithProjection(_clip_config()), text_encoder_3=_t5(),
        tokenizer=tiny_clip_tokenizer(), tokenizer_2=tiny_clip_tokenizer(), tokenizer_3=tiny_t5_tokenizer(),
        transformer=transformer)
