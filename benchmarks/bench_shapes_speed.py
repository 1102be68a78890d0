"""Shapes world: model speed (ms per image-NFE), a 500-NFE RBF run end to end, detector/verifier accuracy,
base exact-count accuracy.

    python benchmarks/bench_shapes_speed.py                 # speed at batch 1, 8, 32, 64 + RBF 500 NFE
    python benchmarks/bench_shapes_speed.py --eval          # + accuracies and assets/shapes/samples.png
    python benchmarks/bench_shapes_speed.py --model DIR     # another checkpoint folder

RBF run: the issue's acceptance run (`--method rbf --process vp-sde --nfe 500` on "3 red circles and 2 blue
squares", world defaults) through flowscale.run, seeds 0..R-1; wall time covers the whole run (model, SDE
arithmetic, rewards, trace) after the model is loaded; the model time alone is printed beside it.

Base accuracy: one plain Euler ODE sample (30 uniform steps from t = 1 to 0, velocity u = eps - x0,
x <- x - dt * u) per prompt of assets/shapes/prompts_count.txt, scored by the detector and the verifier.
Prints one JSON object at the end.
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

from flowscale.worlds.shapes import detector
from flowscale.worlds.shapes.model import ShapesFlowModel, euler_sample
from flowscale.worlds.shapes.prompts import load_prompts, parse_prompt, prompt_to_vector
from flowscale.worlds.shapes.scenes import CLASSES, objects_to_spec, random_scene
from flowscale.worlds.shapes.verifier import ShapesVerifier, clean_accuracy


def time_forward(model: ShapesFlowModel, batch: int, repeats: int) -> float:
    """Median ms per image-NFE of model.velocity at this batch size."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=gen)
    t = torch.rand(batch, generator=gen, dtype=torch.float64)
    cond = torch.zeros(batch, 12)
    cond[:, 0] = 3
    model.velocity(x, t, cond)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.velocity(x, t, cond)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times)) / batch


def time_rbf_run(model_dir: str, repeats: int) -> dict[str, float]:
    """Median wall and model seconds of the acceptance RBF run (500 NFE, VP-SDE) over seeds 0..repeats-1."""
    from flowscale import RunConfig, run

    walls, models = [], []
    for seed in range(repeats):
        cfg = RunConfig(
            model="shapes",
            model_path=model_dir,
            prompt="3 red circles and 2 blue squares",
            method="rbf",
            process="vp-sde",
            nfe=500,
            seed=seed,
        )
        start = time.perf_counter()
        record = run(cfg).record
        walls.append(time.perf_counter() - start)
        models.append(record.model_time_s)
        assert record.nfe_used == 500
    return {"wall_s": float(np.median(walls)), "model_s": float(np.median(models)), "runs": repeats}


def detector_accuracy(n: int = 1000) -> float:
    """Exact-count accuracy of the detector on n clean random scenes (seeds 0..n-1)."""
    images, targets = [], []
    for seed in range(n):
        image, objects = random_scene(seed)
        images.append(image)
        spec = objects_to_spec(objects)
        targets.append({cls: spec.get(cls, 0) for cls in CLASSES})
    detected = detector.detect_counts(torch.as_tensor(np.stack(images)))
    return sum(d == t for d, t in zip(detected, targets, strict=True)) / n


