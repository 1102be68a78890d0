"""The weight-free GPU speed harness: FLUX.1-schnell at its published size (counted on the meta device, no
memory), and the whole harness at toy size on the CPU."""

import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from flux_random_speed import FLUX_SCHNELL_TRANSFORMER, FLUX_VAE  # noqa: E402


def test_the_configs_have_flux_schnells_size():
    from diffusers import AutoencoderKL, FluxTransformer2DModel

    with torch.device("meta"):
        transformer = FluxTransformer2DModel(**FLUX_SCHNELL_TRANSFORMER)
        vae = AutoencoderKL(**FLUX_VAE)
    params = sum(p.numel() for p in transformer.parameters())
    assert 11.8e9 < params < 12.0e9  # FLUX.1-schnell's transformer: about 11.9 B parameters
    assert 80e6 < sum(p.numel() for p in vae.parameters()) < 90e6  # its VAE: about 84 M


def test_the_harness_runs_at_toy_size_on_the_cpu():
    done = subprocess.run([sys.executable, "benchmarks/gpu_t2i_bench.py", "speed", "--random-weights", "--toy",
                           "--size", "64", "--batches", "1,2", "--repeats", "1"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out["s_per_nfe"]) == {"1", "2"} and all(v > 0 for v in out["s_per_nfe"].values())
    assert out["decode_s"]["vae"] > 0 and out["decode_s"]["tiny_ae"] > 0
    assert set(out["rbf_500_projected_s"]) == {"1", "8"}
