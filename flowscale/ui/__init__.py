"""The Gradio app of flowscale: `build_demo()` makes the Blocks, `launch(demo)` serves it.

Rooms: `layout` (the Blocks), one module per tab (`run_tab` with `run_controls`, `compare_tab`,
`replay_tab`) and `api` (/run) hold the gradio code; `session`, `panels`, `controls`, `models` and
`records` hold none (the run session, what a view shows, controls -> RunConfig, what each model offers,
record files). Figures come from `flowscale.figures`; sampling maths only from the engine.
"""

from __future__ import annotations

import logging
from typing import Any

CONCURRENCY = 2  # runs at once; more wait in the queue


def build_demo() -> Any:
    from flowscale.ui.layout import build

    return build()


def launch(demo: Any, **kwargs: Any) -> Any:
    """Queue with a concurrency limit, then launch with the app's theme (server name/port from the
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT environment variables unless given). Refused requests are
    logged as one INFO line each on the "flowscale" logger."""
    from flowscale import gc_policy, threads
    from flowscale.ui.layout import CSS, THEME
    from flowscale.ui.records import MAX_RECORD_BYTES

    threads.apply(CONCURRENCY)  # two runs at once on two cores: one thread each, never oversubscribed
    log = logging.getLogger("flowscale")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    gc_policy.freeze_what_is_loaded()  # the layout, torch and flowscale are loaded: no collection walks them again
    return demo.launch(theme=THEME, css=CSS, max_file_size=MAX_RECORD_BYTES, footer_links=["api", "gradio"], **kwargs)


__all__ = ["build_demo", "launch"]
