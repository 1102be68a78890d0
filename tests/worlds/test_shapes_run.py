"""The Shapes world end to end: the shipped model through the CLI, with counts in the record."""

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def test_cli_rbf_run_on_shipped_model(tmp_path):
    out = tmp_path / "shapes"
    cmd = [sys.executable, "-m", "flowscale", "run", "--model", "shapes", "--prompt",
           "3 red circles and 2 blue squares", "--method", "rbf", "--process", "vp-sde", "--nfe", "60",
           "--steps", "10", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((out / "record.json").read_text())
    assert rec["nfe_used"] == 60 and rec["config"]["reward"] == "count" and rec["config"]["heldout"] == "verifier"
    assert rec["accuracy"] in (0.0, 1.0)
    assert isinstance(rec["details"], list) and isinstance(rec["details"][0], dict)
    detected = sum(rec["details"][0].values())
    assert rec["final_reward"] <= 0 and isinstance(rec["heldout_reward"], float)
    assert detected >= 0
    assert rec["world"]["target"] == {"red circle": 3, "blue square": 2}
    image = Image.open(out / "result.png")
    assert image.size[0] == image.size[1] >= 32


def test_unknown_prompt_word_lists_vocabulary(tmp_path):
    cmd = [sys.executable, "-m", "flowscale", "run", "--model", "shapes", "--prompt", "3 purple hexagons",
           "--out", str(tmp_path / "x")]
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2
    assert "--prompt" in proc.stderr and "red" in proc.stderr and "circle" in proc.stderr
