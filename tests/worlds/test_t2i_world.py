"""Text-to-image world on tiny random FLUX / SD3 pipelines built offline (ecosystem.md 3.7).

The pipelines are saved with save_pretrained and loaded back through the world's own loader (the code path
of the real checkpoints) with HF_HUB_OFFLINE=1. Checks: the adapters' ODE reproduces the diffusers pipelines'
latents exactly (float32), the velocity sign matches FlowMatchEulerDiscreteScheduler.step, FLUX.1-dev's
dynamic shift equals the engine's shift with e^mu, runs through flowscale.run / the CLI write record.json
and result.png, and missing weights offline are a ConfigError.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from diffusers import AutoencoderTiny, FlowMatchEulerDiscreteScheduler

from flowscale.cli import main
from flowscale.config import ConfigError, RunConfig
from flowscale.grids import GridSpec, make_grid, shift_times
from flowscale.models import CountedModel
from flowscale.processes import make_process, process_step
from flowscale.run import run, stream
from flowscale.sampler import FlowSampler
from flowscale.worlds.t2i import availability
from flowscale.worlds.t2i import world as t2i
from flowscale.worlds.t2i.adapters import FluxAdapter, SD3Adapter
from flowscale.worlds.t2i.availability import load_pipeline

REPO = Path(__file__).resolve().parents[2]
PROMPT = "a red apple"


pytestmark = pytest.mark.usefixtures("offline_single_thread")  # conftest.py


def _t(value: float) -> torch.Tensor:
    return torch.tensor(float(value), dtype=torch.float64)


def adapter_ode(adapter, cond, x: torch.Tensor, sigmas: np.ndarray) -> tuple[torch.Tensor, int]:
    """Linear-ODE Euler steps over the pipeline's sigmas (ending with the step to 0), via the engine."""
    process = make_process("linear-ode")
    counted = CountedModel(adapter)
    sampler = FlowSampler(counted, process, cond)
    for i in range(len(sigmas) - 1):
        u, _ = sampler.evaluate(x, _t(sigmas[i]))
        x = process_step(process, x, u, _t(sigmas[i]), _t(sigmas[i + 1]), None)
    return x, counted.nfe


# --- adapters against the pipelines -------------------------------------------------------------------
@pytest.mark.parametrize("model,guidance", [("flux-schnell", 0.0), ("flux-dev", 3.5)])
def test_flux_adapter_reproduces_pipeline_latents(pipe_dirs, model, guidance):
    pipe = load_pipeline(model, pipe_dirs[model], torch.device("cpu"), torch.float32)
    adapter = FluxAdapter(pipe, model, 32, 32, guidance_scale=guidance, max_sequence_length=32)
    cond = adapter.encode_condition(PROMPT)
    x1 = torch.randn(2, *adapter.sample_shape, generator=torch.Generator().manual_seed(0))
    packed = pipe._pack_latents(x1, 2, *adapter.sample_shape)
    ref = pipe(PROMPT, height=32, width=32, num_inference_steps=4, guidance_scale=guidance, latents=packed,
               max_sequence_length=32, output_type="latent", num_images_per_prompt=2).images
    ref = pipe._unpack_latents(ref, 32, 32, pipe.vae_scale_factor)
    sigmas = pipe.scheduler.sigmas.double().numpy()
    out, nfe = adapter_ode(adapter, cond, x1, sigmas)
    assert nfe == 2 * 4
    assert (out - ref).abs().max().item() <= 1e-5 * max(1.0, ref.abs().max().item())


def test_sd3_adapter_with_cfg_reproduces_pipeline_latents(pipe_dirs):
    pipe = load_pipeline("sd3", pipe_dirs["sd3"], torch.device("cpu"), torch.float32)
    adapter = SD3Adapter(pipe, "sd3", 32, 32, guidance_scale=5.0, max_sequence_length=32)
    assert adapter.do_cfg and adapter.transformer_rows_per_nfe == 2
    cond = adapter.encode_condition(PROMPT)
    x1 = torch.randn(2, *adapter.sample_shape, generator=torch.Generator().manual_seed(1))
    ref = pipe(PROMPT, height=32, width=32, num_inference_steps=4, guidance_scale=5.0, latents=x1,
               max_sequence_length=32, output_type="latent", num_images_per_prompt=2).images
    out, nfe = adapter_ode(adapter, cond, x1, pipe.scheduler.sigmas.double().numpy())
    assert nfe == 2 * 4  # a CFG evaluation (2 transformer rows) is one NFE per particle
    assert (out - ref).abs().max().item() <= 1e-5 * max(1.0, ref.abs().max().item())


