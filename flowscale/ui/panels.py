"""What the Run tab shows for a view (the traces of one session), with no gradio: the three plots, the
side-by-side table, the step story and the previews, at the live end of the run or at a scrubbed step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flowscale import figures
from flowscale.trace import Trace


@dataclass
class View:
    """One visitor's results (kept in gr.State): the method's, baseline's and BoN's traces, and the 2-D
    background. `pinned` is the step the scrubber holds; None follows the run's newest step."""

    method: Trace | None = None
    baseline: Trace | None = None
    bon: Trace | None = None
    background: dict[str, Any] | None = None
    pinned: int | None = None
    play_token: int = 0  # Play walks only while this is the value it started with: Latest or a scrub moves it on

    @property
    def steps(self) -> list[int]:
        return self.method.eval_steps() if self.method is not None else []

    def clamp(self, step: Any) -> int | None:
        """A scrubber value as a step of this run (None when nothing has been evaluated yet)."""
        steps = self.steps
        if not steps:
            return None
        try:
            k = int(step)
        except (TypeError, ValueError):
            return steps[-1]
        return max(steps[0], min(steps[-1], k))


def plots(view: View, layers: Sequence[str] | None = None, step: int | None = None) -> tuple[Any, Any, Any]:
    """The paths, budget and reward figures of a view, at `step` if given."""
    paths = figures.trajectories_figure(view.method, background=view.background, baseline=view.baseline,
                                        layers=figures.DEFAULT_LAYERS if layers is None else layers, step=step)
    budget = figures.budget_figure(view.method, step)
    reward = figures.reward_figure(view.method, baseline=view.baseline, bon=view.bon, step=step)
    return paths, budget, reward


def side_by_side(view: View) -> str:
    cfg = view.method.config if view.method is not None else {}
    name = figures.label(cfg.get("method"), cfg.get("process")) if cfg else "method"
    return figures.side_by_side_markdown(
        [("ODE baseline", view.baseline), (name, view.method), ("BoN, same budget", view.bon)]
    )


def story(view: View, step: int | None) -> str:
    return figures.step_story(view.method, step)


def summary(trace: Trace) -> str:
    """One line for the status: the finished run's rewards, NFE and time."""
    record = trace.record
    cfg = record.config
    held = record.heldout_reward
    return (
        f"{figures.label(cfg['method'], cfg['process'])}: given reward {record.final_reward + 0.0:.4g}"
        + ("" if held is None else f", held-out {held + 0.0:.4g}")
        + f", {record.nfe_used} / {record.nfe_budget} NFE, {record.wall_time_s:.2f} s."
    )
