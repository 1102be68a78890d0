"""`python -m flowscale bench`: reward against NFE for every method x process x budget.

Every (prompt, seed, method, process, nfe) is one job, seeded by its own seed only, so the numbers do
not depend on how jobs are split. Under `accelerate launch` (or torchrun) the jobs are split across
processes with accelerate and gathered on the main process, which writes results.json, results.csv
and report.html. `ode` runs once per seed and prompt, whatever the NFE list.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from flowscale.config import ConfigError, RunConfig, clip
from flowscale.run import ode_baseline
from flowscale.search import METHODS, without_method_params

ROW_KEYS = ("method", "process", "nfe", "runs", "reward_mean", "reward_sem", "heldout_mean", "accuracy_mean",
            "nfe_used_mean", "wall_time_s", "grad_evals_mean", "tilt_occupancy_error", "tilt_energy_distance")
MAX_PROMPTS = 1000


def split_list(text: str, name: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise ConfigError(name, "needs at least one value")
    for item in items:
        if allowed is not None and item not in allowed:
            raise ConfigError(name, f"values must be among {', '.join(allowed)}; got {item!r}")
    return items


def read_prompts(path: str | None) -> list[str | None]:
    if path is None:
        return [None]
    file = Path(path)
    if not file.is_file():
        raise ConfigError("prompts", f"file not found: {path}")
    lines = [ln.strip() for ln in file.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not 1 <= len(lines) <= MAX_PROMPTS:
        raise ConfigError("prompts", f"needs 1 to {MAX_PROMPTS} prompts, one per line; got {len(lines)}")
    return lines


def make_jobs(base: RunConfig, prompts: list[str | None], methods: list[str], processes: list[str],
              budgets: list[int], seeds: int) -> list[dict[str, Any]]:
    """Job configs as plain dicts (picklable, cheap to gather), in a fixed order. Each job gets the settings of
    its own method (and the world's); a setting of a method that is not benchmarked is an error."""
    world_keys = tuple(k.partition(".")[0] for k in without_method_params(base.params))
    for key in base.params:
        if key.partition(".")[0] not in (*methods, *world_keys):
            raise ConfigError("set", f"{clip(key)} is a setting of a method this bench does not run "
                              f"({', '.join(methods)})")
    jobs = []
    for prompt in prompts:
        for seed in range(seeds):
            for method in methods:
                combos = [("linear-ode", None)] if method == "ode" else [(p, n) for p in processes for n in budgets]
                params = {k: v for k, v in base.params.items() if k.partition(".")[0] in (method, *world_keys)}
                for process, nfe in combos:
                    cfg = dataclasses.replace(base, method=method, process=process, nfe=nfe, seed=seed, prompt=prompt,
                                              params=params)
                    jobs.append((ode_baseline(cfg) if method == "ode" else cfg).to_dict())
    return jobs


def run_job(cfg_dict: dict[str, Any], worlds: dict[str, Any]) -> dict[str, Any]:
    """One run; worlds are cached per prompt so models and rewards load once per process."""
    import torch

    from flowscale.run import run
    from flowscale.trace import target_lambda
    from flowscale.worlds import build_world, target_distance_for

    cfg = RunConfig.from_dict(cfg_dict)
    key = json.dumps([cfg.prompt, cfg.preset, cfg.mixture, cfg.reward, cfg.heldout, cfg.model_path], sort_keys=True)
    if key not in worlds:
        worlds[key] = build_world(cfg)
    output = run(cfg, world=worlds[key], previews=False)
    rec = output.record
    # Methods that sample a tilted target (SMC; reward-guided runs) are measured against it where the world
    # knows it exactly (the 2-D world): all final particles of the run, not only the returned one.
    lam = target_lambda(cfg.method, output.trace.method_params, cfg.dps)
    tilt = None if lam is None else target_distance_for(
        cfg.model, rec.extra.get("world", {}), rec.config["reward"], lam, torch.tensor(rec.samples_2d))
    return {"tilt": tilt, "method": cfg.method, "process": rec.config["process"], "nfe": rec.nfe_budget, "seed": cfg.seed,
            "prompt": cfg.prompt, "reward": rec.final_reward, "heldout": rec.heldout_reward,
            "accuracy": rec.accuracy, "nfe_used": rec.nfe_used, "wall_time_s": rec.wall_time_s,
            "reward_name": rec.config["reward"], "grad_evals": rec.extra.get("grad_evals", 0)}


def aggregate(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["method"], r["process"], r["nfe"]), []).append(r)
    rows = []
    for (method, process, nfe), rs in groups.items():
        rewards = [r["reward"] for r in rs]
        mean = sum(rewards) / len(rewards)
        var = sum((v - mean) ** 2 for v in rewards) / (len(rewards) - 1) if len(rewards) > 1 else 0.0
        held = [r["heldout"] for r in rs if r["heldout"] is not None]
        acc = [r["accuracy"] for r in rs if r["accuracy"] is not None]
        rows.append({
            "method": method, "process": process, "nfe": nfe, "runs": len(rs),
            "reward_mean": mean, "reward_sem": math.sqrt(var / len(rs)),
            "heldout_mean": sum(held) / len(held) if held else None,
            "accuracy_mean": sum(acc) / len(acc) if acc else None,
            "nfe_used_mean": sum(r["nfe_used"] for r in rs) / len(rs),
            "wall_time_s": sum(r["wall_time_s"] for r in rs) / len(rs),
            "grad_evals_mean": sum(r.get("grad_evals", 0) for r in rs) / len(rs),
            **_tilt_columns([r.get("tilt") for r in rs]),
        })
    order = {m: i for i, m in enumerate(METHODS)}
    return sorted(rows, key=lambda r: (order.get(r["method"], 99), r["process"], r["nfe"]))


