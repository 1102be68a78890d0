"""The app's reward-guidance control: controls -> RunConfig.dps, an unguided baseline, the tilt it draws."""

import pytest

from flowscale.config import ConfigError
from flowscale.ui.controls import build_config, preset_rows
from flowscale.ui.session import session, session_phases

VALUES = {"model": "toy2d", "method": "base", "process": "linear-sde", "nfe": 200, "steps": 20, "seed": 0,
          "reward": "point:-2,2", "heldout": "logp", "preset": "imbalanced4", "g_norm": 3.0, "beta_min": 0.1,
          "beta_max": 20.0, "dps": 2.0, "mixture": preset_rows("imbalanced4")}


def test_the_guidance_field_guides_the_method_and_bon_but_not_the_ode_baseline():
    cfg = build_config(VALUES)
    assert cfg.dps == 2.0
    phases = {p.name: p.cfg for p in session_phases(cfg)}
    assert phases["baseline"].dps == 0.0 and phases["method"].dps == 2.0 and phases["bon"].dps == 2.0
    assert build_config(VALUES, method="ode").dps == 0.0  # the Compare tab's ODE row stays unguided
    snaps = list(session(cfg))
    last = snaps[-1]
    assert last.phases["method"].trace.record.extra["grad_evals"] > 0
    assert "grad_evals" not in last.phases["baseline"].trace.record.extra
    assert last.background["lam"] == pytest.approx(0.5)  # the tilt of a guided run: lambda = 1 / dps


def test_a_guidance_field_left_blank_or_on_an_ode_is_named():
    with pytest.raises(ConfigError) as err:
        build_config({**VALUES, "dps": ""})
    assert err.value.field == "dps"
    with pytest.raises(ConfigError) as err:
        list(session(build_config({**VALUES, "process": "linear-ode"})))
    assert err.value.field == "dps" and "linear-sde or vp-sde" in str(err.value)
