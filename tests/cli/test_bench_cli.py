"""The command line: run, replay and bench (single process and sharded across two processes)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, runner: list[str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = (runner or [sys.executable, "-m"]) + ["flowscale", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_run_writes_record_and_samples(tmp_path):
    out = tmp_path / "base"
    proc = cli("run", "--model", "toy2d", "--preset", "ring8", "--method", "base", "--process", "vp-sde",
               "--steps", "30", "--particles", "16", "--seed", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((out / "record.json").read_text())
    samples = np.load(out / "samples.npy")
    assert samples.shape == (16, 2) and samples.dtype.kind == "f"
    assert rec["nfe_used"] == 16 * 30 == sum(rec["nfe_per_step"]) and len(rec["nfe_per_step"]) == 30
    assert rec["config"]["preset"] == "ring8" and rec["config"]["seed"] == 3
    again = cli("replay", str(out / "record.json"))
    assert again.returncode == 0 and "identical" in again.stdout


def test_search_run_returns_best_sample_first(tmp_path):
    out = tmp_path / "rbf"
    proc = cli("run", "--method", "rbf", "--process", "linear-sde", "--nfe", "120", "--reward", "point:2,-2",
               "--set", "rbf.chains=3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((out / "record.json").read_text())
    samples = np.load(out / "samples.npy")
    assert samples.shape == (3, 2)
    assert rec["final_reward"] == max(rec["rewards"]) == rec["rewards"][0]
    assert abs(-((samples[0] - [2, -2]) ** 2).sum() - rec["final_reward"]) < 1e-9


def test_bad_flags_exit_2_with_one_line(tmp_path):
    for args, flag in [(["--method", "best"], "--method"), (["--nfe", "0", "--method", "bon"], "--nfe"),
                       (["--set", "rbf.variant"], "--set"), (["--reward", "point:a,b"], "--reward"),
                       (["--mixture", str(tmp_path / "missing.json")], "--mixture"),
                       (["--steps", "many"], "--steps")]:
        proc = cli("run", *args, "--out", str(tmp_path / "x"))
        assert proc.returncode == 2, args
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and flag in lines[0], proc.stderr


def test_user_mixture_file(tmp_path):
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps({"means": [[0, 0], [3, 3]], "stds": [0.5, 0.2], "weights": [1, 3]}))
    proc = cli("run", "--mixture", str(mix), "--particles", "8", "--out", str(tmp_path / "m"))
    assert proc.returncode == 0, proc.stderr
    mix.write_text(json.dumps({"means": [[0, 0]], "stds": [-1], "weights": [1]}))
    bad = cli("run", "--mixture", str(mix), "--out", str(tmp_path / "m2"))
    assert bad.returncode == 2 and "stds" in bad.stderr


BENCH = ["bench", "--preset", "rare", "--methods", "ode,bon,rbf", "--processes", "linear-ode,linear-sde",
         "--nfe", "50,100", "--seeds", "2", "--no-progress"]


def _rows(path: Path) -> list[dict]:
    rows = json.loads((path / "results.json").read_text())["rows"]
    for r in rows:
        r.pop("wall_time_s")  # measured time is the one column that may differ
    return rows


def test_bench_single_and_sharded_agree(tmp_path, free_port):
    single = cli(*BENCH, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    port = free_port()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                "127.0.0.1", "--master_port", str(port), "-m"]
    sharded = cli(*BENCH, "--out", str(tmp_path / "two"), runner=torchrun)
    assert sharded.returncode == 0, sharded.stderr[-2000:]
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert one == two
    keys = {"method", "process", "nfe", "runs", "reward_mean", "reward_sem", "heldout_mean", "accuracy_mean",
            "nfe_used_mean"}
    assert all(keys <= set(r) for r in one)
    assert {(r["method"], r["process"], r["nfe"]) for r in one} == {
        ("ode", "linear-ode", 25),
        *((m, p, n) for m in ("bon", "rbf") for p in ("linear-ode", "linear-sde") for n in (50, 100)),
    }
    assert all(r["runs"] == 2 for r in one)
    assert (tmp_path / "one" / "results.csv").read_text().startswith("method,process,nfe,runs")
    assert "plotly" in (tmp_path / "one" / "report.html").read_text()[:100000].lower()
