"""Engine overhead in the 2-D world: wall time of a base run over the time spent inside the model.

    python benchmarks/bench_engine_overhead.py [--particles 4096] [--steps 100] [--repeats 3] [--parts] [--floor]

Prints one line per process with wall time, model time, reward time and the ratios wall / model and
wall / (model + reward), on one thread. --parts adds where the rest goes for the best run of each process:
the noise draw, the step, the evaluation around the model, the reward, the events and the trace (each
measured by timing that function's calls; the parts overlap where one calls another, as noted).

--floor adds, per process, the same run's arithmetic with no engine around it: a bare loop over the run's own
grid, sampler and reward (the model, the x0 prediction, the SDE's noise and step, the reward of every particle),
with no ledger, trace or events. Its wall / model is the lowest any engine can reach with these records: what
the run's maths costs beside the model.
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

from flowscale import RunConfig, run
from flowscale.models import CountedModel
from flowscale.run import prepare, sampling_setup
from flowscale.sampler import FlowSampler

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


def bare_loop(cfg: RunConfig) -> tuple[float, float, float, torch.Tensor]:
    """(wall, model, reward) seconds of a base run's arithmetic alone, and its final x0 predictions: the run's
    sampler steps its particles down its grid with its own generator, and its reward scores every x0 prediction
    (the best of them read, as the ledger reads it), with nothing recorded. The samples equal the engine's."""
    if cfg.method != "base" or cfg.dps or cfg.state_dtype is not None:
        raise ValueError("the bare loop reproduces plain base runs only (no dps, the model's own state dtype)")
    cfg, world, params = prepare(cfg)
    process, grid, state_dtype = sampling_setup(cfg)
    model = CountedModel(world.model, max_batch=cfg.max_batch)
    sampler = FlowSampler(model, process, world.cond, state_dtype)
    sampler.prefill(grid)
    generator = torch.Generator().manual_seed(cfg.seed)
    times = list(grid[:-1].unbind())
    start = time.perf_counter()
    x = sampler.prior(params.particles, generator)
    spent_on_reward = 0.0
    for i, tau in enumerate(times):
        u, x0 = sampler.evaluate(x, tau)
        mark = time.perf_counter()
        float(world.reward(world.decode(x0)).max())
        spent_on_reward += time.perf_counter() - mark
        if i + 1 < len(times):
            x = sampler.propose(x, u, tau, times[i + 1], generator)
    return time.perf_counter() - start, model.model_time_s, spent_on_reward, x0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--particles", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", action="store_true", help="time the engine's parts too")
    parser.add_argument("--floor", action="store_true", help="time the run's arithmetic alone too (no engine)")
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
        if args.floor:
            wall, model, reward, _ = min((bare_loop(RunConfig(method="base", process=process, steps=args.steps,
                                                           particles=args.particles, seed=seed))
                                       for seed in range(args.repeats)), key=lambda t: t[0])
            print(f"{'  bare loop':11s} wall {wall:7.3f} s  model {model:7.3f} s  reward {reward:6.3f} s  "
                  f"wall/model {wall / model:5.2f}  wall/(model+reward) {wall / (model + reward):5.2f}")


if __name__ == "__main__":
    main()
