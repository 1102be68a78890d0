"""Digests of run records over a spread of configs: proof that an engine change leaves every record identical.

    python benchmarks/record_digests.py save before.json [--shapes]    # on the commit before the change
    python benchmarks/record_digests.py compare before.json [--shapes] # after it: lists every record that differs

Each config's record (without the runtime keys and versions) is hashed: every method on every process, RBF's
batch and code variants, reward-guided runs, and with --shapes a few Shapes runs (about 2 minutes in all on
one thread). Digests depend on the torch build and the machine, so compare on the machine that saved them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from flowscale import RunConfig, run  # noqa: E402
from flowscale.search import SEARCH_METHODS  # noqa: E402
from flowscale.trace import RUNTIME_KEYS  # noqa: E402

PROCESSES = ("linear-ode", "linear-sde", "vp-ode", "vp-sde")


def configs(shapes: bool) -> list[RunConfig]:
    out = []
    for method in ("ode", "base", *SEARCH_METHODS):
        for process in PROCESSES:
            for seed in (0, 1):
                kw = dict(method=method, process=process, seed=seed, steps=8)
                if method == "base":
                    kw["particles"] = 16
                elif method != "ode":
                    kw["nfe"] = 120
                out.append(RunConfig(**kw))
                if method == "rbf":
                    out += [RunConfig(**kw, params={"rbf.batch": 4}), RunConfig(**kw, params={"rbf.variant": "code"})]
                if process.endswith("sde") and method in ("base", "svdd", "rbf", "smc"):
                    out.append(RunConfig(**kw, dps=0.5))
    if shapes:
        for method, nfe in (("rbf", 40), ("bon", 40), ("base", None), ("smc", 40)):
            for process in ("linear-sde", "vp-sde", "linear-ode"):
                kw = dict(model="shapes", prompt="2 red circles", method=method, process=process, steps=5, seed=0)
                out.append(RunConfig(**kw, **({"nfe": nfe} if nfe else {"particles": 4})))
    return out


def digest(cfg: RunConfig) -> str:
    try:
        record = run(cfg).record.to_dict()
    except Exception as exc:  # a config a change newly refuses (or newly accepts) differs too
        record = {"error": repr(exc)}
    kept = {k: v for k, v in record.items() if k not in (*RUNTIME_KEYS, "versions")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("save", "compare"))
    parser.add_argument("path")
    parser.add_argument("--shapes", action="store_true", help="add Shapes runs (the trained UNet and detector)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # Shapes records depend on the thread count
    digests = {json.dumps(cfg.to_dict(), sort_keys=True): digest(cfg) for cfg in configs(args.shapes)}
    if args.mode == "save":
        Path(args.path).write_text(json.dumps(digests, indent=0))
        print(f"{len(digests)} record digests saved to {args.path}")
        return
    saved = json.loads(Path(args.path).read_text())
    differ = [key for key in saved if digests.get(key) != saved[key]]
    for key in differ:
        cfg = json.loads(key)
        print("differs:", {k: cfg[k] for k in ("model", "method", "process", "seed", "params", "dps")})
    print(f"{len(saved) - len(differ)} of {len(saved)} records identical")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
