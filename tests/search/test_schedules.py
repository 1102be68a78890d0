"""The released code's linearly decaying particle schedule (method.md b.8), for SMC, SVDD and CoDe, under
the same exact ledger."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowscale import ConfigError, RunConfig, run
from flowscale.search.schedules import decaying


def test_the_schedule_is_the_released_formula():
    assert decaying(500, 10) == [95, 85, 75, 65, 55, 45, 35, 25, 15, 5]
    for budget, steps in ((100, 10), (37, 5), (1000, 25), (7, 7)):
        sizes = decaying(budget, steps)
        assert sum(sizes) == budget and min(sizes) >= 1 and sizes == sorted(sizes, reverse=True)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["smc", "svdd", "code"]), process=st.sampled_from(["linear-sde", "vp-sde"]),
       steps=st.integers(2, 12), nfe=st.integers(2, 600), seed=st.integers(0, 100))
def test_a_decaying_schedule_never_exceeds_the_budget(method, process, steps, nfe, seed):
    cfg = RunConfig(method=method, process=process, steps=steps, nfe=nfe, seed=seed,
                    params={f"{method}.schedule": "decay"})
    try:
        rec = run(cfg).record  # the engine checks the model's own counter against the ledger
    except ConfigError as exc:
        assert exc.field == "nfe"
        return
    assert rec.nfe_used == sum(rec.nfe_per_step) <= nfe
    if method == "smc":
        assert rec.nfe_per_step == decaying(nfe, steps)  # the population follows the schedule exactly
    else:
        ks = [size // 2 for size in decaying(nfe, steps)]
        assert all(spent <= 2 * k for spent, k in zip(rec.nfe_per_step[1:], ks[1:], strict=True))
        assert rec.nfe_per_step == sorted(rec.nfe_per_step, reverse=True)


def test_a_decay_schedule_sizes_itself():
    for method, key in (("smc", "smc.n"), ("svdd", "svdd.k")):
        with pytest.raises(ConfigError) as info:
            run(RunConfig(method=method, params={f"{method}.schedule": "decay", key: 3}))
        assert info.value.field == key
