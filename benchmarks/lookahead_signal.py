"""How much does the reward of the one-step prediction x0_hat(x_t) say about the final sample?

SMC, SVDD, CoDe and RBF choose particles by the reward of x0_hat at intermediate times. They can beat
Best-of-N at equal NFE only when that reward ranks particles the way their final samples will rank.
This script measures it in the Shapes world. For every prompt and process it runs P independent
trajectories (method `base`), reads each particle's reward at every grid time from the run's trace
(`candidates` events), and prints per grid time, averaged over prompts:

* spearman: the rank correlation between the reward at that time and the final reward. Prompts whose
  rewards are all equal at that time count as 0, because they give no ranking.
* tied: the share of prompts whose rewards are all equal at that time.
* pick: the chance that the particle with the best reward at that time ends with the exact count.
  Ties at the top are broken at random (the mean over the tied particles).
* chance: the same for a particle picked at random (the mean exact-count rate).

    python benchmarks/lookahead_signal.py [--prompts FILE] [--particles 32] [--processes linear-sde,vp-sde]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from flowscale import RunConfig, run
from flowscale.bench import read_prompts


def reward_paths(cfg: RunConfig) -> tuple[np.ndarray, list[float]]:
    """[M, P] given reward of every particle's x0_hat at every grid time of one `base` run, and the grid."""
    record = run(cfg).record
    rows = [e["rewards"] for e in record.events if e["kind"] == "candidates"]
    paths = np.asarray(rows, dtype=np.float64)
    if paths.shape != (record.nfe_used // cfg.particles, cfg.particles):
        raise RuntimeError(f"trace holds {paths.shape} rewards; expected one row of {cfg.particles} per grid time")
    return paths, record.grid


def signal(paths: np.ndarray) -> dict[str, np.ndarray]:
    """Per grid time: rank correlation with the final reward, tie flag, exact rate of the argmax pick."""
    final_exact = paths[-1] == 0.0  # count reward 0 <=> every class count right
    m = paths.shape[0]
    rho, tied, pick = np.zeros(m), np.zeros(m), np.zeros(m)
    for k in range(m):
        r = paths[k]
        tied[k] = float(np.all(r == r[0]))
        if not tied[k] and np.ptp(paths[-1]) > 0:
            rho[k] = spearmanr(r, paths[-1]).statistic
        pick[k] = final_exact[r == r.max()].mean()
    return {"spearman": rho, "tied": tied, "pick": pick, "chance": np.full(m, final_exact.mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prompts", default=str(ROOT / "docs" / "results" / "shapes_bench_prompts.txt"))
    p.add_argument("--particles", type=int, default=32)
    p.add_argument("--processes", default="linear-sde,vp-sde")
    p.add_argument("--steps", type=int, default=None, help="grid times (the world's default if omitted)")
    p.add_argument("--model-path", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the table here")
    args = p.parse_args()
    prompts = read_prompts(args.prompts)
    table = {}
    for process in args.processes.split(","):
        per_prompt, grid = [], None
        for prompt in prompts:
            cfg = RunConfig(model="shapes", method="base", process=process, particles=args.particles,
                            prompt=prompt, reward="count", heldout="none", steps=args.steps,
                            model_path=args.model_path, seed=args.seed)
            paths, grid = reward_paths(cfg)
            per_prompt.append(signal(paths))
        mean = {key: np.mean([s[key] for s in per_prompt], axis=0) for key in per_prompt[0]}
        times = grid[: len(mean["spearman"])]  # the grid ends at t = 0, where nothing is evaluated
        table[process] = {"t": [round(t, 4) for t in times], **{k: v.round(4).tolist() for k, v in mean.items()}}
        print(f"\n{process}: {len(prompts)} prompts x {args.particles} particles, seed {args.seed}")
        print("step      t  spearman  tied   pick  chance")
        for k, t in enumerate(times):
            print(f"{k:4d} {t:6.3f} {mean['spearman'][k]:9.3f} {mean['tied'][k]:5.2f} "
                  f"{mean['pick'][k]:6.3f} {mean['chance'][k]:7.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
