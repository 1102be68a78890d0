"""`python -m flowscale.train shapes` and `shapes-reflow`: seeded, resumable from safetensors checkpoints,
exportable, initialisable from exported weights. A few tiny steps each; the real runs are documented in
assets/shapes/MODEL_CARD.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from flowscale.train import main as train_main
from flowscale.train import sample_times
from flowscale.worlds.shapes.model import ShapesFlowModel

TINY = ["--batch", "4", "--threads", "1", "--no-cosine", "--ckpt-every", "1000", "--log-every", "1000"]


def _train(out: Path, export: Path, *extra: str) -> dict[str, torch.Tensor]:
    train_main(["shapes", *TINY, "--out", str(out), "--export", str(export), *extra])
    return load_file(str(export / "model.safetensors"))


def test_resume_continues_the_same_run(tmp_path: Path) -> None:
    # --until stops early without changing the schedule (cosine over --steps), so stop + resume = one run.
    # With the default fast kernels this also checks that resumed AdamW moments take the parameters'
    # channels_last layout (they did not at first, and the resumed run drifted by 5e-4 in two steps).
    straight = _train(tmp_path / "a", tmp_path / "a_export", "--steps", "4", "--cosine", "--warmup", "1")
    _train(tmp_path / "b", tmp_path / "b_export", "--steps", "4", "--until", "2", "--cosine", "--warmup", "1")
    state = json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 2
    resumed = _train(tmp_path / "b", tmp_path / "b_export", "--steps", "4", "--resume", "--cosine", "--warmup", "1")
    assert straight.keys() == resumed.keys()
    for name, value in straight.items():
        assert torch.equal(value, resumed[name]), name
    config = json.loads((tmp_path / "b_export" / "config.json").read_text())
    assert config["training"]["steps"] == 4 and config["training"]["schedule_steps"] == 4
    # Each call is one stage of the record, so a multi-call recipe can be repeated from the export alone.
    stages = config["training"]["stages"]
    assert [(s["start_step"], s["end_step"], s["schedule_steps"]) for s in stages] == [(0, 2, 4), (2, 4, 4)]


def test_resume_with_longer_schedule_is_recorded_as_a_new_stage(tmp_path: Path) -> None:
    _train(tmp_path / "a", tmp_path / "a_export", "--steps", "2")
    state_path = tmp_path / "a" / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text())
    # A checkpoint from before stages were recorded still tells where it stopped.
    del state["stages"]
    state_path.write_text(json.dumps(state))
    _train(tmp_path / "a", tmp_path / "a_export", "--steps", "3", "--resume")
    stages = json.loads((tmp_path / "a_export" / "config.json").read_text())["training"]["stages"]
    assert stages[0] == {"start_step": 0, "end_step": 2}
    assert (stages[1]["start_step"], stages[1]["end_step"], stages[1]["schedule_steps"]) == (2, 3, 3)


def test_different_seed_gives_different_weights(tmp_path: Path) -> None:
    a = _train(tmp_path / "a", tmp_path / "a_export", "--steps", "2", "--seed", "0")
    b = _train(tmp_path / "b", tmp_path / "b_export", "--steps", "2", "--seed", "1")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_init_from_exported_weights_and_load_like_a_user(tmp_path: Path) -> None:
    first = _train(tmp_path / "a", tmp_path / "a_export", "--steps", "1")
    tuned = _train(tmp_path / "b", tmp_path / "b_export", "--steps", "1", "--init", str(tmp_path / "a_export"))
    # One step at the warm-up learning rate moves the weights a little, from the given start.
    moved = [float((tuned[k].float() - first[k].float()).abs().max()) for k in first]
    assert 0 < max(moved) < 1e-2
    model = ShapesFlowModel.from_pretrained(tmp_path / "b_export")
    u = model.velocity(torch.zeros(2, 3, 32, 32), torch.full((2,), 0.5, dtype=torch.float64), torch.zeros(2, 12))
    assert u.shape == (2, 3, 32, 32) and bool(torch.isfinite(u).all())
    assert json.loads((tmp_path / "b_export" / "config.json").read_text())["training"]["init"] == str(
        tmp_path / "a_export"
    )


def test_time_sampling_distributions() -> None:
    n = 20000
    uniform = sample_times("uniform", n, torch.Generator().manual_seed(0))
    logit = sample_times("logit-normal", n, torch.Generator().manual_seed(0))
    again = sample_times("logit-normal", n, torch.Generator().manual_seed(0))
    assert torch.equal(logit, again)
    for t in (uniform, logit):
        assert float(t.min()) > 0.0 and float(t.max()) < 1.0

    # sigmoid(N(0, 1)): median 1/2, and P(0.25 < t < 0.75) = P(|z| < logit(0.75) = 1.0986) = 0.728 (uniform: 0.5).
    def middle(t: torch.Tensor) -> float:
        return float(((t > 0.25) & (t < 0.75)).float().mean())

    assert abs(float(logit.median()) - 0.5) < 0.02
    assert abs(middle(logit) - 0.728) < 0.015 and abs(middle(uniform) - 0.5) < 0.015
    with pytest.raises(ValueError, match="uniform or logit-normal"):
        sample_times("beta", 4, torch.Generator())

    # sigmoid(N(1, 1)), the shapes default: median sigmoid(1) = 0.731, P(t > 0.5) = P(z > -1) = 0.841.
    shifted = sample_times("logit-normal", n, torch.Generator().manual_seed(0), mean=1.0)
    assert abs(float(shifted.median()) - 0.731) < 0.01
    assert abs(float((shifted > 0.5).float().mean()) - 0.841) < 0.01
    narrow = sample_times("logit-normal", n, torch.Generator().manual_seed(0), std=0.5)
    assert abs(middle(narrow) - 0.972) < 0.01  # P(|z| < 1.0986 / 0.5) = 0.972
    with pytest.raises(ValueError, match="t-std must be > 0"):
        sample_times("logit-normal", 4, torch.Generator(), std=0.0)


def test_logit_normal_run_is_recorded(tmp_path: Path) -> None:
    _train(tmp_path / "a", tmp_path / "a_export", "--steps", "1", "--t-sampling", "logit-normal")
    training = json.loads((tmp_path / "a_export" / "config.json").read_text())["training"]
    assert training["t_sampling"] == "logit-normal" and training["stages"][0]["t_sampling"] == "logit-normal"
    # The shapes default leans toward noise; location, scale and device are in the record to repeat it.
    assert (training["t_mean"], training["t_std"]) == (1.0, 1.0)
    stage = training["stages"][0]
    assert (stage["t_mean"], stage["t_std"], stage["device"]) == (1.0, 1.0, "cpu")
    # SD3's (0, 1) and uniform times leave the keys out, as runs recorded before they existed did.
    _train(tmp_path / "b", tmp_path / "b_export", "--steps", "1", "--t-mean", "0")
    _train(tmp_path / "c", tmp_path / "c_export", "--steps", "1", "--t-sampling", "uniform")
    for run in ("b", "c"):
        training = json.loads((tmp_path / f"{run}_export" / "config.json").read_text())["training"]
        assert "t_mean" not in training and "t_mean" not in training["stages"][0]


def test_time_location_changes_the_run(tmp_path: Path) -> None:
    # Same seed, other time distribution: the same data and noise, other times, so other weights.
    a = _train(tmp_path / "a", tmp_path / "a_export", "--steps", "2", "--t-mean", "0")
    b = _train(tmp_path / "b", tmp_path / "b_export", "--steps", "2", "--t-mean", "1")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_fast_and_plain_kernels_are_the_same_maths(tmp_path: Path) -> None:
    # channels_last + fused AdamW only change float rounding: after two steps the weights agree closely.
    fast = _train(tmp_path / "a", tmp_path / "a_export", "--steps", "2", "--kernels", "fast")
    plain = _train(tmp_path / "b", tmp_path / "b_export", "--steps", "2", "--kernels", "plain")
    for name, value in fast.items():
        assert torch.allclose(value, plain[name], atol=1e-5, rtol=1e-4), name
    stages = json.loads((tmp_path / "b_export" / "config.json").read_text())["training"]["stages"]
    assert stages[0]["kernels"] == "plain"


def test_teacher_pairs_are_the_teachers_ode_end_points() -> None:
    from flowscale.train import ASSETS, teacher_pairs
    from flowscale.worlds.shapes.model import load_net

    pairs = teacher_pairs(ASSETS, n=3, steps=2, seed=0)
    again = teacher_pairs(ASSETS, n=3, steps=2, seed=0)
    assert all(torch.equal(pairs[k], again[k]) for k in pairs)
    other = teacher_pairs(ASSETS, n=3, steps=2, seed=1)
    assert not torch.equal(pairs["x1"], other["x1"])
    # Every condition is a prompt the teacher was trained on: 1 to 6 objects in one or two classes.
    totals, classes = pairs["cond"].sum(1), (pairs["cond"] > 0).sum(1)
    assert ((totals >= 1) & (totals <= 6)).all() and ((classes >= 1) & (classes <= 2)).all()
    # x0 is the teacher's 2-step Euler solve from x1: t = 1 -> 0.5 -> 0.
    model = ShapesFlowModel(load_net(ASSETS))
    x = pairs["x1"]
    for t in (1.0, 0.5):
        x = x - 0.5 * model.velocity(x, torch.full((3,), t), pairs["cond"])
    assert torch.allclose(x, pairs["x0"], atol=1e-5)


def test_reflow_run_caches_its_pairs_and_records_its_teacher(tmp_path: Path) -> None:
    out, export = tmp_path / "run", tmp_path / "export"

    def reflow(*extra: str) -> None:
        train_main(["shapes-reflow", *TINY, "--teacher-steps", "2", "--out", str(out), "--export", str(export), *extra])

    reflow("--pairs", "6", "--steps", "2")
    training = json.loads((export / "config.json").read_text())["training"]
    assert training["reflow"] == {"teacher": "assets/shapes", "pairs": 6, "teacher_steps": 2}
    assert (training["init"], training["t_sampling"], training["p_null"]) == ("assets/shapes", "uniform", 0.0)
    cached = out / "pairs.safetensors"
    made = cached.stat().st_mtime_ns
    assert load_file(str(cached))["x0"].shape == (6, 3, 32, 32)
    # A resumed run takes the cached pairs; other settings make new ones.
    reflow("--pairs", "6", "--steps", "3", "--resume")
    assert cached.stat().st_mtime_ns == made
    assert json.loads((export / "config.json").read_text())["training"]["steps"] == 3
    reflow("--pairs", "5", "--steps", "3", "--resume")
    assert load_file(str(cached))["x0"].shape == (5, 3, 32, 32)
    # The student loads the way a user's checkpoint does.
    model = ShapesFlowModel.from_pretrained(export)
    assert model.velocity(torch.zeros(2, 3, 32, 32), torch.ones(2), torch.ones(12)).shape == (2, 3, 32, 32)


def test_reflow_rejects_an_empty_pair_set(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as err:
        train_main(["shapes-reflow", *TINY, "--pairs", "0", "--out", str(tmp_path / "r")])
    assert err.value.code == 2
