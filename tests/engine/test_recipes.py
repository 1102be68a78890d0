"""Recipes: --paper fills the released code's setting where a config leaves it unset; explicit flags win."""

import json

import pytest
import torch

from flowscale import ConfigError, RunConfig, cli, run
from flowscale.recipes import apply_recipe


def test_paper_fills_what_is_unset_and_explicit_settings_win():
    cfg = apply_recipe(RunConfig(model="flux-schnell", method="rbf", recipe="paper", height=512,
                                 params={"rbf.init_particles": 5}))
    assert (cfg.height, cfg.width, cfg.steps, cfg.grid, cfg.max_batch) == (512, 1024, 10, "exp", 5)
    assert cfg.params == {"t2i.max_sequence_length": 512, "rbf.variant": "code", "rbf.init_particles": 5}
    assert apply_recipe(cfg) == cfg  # applying it again changes nothing: records replay as they are
    assert apply_recipe(RunConfig(method="smc", recipe="paper")).params == {"smc.lam": 0.5}
    assert apply_recipe(RunConfig(method="sop", recipe="paper")).params == {"sop.solve_steps": 10}
    with pytest.raises(ConfigError) as info:
        run(RunConfig(recipe="papre"))
    assert info.value.field == "recipe"


def test_the_cli_flag_records_every_value_the_recipe_chose(tmp_path):
    assert cli.main(["run", "--paper", "--method", "rbf", "--nfe", "500", "--steps", "10", "--out",
                     str(tmp_path)]) == 0
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["config"]["recipe"] == "paper" and record["config"]["params"]["rbf.variant"] == "code"
    assert record["nfe_used"] == 498  # the released loop's 498 of 500
    assert cli.main(["replay", str(tmp_path / "record.json")]) == 0


def test_a_bf16_state_keeps_states_noise_and_times_in_bf16():
    from flowscale.run import run

    cfg = RunConfig(method="rbf", process="vp-sde", nfe=60, steps=6, state_dtype="bfloat16")
    record = run(cfg).record
    grid = torch.tensor(record.grid, dtype=torch.float64)
    assert torch.equal(grid.to(torch.bfloat16).double(), grid)  # every time is a bf16 number
    states = torch.tensor([s for e in record.events if e["kind"] == "candidates" for s in e["states"]])
    assert torch.equal(states.to(torch.bfloat16).double(), states)
    assert record.config["state_dtype"] == "bfloat16" and record.nfe_used <= 60
    plain = run(RunConfig(method="rbf", process="vp-sde", nfe=60, steps=6)).record
    assert plain.config["state_dtype"] is None and plain.samples_2d != record.samples_2d
    assert abs(plain.final_reward - record.final_reward) < 5.0  # rounding moves the samples, not the run's sense


def test_an_unknown_state_dtype_is_named():
    from flowscale.config import ConfigError
    from flowscale.run import prepare

    with pytest.raises(ConfigError) as err:
        prepare(RunConfig(state_dtype="int8"))
    assert err.value.field == "state_dtype" and "bfloat16" in str(err.value)


def test_each_released_yaml_brings_its_given_reward_unless_one_is_named():
    assert apply_recipe(RunConfig(model="flux-schnell", recipe="paper", prompt="x")).reward == "vqascore"
    assert apply_recipe(RunConfig(model="flux-schnell", recipe="paper-count", prompt="x")).reward == "count"
    assert apply_recipe(RunConfig(model="flux-schnell", recipe="paper-count", reward="clip", prompt="x")).reward == "clip"
    assert apply_recipe(RunConfig(recipe="paper")).reward is None  # the 2-D world keeps its own reward
    args = cli.build_parser().parse_args(["run", "--model", "flux-schnell", "--paper", "paper-count", "--out", "x"])
    assert cli.world_kwargs(args)["recipe"] == "paper-count"
    assert cli.world_kwargs(cli.build_parser().parse_args(["run", "--paper", "--out", "x"]))["recipe"] == "paper"
