"""Small pictures and tables: the side-by-side reward table, crisp previews of image samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from flowscale.trace import Trace


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{float(value) + 0.0:.4g}"  # + 0.0: a reward of -0.0 reads 0


def side_by_side_markdown(runs: Sequence[tuple[str, Trace | None]]) -> str:
    """A table: given reward, held-out reward and NFE of the ODE baseline, the method and BoN (finished runs)."""
    runs = [(name, tr.record.to_dict()) for name, tr in runs if tr is not None and tr.record is not None]
    if not runs:
        return "_Press **Run** to compare the scaled sampler with the deterministic ODE baseline._"
    cfg = runs[0][1].get("config", {})
    given, held = cfg.get("reward", "reward"), cfg.get("heldout", "held-out")
    header = "| | " + " | ".join(f"**{name}**" for name, _ in runs) + " |"
    rule = "|---|" + "---:|" * len(runs)
    lines = [
        header,
        rule,
        f"| given reward `{given}` | " + " | ".join(_fmt(r.get("final_reward")) for _, r in runs) + " |",
        f"| held-out reward `{held}` | " + " | ".join(_fmt(r.get("heldout_reward")) for _, r in runs) + " |",
        "| NFE spent / budget | " + " | ".join(f"{r.get('nfe_used')} / {r.get('nfe_budget')}" for _, r in runs) + " |",
    ]
    if any(r.get("accuracy") is not None for _, r in runs):
        lines.append("| accuracy | " + " | ".join(_fmt(r.get("accuracy")) for _, r in runs) + " |")
    return "\n".join(lines)


def to_uint8_image(value: Any, size: int = 192) -> np.ndarray | None:
    """One preview (tensor/array [C,H,W] or [H,W,C] in [-1,1], [0,1] or uint8, or a PIL image) as HWC uint8,
    upscaled with nearest neighbours to about `size` pixels (small images stay crisp)."""
    if value is None:
        return None
    if hasattr(value, "detach"):
        value = value.detach().to("cpu").numpy()
    arr = np.asarray(value)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3:
        return None
    if arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.transpose(arr, (1, 2, 0))
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float64)
        if arr.min() < 0:
            arr = (arr + 1) / 2
        if arr.max() <= 1.0 + 1e-6:
            arr = arr * 255
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    scale = max(1, size // max(arr.shape[0], arr.shape[1]))
    if scale > 1:
        arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    return arr


def preview_strip(previews_by_step: dict[int, tuple[Any, float, float]], until: int | None = None
                  ) -> list[tuple[np.ndarray, str]]:
    """Gallery items: the best x̂0 preview of each step (up to step `until`), captioned with step and reward."""
    items = []
    for step in sorted(k for k in previews_by_step if until is None or k <= until):
        image, _t, reward = previews_by_step[step]
        arr = to_uint8_image(image)
        if arr is not None:
            items.append((arr, f"step {step}: r={reward:.3g}"))
    return items


def counts_caption(details: list[dict] | None) -> str:
    """What the detector found in the returned sample, e.g. "detected: 3 red circle, 2 blue square"."""
    if not details or not isinstance(details[0], dict):
        return ""
    found = {k: v for k, v in details[0].items() if isinstance(v, int) and not isinstance(v, bool)}
    if len(found) != len(details[0]):  # not a count table (another reward's details)
        return ""
    return "detected: " + (", ".join(f"{v} {k}" for k, v in found.items()) or "nothing")
