"""The Replay tab: upload a record; Replay runs its config again and checks the new record is identical,
Redraw loads it into a Trace and draws it (with the step scrubber) without running anything."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from flowscale.config import ConfigError, RunConfig
from flowscale.trace import Trace
from flowscale.ui import panels
from flowscale.ui.errors import as_gr_error, failed
from flowscale.ui.panels import View
from flowscale.ui.records import MAX_RECORD_BYTES, read_upload, replay_verdict
from flowscale.ui.run_tab import RunTab, draw, scrubber_update, stream_session
from flowscale.ui.session import background_of


@dataclass
class ReplayTab:
    upload: Any
    replay: Any
    redraw: Any
    status: Any


def build_replay_tab() -> ReplayTab:
    gr.Markdown(
        "Upload a **run record** (the JSON from *Download the run record*, or `record.json` from the CLI). "
        "**Replay** runs its config again and checks that the new record is identical; **Redraw** draws "
        "the plots from the recorded events without running anything, and the step scrubber walks through "
        f"them. JSON only, at most {MAX_RECORD_BYTES / 1e6:g} MB."
    )
    upload = gr.File(label="run record (.json)", file_types=[".json"], type="filepath", elem_id="record-upload")
    with gr.Row():
        replay = gr.Button("↻ Replay (run the config again)", variant="primary", elem_id="replay")
        redraw = gr.Button("Redraw from the recorded events", elem_id="redraw")
    status = gr.Markdown("", elem_id="replay-status")
    return ReplayTab(upload, replay, redraw, status)


def replay_ui(tab: ReplayTab, run_tab: RunTab, tabs: Any, path: str | None, layers: list[str],
              progress: gr.Progress = gr.Progress()) -> Iterator[dict]:  # noqa: B008
    """Re-run an uploaded record's config (no BoN) and say whether the new record is identical."""
    r = run_tab.results
    try:
        uploaded = read_upload(path)
        cfg = RunConfig.from_dict(uploaded["config"])
        yield {tabs: gr.Tabs(selected="run"), tab.status: "**Running** · replaying…"}
        last = None
        for update in stream_session(run_tab, cfg, layers, progress, with_bon=False,
                                     verdict=partial(replay_verdict, uploaded)):
            last = update
            yield update
        yield {tab.status: last[r.status] if last else ""}
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
        yield {r.status: failed(), tab.status: failed()}
        raise as_gr_error(exc) from None


def redraw_ui(tab: ReplayTab, run_tab: RunTab, tabs: Any, path: str | None, layers: list[str]) -> dict[Any, Any]:
    """Load an uploaded record into a Trace and draw it, without running anything."""
    r = run_tab.results
    try:
        trace = Trace.from_record(read_upload(path))
        if trace.record is None:
            raise ConfigError("record", "holds no finished run (no nfe_per_step); a partial record can only be read")
        view = View(method=trace, background=background_of(trace))
        drawn = draw(r, view, layers, None)
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
        error = exc if isinstance(exc, ConfigError) else ConfigError("record", f"cannot be drawn: {exc}")
        raise as_gr_error(error) from None
    message = "**Redrawn** from the recorded events (nothing was run) · " + panels.summary(trace)
    return {
        **drawn,
        tabs: gr.Tabs(selected="run"),
        r.state: view,
        r.side_by_side: panels.side_by_side(view),
        r.scrubber: scrubber_update(view),
        r.status: message,
        tab.status: message,
    }


def wire_replay_tab(tab: ReplayTab, run_tab: RunTab, tabs: Any) -> None:
    r = run_tab.results
    replay_event = tab.replay.click(partial(replay_ui, tab, run_tab, tabs), [tab.upload, r.layers],
                                    [*r.outputs, tabs, tab.status], show_progress_on=[r.status],
                                    api_visibility="private")
    run_tab.controls.stop.click(None, None, None, cancels=[replay_event], api_visibility="private")
    tab.redraw.click(partial(redraw_ui, tab, run_tab, tabs), [tab.upload, r.layers],
                     [tabs, *r.plots, r.story, r.previews, r.state, r.side_by_side, r.scrubber, r.status, tab.status],
                     api_visibility="private")
