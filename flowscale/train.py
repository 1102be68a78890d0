"""Train the Shapes-world models on procedural data: `python -m flowscale.train {shapes,verifier} [...]`.

shapes:   conditional flow matching (method.md a.1: x_t = (1 - t) x0 + t eps, t = 1 noise, target
          u = eps - x0; t = sigmoid(N(1, 1)), a logit-normal leaning toward noise, or U(0, 1) with
          `--t-sampling uniform`) of `ShapesVelocityNet` on an infinite stream of scenes rendered for
          random count specs (scenes.sample_spec), AdamW, EMA of the weights (the EMA is exported),
          periodic safetensors checkpoints that `--resume` continues from, export to assets/shapes/.
shapes-reflow: the same loop on pairs (x1 noise, x0 = the teacher's Euler-ODE end point from x1) instead
          of independent (scene, noise) draws: rectified-flow "reflow" (Liu et al. 2022, InstaFlow). The
          coupled pairs make the paths nearly straight, so the one-step prediction x0_hat(x_t) is close to
          the sample the ODE would finish at, as for the few-step FLUX.1-schnell of the paper. Pairs are
          drawn once (`--pairs`, `--teacher-steps`) and cached in the checkpoint folder; the student starts
          from the teacher's weights; export to runs/shapes_reflow/export.
verifier: the held-out CNN counter (verifier.py) on corrupted procedural scenes, export to
          assets/shapes/verifier.safetensors + verifier.json.

Everything is seeded (numpy Generator for data, torch Generator for noise and t); no global RNG state.
Checkpoints hold tensors only (safetensors) plus a JSON file; nothing is pickled.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "shapes"


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """AdamW state -> (flat tensors for safetensors, JSON-able param_groups)."""
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for key, value in st.items():
            tensors[f"{pid}.{key}"] = torch.as_tensor(value).detach().to("cpu").contiguous()
    return tensors, sd["param_groups"]


def _unflatten_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": groups})
    # Checkpoints store contiguous tensors; the moment estimates must take their parameter's layout again
    # (channels_last under --kernels fast), or the fused kernel pairs them with the wrong elements.
    for param, st in opt.state.items():
        for key, value in st.items():
            if torch.is_tensor(value) and value.shape == param.shape:
                st[key] = torch.empty_like(param).copy_(value)


def _save_checkpoint(
    out: Path, step: int, net, ema, opt, rng: np.random.Generator, gen: torch.Generator, info: dict
) -> None:
    from safetensors.torch import save_file

    from flowscale.worlds.shapes.model import save_net

    ckpt = out / "checkpoint"
    save_net(net, ckpt / "model")
    save_net(ema, ckpt / "ema")
    opt_tensors, groups = _flatten_optimizer(opt)
    opt_tensors["torch_generator_state"] = gen.get_state()
    save_file(opt_tensors, str(ckpt / "optimizer.safetensors"))
    state = {"step": step, "param_groups": groups, "numpy_rng": rng.bit_generator.state, **info}
    tmp = ckpt / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(ckpt / "state.json")


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
        pe.lerp_(p, 1.0 - decay)
    for be, b in zip(ema.buffers(), net.buffers(), strict=True):
        be.copy_(b)


def sample_times(kind: str, n: int, gen: torch.Generator, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """Training times t in (0, 1) (t = 1 noise). "uniform": U(0, 1). "logit-normal": sigmoid(N(mean, std^2)),
    SD3's choice with mean 0 (Esser et al. 2024, rf/lognorm(0, 1)): it spends more of the batch on middle
    times and less near t = 0, where flat shapes are already clean. A positive mean moves the weight toward
    noise (t = 1), where a scene's layout and object count are decided (shapes default: mean 1)."""
    if kind == "uniform":
        return torch.rand(n, generator=gen)
    if kind == "logit-normal":
        if not std > 0:
            raise ValueError(f"t-std must be > 0; got {std}")
        return torch.sigmoid(mean + std * torch.randn(n, generator=gen))
    raise ValueError(f"t-sampling must be uniform or logit-normal; got {kind!r}")


