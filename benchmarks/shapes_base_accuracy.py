"""Shapes world: base exact-count accuracy of several model folders over several seeds, side by side.

    python benchmarks/shapes_base_accuracy.py assets/shapes runs/shapes_train/export --seeds 0 1 2
    python benchmarks/shapes_base_accuracy.py DIR --guidance 1 2 --out docs/results/FILE.json

Same test as `bench_shapes_speed.py --eval` (one plain Euler ODE sample, 30 uniform steps, per prompt of
assets/shapes/prompts_count.txt, scored by the detector and the held-out verifier), repeated for each seed
so that two training runs can be told apart: one seed of 120 prompts has a standard error of about 0.04
at an accuracy of 0.3. A guidance scale above 1 is classifier-free guidance (two network passes per
velocity). Prints one line per (model, guidance) and, with --out, writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_shapes_speed import base_accuracy

from flowscale.worlds.shapes.model import ShapesFlowModel, load_net
from flowscale.worlds.shapes.prompts import load_prompts


def evaluate(folder: str, guidance: float, seeds: list[int], steps: int, prompts: list[str]) -> dict:
    """Base accuracy of one model folder at one guidance scale, per seed and averaged over seeds."""
    model = ShapesFlowModel(load_net(folder), guidance_scale=guidance)
    runs = [base_accuracy(model, prompts, steps, seed)[0] for seed in seeds]
    keys = ("detector_exact_count_accuracy", "verifier_exact_count_accuracy", "detector_count_reward_mean")
    training = json.loads((Path(folder) / "config.json").read_text()).get("training", {})
    return {
        "model": folder,
        "training_steps": training.get("steps"),
        "training_wall_time_s": training.get("wall_time_s"),
        "guidance_scale": guidance,
        "seeds": seeds,
        "per_seed": {k: [round(r[k], 4) for r in runs] for k in keys},
        **{f"mean_{k}": round(float(np.mean([r[k] for r in runs])), 4) for k in keys},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", help="folders holding config.json + model.safetensors")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="write the results here as JSON")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    prompts = load_prompts()
    results = []
    for folder in args.models:
        for guidance in args.guidance:
            r = evaluate(folder, guidance, args.seeds, args.steps, prompts)
            results.append(r)
            print(
                f"{folder} (step {r['training_steps']}) guidance {guidance:g}: exact-count accuracy "
                f"detector {r['mean_detector_exact_count_accuracy']:.3f} {r['per_seed']['detector_exact_count_accuracy']}, "
                f"verifier {r['mean_verifier_exact_count_accuracy']:.3f}, "
                f"mean count reward {r['mean_detector_count_reward_mean']:.2f}",
                flush=True,
            )
    if args.out:
        meta = {"prompts": len(prompts), "euler_steps": args.steps, "threads": args.threads}
        Path(args.out).write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
