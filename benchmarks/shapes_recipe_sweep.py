"""Shapes world: try several training recipes side by side on one machine, then score each by base accuracy.

    nvidia-cuda-mps-control -d    # let the runs' kernels share the GPU instead of taking turns
    python benchmarks/shapes_recipe_sweep.py --device cuda --jobs 6 --out sweep.json \\
        base="" lr2e-3="--lr 2e-3" shift="--t-mean 0.5" b32="--batch 32 --steps 8000"

Each NAME="ARGS" is one `python -m flowscale.train shapes ARGS` run (the shapes defaults apply where ARGS
is silent), started as its own process with `--device`, one thread and no wall-time limit, into
runs/sweep/NAME. When a run ends, its exported EMA weights are scored as in shapes_base_accuracy.py (one
Euler-ODE sample per prompt of assets/shapes/prompts_count.txt, detector and verifier, over --seeds).

What this is for: the shipped recipe must fit about an hour on a 2-core CPU, where one run costs the whole
hour. On a GPU a 5000-step run takes minutes, and every draw of the training loop is made on the CPU
generators whatever the device, so a GPU run of a recipe stands for the CPU run of the same command (up to
float rounding). A recipe found this way is still trained and measured on the CPU before it ships.

Measured on one H100 with 16 CPU cores (docs/results/shapes_recipe_sweep.json): under MPS, 6 runs of 5000
steps at once trained in about 7.5 min and 4 runs in about 7 min (each run's data generation is ~60 ms of
CPU a step); without MPS, 12 runs at once had finished none after 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def parse_recipe(text: str) -> tuple[str, list[str]]:
    """'NAME=ARGS' -> (NAME, [ARGS split as a shell would])."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise SystemExit(f"recipe must be NAME=ARGS with NAME in letters, digits, '-', '_', '.'; got {text!r}")
    return name, shlex.split(rest)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("recipes", nargs="+", help="NAME=ARGS, ARGS being flags of python -m flowscale.train shapes")
    p.add_argument("--device", default="cuda")
    p.add_argument("--jobs", type=int, default=8, help="training runs at once")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--runs", default="runs/sweep", help="parent folder of the runs' checkpoints and exports")
    p.add_argument("--out", default=None, help="write the results here as JSON")
    p.add_argument("--status-every", type=float, default=60.0, help="seconds between progress lines")
    args = p.parse_args()
    recipes = dict(parse_recipe(r) for r in args.recipes)

    import torch
    from shapes_base_accuracy import evaluate

    from flowscale.worlds.shapes.prompts import load_prompts

    torch.set_num_threads(1)
    prompts = load_prompts()
    pending, running, results = list(recipes.items()), {}, []
    start = last_status = time.time()
    while pending or running:
        while pending and len(running) < args.jobs:
            name, extra = pending.pop(0)
            folder = Path(args.runs).resolve() / name  # the runs start in the repository root
            folder.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "flowscale.train", "shapes", *extra, "--device", args.device,
                   "--threads", "1", "--max-minutes", "0", "--log-every", "250",
                   "--out", str(folder), "--export", str(folder / "export")]  # fmt: skip
            log = (folder / "train.log").open("w")
            running[name] = (subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log, folder)
        time.sleep(2)
        if time.time() - last_status > args.status_every:
            last_status = time.time()
            for name, (_, _, folder) in running.items():
                # The progress bar's carriage returns share lines with the log lines; find the last of these.
                lines = re.findall(r"step \d+ loss .*", (folder / "train.log").read_text())
                print(f"[{time.time() - start:.0f} s] {name}: {lines[-1] if lines else 'starting'}", flush=True)
        for name in [n for n, (proc, _, _) in running.items() if proc.poll() is not None]:
            proc, log, folder = running.pop(name)
            log.close()
            if proc.returncode != 0:
                tail = (folder / "train.log").read_text()[-1500:]
                print(f"{name}: training failed (exit {proc.returncode}):\n{tail}", flush=True)
                results.append({"name": name, "args": shlex.join(recipes[name]), "error": tail})
                continue
            r = evaluate(str(folder / "export"), 1.0, args.seeds, 30, prompts, args.device)
            r = {"name": name, "args": shlex.join(recipes[name]), "done_after_s": round(time.time() - start), **r}
            results.append(r)
            print(
                f"{name} [{r['args']}] step {r['training_steps']}: detector "
                f"{r['mean_detector_exact_count_accuracy']:.3f} {r['per_seed']['detector_exact_count_accuracy']}, "
                f"verifier {r['mean_verifier_exact_count_accuracy']:.3f}, "
                f"mean count reward {r['mean_detector_count_reward_mean']:.2f} ({r['done_after_s']} s)",
                flush=True,
            )
            if args.out:  # written after every run, so a sweep cut off by a time limit keeps what it finished
                meta = {"device": args.device, "prompts": len(prompts), "euler_steps": 30}
                Path(args.out).write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