def teacher_pairs(
    teacher: str | Path, n: int, steps: int, seed: int, device: str | torch.device = "cpu", chunk: int = 256
) -> dict[str, torch.Tensor]:
    """n reflow pairs from a Shapes teacher: x1 ~ N(0, I) [n, 3, 32, 32], the teacher's `steps`-step uniform
    Euler-ODE end point x0 from x1 (model space), and the count vector [n, 12] of a random spec
    (scenes.sample_spec, the teacher's training distribution). Seeded: numpy for specs, torch for noise."""
    from tqdm import tqdm

    from flowscale.worlds.shapes.model import ShapesFlowModel, euler_sample, load_net
    from flowscale.worlds.shapes.scenes import sample_spec, spec_to_vector

    model = ShapesFlowModel(load_net(teacher), device=device)
    rng = np.random.default_rng([seed, 1])
    gen = torch.Generator().manual_seed(seed + 1)
    cond = torch.stack([spec_to_vector(sample_spec(rng)) for _ in range(n)])
    x1 = torch.randn((n, *model.sample_shape), generator=gen)
    ends = [
        euler_sample(model, cond[lo : lo + chunk], len(cond[lo : lo + chunk]), steps, x1=x1[lo : lo + chunk])
        for lo in tqdm(range(0, n, chunk), desc="teacher pairs", mininterval=20)
    ]
    return {"x1": x1, "x0": torch.cat(ends), "cond": cond}


