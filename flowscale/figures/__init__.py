"""Figures and narratives of a run, each read from a `flowscale.trace.Trace`. Plain plotly and numpy:
no gradio, no world and no search method is imported here (a test checks), so the app, notebooks and
scripts draw the same pictures from a live run, a finished one or a loaded record.

| module | what it draws |
|---|---|
| `paths` | particle paths in the 2-D plane (image worlds: `image_paths`) |
| `budget` | NFE per denoising step, with RBF's quota and rollover |
| `reward` | best reward against NFE, with the baseline, BoN and SMC's ESS |
| `compare` | every method at one budget: table rows and bars |
| `story` | what happened at step k, in words |
| `tables` | the side-by-side table, crisp previews, detected counts |
"""

from flowscale.figures.budget import budget_figure
from flowscale.figures.compare import COMPARE_HEADERS, compare_figure, compare_row
from flowscale.figures.paths import DEFAULT_LAYERS, LAYERS, trajectories_figure
from flowscale.figures.reward import reward_figure
from flowscale.figures.story import step_story
from flowscale.figures.style import METHOD_LABELS, PROCESS_LABELS, label
from flowscale.figures.tables import counts_caption, preview_strip, side_by_side_markdown, to_uint8_image

__all__ = [
    "COMPARE_HEADERS", "DEFAULT_LAYERS", "LAYERS", "METHOD_LABELS", "PROCESS_LABELS", "budget_figure",
    "compare_figure", "compare_row", "counts_caption", "label", "preview_strip", "reward_figure",
    "side_by_side_markdown", "step_story", "to_uint8_image", "trajectories_figure",
]
