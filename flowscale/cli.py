"""Command line: `python -m flowscale run|bench|replay ...`.

A bad argument exits with code 2 and one line naming the flag and what is allowed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from flowscale.config import ConfigError, RunConfig
from flowscale.processes import PROCESS_NAMES
from flowscale.run import RunFailed
from flowscale.search import METHODS
from flowscale.worlds import MODEL_NAMES

MAX_MIXTURE_BYTES = 256 * 1024
DEFAULTS = RunConfig()  # every default flag value is the engine's own


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse would print usage too)
        print(f"error: {message}", file=sys.stderr)
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
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise ConfigError("mixture", f"file not found: {path}")
    if file.stat().st_size > MAX_MIXTURE_BYTES:
        raise ConfigError("mixture", f"file is larger than {MAX_MIXTURE_BYTES // 1024} KiB")
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("mixture", f"not valid JSON: {exc}") from None


def world_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(
        model=args.model, preset=args.preset, mixture=read_mixture(args.mixture), model_path=args.model_path,
        height=args.height, width=args.width, reward=args.reward, heldout=args.heldout, steps=args.steps,
        grid=args.grid, grid_space=args.grid_space, shift=args.shift, g_schedule=args.g_schedule,
        g_norm=args.g_norm, beta_min=args.beta_min, beta_max=args.beta_max, max_batch=args.max_batch,
        params=parse_sets(args.set),
    )


def write_run_outputs(output: Any, out: Path) -> None:
    from flowscale.run import RunOutput

    assert isinstance(output, RunOutput)
    out.mkdir(parents=True, exist_ok=True)
    output.record.save(out / "record.json")
    np.save(out / "samples.npy", output.samples.detach().cpu().numpy())
    if output.world.save_outputs is not None:
        output.world.save_outputs(output.decoded, str(out))


def cmd_run(args: argparse.Namespace) -> int:
    from flowscale.run import run

    cfg = RunConfig(method=args.method, process=args.process, nfe=args.nfe, particles=args.particles,
                    seed=args.seed, prompt=args.prompt, **world_kwargs(args))
    output = run(cfg)
    write_run_outputs(output, Path(args.out))
    r = output.record
    print(f"{cfg.method} {r.config['process']}: reward {r.final_reward:.4f}, held-out {r.heldout_reward}, "
          f"NFE {r.nfe_used}/{r.nfe_budget}, {r.wall_time_s:.2f} s -> {args.out}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from flowscale.run import replay
    from flowscale.trace import TIMING_KEYS, load_record

    try:
        original = load_record(args.record)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError("record", f"cannot read {args.record}: {exc}") from None
    output = replay(original)
    again = output.record.comparable()
    same = again == {k: v for k, v in original.items() if k not in TIMING_KEYS}
    if args.out:
        write_run_outputs(output, Path(args.out))
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
    return run_bench(base, read_prompts(args.prompts), methods, processes, budgets, args.seeds, Path(args.out),
                     progress=not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "replay":
            return cmd_replay(args)
        return cmd_bench(args)
    except ConfigError as exc:
        flag = "--set" if exc.field == "params" else "--" + exc.field.replace("_", "-")
        print(f"error: {flag}: {str(exc).split(': ', 1)[1]}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        out = getattr(args, "out", None)
        if out:  # keep the trace up to the failing step
            Path(out).mkdir(parents=True, exist_ok=True)
            partial = {"config": exc.config, "error": str(exc), "events": exc.events}
            (Path(out) / "record.partial.json").write_text(json.dumps(partial, indent=1))
        print(f"error: the run stopped: {exc}" + (f" (trace so far in {out}/record.partial.json)" if out else ""),
              file=sys.stderr)
        return 1