def test_velocity_sign_matches_scheduler_step(pipe_dirs):
    pipe = load_pipeline("flux-schnell", pipe_dirs["flux-schnell"], torch.device("cpu"), torch.float32)
    adapter = FluxAdapter(pipe, "flux-schnell", 32, 32, None, 32)
    cond = adapter.encode_condition(PROMPT)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    scheduler.set_timesteps(4)
    x = torch.randn(1, *adapter.sample_shape, generator=torch.Generator().manual_seed(2))
    sigma, sigma_next = float(scheduler.sigmas[1]), float(scheduler.sigmas[2])
    u = adapter.velocity(x, torch.tensor([sigma], dtype=torch.float64), cond)
    packed = pipe._pack_latents(x, 1, *adapter.sample_shape)
    u_packed = pipe._pack_latents(u, 1, *adapter.sample_shape)
    scheduler._step_index = 1
    stepped = scheduler.step(u_packed, scheduler.timesteps[1], packed, return_dict=False)[0]
    ours = process_step(make_process("linear-ode"), x, u, _t(sigma), _t(sigma_next), None)
    assert torch.allclose(pipe._unpack_latents(stepped, 32, 32, pipe.vae_scale_factor), ours, atol=1e-6)


def test_flux_dev_shift_is_exponential_time_shift(pipe_dirs):
    pipe = load_pipeline("flux-dev", pipe_dirs["flux-dev"], torch.device("cpu"), torch.float32)
    adapter = FluxAdapter(pipe, "flux-dev", 32, 32, 3.5, 32)
    shift = t2i.flux_shift(pipe, adapter.image_seq_len)
    mu = math.log(shift)
    t = torch.linspace(0.01, 1.0, 50, dtype=torch.float64)
    exponential = math.exp(mu) / (math.exp(mu) + (1 / t - 1))
    assert torch.allclose(shift_times(t, shift), exponential, atol=1e-12)
    # the engine's default flux-dev grid equals the pipeline's sigmas
    pipe.scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / 6, 6), mu=mu)
    grid = make_grid(GridSpec("uniform", 6, "linear", shift), make_process("linear-ode"))
    assert torch.allclose(grid, pipe.scheduler.sigmas.double(), atol=1e-6)


# --- the world through the engine ---------------------------------------------------------------------
def _cfg(dirs, **kw) -> RunConfig:
    base = dict(model="flux-schnell", model_path=dirs["flux-schnell"], prompt=PROMPT, height=32, width=32,
                steps=4, nfe=24, reward="brightness")
    base.update(kw)
    return RunConfig(**base)


@pytest.mark.parametrize("method,process", [("ode", "linear-ode"), ("bon", "linear-ode"), ("rbf", "vp-sde"),
                                            ("smc", "linear-sde"), ("svdd", "vp-sde")])
def test_run_methods(pipe_dirs, method, process):
    out = run(_cfg(pipe_dirs, method=method, process=process))
    rec = out.record
    assert rec.nfe_used == (4 if method == "ode" else 24) and rec.nfe_used <= rec.nfe_budget
    assert math.isfinite(rec.final_reward) and 0.0 <= rec.final_reward <= 1.0
    assert out.decoded.shape[1:] == (3, 32, 32) and out.decoded.dtype == torch.float32
    assert out.samples.shape[1:] == (1, 32, 32)
    assert np.asarray(rec.samples_2d).shape == (out.samples.shape[0], 2)
    assert rec.extra["world"]["latent_shape"] == [1, 32, 32]
    assert "note" in rec.extra["world"]  # default held-out (aesthetic) skipped: no head weights here


def test_world_defaults_per_model(pipe_dirs):
    schnell = t2i.build_world(_cfg(pipe_dirs))
    d = schnell.defaults
    assert (d.steps, d.grid, d.grid_space, d.nfe, d.max_batch, d.shift) == (10, "exp", "process", 500, 5, 1.0)
    assert d.reward == "brightness" and d.heldout is None
    dev = t2i.build_world(_cfg(pipe_dirs, model="flux-dev", model_path=pipe_dirs["flux-dev"]))
    assert (dev.defaults.steps, dev.defaults.grid, dev.defaults.grid_space) == (28, "uniform", "linear")
    assert dev.defaults.shift == pytest.approx(t2i.flux_shift(dev.model.pipe, 256))
    assert dev.info["guidance_scale"] == 3.5
    sd3 = t2i.build_world(_cfg(pipe_dirs, model="sd3", model_path=pipe_dirs["sd3"],
                               params={"t2i.guidance_scale": 4.0}))
    assert (sd3.defaults.steps, sd3.defaults.grid_space, sd3.defaults.shift) == (28, "linear", 3.0)
    assert sd3.info["guidance_scale"] == 4.0 and sd3.info["transformer_rows_per_nfe"] == 2


