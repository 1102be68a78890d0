"""What happened at step k, in words, generated from the trace (the app's #step-story).

Each sentence comes from an event the method itself emitted at that step: RBF's budget events (what
each chain drew against which r*, what it took, what rolled over), SMC's reweighting and resampling,
the selections of SVDD, CoDe, SoP and Best-of-N. Nothing is recomputed from rewards.
"""

from __future__ import annotations

from typing import Any

from flowscale.figures.style import label
from flowscale.trace import Trace


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st."""
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _g(value: Any) -> str:
    return "—" if value is None else f"{float(value):.3g}"


def step_story(trace: Trace | None, step: int | None) -> str:
    """A short markdown narrative of step `step`; names the step number first."""
    if trace is None or step is None or not trace.eval_steps():
        return "_Run, or redraw a record, then move the step slider to see what happened at each step._"
    cands = trace.candidates
    at_step = cands.steps == step
    n_here = trace.nfe_per_step[step] if step < len(trace.nfe_per_step) else int(at_step.sum())
    t = trace.grid[step] if step < len(trace.grid) else float("nan")
    budget = trace.config.get("nfe")
    spent = trace.nfe_at_step(step)
    best = max((r for n, r in trace.best_reward_by_nfe if n <= spent), default=None)
    head = (f"**Step {step}** (t = {t:.2f}) · {label(trace.method, trace.config.get('process'))}: "
            f"{n_here} NFE at this step, {spent}" + (f" / {budget}" if budget else "") + " spent by its end; "
            f"best reward so far {_g(best)}.")
    tell = _TELLERS.get(trace.method or "", _tell_trajectories)
    lines = [head, *tell(trace, step, int(at_step.sum()))]
    last = len(trace.grid) - 2
    if trace.finished and step == max(trace.eval_steps()) and trace.record is not None:
        lines.append(f"The run returned candidate {trace.returned_id} (reward {_g(trace.record.final_reward)}); "
                     "its lineage is drawn in gold.")
    elif step < last and not trace.finished and step == max(trace.eval_steps()):
        lines.append("The run is still going.")
    return "  \n".join(lines)


def _tell_rbf(trace: Trace, step: int, n_here: int) -> list[str]:
    out = []
    if step == 0:
        n0 = trace.nfe_per_step[0] if trace.nfe_per_step else n_here
        chains = trace.method_params.get("rbf.chains") or (trace.config.get("params") or {}).get("rbf.chains", 2)
        out.append(f"{chains} chain(s) start from {n0} fresh noise(s) in all; each keeps its best as r*.")
    for e in trace.events_at(step, ("budget",)):
        chain, mode, drawn = int(e["chain"]) + 1, e["mode"], e.get("drawn")
        r_star, reward = _g(e.get("r_star")), _g(e.get("reward"))
        if mode == "accept":
            at = e.get("position", drawn)  # batched draws say where in draw order the accepted one came
            which = "it" if drawn == 1 else f"the {ordinal(int(at or 0))}"
            text = (f"Chain {chain} drew {_count(drawn)}; {which} beat r* = {r_star} (reward {reward}) and was "
                    f"taken; {e['rollover']} unused NFE roll over to step {step + 1}.")
        elif mode == "forced":
            text = (f"Chain {chain} drew its whole quota of {drawn}; none beat r* = {r_star}; it moved to the best "
                    f"of them (reward {reward}).")
        else:
            text = (f"Chain {chain} spent its whole quota of {drawn} at the last step and keeps its best candidate "
                    f"(reward {reward}).")
        out.append(text if drawn is not None else f"Chain {chain}: {mode}, {e.get('rollover', 0)} NFE rolled over.")
    if not out:
        out.append(f"{n_here} candidate(s) drawn here so far; no chain has left this step yet.")
    return out


def _count(drawn: Any) -> str:
    return "1 candidate" if drawn == 1 else f"{drawn} candidates"


def _tell_smc(trace: Trace, step: int, n_here: int) -> list[str]:
    out = [f"{n_here} particles each took one step and were scored (one NFE each)." if step else
           f"{n_here} particles start from fresh noise; their weights start at exp(r / λ)."]
    threshold = trace.method_params.get("smc.ess_threshold", 1.0)
    for e in trace.events_at(step, ("select", "resample")):
        if e["kind"] == "select" and e.get("mode") == "reweight":
            out.append(f"After reweighting by exp(Δr / λ) the effective sample size is ESS = {e['ess']:.2f} of "
                       f"{n_here}.")
        elif e["kind"] == "resample":
            ancestors = e.get("ancestors") or []
            out.append(f"ESS {e['ess']:.2f} fell below {threshold:g}·N, so the particles were resampled before the "
                       f"next step: {len(set(ancestors))} distinct ancestors survive of {len(ancestors)}.")
    return out


def _tell_blocks(trace: Trace, step: int, n_here: int) -> list[str]:
    selects = trace.events_at(step, ("select",))
    out = [f"{n_here} children evaluated at this step."]
    for e in selects:
        rule = "the highest reward" if e.get("mode") == "argmax" else "a draw from softmax(r / λ)"
        out.append(f"One survivor per group was chosen by {rule}: {len(e.get('kept') or [])} survive.")
    if not selects and step:
        out.append("No selection here: the children run on until the end of their block (CoDe selects every "
                   f"{trace.method_params.get('code.block', 2)} steps).")
    return out


def _tell_sop(trace: Trace, step: int, n_here: int) -> list[str]:
    out = [f"{n_here} particles take a solve step."]
    for e in trace.events_at(step, ("resample", "select")):
        if e["kind"] == "resample":
            out.append(f"Each survivor was copied and renoised forward from t = {e['t_from']:.2f} to "
                       f"t = {e['t_to']:.2f}, to be solved back down.")
        else:
            out.append(f"The best child of each parent was kept ({len(e.get('kept') or [])} survive).")
    return out


def _tell_trajectories(trace: Trace, step: int, n_here: int) -> list[str]:
    out = [f"{n_here} independent trajectories took one step (one NFE each); nothing is selected until the end."]
    if trace.events_at(step, ("select",)):
        out.append(f"Best-of-N kept the single best of the {n_here} final samples.")
    return out


_TELLERS = {"rbf": _tell_rbf, "smc": _tell_smc, "svdd": _tell_blocks, "code": _tell_blocks, "sop": _tell_sop}
