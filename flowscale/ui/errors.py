"""How the app says that something went wrong: a readable message, never a traceback.

A user's mistake (a ConfigError) is one INFO line in the server log and one message in the response; a
real fault keeps its traceback in the log (Gradio prints it) but the response carries only its message.
"""

from __future__ import annotations

import logging

import gradio as gr

from flowscale.config import ConfigError, clip
from flowscale.ui.models import available_models

LOG = logging.getLogger("flowscale.app")
MAX_FAULT_MESSAGE = 300


def as_gr_error(exc: Exception) -> gr.Error:
    """A readable message for the UI and API; never a traceback."""
    if isinstance(exc, ConfigError):
        field_name, _, message = str(exc).partition(": ")
        LOG.info("refused a request: %s", exc)
        if field_name in ("model", "model_path"):  # a visitor cannot fix weights: say what runs here
            message += f" · available here: {', '.join(available_models())}"
        return gr.Error(f"Setting “{field_name}”: {message}", title="Invalid setting", print_exception=False)
    if isinstance(exc, gr.Error):
        return exc
    LOG.error("a run failed: %s: %s", type(exc).__name__, clip(exc, MAX_FAULT_MESSAGE), exc_info=exc)
    return gr.Error(clip(f"{type(exc).__name__}: {exc}", MAX_FAULT_MESSAGE), title="The run failed",
                    print_exception=False)


def stopped() -> str:
    return "**Stopped** · the plots show the run up to its last drawn step."


def failed() -> str:
    return "**Failed** · the message in the corner says why."