def test_sd3_and_flux_dev_run(pipe_dirs):
    for model in ("sd3", "flux-dev"):
        out = run(_cfg(pipe_dirs, model=model, model_path=pipe_dirs[model], method="bon", nfe=8, steps=4))
        assert out.record.nfe_used == 8 and math.isfinite(out.record.final_reward)


def test_previews_projection_and_outputs(pipe_dirs, tmp_path):
    world = t2i.build_world(_cfg(pipe_dirs))
    x = torch.randn(3, *world.model.sample_shape)
    images = world.decode(x)
    assert images.shape == (3, 3, 32, 32) and float(images.min()) >= 0 and float(images.max()) <= 1
    thumbs = world.previews(images)
    assert len(thumbs) == 3 and thumbs[0].dtype == np.uint8 and thumbs[0].shape == (32, 32, 3)
    big = world.previews(torch.rand(1, 3, 128, 96))
    assert big[0].shape == (64, 48, 3)
    p = world.project(x)
    assert p.shape == (3, 2) and p.dtype == torch.float64
    assert torch.equal(p, t2i.build_world(_cfg(pipe_dirs)).project(x))  # fixed seeded projection
    paths = world.save_outputs(images, str(tmp_path))
    assert [Path(p).name for p in paths] == ["result.png", "grid.png"] and all(Path(p).is_file() for p in paths)


def test_tiny_preview_decoder(pipe_dirs, tmp_path):
    tae = AutoencoderTiny(in_channels=3, out_channels=3, encoder_block_out_channels=(8,),
                          decoder_block_out_channels=(8,), num_encoder_blocks=(1,), num_decoder_blocks=(1,),
                          latent_channels=1, upsampling_scaling_factor=1)
    tae.save_pretrained(tmp_path / "tae")
    world = t2i.build_world(_cfg(pipe_dirs, params={"t2i.preview_vae": str(tmp_path / "tae")}))
    thumbs = world.model.preview_latents(torch.randn(2, *world.model.sample_shape))
    assert len(thumbs) == 2 and thumbs[0].shape == (32, 32, 3) and thumbs[0].dtype == np.uint8
    # the streamed previews of a run come from the tiny autoencoder, never from a second full-VAE decode
    decoded_by = []
    tiny_thumbnails = world.model.preview_decoder.thumbnails
    world.model.preview_decoder.thumbnails = lambda x0, size=64: decoded_by.append(len(x0)) or tiny_thumbnails(x0, size)
    full_decode, full_calls = world.decode, []
    world = dataclasses.replace(world, decode=lambda x0: full_calls.append(len(x0)) or full_decode(x0))
    cfg = _cfg(pipe_dirs, method="bon", process="vp-sde", heldout="none",
               params={"t2i.preview_vae": str(tmp_path / "tae")})
    events = [e for e in stream(cfg, world) if e.kind == "candidates"]
    assert decoded_by == [e.data["n"] for e in events] and all(len(e.data["_previews"]) == e.data["n"] for e in events)
    assert sum(full_calls) == 24 + 6  # the reward's decode of every candidate (and the returned samples), no more
    record = run(cfg, world).record
    assert record.extra["preview_time_s"] > 0 and "preview_time_s" not in record.comparable()
    # where nothing shows them (the CLI, the API, benchmarks), no previews are made, and the record is the same
    decoded_by.clear()
    quiet = run(cfg, world, previews=False)
    assert decoded_by == [] and quiet.trace.previews == {} and "preview_time_s" not in quiet.record.extra
    assert quiet.record.comparable() == record.comparable()


def test_cli_main_writes_record_and_images(pipe_dirs, tmp_path):
    out = tmp_path / "out"
    code = main(["run", "--model", "flux-schnell", "--model-path", pipe_dirs["flux-schnell"], "--prompt", PROMPT,
                 "--height", "32", "--width", "32", "--method", "rbf", "--process", "vp-sde", "--steps", "4",
                 "--nfe", "24", "--reward", "brightness", "--out", str(out)])
    assert code == 0
    record = json.loads((out / "record.json").read_text())
    assert record["nfe_used"] == 24 and record["config"]["model_path"] == pipe_dirs["flux-schnell"]
    assert (out / "result.png").is_file() and (out / "grid.png").is_file()
    assert "preview_time_s" not in record.get("extra", {}) and "preview_time_s" not in record  # none made