def base_accuracy(model: ShapesFlowModel, prompts: list[str], steps: int, seed: int) -> tuple[dict, torch.Tensor]:
    """One Euler-ODE sample per prompt; detector and verifier exact-count accuracy and mean rewards."""
    gen = torch.Generator().manual_seed(seed)
    verifier = ShapesVerifier.from_pretrained()
    conds = torch.stack([prompt_to_vector(q) for q in prompts])
    chunks = [
        euler_sample(model, conds[lo : lo + 32], conds[lo : lo + 32].shape[0], steps=steps, generator=gen)
        for lo in range(0, len(prompts), 32)
    ]
    images = model.decode(torch.cat(chunks))
    det_acc, ver_acc, det_rew, compose = [], [], [], []
    for img, prompt in zip(images.split(1), prompts, strict=True):
        spec = parse_prompt(prompt)
        det_rew.append(float(detector.count_reward(img, spec)[0]))
        det_acc.append(float(detector.count_accuracy(img, spec)[0]))
        compose.append(float(detector.compose_reward(img, spec)[0]))
        ver_acc.append(float(verifier.count_accuracy(img, spec)[0]))
    stats = {
        "prompts": len(prompts),
        "euler_steps": steps,
        "seed": seed,
        "detector_exact_count_accuracy": float(np.mean(det_acc)),
        "verifier_exact_count_accuracy": float(np.mean(ver_acc)),
        "detector_count_reward_mean": float(np.mean(det_rew)),
        "compose_reward_mean": float(np.mean(compose)),
    }
    return stats, images


def save_grid(images: torch.Tensor, prompts: list[str], path: Path, cols: int = 8, scale: int = 4) -> None:
    """Save images [N, 3, 32, 32] in [0, 1] as an upscaled grid PNG (captions in a .txt beside it)."""
    from PIL import Image

    n = images.shape[0]
    rows = (n + cols - 1) // cols
    pad = 2
    cell = 32 * scale + pad
    canvas = np.full((rows * cell + pad, cols * cell + pad, 3), 255, dtype=np.uint8)
    arr = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, c = divmod(i, cols)
        big = np.kron(arr[i], np.ones((scale, scale, 1), dtype=np.uint8))
        canvas[pad + r * cell : pad + r * cell + 32 * scale, pad + c * cell : pad + c * cell + 32 * scale] = big
    Image.fromarray(canvas).save(path)
    path.with_suffix(".txt").write_text(
        "\n".join(f"row {i // cols + 1} col {i % cols + 1}: {p}" for i, p in enumerate(prompts[:n])) + "\n"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(ROOT / "assets" / "shapes"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--eval", action="store_true", help="also measure accuracies and save samples.png")
    p.add_argument("--rbf-runs", type=int, default=3, help="repeats of the 500-NFE RBF run (0 to skip)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", default=str(ROOT / "assets" / "shapes" / "samples.png"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = ShapesFlowModel.from_pretrained(args.model)
    result: dict = {"threads": args.threads, "ms_per_image_nfe": {}}
    for batch in (1, 8, 32, 64):
        ms = time_forward(model, batch, args.repeats)
        result["ms_per_image_nfe"][batch] = round(ms, 2)
        print(f"batch {batch:3d}: {ms:7.2f} ms per image-NFE ({ms * batch:8.1f} ms per call)", flush=True)
    if args.rbf_runs:
        # The first run also pays for loading the detector and verifier; time it apart.
        time_rbf_run(args.model, 1)
        rbf = time_rbf_run(args.model, args.rbf_runs)
        result["rbf_500_vp_sde"] = rbf
        print(f"RBF 500 NFE vp-sde end to end: {rbf['wall_s']:.2f} s wall, {rbf['model_s']:.2f} s in the model "
              f"(median of {args.rbf_runs})", flush=True)
    if args.eval:
        result["detector_clean_accuracy_1000"] = detector_accuracy(1000)
        print(f"detector exact-count accuracy on 1000 clean scenes: {result['detector_clean_accuracy_1000']:.3f}")
        result["verifier_clean_accuracy_1000"] = clean_accuracy(ShapesVerifier.from_pretrained(), 1000)
        print(f"verifier exact-count accuracy on 1000 clean scenes: {result['verifier_clean_accuracy_1000']:.3f}")
        prompts = load_prompts()
        stats, images = base_accuracy(model, prompts, args.steps, args.seed)
        result["base"] = stats
        print(f"base (Euler {args.steps} steps, 1 sample/prompt, {len(prompts)} prompts): {stats}", flush=True)
        save_grid(images[:48], prompts, Path(args.grid))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