def _tilt_columns(tilts: list[dict[str, Any] | None]) -> dict[str, float | None]:
    """Mean distance of the runs' final samples to their tilted target (None where none was measured)."""
    measured = [t for t in tilts if t]
    if not measured:
        return {"tilt_occupancy_error": None, "tilt_energy_distance": None}
    return {f"tilt_{k}": sum(t[k] for t in measured) / len(measured) for k in ("occupancy_error", "energy_distance")}


def write_bench_outputs(rows: list[dict[str, Any]], out: Path, title: str) -> None:
    from flowscale.report import bench_report_html

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"rows": rows}, indent=1))
    with open(out / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=ROW_KEYS)
        writer.writeheader()
        writer.writerows(rows)
    (out / "report.html").write_text(bench_report_html(rows, title))


def markdown_table(rows: list[dict[str, Any]]) -> str:
    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    cols = ("method", "process", "nfe", "runs", "reward_mean", "reward_sem", "heldout_mean", "accuracy_mean",
            "nfe_used_mean", *(c for c in ("grad_evals_mean", "tilt_occupancy_error", "tilt_energy_distance")
                               if any(r.get(c) for r in rows)))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def run_bench(base: RunConfig, prompts: list[str | None], methods: list[str], processes: list[str],
              budgets: list[int], seeds: int, out: Path, progress: bool = True) -> int:
    """Run every job (split across processes under accelerate), then write and print the table on the main one."""
    from tqdm import tqdm

    jobs = make_jobs(base, prompts, methods, processes, budgets, seeds)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    worlds: dict[str, Any] = {}
    if distributed:
        import torch
        from accelerate import PartialState
        from accelerate.utils import gather_object

        state = PartialState(cpu=not torch.cuda.is_available())
        with state.split_between_processes(jobs) as mine:
            local = [run_job(j, worlds) for j in tqdm(mine, desc=f"bench [rank {state.process_index}]",
                                                        disable=not progress)]
        results = gather_object(local)
        main = state.is_main_process
    else:
        results = [run_job(j, worlds) for j in tqdm(jobs, desc="bench", disable=not progress)]
        main = True
    if main:
        rows = aggregate(results)
        write_bench_outputs(rows, out, f"flowscale bench: {base.model}, given reward {results[0]['reward_name']}")
        print(markdown_table(rows))
    if distributed:
        state.wait_for_everyone()
    return 0
