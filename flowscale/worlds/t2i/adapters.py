"""FLUX and SD3 pipelines presented as engine FlowModels (method.md a.1, a.9; ecosystem.md 3.3-3.4).

Convention: `velocity(x, t, cond)` takes the latent in the engine's own unpacked layout x [B, C, h, w]
float32, t float64 [B] linear time (1 = noise), and returns u = E[eps - x0 | x_t] [B, C, h, w] float32.
diffusers' flow transformers predict exactly this velocity (FlowMatchEulerDiscreteScheduler.step is
x_next = x + (sigma_next - sigma) * u, i.e. x - dt * u); tests/test_t2i_world.py checks it numerically.

* FLUX: x is packed 2x2 into tokens [B, hw/4, 4C]; the transformer gets `timestep = t` in [0, 1] and
  multiplies by 1000 itself (transformer_flux.py: `timestep.to(dtype) * 1000`, likewise guidance); FLUX.1-dev
  has a guidance embedding (`guidance = guidance_scale` per row), schnell none.
* SD3 / SD3.5: latents are not packed; the transformer gets `timestep = 1000 t`. Classifier-free guidance is
  done here as ONE batched transformer call of 2B rows [uncond; cond] combined as u_unc + s (u_cond - u_unc).
  NFE accounting: one velocity of one particle is 1 NFE, so a CFG evaluation counts 1 NFE although it runs
  2 transformer rows (the world records `transformer_rows_per_nfe`).

The prompt is encoded once (`encode_condition`) and repeated across the batch inside `velocity`. The
arithmetic of the engine stays float32; the cast to the pipeline dtype (bf16 on CUDA) happens here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from flowscale.models import graph_mode


@dataclass(frozen=True)
class PromptCond:
    """Prompt embeddings of one prompt (batch 1), on the execution device in the pipeline dtype."""

    embeds: torch.Tensor
    pooled: torch.Tensor
    text_ids: torch.Tensor | None = None  # FLUX
    neg_embeds: torch.Tensor | None = None  # SD3 with CFG
    neg_pooled: torch.Tensor | None = None


class DiffusersFlowAdapter:
    """Common part: latent shape, device, decoding with the pipeline's VAE."""

    dtype = torch.float32  # the engine's arithmetic dtype; the pipeline's own is `model_dtype`

    def __init__(self, pipe: Any, name: str, height: int, width: int, decode_batch: int = 5,
                 device: torch.device | None = None) -> None:
        self.pipe = pipe
        self.name = name
        self.height = height
        self.width = width
        self.decode_batch = decode_batch
        # the device the transformer runs on (given: with the text encoders on the CPU, diffusers' own
        # _execution_device may name the CPU)
        self.device = torch.device(device if device is not None else pipe._execution_device)
        self.text_device = self.device  # where the text encoders run (the CPU under the text-cpu memory plan)
        self.model_dtype = pipe.transformer.dtype
        self.preview_decoder: TinyPreviewDecoder | None = None

    @property
    def vae_scale_factor(self) -> int:
        return int(self.pipe.vae_scale_factor)

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Latents [B, C, h, w] -> images [B, 3, H, W] float32 in [0, 1] on the CPU, in micro-batches.

        image = (VAE.decode(x0 / scaling_factor + shift_factor) / 2 + 0.5).clamp(0, 1) (method.md a.9).
        Differentiable when x0 carries a graph (reward guidance); otherwise in inference mode.
        """
        vae = self.pipe.vae
        scale = float(vae.config.scaling_factor)
        shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
        out = []
        with graph_mode(x0):
            for lo in range(0, x0.shape[0], self.decode_batch):
                lat = x0[lo:lo + self.decode_batch].to(self.device, torch.float32) / scale + shift
                img = vae.decode(lat.to(vae.dtype), return_dict=False)[0]
                out.append((img.float() / 2 + 0.5).clamp(0, 1).cpu())
        return torch.cat(out)

    def preview_latents(self, x0: torch.Tensor, size: int = 64) -> list[np.ndarray]:
        """Cheap uint8 thumbnails of latents with the tiny autoencoder, when one was given (else the VAE)."""
        if self.preview_decoder is not None:
            return self.preview_decoder.thumbnails(x0, size)
        return thumbnails(self.decode(x0), size)


class FluxAdapter(DiffusersFlowAdapter):
    """FLUX.1 (schnell / dev) transformer as a FlowModel on unpacked latents [B, C, h, w]."""

    def __init__(self, pipe: Any, name: str, height: int, width: int, guidance_scale: float | None = 3.5,
                 max_sequence_length: int = 512, decode_batch: int = 5, device: torch.device | None = None) -> None:
        super().__init__(pipe, name, height, width, decode_batch, device)
        multiple = 2 * self.vae_scale_factor
        if height % multiple or width % multiple:
            raise ValueError(f"height and width must be multiples of {multiple} for {name}; got {height}x{width}")
        self.channels = pipe.transformer.config.in_channels // 4
        self.h = 2 * (height // multiple)
        self.w = 2 * (width // multiple)
        self.sample_shape = (self.channels, self.h, self.w)
        self.has_guidance = bool(pipe.transformer.config.guidance_embeds)
        self.guidance_scale = float(guidance_scale) if (self.has_guidance and guidance_scale is not None) else None
        self.max_sequence_length = max_sequence_length
        self.img_ids = pipe._prepare_latent_image_ids(1, self.h // 2, self.w // 2, self.device, self.model_dtype)

    @property
    def image_seq_len(self) -> int:
        return (self.h // 2) * (self.w // 2)

    @torch.no_grad()  # not inference mode: a reward-guided run saves the embeddings for its backward pass
    def encode_condition(self, prompt: str) -> PromptCond:
        embeds, pooled, text_ids = self.pipe.encode_prompt(
            prompt=prompt, prompt_2=None, device=self.text_device, num_images_per_prompt=1,
            max_sequence_length=self.max_sequence_length)
        return PromptCond(*(t.to(self.device, self.model_dtype) for t in (embeds, pooled, text_ids)))

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: PromptCond) -> torch.Tensor:
        with graph_mode(x):  # a reward-guided evaluation differentiates through the transformer
            return self._velocity(x, t, cond)

    def _velocity(self, x: torch.Tensor, t: torch.Tensor, cond: PromptCond) -> torch.Tensor:
        b = x.shape[0]
        tokens = self.pipe._pack_latents(x.to(self.device, self.model_dtype), b, self.channels, self.h, self.w)
        guidance = None
        if self.has_guidance:
            guidance = torch.full((b,), self.guidance_scale or 0.0, device=self.device, dtype=torch.float32)
        out = self.pipe.transformer(
            hidden_states=tokens,
            timestep=t.to(self.device, torch.float32),  # in [0, 1]; the transformer multiplies by 1000
            guidance=guidance,
            pooled_projections=cond.pooled.expand(b, -1),
            encoder_hidden_states=cond.embeds.expand(b, -1, -1),
            txt_ids=cond.text_ids,
            img_ids=self.img_ids,
            return_dict=False,
        )[0]
        return self.pipe._unpack_latents(out, self.height, self.width, self.vae_scale_factor).float()


class SD3Adapter(DiffusersFlowAdapter):
    """SD3 / SD3.5 transformer with batched classifier-free guidance as a FlowModel."""

    def __init__(self, pipe: Any, name: str, height: int, width: int, guidance_scale: float = 7.0,
                 max_sequence_length: int = 256, decode_batch: int = 5, device: torch.device | None = None) -> None:
        super().__init__(pipe, name, height, width, decode_batch, device)
        multiple = self.vae_scale_factor * int(pipe.transformer.config.patch_size)
        if height % multiple or width % multiple:
            raise ValueError(f"height and width must be multiples of {multiple} for {name}; got {height}x{width}")
        self.channels = int(pipe.transformer.config.in_channels)
        self.h = height // self.vae_scale_factor
        self.w = width // self.vae_scale_factor
        self.sample_shape = (self.channels, self.h, self.w)
        self.guidance_scale = float(guidance_scale)
        self.do_cfg = self.guidance_scale > 1.0  # as StableDiffusion3Pipeline.do_classifier_free_guidance
        self.max_sequence_length = max_sequence_length

    @property
    def transformer_rows_per_nfe(self) -> int:
        return 2 if self.do_cfg else 1

    @torch.no_grad()  # not inference mode: a reward-guided run saves the embeddings for its backward pass
    def encode_condition(self, prompt: str, negative_prompt: str = "") -> PromptCond:
        embeds, neg, pooled, neg_pooled = self.pipe.encode_prompt(
            prompt=prompt, prompt_2=None, prompt_3=None, device=self.text_device, num_images_per_prompt=1,
            do_classifier_free_guidance=self.do_cfg, negative_prompt=negative_prompt,
            max_sequence_length=self.max_sequence_length)
        on = [None if t is None else t.to(self.device, self.model_dtype) for t in (embeds, pooled, neg, neg_pooled)]
        return PromptCond(on[0], on[1], None, on[2], on[3])

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: PromptCond) -> torch.Tensor:
        with graph_mode(x):  # a reward-guided evaluation differentiates through the transformer
            return self._velocity(x, t, cond)

    def _velocity(self, x: torch.Tensor, t: torch.Tensor, cond: PromptCond) -> torch.Tensor:
        b = x.shape[0]
        x_in = x.to(self.device, self.model_dtype)
        timestep = (t.to(self.device, torch.float64) * 1000).to(torch.float32)  # SD3 takes sigma * 1000
        embeds, pooled = cond.embeds.expand(b, -1, -1), cond.pooled.expand(b, -1)
        if self.do_cfg:  # one call of 2B rows: [uncond; cond], as the pipeline batches them
            x_in = torch.cat([x_in, x_in])
            timestep = torch.cat([timestep, timestep])
            embeds = torch.cat([cond.neg_embeds.expand(b, -1, -1), embeds])
            pooled = torch.cat([cond.neg_pooled.expand(b, -1), pooled])
        out = self.pipe.transformer(hidden_states=x_in, timestep=timestep, encoder_hidden_states=embeds,
                                    pooled_projections=pooled, return_dict=False)[0].float()
        if not self.do_cfg:
            return out
        u_uncond, u_cond = out.chunk(2)
        return u_uncond + self.guidance_scale * (u_cond - u_uncond)


class TinyPreviewDecoder:
    """AutoencoderTiny (e.g. madebyollin/taef1, taesd3) for cheap latent previews; never for final images."""

    def __init__(self, path: str, device: torch.device, dtype: torch.dtype) -> None:
        from diffusers import AutoencoderTiny

        from flowscale.hub import load_pretrained

        self.vae = load_pretrained(lambda loc, local: AutoencoderTiny.from_pretrained(loc, local_files_only=local),
                                   path, "params", "preview autoencoder (t2i.preview_vae)")
        self.vae.to(device, dtype).eval().requires_grad_(False)
        self.device, self.dtype = device, dtype

    @torch.inference_mode()
    def thumbnails(self, x0: torch.Tensor, size: int = 64) -> list[np.ndarray]:
        cfg = self.vae.config
        lat = x0.to(self.device, torch.float32) / float(getattr(cfg, "scaling_factor", 1.0) or 1.0)
        lat = lat + float(getattr(cfg, "shift_factor", 0.0) or 0.0)
        img = self.vae.decode(lat.to(self.dtype), return_dict=False)[0]  # in [-1, 1]
        return thumbnails((img.float() / 2 + 0.5).clamp(0, 1).cpu(), size)


def thumbnails(images: torch.Tensor, size: int = 64) -> list[np.ndarray]:
    """Images [B, 3, H, W] in [0, 1] -> list of uint8 HWC arrays whose longer side is `size`."""
    h, w = images.shape[-2:]
    scale = size / max(h, w)
    if scale < 1:
        images = F.interpolate(images.float(), size=(max(1, round(h * scale)), max(1, round(w * scale))),
                               mode="bilinear", antialias=True, align_corners=False)
    arr = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(arr)


class RandomProjection:
    """A fixed seeded random projection of flattened latents to 2-D (trajectory plots): x @ P, P ~ N(0, 1/D)."""

    def __init__(self, dim: int, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.matrix = torch.randn(dim, 2, generator=gen, dtype=torch.float32) / float(dim) ** 0.5
        self._on: dict[torch.device, torch.Tensor] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = self._on.get(x.device)
        if m is None:
            m = self._on.setdefault(x.device, self.matrix.to(x.device))
        return (x.reshape(x.shape[0], -1).float() @ m).to("cpu", torch.float64)
