"""Conditional flow-matching velocity model for the Shapes world, built from diffusers `UNet2DModel`.

Convention (method.md a.1): linear interpolant x_t = (1 - t) x0 + t eps, t = 1 is noise, t = 0 is data.
The network predicts the velocity u = eps - x0 (training loss MSE(u_pred, eps - x0)); one Euler step
toward data is x_{t - dt} = x_t - dt * u. The UNet receives the timestep as t * 1000 (float).

Architecture: the 32x32 RGB image is folded 2x2 into a 16x16x12 tensor (pixel_unshuffle, like a DiT
patch size of 2; this is what keeps a forward at batch 32 under ~160 ms on 2 CPU cores), passed through
a small UNet2DModel (16 -> 8 -> 4, attention at 8x8, 4x4 and in the mid block), and unfolded back. The
condition is the 12-dim count vector (CLASSES order, scenes.py); it is encoded as one-hot counts 0..6 per
class plus the raw counts / 6, projected by a 2-layer MLP to the time-embedding width and added to the
time embedding through `class_embed_type="identity"`; every ResNet block turns that embedding into a
GroupNorm scale and shift (`resnet_time_scale_shift="scale_shift"`). The all-zero count vector is the null
condition (dropped 10 % of the time in training), so classifier-free guidance is available via
`guidance_scale`. Configs written before `resnet_time_scale_shift` / `attention_levels` existed load as
the architecture they were trained with (LEGACY_CONFIG).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from flowscale.models import graph_mode
from flowscale.processes import make_process, process_step
from flowscale.worlds.shapes.scenes import CLASSES, MAX_OBJECTS

N_CLASSES = len(CLASSES)
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"

DEFAULT_CONFIG: dict[str, Any] = {
    "image_size": 32,
    "patch": 2,
    "block_out_channels": [32, 64, 128],
    "layers_per_block": 1,
    "attention": True,
    "attention_head_dim": 32,
    "norm_num_groups": 8,
    "max_count": MAX_OBJECTS,
    "n_classes": N_CLASSES,
    # How the time + count embedding enters each ResNet block: "scale_shift" (AdaGN, as in ADM) gates
    # features by the condition; "default" (a per-channel bias) needed twice the training steps for the
    # same loss and bound counts to colours worse (assets/shapes/MODEL_CARD.md).
    "resnet_time_scale_shift": "scale_shift",
    # Self-attention in this many of the lowest-resolution levels (1: 4x4 only, 2: 8x8 and 4x4).
    "attention_levels": 2,
}
# Keys that configs written before they existed must read as their old behaviour, not the new default.
LEGACY_CONFIG: dict[str, Any] = {"resnet_time_scale_shift": "default", "attention_levels": 1}


def encode_counts(cond: torch.Tensor, max_count: int = MAX_OBJECTS) -> torch.Tensor:
    """Count vectors [B, 12] -> features [B, 12 * (max_count + 1) + 12] (one-hot counts, counts / max)."""
    idx = cond.round().clamp(0, max_count).long()
    onehot = F.one_hot(idx, max_count + 1).to(cond.dtype).flatten(1)
    return torch.cat([onehot, cond / max_count], dim=1)


class ShapesVelocityNet(nn.Module):
    """The trainable module: u = net(x [B,3,32,32], t [B] in [0,1], cond [B,12])."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        self.config = {**DEFAULT_CONFIG, **(config or {})}
        c = self.config
        channels = tuple(c["block_out_channels"])
        n_levels = len(channels)
        n_attn = min(n_levels, c["attention_levels"]) if c["attention"] else 0
        in_ch = 3 * c["patch"] ** 2
        self.unet = UNet2DModel(
            sample_size=c["image_size"] // c["patch"],
            in_channels=in_ch,
            out_channels=in_ch,
            block_out_channels=channels,
            layers_per_block=c["layers_per_block"],
            down_block_types=("DownBlock2D",) * (n_levels - n_attn) + ("AttnDownBlock2D",) * n_attn,
            up_block_types=("AttnUpBlock2D",) * n_attn + ("UpBlock2D",) * (n_levels - n_attn),
            attention_head_dim=c["attention_head_dim"],
            norm_num_groups=c["norm_num_groups"],
            add_attention=c["attention"],
            class_embed_type="identity",
            resnet_time_scale_shift=c["resnet_time_scale_shift"],
        )
        temb = channels[0] * 4
        n_feat = c["n_classes"] * (c["max_count"] + 1) + c["n_classes"]
        self.cond_mlp = nn.Sequential(nn.Linear(n_feat, temb), nn.SiLU(), nn.Linear(temb, temb))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        p = self.config["patch"]
        h = F.pixel_unshuffle(x, p) if p > 1 else x
        emb = self.cond_mlp(encode_counts(cond.to(x.dtype), self.config["max_count"]))
        out = self.unet(h, (t * 1000.0).to(x.dtype), class_labels=emb).sample
        return F.pixel_shuffle(out, p) if p > 1 else out


