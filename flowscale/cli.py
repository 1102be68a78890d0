"""Command line: `python -m flowscale run|bench|replay ...`.

A bad argument exits with code 2 and one line naming the flag and what is allowed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowscale import gc_policy, safe_json, threads
from flowscale.config import MAX_MESSAGE, STATE_DTYPES, ConfigError, RunConfig, clip, short
from flowscale.processes import PROCESS_NAMES
from flowscale.recipes import RECIPES
from flowscale.run import RunFailed, RunOutput, estimate_run, prepare, run
from flowscale.search import METHODS
from flowscale.trace import Trace, expected_replay, jsonable
from flowscale.worlds import MODEL_NAMES

MAX_MIXTURE_BYTES = 256 * 1024
DEFAULTS = RunConfig()  # every default flag value is the engine's own


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse would print usage too)
        print(f"error: {clip(message, MAX_MESSAGE)}", file=sys.stderr)
        sys.exit(2)


def _add_world_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="toy2d", help=f"one of {', '.join(MODEL_NAMES)}")
    p.add_argument("--preset", help="toy2d mixture preset (imbalanced4, ring8, rare)")
    p.add_argument("--mixture", help="toy2d mixture JSON file {means, stds, weights}")
    p.add_argument("--model-path", help="local folder with the model's weights")
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--reward", help="given reward, e.g. point:-2,2 | region:X0,Y0,X1,Y1 | count | brightness")
    p.add_argument("--heldout", help="held-out reward (or none)")
    p.add_argument("--steps", type=int, help="number of evaluation times M (model default if omitted)")
    p.add_argument("--grid", help="exp or uniform")
    p.add_argument("--grid-space", help="process or linear")
    p.add_argument("--shift", type=float, help="timestep shift for linear-space grids")
    p.add_argument("--g-schedule", default=DEFAULTS.g_schedule, help="square, linear, constant or sin")
    p.add_argument("--g-norm", type=float, default=DEFAULTS.g_norm)
    p.add_argument("--beta-min", type=float, default=DEFAULTS.beta_min)
    p.add_argument("--beta-max", type=float, default=DEFAULTS.beta_max)
    p.add_argument("--max-batch", type=int, help="largest batch passed to the model at once")
    p.add_argument("--dps", type=float, default=DEFAULTS.dps, metavar="SCALE",
                   help="reward-gradient guidance (DPS) in the SDE drift: score + SCALE * grad r(x0_hat); 0 = off. "
                        "Needs an SDE process and a differentiable reward")
    p.add_argument("--state-dtype", choices=STATE_DTYPES,
                   help="dtype of states, noise and grid times (default: the model's own; bfloat16: the released code's)")
    p.add_argument("--paper", nargs="?", const="paper", choices=RECIPES, metavar="RECIPE",
                   help="the released code's setting for the model and method (explicit flags win; see recipes.py): "
                        "--paper for the compositional yaml (VQAScore), --paper paper-count for the quantity-aware "
                        "one (Grounding-DINO count)")
    p.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="a method setting, e.g. rbf.variant=code or svdd.k=25 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m flowscale", description="Inference-time scaling for flow models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run_p = sub.add_parser("run", help="one run: writes DIR/record.json and DIR/samples.npy")
    _add_world_args(run_p)
    run_p.add_argument("--prompt")
    run_p.add_argument("--method", default="base", help=f"one of {', '.join(METHODS)}")
    run_p.add_argument("--process", default="linear-ode", help=f"one of {', '.join(PROCESS_NAMES)}")
    run_p.add_argument("--nfe", type=int, help="NFE budget (search methods)")
    run_p.add_argument("--particles", type=int, help="samples for base")
    run_p.add_argument("--seed", type=int, default=0)
    run_p.add_argument("--out", required=True, help="output folder")
    rep = sub.add_parser("replay", help="run a record.json's config again and check it is identical")
    rep.add_argument("record")
    rep.add_argument("--out", help="write the replayed record here")
    bench_p = sub.add_parser("bench", help="reward against NFE for methods x processes")
    _add_world_args(bench_p)
    bench_p.add_argument("--prompts", help="file of prompts, one per line")
    bench_p.add_argument("--methods", default="ode,bon,smc,svdd,rbf")
    bench_p.add_argument("--processes", default="linear-ode,linear-sde,vp-sde")
    bench_p.add_argument("--nfe", default="100,500", help="comma-separated budgets")
    bench_p.add_argument("--seeds", type=int, default=4, help="seeds 0..K-1 per combination")
    bench_p.add_argument("--out", required=True)
    bench_p.add_argument("--no-progress", action="store_true")
    return parser


def parse_sets(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or "." not in key:
            raise ConfigError("set", f"takes METHOD.KEY=VALUE, e.g. rbf.variant=code; got {item!r}")
        params[key.strip()] = value.strip()
    return params


def read_mixture(path: str | None) -> dict | None:
    return None if path is None else safe_json.read_file(path, "mixture", MAX_MIXTURE_BYTES)


def output_folder(path: str | None, field: str = "out") -> Path | None:
    """The output folder, created and proven writable before anything runs (a long run must not end in a
    traceback with nothing saved)."""
    if path is None:
        return None
    if not path.strip():
        raise ConfigError(field, "must name a folder; got an empty path")
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".flowscale-write-check-"):
            pass
    except FileExistsError:
        raise ConfigError(field, f"{short(path, 80)} exists and is not a folder") from None
    except OSError as exc:
        raise ConfigError(field, f"cannot write to {short(path, 80)}: {exc.strerror or type(exc).__name__}") from None
    return folder


def write_partial(out: Path | None, trace: Trace, error: str) -> str:
    """Whatever a failed run computed, as out/record.partial.json; returns a note for the error line."""
    if out is None or not trace.events:
        return ""
    partial = {"config": trace.config, "error": error, "events": trace.events}
    (out / "record.partial.json").write_text(json.dumps(jsonable(partial), indent=1))
    return f" (trace so far in {out}/record.partial.json)"


def world_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(
        model=args.model, preset=args.preset, mixture=read_mixture(args.mixture), model_path=args.model_path,
        height=args.height, width=args.width, reward=args.reward, heldout=args.heldout, steps=args.steps,
        grid=args.grid, grid_space=args.grid_space, shift=args.shift, g_schedule=args.g_schedule,
        g_norm=args.g_norm, beta_min=args.beta_min, beta_max=args.beta_max, max_batch=args.max_batch,
        params=parse_sets(args.set), recipe=args.paper, dps=args.dps,
        state_dtype=args.state_dtype,
    )


def write_run_outputs(output: RunOutput, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    output.record.save(out / "record.json")
    np.save(out / "samples.npy", output.samples.detach().cpu().numpy())
    if output.world.save_outputs is not None:
        output.world.save_outputs(output.decoded, str(out))


def cmd_run(args: argparse.Namespace) -> int:
    cfg = RunConfig(method=args.method, process=args.process, nfe=args.nfe, particles=args.particles,
                    seed=args.seed, prompt=args.prompt, **world_kwargs(args))
    out = output_folder(args.out)
    output = run_keeping_partial(cfg, out)
    write_run_outputs(output, out)
    r = output.record
    print(f"{cfg.method} {r.config['process']}: reward {r.final_reward:.4f}, held-out {r.heldout_reward}, "
          f"NFE {r.nfe_used}/{r.nfe_budget}, {r.wall_time_s:.2f} s -> {args.out}")
    return 0


LONG_RUN_S = 10.0  # runs estimated longer than this print their estimate first


def run_keeping_partial(cfg: RunConfig, out: Path | None) -> RunOutput:
    """Run (printing the estimate first when it is long), and on any failure part-way write what the trace
    holds before the error goes on."""
    prepared = prepare(cfg)
    cost = estimate_run(prepared)
    if cost.seconds > LONG_RUN_S:
        print(f"estimated: {cost.describe()}", file=sys.stderr)
    trace = Trace()
    try:
        return run(cfg, trace=trace, prepared=prepared, previews=False)  # the CLI shows no step previews
    except RunFailed:
        raise  # main() writes its partial record with the fault's message
    except (Exception, KeyboardInterrupt) as exc:
        note = write_partial(out, trace, f"{type(exc).__name__}: {exc}")
        if note and isinstance(exc, KeyboardInterrupt):
            print(f"interrupted{note}", file=sys.stderr)
        raise


def cmd_replay(args: argparse.Namespace) -> int:
    original = safe_json.check_record(safe_json.read_file(args.record, "record", safe_json.RECORD_BYTES))
    out = output_folder(args.out)
    recorded = original.get("threads")
    if isinstance(recorded, int) and not isinstance(recorded, bool) and 1 <= recorded <= 1024:
        # A model's sums (the Shapes UNet's convolutions) round differently with another thread count: replay
        # with the record's own, so that a record made in the app (one thread per run) replays identical here.
        torch.set_num_threads(recorded)
    output = run_keeping_partial(RunConfig.from_dict(original["config"]), out)
    again = output.record.comparable()
    same = again == expected_replay(original)
    if out is not None:
        write_run_outputs(output, out)
    print("identical" if same else "DIFFERENT: the replay does not match the record")
    return 0 if same else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from flowscale.bench import read_prompts, run_bench, split_list

    base = RunConfig(**world_kwargs(args))
    methods = split_list(args.methods, "methods", tuple(METHODS))
    processes = split_list(args.processes, "processes")
    try:
        budgets = [int(v) for v in split_list(args.nfe, "nfe")]
    except ValueError:
        raise ConfigError("nfe", f"takes comma-separated integers, e.g. 100,500; got {args.nfe!r}") from None
    if not 1 <= args.seeds <= 1000:
        raise ConfigError("seeds", f"must be in [1, 1000]; got {args.seeds}")
    prompts = read_prompts(args.prompts)
    out = output_folder(args.out)
    gc_policy.freeze_what_is_loaded()  # many runs in one process: no full collection walks torch and flowscale again
    return run_bench(base, prompts, methods, processes, budgets, args.seeds, out, progress=not args.no_progress)


def flag_of(field: str, command: str) -> str:
    """How the user typed a field: --nfe, --set rbf.variant, or the replay's positional record."""
    if field == "params":
        return "--set"
    if "." in field:
        return f"--set {field}"
    if field == "record" and command == "replay":
        return "record"
    return "--" + field.replace("_", "-")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # One run per process; under torchrun/accelerate, the processes on this machine share its cores.
        threads.apply(int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
        if args.command == "run":
            return cmd_run(args)
        if args.command == "replay":
            return cmd_replay(args)
        return cmd_bench(args)
    except ConfigError as exc:
        print(f"error: {flag_of(exc.field, args.command)}: {str(exc).split(': ', 1)[1]}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        out = getattr(args, "out", None)
        note = ""
        if out:  # keep the trace up to the failing step (the folder was checked before the run)
            partial = {"config": exc.config, "error": str(exc), "events": exc.events}
            (Path(out) / "record.partial.json").write_text(json.dumps(jsonable(partial), indent=1))
            note = f" (trace so far in {out}/record.partial.json)"
        print(f"error: the run stopped: {exc}{note}", file=sys.stderr)
        return 1
