"""The Blocks: the title, the four tabs (each its own module) and the /run endpoint."""

from __future__ import annotations

import gradio as gr

from flowscale.ui import texts
from flowscale.ui.api import api_run
from flowscale.ui.compare_tab import build_compare_tab, wire_compare_tab
from flowscale.ui.replay_tab import build_replay_tab, wire_replay_tab
from flowscale.ui.run_tab import build_run_tab, wire_run_tab

THEME = gr.themes.Soft(primary_hue="blue", secondary_hue="orange", neutral_hue="slate")
CSS = """
.gradio-container { max-width: 1680px !important; margin: 0 auto !important; }
#title h1 { margin-bottom: 0.1em; }
#status { min-height: 2.6em; }
#status p { font-size: 0.98em; }
#previews img, #image-baseline img, #image-method img { image-rendering: pixelated; }
#side-by-side table { font-size: 0.92em; }
#step-story { min-height: 4.5em; padding: 0.2em 0.8em 0.6em; }
#step-story p { font-size: 0.93em; }
.plot-caption p { font-size: 0.86em; color: var(--body-text-color-subdued); margin: 0 0.4em 0.6em; }
"""


def build() -> gr.Blocks:
    with gr.Blocks(
        title="flowscale · inference-time scaling for flow models", delete_cache=(3600, 7200), fill_width=True
    ) as demo:
        gr.Markdown("# flowscale · inference-time scaling for flow models", elem_id="title")
        gr.Markdown(texts.INTRO)
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Run", id="run"):
                run_tab = build_run_tab()
            with gr.Tab("Compare methods", id="compare"):
                compare_tab = build_compare_tab()
            with gr.Tab("Replay a record", id="record"):
                replay_tab = build_replay_tab()
            with gr.Tab("API", id="api"):
                gr.Markdown(texts.API)
        wire_run_tab(run_tab)
        wire_compare_tab(compare_tab, run_tab)
        wire_replay_tab(replay_tab, run_tab, tabs)
        gr.api(api_run, api_name="run")
    return demo