def test_cli_subprocess_offline(pipe_dirs, tmp_path):
    out = tmp_path / "cli"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "FLOWSCALE_DEVICE": "cpu",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "flowscale", "run", "--model", "flux-schnell", "--model-path",
           pipe_dirs["flux-schnell"], "--prompt", PROMPT, "--height", "32", "--width", "32", "--method", "rbf",
           "--process", "vp-sde", "--steps", "4", "--nfe", "24", "--reward", "brightness", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "record.json").is_file() and (out / "result.png").is_file()
    assert "NFE 24/24" in proc.stdout


# --- errors ---------------------------------------------------------------------------------------------
def test_missing_weights_offline_is_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        run(RunConfig(model="flux-schnell", prompt=PROMPT, height=32, width=32, reward="brightness"))
    assert err.value.field == "model" and "FLUX.1-schnell" in str(err.value)
    with pytest.raises(ConfigError) as err:
        run(RunConfig(model="flux-schnell", model_path=str(tmp_path / "nope"), prompt=PROMPT, reward="brightness"))
    assert err.value.field == "model_path"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as err:
        run(RunConfig(model="sd3.5", model_path=str(tmp_path / "empty"), prompt=PROMPT, reward="brightness"))
    assert err.value.field == "model_path" and "model_index.json" in str(err.value)


def test_bad_settings_are_config_errors(pipe_dirs, capsys):
    cases = [
        (dict(model_path=pipe_dirs["sd3"]), "model_path"),  # an SD3 folder for a FLUX model
        (dict(prompt=None), "prompt"),
        (dict(height=40), "height"),
        (dict(reward="nope"), "reward"),
        (dict(heldout="clip:x"), "heldout"),
        (dict(params={"t2i.guidance_scale": "lots"}), "params"),
        (dict(params={"t2i.unknown": 1}), "params"),
        (dict(reward="vqascore"), "reward"),  # FLOWSCALE_VQASCORE_URL unset
    ]
    os.environ.pop("FLOWSCALE_VQASCORE_URL", None)
    for kw, field in cases:
        with pytest.raises(ConfigError) as err:
            run(_cfg(pipe_dirs, **kw))
        assert err.value.field == field, (kw, err.value)
    code = main(["run", "--model", "flux-schnell", "--prompt", PROMPT, "--height", "32", "--width", "32",
                 "--reward", "brightness", "--out", "/tmp/never"])
    assert code == 2 and capsys.readouterr().err.startswith("error: --model: ")


@pytest.mark.parametrize("method", ["rbf", "bon", "base", "ode"])
def test_the_gpu_time_rule_is_the_engines_estimate_of_the_resolved_run(pipe_dirs, method):
    """estimate_config sizes a run from the model's declared defaults without loading it; it must equal the
    estimate of the run as prepare resolves it with the weights loaded (one sizing rule)."""
    from flowscale.run import estimate_config, estimate_run, prepare

    cfg = _cfg(pipe_dirs, method=method, process="linear-ode" if method == "ode" else "vp-sde", steps=None,
               nfe=None if method in ("ode", "base") else 40)
    assert estimate_config(cfg) == estimate_run(prepare(cfg))
    guided = dataclasses.replace(cfg, dps=1.0)
    if method != "ode":
        assert estimate_config(guided).seconds > estimate_config(cfg).seconds  # backward passes cost time too


# --- host-side model folders (FLOWSCALE_MODELS) ---------------------------------------------------------
def test_a_host_folder_is_served_through_run_while_visitors_cannot_name_paths(pipe_dirs, monkeypatch, tmp_path):
    from flowscale.ui.api import api_run
    from flowscale.ui.models import model_status
    from flowscale.ui.records import read_upload

    monkeypatch.setenv("FLOWSCALE_MODELS", f"flux-schnell={pipe_dirs['flux-schnell']}")
    assert model_status("flux-schnell") is None  # the app offers it
    updates = list(api_run(model="flux-schnell", method="rbf", process="vp-sde", nfe=24, steps=4, seed=0,
                           prompt=PROMPT, height=32, width=32, reward="brightness", heldout="none"))
    status, record = updates[-1]
    assert status["status"] == "done" and record["nfe_used"] <= 24
    assert record["config"]["model_path"] is None and record["world"]["weights"] == "FLOWSCALE_MODELS"
    assert record["world"]["height"] == 32  # /run takes height and width
    upload = tmp_path / "visitor.json"
    upload.write_text(json.dumps({"config": {"model": "flux-schnell", "model_path": "/etc"}}))
    with pytest.raises(ConfigError) as info:
        read_upload(str(upload))  # a visitor's record naming a server path is refused
    assert info.value.field == "model_path"
    monkeypatch.setenv("FLOWSCALE_MODELS", "flux-schnell")
    with pytest.raises(ConfigError) as info:
        availability.host_folders()
    assert info.value.field == "FLOWSCALE_MODELS"


