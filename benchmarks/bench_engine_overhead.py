"""Engine overhead in the 2-D world: wall time of a base run over the time spent inside the model.

    python benchmarks/bench_engine_overhead.py [--particles 4096] [--steps 100] [--repeats 3]

Prints one line per process with wall time, model time, reward time and the ratio wall / model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flowscale import RunConfig, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--particles", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"base run, toy2d imbalanced4, {args.particles} particles x {args.steps} steps, best of {args.repeats}")
    for process in ("linear-ode", "linear-sde", "vp-sde"):
        best = None
        for seed in range(args.repeats):
            rec = run(RunConfig(method="base", process=process, steps=args.steps, particles=args.particles,
                                seed=seed)).record
            if best is None or rec.wall_time_s < best.wall_time_s:
                best = rec
        print(f"{process:11s} wall {best.wall_time_s:7.3f} s  model {best.model_time_s:7.3f} s  "
              f"reward {best.reward_time_s:6.3f} s  wall/model {best.wall_time_s / best.model_time_s:5.2f}")


if __name__ == "__main__":
    main()
