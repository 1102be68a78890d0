"""The Gradio app of flowscale: `build_demo()` makes the Blocks, `launch(demo)` serves it.

views.py (pure trace -> plotly figures) imports no gradio, so `from flowscale.ui import views` stays
light; layout.py and handlers.py do.
"""

from __future__ import annotations

from typing import Any

MAX_UPLOAD = "5mb"  # the only upload is a run record
CONCURRENCY = 2  # runs at once; more wait in the queue


def build_demo() -> Any:
    from flowscale.ui.layout import build

    return build()


def launch(demo: Any, **kwargs: Any) -> Any:
    """Queue with a concurrency limit, then launch with the app's theme (server name/port from the
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT environment variables unless given)."""
    from flowscale.ui.layout import CSS, THEME

    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return demo.launch(theme=THEME, css=CSS, max_file_size=MAX_UPLOAD, footer_links=["api", "gradio"], **kwargs)


__all__ = ["build_demo", "launch"]
