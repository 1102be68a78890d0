"""The overhead floor of benchmarks/bench_engine_overhead.py --floor is the run's own arithmetic: its bare loop
makes exactly the samples the engine makes for the same config, so its wall / model is a floor for these records."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_engine_overhead import bare_loop

from flowscale import RunConfig, run


@pytest.mark.parametrize("process", ["linear-ode", "linear-sde", "vp-sde"])
def test_the_bare_loop_makes_the_engines_samples(process):
    cfg = RunConfig(method="base", process=process, steps=12, particles=64, seed=3)
    wall, model, reward, x0 = bare_loop(cfg)
    assert torch.equal(x0, run(cfg).samples)
    assert 0 < model < wall and 0 < reward < wall


def test_the_bare_loop_refuses_runs_it_would_not_reproduce():
    for cfg in (RunConfig(method="bon", nfe=40, steps=4), RunConfig(method="base", particles=4, dps=1.0),
                RunConfig(method="base", particles=4, state_dtype="float32")):
        with pytest.raises(ValueError, match="plain base runs only"):
            bare_loop(cfg)
