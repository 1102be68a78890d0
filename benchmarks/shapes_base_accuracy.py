"""Shapes world: base exact-count accuracy of several model folders over several seeds, side by side.

    python benchmarks/shapes_base_accuracy.py assets/shapes runs/shapes_train/export --seeds 0 1 2
    python benchmarks/shapes_base_accuracy.py DIR --guidance 1 2 --out docs/results/FILE.json
    python benchmarks/shapes_base_accuracy.py assets/shapes --errors     # + where the first seed's errors are

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

from flowscale.worlds.shapes import detector
from flowscale.worlds.shapes.model import ShapesFlowModel, load_net
from flowscale.worlds.shapes.prompts import load_prompts, prompt_to_vector
from flowscale.worlds.shapes.scenes import COLOURS, SHAPES


def error_breakdown(images: torch.Tensor, prompts: list[str]) -> dict[str, int]:
    """Count, over the samples, the kinds of detector count error (how many images fall in each case)."""
    found = detector.detect_vectors(images).reshape(-1, len(COLOURS), len(SHAPES))
    target = torch.stack([prompt_to_vector(q) for q in prompts]).to(found.dtype).reshape_as(found)
    diff = found.sum(dim=(1, 2)) - target.sum(dim=(1, 2))
    exact = (found == target).all(dim=(1, 2))
    colours_right = (found.sum(dim=2) == target.sum(dim=2)).all(dim=1)
    foreign = ((found.sum(dim=2) > 0) & (target.sum(dim=2) == 0)).any(dim=1)
    cases = {
        "exact": exact,
        "total_right": diff == 0,
        "one_too_many": diff == 1,
        "one_too_few": diff == -1,
        "off_by_two_or_more": diff.abs() >= 2,
        "empty": found.sum(dim=(1, 2)) == 0,
        "colour_counts_right_shape_wrong": colours_right & ~exact,
        "object_in_a_colour_not_named": foreign,
    }
    return {"samples": len(prompts), **{k: int(v.sum()) for k, v in cases.items()}}


def evaluate(
    folder: str,
    guidance: float,
    seeds: list[int],
    steps: int,
    prompts: list[str],
    device: str = "cpu",
    errors: bool = False,
) -> dict:
    """Base accuracy of one model folder at one guidance scale, per seed and averaged over seeds (with
    `errors`, also the first seed's error breakdown)."""
    model = ShapesFlowModel(load_net(folder), device=device, guidance_scale=guidance)
    outputs = [base_accuracy(model, prompts, steps, seed) for seed in seeds]
    runs = [stats for stats, _ in outputs]
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
        **({"errors_first_seed": error_breakdown(outputs[0][1], prompts)} if errors else {}),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", help="folders holding config.json + model.safetensors")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="where the network runs (the noise is drawn on the CPU)")
    p.add_argument("--errors", action="store_true", help="also break the first seed's count errors down")
    p.add_argument("--out", default=None, help="write the results here as JSON")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    prompts = load_prompts()
    results = []
    for folder in args.models:
        for guidance in args.guidance:
            r = evaluate(folder, guidance, args.seeds, args.steps, prompts, args.device, args.errors)
            results.append(r)
            print(
                f"{folder} (step {r['training_steps']}) guidance {guidance:g}: exact-count accuracy "
                f"detector {r['mean_detector_exact_count_accuracy']:.3f} {r['per_seed']['detector_exact_count_accuracy']}, "
                f"verifier {r['mean_verifier_exact_count_accuracy']:.3f}, "
                f"mean count reward {r['mean_detector_count_reward_mean']:.2f}",
                flush=True,
            )
            if args.errors:
                print(f"  errors (seed {args.seeds[0]}): {r['errors_first_seed']}", flush=True)
    if args.out:
        meta = {"prompts": len(prompts), "euler_steps": args.steps, "threads": args.threads}
        Path(args.out).write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
