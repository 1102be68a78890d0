"""The weight-free GPU speed harness: FLUX.1-schnell at its published size (counted on the meta device, no
memory), and the whole harness at toy size on the CPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from flux_random_speed import FLUX_SCHNELL_TRANSFORMER, FLUX_VAE, build  # noqa: E402


def test_the_configs_have_flux_schnells_size():
    from diffusers import AutoencoderKL, FluxTransformer2DModel

    with torch.device("meta"):
        transformer = FluxTransformer2DModel(**FLUX_SCHNELL_TRANSFORMER)
        vae = AutoencoderKL(**FLUX_VAE)
    params = sum(p.numel() for p in transformer.parameters())
    assert 11.8e9 < params < 12.0e9  # FLUX.1-schnell's transformer: about 11.9 B parameters
    assert 80e6 < sum(p.numel() for p in vae.parameters()) < 90e6  # its VAE: about 84 M


def test_the_models_are_made_in_their_final_dtype_and_the_default_dtype_is_restored():
    """A GPU build in bf16 must never hold float32 parameters (48 GB for FLUX.1-schnell's transformer)."""
    made = []
    original = torch.nn.Module.register_parameter

    def register(self, name, param):
        if param is not None:
            made.append(param.dtype)
        return original(self, name, param)

    torch.nn.Module.register_parameter = register
    try:
        models = build(True, torch.device("cpu"), torch.bfloat16)
    finally:
        torch.nn.Module.register_parameter = original
    assert made and set(made) == {torch.bfloat16}
    assert all(p.dtype == torch.bfloat16 for m in models for p in m.parameters())
    assert torch.get_default_dtype() == torch.float32


def test_the_harness_runs_at_toy_size_on_the_cpu():
    done = subprocess.run([sys.executable, "benchmarks/gpu_t2i_bench.py", "speed", "--random-weights", "--toy",
                           "--size", "64", "--batches", "1,2", "--repeats", "1"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out["s_per_nfe"]) == {"1", "2"} and all(v > 0 for v in out["s_per_nfe"].values())
    assert out["decode_s"]["vae"] > 0 and out["decode_s"]["tiny_ae"] > 0
    assert set(out["rbf_500_projected_s"]) == {"1", "8"}
    cal = out["calibration"]  # on a CPU: timings, and no memory figures
    assert cal["guided_s_per_nfe"] > 0 and cal["guided_over_plain"] > 0
    assert cal["BLOCK_TENSORS"]["implied"] == {"1": None, "2": None} and cal["DECODE_TENSORS"]["implied"] is None
    assert set(cal["SEC_PER_NFE"]["transformer_and_decode"]) == {"1", "2"}


def test_calibration_inverts_the_memory_model_at_flux_schnells_size():
    """Activations measured exactly as memory.py models them at 1024^2 give back its constants, and its own
    estimate equals the measurement: the harness counts the tokens and bytes as the memory model does."""
    from types import SimpleNamespace

    from flux_random_speed import calibration

    from flowscale.worlds.t2i import memory

    cfg = SimpleNamespace(**FLUX_SCHNELL_TRANSFORMER)
    vae = SimpleNamespace(**FLUX_VAE)
    seq, tokens, width, unit = (1024 // 16) ** 2, 256, 24 * 128, 2
    forward = {b: b * (seq + tokens) * width * unit * memory.BLOCK_TENSORS for b in (1, 2, 4)}
    decode = 1024 * 1024 * 128 * unit * memory.DECODE_TENSORS
    out = {"s_per_call": {1: 0.5, 2: 0.9, 4: 1.7}, "s_per_nfe": {1: 0.5, 2: 0.45, 4: 0.425}, "decode_s": {"vae": 0.1}}
    cal = calibration(out, cfg, vae, torch.bfloat16, seq, tokens, 1024, False, forward, decode, 1.1,
                      int(memory.GUIDED_FACTOR * forward[1]), 24 * 10**9)
    assert all(abs(v - memory.BLOCK_TENSORS) < 1e-9 for v in cal["BLOCK_TENSORS"]["implied"].values())
    assert abs(cal["DECODE_TENSORS"]["implied"] - memory.DECODE_TENSORS) < 1e-9
    assert abs(cal["GUIDED_FACTOR"]["implied"] - memory.GUIDED_FACTOR) < 1e-6
    for b in forward:
        assert abs(cal["estimate_activation_gb"][b] - cal["measured_activation_gb"][b]) < 1e-6
    assert abs(cal["estimate_decode_gb"] - cal["measured_decode_gb"]) < 1e-6
    assert cal["guided_over_plain"] == 1.1 / 0.5 and cal["SEC_PER_NFE"]["transformer_and_decode"][2] == 0.45 + 0.1
    assert cal["weights_gb"] == 24.0


def test_the_real_size_is_refused_on_a_cpu_with_what_to_do_instead(monkeypatch, capsys):
    """Without a GPU, the real-size build (12 B parameters in float32: 48 GB) is refused before anything is made."""
    import gpu_t2i_bench

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sys, "argv", ["gpu_t2i_bench.py", "speed", "--random-weights", "--size", "1024"])
    with pytest.raises(SystemExit) as stop:
        gpu_t2i_bench.main()
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "needs a CUDA GPU" in err and "add --toy" in err
