"""`python -m flowscale.train shapes`: seeded, resumable from safetensors checkpoints, exportable, initialisable
from exported weights. A few tiny steps each; the real run is documented in assets/shapes/MODEL_CARD.md."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from flowscale.train import main as train_main
from flowscale.worlds.shapes.model import ShapesFlowModel

TINY = ["--batch", "4", "--threads", "1", "--no-cosine", "--ckpt-every", "1000", "--log-every", "1000"]


def _train(out: Path, export: Path, *extra: str) -> dict[str, torch.Tensor]:
    train_main(["shapes", *TINY, "--out", str(out), "--export", str(export), *extra])
    return load_file(str(export / "model.safetensors"))


def test_resume_continues_the_same_run(tmp_path: Path) -> None:
    # --until stops early without changing the schedule (cosine over --steps), so stop + resume = one run.
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
