"""ZeroGPU hosting: text-to-image sessions ask spaces.GPU for the time the engine's cost model gives."""

import importlib
import math
import sys
import types

from flowscale.config import RunConfig
from flowscale.run import estimate_config
from flowscale.ui import session as session_module
from flowscale.ui import zerogpu
from flowscale.worlds import world_cost


def test_the_request_is_every_phase_of_the_click_plus_loading():
    cfg = RunConfig(model="flux-schnell", method="rbf", process="vp-sde", nfe=200, prompt="x")
    phases = [RunConfig(model="flux-schnell", method="ode", process="vp-sde", prompt="x"), cfg,
              RunConfig(model="flux-schnell", method="bon", process="vp-sde", nfe=200, prompt="x")]
    expected = zerogpu.SAFETY * (sum(estimate_config(c).seconds for c in phases) + world_cost("flux-schnell").load_s)
    assert zerogpu.request_seconds(cfg) == math.ceil(expected)
    assert zerogpu.request_seconds(cfg, bon=False) < zerogpu.request_seconds(cfg)
    small = zerogpu.request_seconds(RunConfig(model="flux-schnell", method="rbf", process="vp-sde", nfe=50,
                                              prompt="x", height=512, width=512))
    assert small < zerogpu.request_seconds(cfg)  # fewer NFE at a quarter of the pixels
    assert zerogpu.request_seconds(RunConfig(model="flux-schnell", nfe=-3, prompt="x")) == zerogpu.FALLBACK_S


def test_on_a_space_image_sessions_run_under_spaces_gpu_and_the_others_do_not(monkeypatch):
    calls = []

    def gpu(fn, duration):
        calls.append(duration)

        def wrapped(*args, **kwargs):
            calls.append(duration(*args, **kwargs))
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    module = importlib.reload(zerogpu)
    try:
        image = RunConfig(model="flux-schnell", method="rbf", process="vp-sde", nfe=200, prompt="x")
        assert module.session_for(image) is not session_module.session
        assert module.session_for(RunConfig(model="shapes")) is session_module.session
        assert calls == [module.request_seconds]  # decorated once, at import
        toy = RunConfig(method="bon", process="linear-sde", nfe=50)
        snaps = list(module._ON_GPU(toy, bon=False))  # the wrapped session is the session
        assert snaps[-1].phases["method"].trace.record.nfe_used == 50
        assert calls[1] == module.request_seconds(toy, bon=False)
    finally:
        monkeypatch.delitem(sys.modules, "spaces")
        importlib.reload(zerogpu)