def test_missing_weights_tell_each_audience_what_to_do(monkeypatch):
    from flowscale.ui.errors import as_gr_error

    monkeypatch.delenv("FLOWSCALE_MODELS", raising=False)
    with pytest.raises(ConfigError) as info:
        run(RunConfig(model="flux-schnell", method="ode", prompt=PROMPT, height=32, width=32, steps=2))
    text = str(info.value)
    assert "--model-path" in text and "FLOWSCALE_MODELS" in text  # the CLI user and the host
    shown = str(as_gr_error(info.value))
    assert "available here: toy2d" in shown  # the visitor: what runs here


def test_the_paper_recipe_is_the_released_setting(pipe_dirs):
    cfg = _cfg(pipe_dirs, method="rbf", process="vp-sde", nfe=500, steps=None, recipe="paper", heldout="none")
    rec = run(cfg).record
    c = rec.config
    assert c["recipe"] == "paper" and c["steps"] == 10 and c["grid"] == "exp" and c["grid_space"] == "process"
    assert c["params"]["t2i.max_sequence_length"] == 512 and c["params"]["rbf.variant"] == "code"
    assert c["params"]["rbf.init_particles"] == 25 and c["max_batch"] == 5 and c["state_dtype"] == "bfloat16"
    assert (c["height"], c["width"]) == (32, 32)  # explicit flags win over the recipe's 1024^2
    assert rec.nfe_used == 498 and rec.nfe_budget == 500
    assert run(RunConfig.from_dict(c)).record.comparable() == rec.comparable()  # a replay applies nothing new


@pytest.mark.parametrize("method", ["base", "rbf"])
def test_reward_guidance_differentiates_through_the_transformer_and_the_vae(pipe_dirs, method):
    """DPS on a tiny FLUX pipeline loaded from a folder: the gradient of brightness flows through the VAE decode
    and the transformer (gradient checkpointing on), one backward per guided particle, forward NFE unchanged."""
    extra = {"particles": 3} if method == "base" else {"nfe": 24}
    cfg = _cfg(pipe_dirs, method=method, process="vp-sde", heldout="none", **extra)
    plain = run(cfg).record
    guided = run(dataclasses.replace(cfg, dps=50.0)).record
    assert guided.nfe_used == plain.nfe_used and guided.nfe_used <= guided.nfe_budget
    assert guided.extra["grad_evals"] > 0 and "grad_evals" not in plain.extra
    if method == "base":
        assert guided.extra["grad_evals"] == 3 * 3  # every particle at every step but the last
    assert guided.samples_2d != plain.samples_2d and math.isfinite(guided.final_reward)
    pipe = load_pipeline("flux-schnell", pipe_dirs["flux-schnell"], torch.device("cpu"), torch.float32)
    assert pipe.transformer.gradient_checkpointing and not any(p.requires_grad for p in pipe.transformer.parameters())


def test_guidance_with_a_reward_that_has_no_gradient_names_the_usable_ones(pipe_dirs):
    with pytest.raises(ConfigError) as err:
        run(_cfg(pipe_dirs, method="base", process="vp-sde", particles=2, reward="jpeg-compressibility", dps=1.0))
    assert err.value.field == "dps" and "clip, aesthetic, brightness" in str(err.value)


def test_the_gpu_benchmarks_table2_rows_run_on_a_tiny_pipeline(pipe_dirs, tmp_path):
    """benchmarks/gpu_t2i_bench.py table --dps: the paper's Table 2 rows, here on a tiny FLUX on the CPU."""
    out = tmp_path / "t2"
    done = subprocess.run([sys.executable, "benchmarks/gpu_t2i_bench.py", "table", "--model-path",
                           pipe_dirs["flux-schnell"], "--size", "32", "--reward", "brightness", "--heldout", "none",
                           "--dps", "5", "--nfe", "24", "--steps", "4", "--max-prompts", "1", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    summary = {row["method"]: row for row in json.loads((out / "summary.json").read_text())}
    assert set(summary) == {"ode", "base", "svdd", "rbf"}
    assert summary["ode"]["dps"] == 0 and summary["ode"]["grad_evals"] == 0
    assert summary["base"]["grad_evals"] == 3 and summary["rbf"]["grad_evals"] > 0  # 1 particle x (4 - 1) steps
    assert "RBF + DPS: aesthetic 7.17" in done.stdout
