"""The Trace is the engine's: its views equal the ledger and the method's own record at every event, on every
method x process, and a saved record loads back into the same Trace."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from run_configs import run_settings

from flowscale import ConfigError, RunConfig, stream
from flowscale.search import SEARCH_METHODS, method_params, params_dict
from flowscale.trace import Trace


def same(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def check_live(trace: Trace, event, seen_candidates: int) -> int:
    """What must hold after any event while the run goes."""
    assert sum(trace.nfe_per_step) == event.nfe_total  # the ledger, copied as it stands
    assert len(trace.best_reward_by_nfe) == sum(e["kind"] == "candidates" for e in trace.events)
    if event.kind == "candidates":
        seen_candidates += len(event.data.get("ids", []))
        assert trace.best_reward_by_nfe[-1][0] == event.nfe_total
    assert len(trace.candidates) == seen_candidates
    if "rollover_per_step" in trace.plan:  # RBF's live plan against its own budget events
        rolled = [0] * len(trace.plan["rollover_per_step"])
        for e in trace.events:
            if e["kind"] == "budget" and e["rollover"]:
                rolled[e["step"] + 1] += e["rollover"]
        assert trace.plan["rollover_per_step"] == rolled
    return seen_candidates


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**run_settings(("base", *SEARCH_METHODS), max_steps=9, max_nfe=240))
def test_trace_views_equal_the_ledger_and_the_method_record(method, process, steps, nfe, seed, variant, batch):
    params = {"rbf.variant": variant, "rbf.init_particles": 2, "rbf.batch": batch} if method == "rbf" else {}
    cfg = RunConfig(method=method, process=process, steps=steps, nfe=nfe, seed=seed, params=params,
                    particles=3 if method == "base" else None)
    trace = Trace()
    seen = 0
    try:
        for event in stream(cfg, trace=trace):
            if event.kind != "done":
                seen = check_live(trace, event, seen)
    except ConfigError:
        return  # budgets too small for a method are refused up front (test_faults checks how)
    record = trace.record
    extra = record.to_dict()
    assert trace.nfe_per_step == record.nfe_per_step and trace.best_reward_by_nfe == record.best_reward_by_nfe
    assert trace.events == record.events
    for key in ("quota_per_step", "rollover_per_step", "ess_per_step"):
        assert trace.plan.get(key) == extra.get(key)
    expected = params_dict(method, method_params(method, trace.config["params"]))
    if method == "base":  # base draws the config's particle count
        expected["base.particles"] = trace.config["particles"]
    assert trace.method_params == expected
    # the returned candidate is the one the method chose: its reward and x0 are the record's first sample
    cands = trace.candidates
    row = trace.lineage(trace.returned_id)[-1]
    assert cands.rewards[row] == record.final_reward
    assert np.allclose(cands.x0[row], record.samples_2d[0])
    steps_along = [int(cands.steps[r]) for r in trace.lineage(trace.returned_id)]
    assert steps_along == sorted(steps_along) and cands.parents[trace.lineage(trace.returned_id)[0]] == -1
    # a record saved and loaded back is the same Trace
    loaded = Trace.from_record(json.loads(json.dumps(record.saved())))
    assert same(loaded.views(), trace.views())
