"""How the app says that something went wrong: a readable message, never a traceback."""

from __future__ import annotations

import gradio as gr

from flowscale.config import ConfigError


def as_gr_error(exc: Exception) -> gr.Error:
    """A readable message for the UI and API; never a traceback."""
    if isinstance(exc, ConfigError):
        field_name, _, message = str(exc).partition(": ")
        return gr.Error(f"Setting “{field_name}”: {message}", title="Invalid setting")
    if isinstance(exc, gr.Error):
        return exc
    return gr.Error(f"{type(exc).__name__}: {exc}", title="The run failed")


def stopped() -> str:
    return "**Stopped** · the plots show the run up to its last drawn step."


def failed() -> str:
    return "**Failed** · the message in the corner says why."
