"""Engine overhead in the 2-D world: wall time of a base run over the time spent inside the model.

    python benchmarks/bench_engine_overhead.py [--particles 4096] [--steps 100] [--repeats 3] [--parts]

Prints one line per process with wall time, model time, reward time and the ratios wall / model and
wall / (model + reward), on one thread. --parts adds where the rest goes for the best run of each process:
the noise draw, the step, the evaluation around the model, the reward, the events and the trace (each
measured by timing that function's calls; the parts overlap where one calls another, as noted).
"""

from __future__ import annotations

import argparse
import collections
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from flowscale import RunConfig, run  # noqa: E402

# (module, owner attribute or None for a module function, function, label)
PARTS = [
    ("flowscale.sampler", "FlowSampler", "noise", "SDE noise draw"),
    ("flowscale.sampler", "FlowSampler", "step_factors", "step factors (cached per time pair)"),
    ("flowscale.sampler", None, "apply_step", "Euler(-Maruyama) arithmetic"),
    ("flowscale.search.context", "SearchContext", "propose", "propose (noise + step + bookkeeping)"),
    ("flowscale.sampler", "FlowSampler", "evaluate", "sampler.evaluate (model + factors + x0)"),
    ("flowscale.search.context", "SearchContext", "evaluate", "ctx.evaluate (all of an evaluation)"),
    ("flowscale.search.context", "Ledger", "charge", "ledger charge"),
    ("flowscale.run", None, "_emit", "events into the trace"),
]


def timed_parts() -> collections.Counter:
    """Wrap each part so its calls add their seconds to the returned counter."""
    spent: collections.Counter = collections.Counter()
    for module_name, owner, name, label in PARTS:
        module = importlib.import_module(module_name)
        holder = getattr(module, owner) if owner else module
        inner = getattr(holder, name)

        def wrapped(*args, _inner=inner, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _inner(*args, **kwargs)
            finally:
                spent[_label] += time.perf_counter() - start

        setattr(holder, name, wrapped)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--particles", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", action="store_true", help="time the engine's parts too")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spent = timed_parts() if args.parts else collections.Counter()
    print(f"base run, toy2d imbalanced4, {args.particles} particles x {args.steps} steps, one thread, "
          f"best of {args.repeats}")
    for process in ("linear-ode", "linear-sde", "vp-sde"):
        run(RunConfig(method="base", process=process, steps=args.steps, particles=args.particles))  # warm
        best, parts = None, {}
        for seed in range(args.repeats):
            spent.clear()
            rec = run(RunConfig(method="base", process=process, steps=args.steps, particles=args.particles,
                                seed=seed)).record
            if best is None or rec.wall_time_s < best.wall_time_s:
                best, parts = rec, dict(spent)
        print(f"{process:11s} wall {best.wall_time_s:7.3f} s  model {best.model_time_s:7.3f} s  "
              f"reward {best.reward_time_s:6.3f} s  wall/model {best.wall_time_s / best.model_time_s:5.2f}  "
              f"wall/(model+reward) {best.wall_time_s / (best.model_time_s + best.reward_time_s):5.2f}")
        for label, seconds in parts.items():
            print(f"    {label:42s} {seconds * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
