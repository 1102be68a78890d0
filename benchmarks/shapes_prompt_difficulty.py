"""Shapes world: how often one Euler-ODE sample counts exactly, prompt by prompt.

    python benchmarks/shapes_prompt_difficulty.py [--samples 32] [--steps 20] [--seed 1234] \
        [--out docs/results/shapes_prompt_difficulty.json] [--hard-out FILE --hard-max-rate 0.16]

Best-of-N with the ODE keeps the best of N independent samples, so for a prompt whose samples count
exactly with probability p it is right with probability 1 - (1 - p)^N. Its accuracy over a prompt set is
therefore fixed by the spread of the per-prompt rates p, not by their mean: it levels off below 1 only
if some prompts have p near 0, as FLUX has on the paper's counting prompts. This script measures p for
every prompt (K samples each, one generator, prompts in file order), prints the prompts from the hardest
up with the kinds of error, and the Best-of-N accuracy those rates predict at the bench budgets.
`--hard-out` writes the prompts with p <= --hard-max-rate, hardest first, as a bench prompt file.
Use a seed other than the bench's (0) so that a prompt set picked here is scored on fresh draws.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from shapes_base_accuracy import error_breakdown

from flowscale.worlds.shapes.model import ShapesFlowModel, euler_sample, load_net
from flowscale.worlds.shapes.prompts import load_prompts, prompt_to_vector

BENCH_BUDGETS = (50, 100, 300, 500, 1000)


def prompt_rates(model: ShapesFlowModel, prompts: list[str], samples: int, steps: int, seed: int) -> list[dict]:
    """Per prompt: the exact-count rate over `samples` Euler-ODE samples and their error breakdown."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    start = time.perf_counter()
    for i, prompt in enumerate(prompts):
        cond = prompt_to_vector(prompt)[None].repeat(samples, 1)
        images = model.decode(euler_sample(model, cond, samples, steps=steps, generator=gen))
        errors = error_breakdown(images, [prompt] * samples)
        rows.append({"prompt": prompt, "rate": errors["exact"] / samples, "errors": errors})
        elapsed = time.perf_counter() - start
        print(f"[{i + 1}/{len(prompts)} {elapsed:.0f} s] {rows[-1]['rate']:.3f}  {prompt}", file=sys.stderr, flush=True)
    return rows


def predicted_bon(rates: np.ndarray, steps: int, budgets: tuple[int, ...] = BENCH_BUDGETS) -> dict[str, float]:
    """Mean over prompts of 1 - (1 - p)^N, N = budget // steps samples: BoN-ODE accuracy if the measured
    rates were the true ones (a prompt measured at 0 stays at 0, so this errs low where p < 1/K)."""
    return {str(b): round(float(np.mean(1.0 - (1.0 - rates) ** (b // steps))), 4) for b in budgets}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(ROOT / "assets" / "shapes"), help="folder with config.json + weights")
    p.add_argument("--prompts", default=None, help="prompt file (default: assets/shapes/prompts_count.txt)")
    p.add_argument("--samples", type=int, default=32, help="ODE samples per prompt")
    p.add_argument("--steps", type=int, default=20, help="uniform Euler steps (the bench's world default is 20)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="write per-prompt rates and the summary here as JSON")
    p.add_argument("--hard-out", default=None, help="write the prompts with rate <= --hard-max-rate here")
    p.add_argument("--hard-max-rate", type=float, default=0.16)
    args = p.parse_args()
    if args.samples < 1 or args.steps < 1:
        p.error("--samples and --steps must be >= 1")
    torch.set_num_threads(args.threads)
    prompts = load_prompts(args.prompts) if args.prompts else load_prompts()
    model = ShapesFlowModel(load_net(args.model))
    rows = prompt_rates(model, prompts, args.samples, args.steps, args.seed)
    rates = np.array([r["rate"] for r in rows])
    totals = {k: sum(r["errors"][k] for r in rows) for k in rows[0]["errors"]}
    summary = {
        "prompts": len(rows),
        "samples_per_prompt": args.samples,
        "euler_steps": args.steps,
        "seed": args.seed,
        "mean_rate": round(float(rates.mean()), 4),
        "quantiles_rate": {str(q): round(float(np.quantile(rates, q)), 4) for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
        "prompts_at_rate_0": int((rates == 0).sum()),
        "prompts_at_rate_le_1_over_K": int((rates <= 1.0 / args.samples).sum()),
        f"prompts_at_rate_le_{args.hard_max_rate:g}": int((rates <= args.hard_max_rate).sum()),
        "predicted_bon_ode_accuracy_by_nfe": predicted_bon(rates, args.steps),
        "errors_all_samples": totals,
    }
    ordered = sorted(rows, key=lambda r: (r["rate"], r["prompt"]))
    print(json.dumps(summary, indent=1))
    for r in ordered[:20]:
        e = r["errors"]
        print(
            f"{r['rate']:.3f}  total right {e['total_right'] / e['samples']:.2f}, colours right shape wrong "
            f"{e['colour_counts_right_shape_wrong']:2d}, foreign colour {e['object_in_a_colour_not_named']:2d}  "
            f"{r['prompt']}"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "per_prompt": ordered}, indent=1) + "\n")
    if args.hard_out:
        hard = [r for r in ordered if r["rate"] <= args.hard_max_rate]
        head = (
            f"# Shapes prompts whose one-sample Euler-ODE exact-count rate was <= {args.hard_max_rate:g}\n"
            f"# ({args.samples} samples each, {args.steps} steps, seed {args.seed}; hardest first).\n"
            f"# Made by: python benchmarks/shapes_prompt_difficulty.py --hard-out FILE\n"
        )
        Path(args.hard_out).write_text(head + "".join(f"{r['prompt']}\n" for r in hard))


if __name__ == "__main__":
    main()