class ShapesFlowModel:
    """The engine-facing Shapes-world flow model (FlowModel protocol, flowscale/models.py).

    Attributes: name="shapes", sample_shape=(3, 32, 32), device, dtype=float32, guidance_scale (1.0 =
    plain conditional velocity, one network pass per image; > 1 uses classifier-free guidance, two).
    """

    name = "shapes"
    sample_shape = (3, 32, 32)

    def __init__(self, net: ShapesVelocityNet, device: str | torch.device = "cpu", guidance_scale: float = 1.0):
        self.device = torch.device(device)
        self.dtype = torch.float32
        self.net = net.to(self.device, self.dtype).eval()
        self.guidance_scale = float(guidance_scale)

    @property
    def config(self) -> dict[str, Any]:
        return self.net.config

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """u(x, t | cond).

        Args:
            x: [B, 3, 32, 32] state in model space.
            t: [B] (or scalar) linear time in [0, 1], any float dtype; 1 = noise.
            cond: [12] or [B, 12] count vector (CLASSES order).
        Returns:
            [B, 3, 32, 32] velocity (eps - x0 direction) in x's dtype and device.
        """
        n = x.shape[0]
        with graph_mode(x):  # a reward-guided (DPS) evaluation keeps its graph; others build none
            xx = x.to(self.device, self.dtype)
            tt = torch.as_tensor(t, dtype=torch.float64).to(self.device).reshape(-1).expand(n).to(self.dtype)
            cc = torch.as_tensor(cond, dtype=self.dtype).to(self.device).reshape(-1, N_CLASSES).expand(n, -1)
            if self.guidance_scale == 1.0:
                u = self.net(xx, tt, cc)
            else:
                both = self.net(torch.cat([xx, xx]), torch.cat([tt, tt]), torch.cat([cc, torch.zeros_like(cc)]))
                u_c, u_0 = both.chunk(2)
                u = u_0 + self.guidance_scale * (u_c - u_0)
        return u.to(x.device, x.dtype)

    @staticmethod
    def decode(x0: torch.Tensor) -> torch.Tensor:
        """Model space [-1, 1] -> images in [0, 1] (clamped), [B, 3, H, W]."""
        return ((x0 + 1.0) / 2.0).clamp(0.0, 1.0)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write config.json and model.safetensors into `folder`."""
        save_net(self.net, folder)

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, device: str | torch.device = "cpu", guidance_scale: float = 1.0
    ) -> ShapesFlowModel:
        """Load config.json + model.safetensors from `folder` (the shipped assets/shapes or a user's own)."""
        return cls(load_net(folder), device=device, guidance_scale=guidance_scale)


def save_net(net: ShapesVelocityNet, folder: str | Path, extra: dict[str, Any] | None = None) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME))
    config = {**net.config, "model": "shapes", **(extra or {})}
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")


def load_net(folder: str | Path) -> ShapesVelocityNet:
    from safetensors.torch import load_file

    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(f"{folder} must hold {CONFIG_NAME} and {WEIGHTS_NAME}")
    config = json.loads(config_path.read_text())
    net = ShapesVelocityNet({**LEGACY_CONFIG, **{k: v for k, v in config.items() if k in DEFAULT_CONFIG}})
    net.load_state_dict(load_file(str(weights_path)))
    return net.eval()


_LINEAR_ODE = make_process("linear-ode")


def euler_sample(
    model: ShapesFlowModel,
    cond: torch.Tensor,
    n: int,
    steps: int = 30,
    generator: torch.Generator | None = None,
    x1: torch.Tensor | None = None,
) -> torch.Tensor:
    """Plain Euler ODE sampler (the engine's Linear-ODE step, without search or trace) from t = 1 to 0 on a uniform grid, from the noise x1 [n, 3, 32, 32] if given
    (else drawn from `generator`). Returns x0 [n, 3, 32, 32] (model space)."""
    x = torch.randn((n, *model.sample_shape), generator=generator, dtype=torch.float32) if x1 is None else x1
    ts = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    for i in range(steps):
        u = model.velocity(x, ts[i].expand(n), cond)
        x = process_step(_LINEAR_ODE, x, u, ts[i], ts[i + 1], None)  # the engine's Euler step, not a copy
    return x
