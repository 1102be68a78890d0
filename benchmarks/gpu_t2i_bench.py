"""GPU benchmark of the text-to-image world (needs a CUDA GPU and local weights, except `speed --random-weights`,
which builds FLUX.1-schnell at its real size from its config with random weights; `--toy` runs it on a CPU).

    # 1. throughput: NFE per second against batch size (FLUX.1-schnell, 1024^2, bf16)
    python benchmarks/gpu_t2i_bench.py speed --model-path /models/FLUX.1-schnell --batches 1,2,4,5,8

    # 2. a slice of the paper's quantity-aware table (method.md d.3, Table 4): BoN (Linear-ODE) vs
    #    RBF (VP-SDE) at 50-500 NFE with the Grounding DINO counting reward
    python benchmarks/gpu_t2i_bench.py table --model-path /models/FLUX.1-schnell --reward count \
        --nfe 50,100,300,500 --seeds 1 --out runs/t2i_count

    # compositional slice (method.md d.4, Table 5): VQAScore from a separate server (docs/t2i.md)
    FLOWSCALE_VQASCORE_URL=http://127.0.0.1:5000 python benchmarks/gpu_t2i_bench.py table \
        --model-path /models/FLUX.1-schnell --reward vqascore --prompts prompts.txt --out runs/t2i_vqa

    # 3. the paper's aesthetic table with reward guidance (method.md d.6, Table 2): FLUX, DPS, SVDD + DPS,
    #    RBF + DPS with the aesthetic reward given and a held-out reward (the paper's ImageReward is not here)
    FLOWSCALE_AESTHETIC_HEAD=/models/aesthetic.safetensors python benchmarks/gpu_t2i_bench.py table \
        --model-path /models/FLUX.1-schnell --reward aesthetic --heldout pickscore --dps 1 --nfe 500 --out runs/t2i_dps

`speed` times world.model.velocity (transformer only, the NFE cost) and world.decode (VAE) per batch size.
`table` calls flowscale.run.run for every (prompt, seed, method, nfe), writes one JSON line per run to
OUT/runs.jsonl (and result PNGs), then a summary OUT/summary.json and a Markdown table on stdout:
mean RSS (= -reward for `count`), accuracy, held-out reward and seconds per image, next to the paper's
numbers where they exist.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowscale.config import RunConfig
from flowscale.run import run
from flowscale.worlds.t2i import world as t2i

# A few T2I-CompBench++-numeracy-style prompts (the paper's 100 prompts are not released; method.md d.3).
COUNT_PROMPTS = [
    "three apples and two bananas on a table",
    "four cats sitting on a sofa",
    "two dogs and three balls on the grass",
    "five red balloons in the sky",
    "one teapot and four cups on a tray",
    "six books on a shelf",
]
# Paper, FLUX.1-schnell, Table 4 (quantity-aware): NFE -> (BoN RSS, BoN acc, RBF RSS, RBF acc)
PAPER_COUNT = {50: (4.36, 0.40, 3.25, 0.41), 100: (3.28, 0.51, 1.86, 0.59), 300: (2.19, 0.57, 0.69, 0.72),
               500: (1.76, 0.58, 0.54, 0.80), 1000: (1.34, 0.59, 0.29, 0.88)}
# Paper Table 5 (compositional, VQAScore): NFE -> (BoN, RBF)
PAPER_VQA = {50: (0.831, 0.858), 100: (0.846, 0.882), 300: (0.878, 0.915), 500: (0.879, 0.925),
             1000: (0.889, 0.928)}
METHODS = (("bon", "linear-ode"), ("rbf", "vp-sde"))
# Table 2's rows (method, process, guided): FLUX is one ODE sample, DPS one guided SDE sample (base, 1 particle)
DPS_ROWS = (("ode", "linear-ode", False), ("base", "vp-sde", True), ("svdd", "vp-sde", True), ("rbf", "vp-sde", True))
# Paper Table 2 (aesthetic, 45 DDPO animal prompts, held out ImageReward): method -> (aesthetic, ImageReward)
PAPER_AESTHETIC = {"ode": (5.795, 0.991), "base": (6.438, 0.605), "svdd": (6.887, 1.077), "rbf": (7.170, 1.152)}
# Animal names like DDPO's aesthetic prompts (the paper's exact list is not in the released snapshot).
ANIMAL_PROMPTS = ["cat", "dog", "horse", "monkey", "rabbit", "zebra", "spider", "bird", "sheep", "deer", "cow", "goat",
                  "lion", "tiger", "bear", "raccoon", "fox", "wolf", "lizard", "beetle", "ant", "butterfly", "fish",
                  "shark", "whale", "dolphin", "squirrel", "mouse", "rat", "snake", "turtle", "frog", "chicken", "duck",
                  "goose", "bee", "pig", "turkey", "fly", "llama", "camel", "bat", "gorilla", "hedgehog", "kangaroo"]


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def cmd_speed(args: argparse.Namespace) -> None:
    cfg = RunConfig(model=args.model, model_path=args.model_path, prompt="a photo of a cat", height=args.size,
                    width=args.size, reward="brightness", heldout="none")
    world = t2i.build_world(cfg)
    model = world.model
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        x = torch.randn(batch, *model.sample_shape, device=model.device)
        t = torch.full((batch,), 0.7, dtype=torch.float64)
        model.velocity(x, t, world.cond)  # warm-up
        _sync()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            model.velocity(x, t, world.cond)
            _sync()
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        world.decode(x)
        _sync()
        decode_s = time.perf_counter() - start
        sec = statistics.median(times)
        row = {"batch": batch, "sec_per_call": sec, "nfe_per_sec": batch / sec,
               "decode_sec_per_image": decode_s / batch, "peak_mem_gb": torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"model": args.model, "size": args.size, "device": torch.cuda.get_device_name()
                      if torch.cuda.is_available() else "cpu", "rows": rows}))


def cmd_table(args: argparse.Namespace) -> None:
    default = ANIMAL_PROMPTS if args.dps else COUNT_PROMPTS
    prompts = (Path(args.prompts).read_text().splitlines() if args.prompts else default)
    prompts = [p.strip() for p in prompts if p.strip()][: args.max_prompts]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = DPS_ROWS if args.dps else [(m, p, False) for m, p in METHODS]
    results = []
    with (out / "runs.jsonl").open("a") as log:
        for nfe in (int(n) for n in args.nfe.split(",")):
            for method, process, guided in rows:
                for pi, prompt in enumerate(prompts):
                    for seed in range(args.seeds):
                        sized = {"particles": 1} if method == "base" else {} if method == "ode" else {"nfe": nfe}
                        cfg = RunConfig(model=args.model, model_path=args.model_path, prompt=prompt, method=method,
                                        process=process, seed=seed, reward=args.reward, heldout=args.heldout,
                                        height=args.size, width=args.size, steps=args.steps,
                                        dps=args.dps if guided else 0.0, **sized)
                        output = run(cfg, previews=False)
                        r = output.record
                        row = {"nfe": nfe, "method": method, "process": process, "prompt": prompt, "seed": seed,
                               "reward": r.final_reward, "accuracy": r.accuracy, "heldout": r.heldout_reward,
                               "nfe_used": r.nfe_used, "wall_time_s": r.wall_time_s, "details": r.details,
                               "dps": cfg.dps, "grad_evals": r.extra.get("grad_evals", 0)}
                        results.append(row)
                        log.write(json.dumps(row) + "\n")
                        log.flush()
                        output.world.save_outputs(output.decoded[:1], str(out / f"{method}_{nfe}_{pi}_{seed}"))
                        print(json.dumps({k: row[k] for k in ("nfe", "method", "reward", "accuracy", "wall_time_s")}),
                              flush=True)
    summary = summarise(results, args.reward)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(markdown(summary, args.reward, table2=bool(args.dps)))


def summarise(results: list[dict], reward: str) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in results:
        groups.setdefault((row["nfe"], row["method"], row["process"], row.get("dps", 0.0)), []).append(row)
    summary = []
    for (nfe, method, process, dps), rows in sorted(groups.items()):
        mean = statistics.fmean
        acc = [r["accuracy"] for r in rows if r["accuracy"] is not None]
        held = [r["heldout"] for r in rows if r["heldout"] is not None]
        summary.append({"nfe": nfe, "method": method, "process": process, "dps": dps, "runs": len(rows),
                        "nfe_used": mean(r["nfe_used"] for r in rows),
                        "grad_evals": mean(r.get("grad_evals", 0) for r in rows),
                        "reward": mean(r["reward"] for r in rows),
                        "rss": -mean(r["reward"] for r in rows) if reward.startswith("count") else None,
                        "accuracy": mean(acc) if acc else None, "heldout": mean(held) if held else None,
                        "sec_per_image": mean(r["wall_time_s"] for r in rows)})
    return summary


def markdown(summary: list[dict], reward: str, table2: bool = False) -> str:
    lines = ["| NFE | method | reward | RSS | acc | held-out | s/image | paper |", "|---|---|---|---|---|---|---|---|"]
    for s in summary:
        paper = ""
        if table2:
            label = {"ode": "FLUX", "base": "DPS", "svdd": "SVDD + DPS", "rbf": "RBF + DPS"}[s["method"]]
            aesthetic, image_reward = PAPER_AESTHETIC[s["method"]]
            paper = f"{label}: aesthetic {aesthetic}, ImageReward {image_reward} (backward passes {s['grad_evals']:.0f})"
        elif reward.startswith("count") and s["nfe"] in PAPER_COUNT:
            b_rss, b_acc, r_rss, r_acc = PAPER_COUNT[s["nfe"]]
            paper = f"RSS {b_rss}, acc {b_acc}" if s["method"] == "bon" else f"RSS {r_rss}, acc {r_acc}"
        elif reward == "vqascore" and s["nfe"] in PAPER_VQA:
            paper = f"VQAScore {PAPER_VQA[s['nfe']][0 if s['method'] == 'bon' else 1]}"

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        lines.append(f"| {s['nfe']} | {s['method']} ({s['process']}) | {fmt(s['reward'])} | {fmt(s['rss'])} | "
                     f"{fmt(s['accuracy'])} | {fmt(s['heldout'])} | {s['sec_per_image']:.1f} | {paper} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("speed", "table"):
        p = sub.add_parser(name)
        p.add_argument("--model", default="flux-schnell")
        p.add_argument("--model-path", help="local diffusers folder (default: the hub id, if reachable)")
        p.add_argument("--size", type=int, default=1024)
    speed = sub.choices["speed"]
    speed.add_argument("--batches", default="1,2,4,5,8")
    speed.add_argument("--random-weights", action="store_true",
                       help="FLUX.1-schnell's transformer and VAE from their configs, random weights: nothing downloaded")
    speed.add_argument("--toy", action="store_true", help="with --random-weights: toy sizes (a CPU, CI)")
    speed.add_argument("--repeats", type=int, default=5)
    table = sub.choices["table"]
    table.add_argument("--reward", default="count", help="count | vqascore | clip | ...")
    table.add_argument("--heldout", default="none")
    table.add_argument("--prompts", help="file with one prompt per line (default: built-in counting prompts)")
    table.add_argument("--max-prompts", type=int, default=100)
    table.add_argument("--nfe", default="50,100,300,500")
    table.add_argument("--seeds", type=int, default=1)
    table.add_argument("--out", default="runs/gpu_t2i_bench")
    table.add_argument("--dps", type=float, default=0.0,
                       help="> 0: the paper's Table 2 rows (FLUX, DPS, SVDD + DPS, RBF + DPS) with this guidance scale")
    table.add_argument("--steps", type=int, help="evaluation times (default: the model's)")
    args = parser.parse_args()
    if args.command == "speed" and args.random_weights:
        if not args.toy and not torch.cuda.is_available():  # (it would build a 12 B model in float32: 48 GB)
            parser.error("speed --random-weights at FLUX.1-schnell's real size needs a CUDA GPU; "
                         "add --toy for the toy-size run on a CPU")
        from flux_random_speed import measure

        batches = [int(b) for b in args.batches.split(",")]
        print(json.dumps(measure(args.size, batches, args.repeats, toy=args.toy), indent=1))
        return
    cmd_speed(args) if args.command == "speed" else cmd_table(args)


if __name__ == "__main__":
    main()