def _load_or_make_pairs(args: argparse.Namespace, out: Path) -> dict[str, torch.Tensor]:
    """The run's reflow pairs, made once and kept in OUT/pairs.safetensors (a resumed run reuses them)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = out / "pairs.safetensors"
    meta = {
        "teacher": str(args.teacher),
        "pairs": str(args.pairs),
        "teacher_steps": str(args.teacher_steps),
        "seed": str(args.seed),
    }
    if path.is_file():
        with safe_open(str(path), "pt") as f:
            if f.metadata() == meta:
                print(f"reflow pairs from {path}", flush=True)
                return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
        print(f"{path} was made with other settings; making new pairs", flush=True)
    start = time.time()
    pairs = teacher_pairs(args.teacher, args.pairs, args.teacher_steps, args.seed, args.device)
    save_file(pairs, str(path), metadata=meta)
    print(f"{args.pairs} teacher pairs in {(time.time() - start) / 60:.1f} min", flush=True)
    return pairs


def _shown(path: str | Path | None) -> str | None:
    """A path as recorded in configs: relative to the project root when inside it (no machine's home)."""
    if path is None:
        return None
    root = ASSETS.parent.parent
    resolved = Path(path).resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(path)


def _call_settings(args: argparse.Namespace) -> dict:
    """The settings of one training call that shape its weights, as recorded in each stage and in the export.
    The logit-normal location and scale appear only where they are used and are not SD3's (0, 1), so the
    records of earlier runs keep their shape."""
    settings = {
        "schedule_steps": args.steps,
        "lr": args.lr,
        "cosine": args.cosine,
        "batch": args.batch,
        "init": _shown(args.init),
        "t_sampling": args.t_sampling,
    }
    if args.t_sampling == "logit-normal" and (args.t_mean, args.t_std) != (0.0, 1.0):
        settings.update(t_mean=args.t_mean, t_std=args.t_std)
    if args.what == "shapes-reflow":
        reflow = {"teacher": _shown(args.teacher), "pairs": args.pairs, "teacher_steps": args.teacher_steps}
        settings.update(reflow=reflow)
    return settings


def train_shapes(args: argparse.Namespace) -> None:
    """Flow-matching training loop for the Shapes world (see module docstring)."""
    import copy

    from safetensors.torch import load_file
    from tqdm import tqdm

    from flowscale.worlds.shapes.model import ShapesVelocityNet, load_net, save_net
    from flowscale.worlds.shapes.scenes import sample_batch

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        # Full float32 on the GPU too (no TF32), so a recipe tried there behaves like the CPU run it stands for.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    out = Path(args.out or "runs/shapes_train")
    out.mkdir(parents=True, exist_ok=True)
    pairs = _load_or_make_pairs(args, out) if args.what == "shapes-reflow" else None
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    step, elapsed_before = 0, 0.0
    earlier: list[dict] = []  # the stages (one call each) that led to the checkpoint being resumed
    ckpt = out / "checkpoint"
    resume = args.resume and (ckpt / "state.json").is_file()
    if resume:
        net, ema = load_net(ckpt / "model"), load_net(ckpt / "ema")
    elif args.init:
        # Fine-tune from exported weights (e.g. assets/shapes): weights only, fresh optimizer and schedule.
        net = load_net(args.init)
        ema = copy.deepcopy(net)
        print(f"initialised from {args.init}", flush=True)
    else:
        torch.manual_seed(args.seed)  # parameter init only
        net = ShapesVelocityNet()
        ema = copy.deepcopy(net)
    # "fast": channels_last activations and the fused AdamW kernel, 7-15 % less time per CPU step (the
    # convolutions are ~60 % of it). Same maths as "plain" (contiguous tensors, foreach AdamW) but other
    # float rounding, so a recorded stage is repeated bit for bit only with the kernels it ran with.
    fast = args.kernels == "fast"
    memory_format = torch.channels_last if fast else torch.contiguous_format
    # Export (save_net) writes contiguous CPU tensors either way.
    net, ema = net.to(device, memory_format=memory_format), ema.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.9, 0.99), fused=fast)
    if resume:
        state = json.loads((ckpt / "state.json").read_text())
        tensors = load_file(str(ckpt / "optimizer.safetensors"))
        gen.set_state(tensors.pop("torch_generator_state"))
        _unflatten_optimizer(opt, tensors, state["param_groups"])
        rng.bit_generator.state = state["numpy_rng"]
        step, elapsed_before = state["step"], state.get("elapsed_s", 0.0)
        # Checkpoints written before stages were recorded: keep what is known, that they reached `step`.
        earlier = state.get("stages") or [{"start_step": 0, "end_step": step}]
        print(f"resumed from {ckpt} at step {step}", flush=True)
    net.train()
    ema.eval().requires_grad_(False)
    n_params = sum(p.numel() for p in net.parameters())
    print(f"shapes: {n_params / 1e6:.3f} M parameters, batch {args.batch}, steps {args.steps}", flush=True)

    start, start_step = time.time(), step
    loss_avg, stopped_by = None, None

    def stages() -> list[dict]:
        # Weights that took several calls (e.g. --resume with a longer --steps) are reproducible only with
        # every call's settings, so each call is recorded as one stage in the checkpoint and the export.
        this = {
            "start_step": start_step,
            "end_step": step,
            **_call_settings(args),
            "kernels": args.kernels,
            "device": device.type,
            "wall_time_s": round(time.time() - start, 1),
        }
        if stopped_by:
            this["stopped_by"] = stopped_by
        return [*earlier, this]

    def progress() -> dict:
        # What a checkpoint stores beside the tensors; elapsed_s spans every call of the run.
        return {"elapsed_s": elapsed_before + time.time() - start, "loss": loss_avg, "stages": stages()}

    bar = tqdm(total=args.steps, initial=step, mininterval=20, desc="shapes")
    last = min(args.steps, args.until or args.steps)
    while step < last:
        elapsed = elapsed_before + time.time() - start
        if args.max_minutes and elapsed > args.max_minutes * 60:
            print(f"time budget of {args.max_minutes} min reached at step {step}", flush=True)
            stopped_by = (
                f"--max-minutes {args.max_minutes:g} (repeat without wall time: --until {step} --max-minutes 0)"
            )
            break
        if pairs is None:
            x0, cond = sample_batch(rng, args.batch)
        else:
            pick = torch.from_numpy(rng.integers(len(pairs["x0"]), size=args.batch))
            x0, cond = pairs["x0"][pick], pairs["cond"][pick].clone()
        # Null condition (all-zero counts) for a --p-null share, for optional classifier-free guidance.
        drop = torch.rand(args.batch, generator=gen) < args.p_null
        cond[drop] = 0.0
        eps = torch.randn(x0.shape, generator=gen) if pairs is None else pairs["x1"][pick]
        t = sample_times(args.t_sampling, args.batch, gen, args.t_mean, args.t_std)
        # Every draw above is made on the CPU generators, so a GPU run sees the same data, noise and times.
        x0, cond, eps, t = (v.to(device, non_blocking=True) for v in (x0, cond, eps, t))
        xt = (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * eps
        xt = xt.contiguous(memory_format=memory_format)
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        if args.cosine:  # cosine decay to 10 % of the base rate at --steps
            lr *= 0.1 + 0.45 * (1.0 + math.cos(math.pi * min(1.0, step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = torch.nn.functional.mse_loss(net(xt, t, cond), eps - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        _ema_update(ema, net, min(args.ema, (1 + step) / (10 + step)))
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        bar.update(1)
        if step % args.log_every == 0:
            rate = (step - (bar.initial or 0)) / max(time.time() - start, 1e-9)
            print(
                f"step {step} loss {loss_avg:.4f} lr {lr:.2e} {rate:.2f} it/s "
                f"elapsed {(elapsed_before + time.time() - start) / 60:.1f} min",
                flush=True,
            )
        if step % args.ckpt_every == 0:
            _save_checkpoint(out, step, net, ema, opt, rng, gen, progress())
    bar.close()
    final = progress()
    wall = final["elapsed_s"]
    _save_checkpoint(out, step, net, ema, opt, rng, gen, final)
    export = Path(args.export) if args.export else (out / "export" if pairs is not None else ASSETS)
    info = {
        "training": {
            "steps": step,
            **_call_settings(args),
            "ema": args.ema,
            "p_null": args.p_null,
            "seed": args.seed,
            "wall_time_s": round(wall, 1),
            "final_loss_ema": loss_avg,
            "parameters": n_params,
            "weights": "EMA",
            "stages": final["stages"],
        }
    }
    save_net(ema, export, extra=info)
    print(f"done: {step} steps in {wall / 60:.1f} min; EMA weights exported to {export}", flush=True)


# What an unset flag means, per mode. shapes: the default fits the hour the project allows: logit-normal
# times centred toward noise (sigmoid(N(1, 1)), median t = 0.73), lr 1e-3, a cosine schedule over 5000
# steps, fast kernels. Centring the times at 0.5 (SD3's default) counted exactly on 0.21 of the prompts
# after 5000 steps, at 0.62 (mean 0.5) on 0.31-0.34, at 0.73 (mean 1) on 0.46 (GPU recipe sweep, 3 seeds
# each, docs/results/shapes_recipe_sweep.json); objects and their number are decided at high noise. The
# shipped weights are this command's output, see assets/shapes/MODEL_CARD.md.
# shapes-reflow fine-tunes the teacher (--init defaults to --teacher) on its own ODE's pairs, with uniform
# times as in rectified flow.
_SHARED = {"batch": 64, "cosine": True, "max_minutes": 55.0}
MODE_DEFAULTS = {
    "shapes": {**_SHARED, "steps": 5000, "lr": 1e-3, "t_sampling": "logit-normal", "t_mean": 1.0, "p_null": 0.1},
    "shapes-reflow": {
        **_SHARED,
        "steps": 2000,
        "lr": 3e-4,
        "t_sampling": "uniform",
        "t_mean": 0.0,
        "p_null": 0.0,
        "out": "runs/shapes_reflow",
    },
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m flowscale.train", description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["shapes", "shapes-reflow", "verifier"])
    p.add_argument("--steps", type=int, default=None, help="length of the run and of its learning-rate schedule")
    p.add_argument("--until", type=int, default=None, help="stop at this step; the schedule still spans --steps")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument(
        "--out", default=None, help="checkpoint folder (default runs/<what>_train; shapes-reflow: runs/shapes_reflow)"
    )
    p.add_argument("--export", default=None, help="export folder (default assets/shapes; shapes-reflow: OUT/export)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--init", default=None, help="start from exported weights in this folder (e.g. assets/shapes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop (and export) once the run's total wall time, resumed calls included, passes this; "
        "0 = no limit (shapes: 55)",
    )
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument(
        "--p-null", type=float, default=None, help="share of null-condition samples (shapes: 0.1, shapes-reflow: 0)"
    )
    p.add_argument("--teacher", default=str(ASSETS), help="shapes-reflow: the model folder whose ODE makes the pairs")
    p.add_argument("--pairs", type=int, default=8192, help="shapes-reflow: number of (noise, end point) pairs")
    p.add_argument("--teacher-steps", type=int, default=20, help="shapes-reflow: Euler steps of the teacher's ODE")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument(
        "--t-sampling",
        choices=["uniform", "logit-normal"],
        default=None,
        help="distribution of the training time t (shapes: logit-normal)",
    )
    p.add_argument(
        "--t-mean", type=float, default=None, help="logit-normal location, > 0 leans toward noise (shapes: 1.0)"
    )
    p.add_argument("--t-std", type=float, default=1.0, help="logit-normal scale")
    p.add_argument(
        "--device",
        default="cpu",
        help="torch device to train shapes on (cpu, cuda); data, noise and times are drawn on the CPU either way",
    )
    p.add_argument(
        "--kernels",
        choices=["fast", "plain"],
        default="fast",
        help="fast: channels_last + fused AdamW; plain: what runs recorded without a 'kernels' key used "
        "(needed to repeat them bit for bit)",
    )
    p.add_argument(
        "--cosine",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cosine learning-rate decay to 10 %% at --steps (shapes: on)",
    )
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--ckpt-every", type=int, default=250)
    args = p.parse_args(argv)
    if args.what in MODE_DEFAULTS:
        if args.what == "shapes-reflow":
            if args.pairs < 1 or args.teacher_steps < 1:
                p.error(f"--pairs and --teacher-steps must be >= 1; got {args.pairs} and {args.teacher_steps}")
            args.init = args.init or args.teacher
        for key, value in MODE_DEFAULTS[args.what].items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        train_shapes(args)
    else:
        from flowscale.worlds.shapes.verifier import train_verifier

        args.steps = args.steps or 3000
        args.batch = args.batch or 64
        args.lr = args.lr or 1e-3
        train_verifier(args)


if __name__ == "__main__":
    main()
