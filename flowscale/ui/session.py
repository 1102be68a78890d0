"""The app's run session, with no gradio: the ODE baseline, the method, and Best-of-N at the same budget.

`session(cfg)` builds the world once, then streams the three runs one after the other, each into its own
`Trace` (the engine's object), and yields a `Snapshot` after every event. Every view the app draws reads
those traces; nothing here recomputes what a trace holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flowscale.config import RunConfig
from flowscale.cost import check_request
from flowscale.run import RunOutput, estimate_run, ode_baseline, prepare, stream
from flowscale.search import params_dict, without_method_params
from flowscale.trace import Event, Trace, tilt_lambda
from flowscale.worlds import World, background_for

PHASE_NAMES = {"baseline": "ODE baseline", "bon": "BoN at the same budget"}


@dataclass
class Phase:
    name: str  # "baseline" | "method" | "bon"
    cfg: RunConfig
    trace: Trace = field(default_factory=Trace)
    output: RunOutput | None = None


@dataclass
class Snapshot:
    """Where a session stands: its phases so far, the active one, and the 2-D background picture data."""

    world: World | None
    phases: dict[str, Phase]
    active: str
    nfe_done: int  # across phases
    nfe_total: int
    background: dict[str, Any] | None = None
    phase_ended: bool = False

    def trace(self, name: str) -> Trace | None:
        return self.phases[name].trace if name in self.phases else None

    @property
    def method(self) -> Trace:
        return self.phases["method"].trace

    def progress_text(self) -> str:
        from flowscale.figures import label

        phase = self.phases[self.active]
        what = PHASE_NAMES.get(self.active) or label(phase.cfg.method, phase.cfg.process)
        return f"{what}: {self.nfe_done} / {self.nfe_total} NFE in total"


def background_of(trace: Trace) -> dict[str, Any] | None:
    """The 2-D density picture data for a (loaded) trace, from its world info; None in image worlds (whose
    modules are not imported for it)."""
    if trace.image_world:
        return None
    return background_for(trace.config.get("model", "toy2d"), trace.world, trace.config.get("reward") or "logp",
                          trace.tilt_lambda)


def run_phase(phase: Phase, world: World | None, prepared: Any = None, previews: bool = True) -> Iterator[Event]:
    """Stream one run into `phase.trace`, yielding its events; the output is kept when it finishes.
    previews=False where nothing shows the step previews (the API, Compare)."""
    for event in stream(phase.cfg, world, trace=phase.trace, prepared=prepared, previews=previews):
        if event.kind == "done":
            phase.output = event.data["_output"]
        yield event


def session_phases(cfg: RunConfig, *, baseline: bool = True, bon: bool = True) -> list[Phase]:
    """The runs one Run click makes: the ODE baseline (same seed, unguided), the method, BoN at its budget."""
    phases = []
    world_params = without_method_params(cfg.params)  # the world's own settings apply to every phase
    if baseline:
        phases.append(Phase("baseline", ode_baseline(cfg)))
    phases.append(Phase("method", cfg))
    if bon and cfg.method != "bon":
        phases.append(Phase("bon", dataclasses.replace(cfg, method="bon", params=world_params)))
    return phases


def session(cfg: RunConfig, *, baseline: bool = True, bon: bool = True, world: World | None = None,
            caps: tuple[float, float] | None = None) -> Iterator[Snapshot]:
    """Baseline (ODE, same seed), the method, then BoN at the same budget; a snapshot after every event.

    Everything is validated (ConfigError) before anything runs: each phase is prepared once, from one world
    built once, and with `caps` (seconds, record MB) the whole request is refused when its estimated cost
    exceeds them.
    """
    prepared = prepare(cfg, world)
    resolved, world, params = prepared
    phases = session_phases(cfg, baseline=baseline, bon=bon)
    ready = {p.name: prepared if p.name == "method" else prepare(p.cfg, world) for p in phases}
    if caps is not None:
        check_request([(ready[p.name][0], estimate_run(ready[p.name])) for p in phases], *caps)
    total = sum(ready[p.name][0].nfe for p in phases)
    # The 2-D world's density, tilted as the method targets it (None in worlds that draw none).
    lam = tilt_lambda(resolved.method, params_dict(resolved.method, params), resolved.dps)
    background = background_for(resolved.model, world.info, resolved.reward, lam)
    # Every phase's trace exists from the start (empty until it runs), so views can always read all three.
    snap = Snapshot(world, {p.name: p for p in phases}, phases[0].name, 0, total, background)
    done = 0
    for phase in phases:
        snap.active = phase.name
        snap.phase_ended = False
        for event in run_phase(phase, world, ready[phase.name]):
            snap.nfe_done = done + event.nfe_total
            snap.phase_ended = event.kind == "done"
            yield snap
        done += phase.trace.nfe_used
