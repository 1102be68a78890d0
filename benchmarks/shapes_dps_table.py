"""A differentiable-reward slice of the paper's Table 2 on the Shapes world: reward guidance (DPS) with and
without search, at one NFE budget, given a differentiable reward and judged by a held-out one.

    PYTHONPATH=. python benchmarks/shapes_dps_table.py --out docs/results/shapes_dps_table.json
    PYTHONPATH=. python benchmarks/shapes_dps_table.py --sweep 0.3,1,3 --limit 8   # pick the guidance scale

Rows (paper Table 2: FLUX, DPS, SVDD + DPS, RBF + DPS; plus RBF without guidance at the same NFE):
    ODE           one deterministic sample (linear-ode), no guidance
    DPS           one guided SDE sample (method base, 1 particle)
    SVDD + DPS    SVDD at --nfe with guided proposals
    RBF + DPS     RBF at --nfe with guided proposals
    RBF           RBF at --nfe, unguided
Given: the verifier's soft count (--reward soft-count, differentiable); held out: the detector's exact count
(reward -sum (target - count)^2 and its accuracy). Wall time is the engine's own, one torch thread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from flowscale.config import RunConfig
from flowscale.run import run
from flowscale.worlds import build_world

ROWS = (
    ("ODE", "ode", False),
    ("DPS", "base", True),
    ("SVDD + DPS", "svdd", True),
    ("RBF + DPS", "rbf", True),
    ("RBF", "rbf", False),
)


def row_config(method: str, guided: bool, args: argparse.Namespace, prompt: str, dps: float) -> RunConfig:
    sized = {"particles": 1} if method == "base" else {} if method == "ode" else {"nfe": args.nfe}
    return RunConfig(model="shapes", method=method, process="linear-ode" if method == "ode" else args.process,
                     prompt=prompt, reward=args.reward, heldout=args.heldout, steps=args.steps, seed=args.seed,
                     dps=dps if guided else 0.0, **sized)


def measure(rows: list[tuple[str, str, bool]], args: argparse.Namespace, prompts: list[str], dps: float) -> list[dict]:
    out = []
    worlds = {}
    for label, method, guided in rows:
        given, held, acc, wall, grads, nfe = [], [], [], [], [], []
        for prompt in prompts:
            cfg = row_config(method, guided, args, prompt, dps)
            world = worlds.setdefault(prompt, build_world(cfg))
            rec = run(cfg, world=world).record
            given.append(rec.final_reward)
            held.append(rec.heldout_reward)
            acc.append(rec.accuracy)
            wall.append(rec.wall_time_s)
            grads.append(rec.extra.get("grad_evals", 0))
            nfe.append(rec.nfe_used)
        n = len(prompts)
        out.append({"row": label, "method": method, "dps": dps if guided else 0.0, "prompts": n,
                    "given_mean": sum(given) / n, "heldout_mean": sum(held) / n, "accuracy": sum(acc) / n,
                    "wall_s_mean": sum(wall) / n, "grad_evals_mean": sum(grads) / n, "nfe_used_mean": sum(nfe) / n})
        print(f"  {label}: done", flush=True)
    return out


def table(rows: list[dict], given: str, heldout: str) -> str:
    head = (f"| row | dps | {given} (given) | {heldout} (held out) | exact-count accuracy | NFE | backward passes "
            "| wall s / prompt |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['row']} | {r['dps']:g} | {r['given_mean']:.3f} | {r['heldout_mean']:.3f} | "
                     f"{r['accuracy']:.3f} | {r['nfe_used_mean']:.0f} | {r['grad_evals_mean']:.0f} | "
                     f"{r['wall_s_mean']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", default="docs/results/shapes_bench_prompts.txt")
    p.add_argument("--limit", type=int, help="first N prompts only")
    p.add_argument("--nfe", type=int, default=500)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--process", default="vp-sde")
    p.add_argument("--reward", default="soft-count")
    p.add_argument("--heldout", default="count")
    p.add_argument("--dps", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sweep", help="comma-separated guidance scales: the DPS row only, for each")
    p.add_argument("--out")
    args = p.parse_args()
    torch.set_num_threads(1)
    prompts = [ln.strip() for ln in Path(args.prompts).read_text().splitlines() if ln.strip()][: args.limit]
    start = time.perf_counter()
    if args.sweep:
        rows = [r for s in args.sweep.split(",") for r in measure([ROWS[1]], args, prompts, float(s))]
        rows = measure([ROWS[0]], args, prompts, 0.0) + rows
    else:
        rows = measure(list(ROWS), args, prompts, args.dps)
    print(f"\n{len(prompts)} prompts, {args.process}, {args.steps} steps, seed {args.seed}, one thread; "
          f"{time.perf_counter() - start:.0f} s in all\n")
    print(table(rows, args.reward, args.heldout))
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
