"""Budget ledgers against hand-computed traces, on a mock model and a scripted reward."""

import dataclasses

import pytest
import torch

from flowscale import RunConfig, run
from flowscale.worlds.base import Reward, World
from flowscale.worlds.toy2d import DEFAULTS


class StillModel:
    """Velocity 0: under the ODE nothing moves; rewards come from the script, not the state."""

    name, sample_shape, device, dtype = "still", (2,), torch.device("cpu"), torch.float64

    def __init__(self):
        self.batches = []

    def velocity(self, x, t, cond):
        self.batches.append(x.shape[0])
        return torch.zeros_like(x)


def scripted_world(values):
    queue = list(values)

    def fn(x):
        n = x.shape[0]
        if len(queue) < n:
            raise AssertionError("the method evaluated more candidates than the script holds")
        out = torch.tensor([queue.pop(0) for _ in range(n)], dtype=torch.float64)
        return out

    return World("toy2d", StillModel(), None, Reward("scripted", fn), None, lambda x: x,
                 lambda x: x, DEFAULTS)


def budget_events(record):
    return [(e["step"], e["mode"], e.get("rollover")) for e in record.events if e["kind"] == "budget"]


def test_rbf_paper_variant_hand_trace():
    # one chain, M = 4, budget 10: init 1 NFE, q0 = (10 - 1) // 3 = 3 per transition
    script = [0.0,            # initial noise: r* = 0
              -1.0, 0.5,      # step 1: the 2nd candidate beats r* -> move, roll 3 - 2 = 1 over
              0.1, 0.2, 0.3, 0.4,  # step 2: quota 3 + 1, nothing beats 0.5 -> forced move to 0.4
              0.9, 0.6, 0.7]  # step 3 (last): spends its whole quota, keeps the best (0.9)
    world = scripted_world(script)
    cfg = RunConfig(method="rbf", process="linear-sde", steps=4, nfe=10, params={"rbf.chains": 1})
    rec = run(cfg, world=world).record
    assert rec.nfe_per_step == [1, 2, 4, 3]
    assert rec.to_dict()["quota_per_step"] == [1, 3, 3, 3]
    assert rec.to_dict()["rollover_per_step"] == [0, 0, 1, 0]
    assert budget_events(rec) == [(1, "accept", 1), (2, "forced", 0), (3, "final", 0)]
    assert rec.final_reward == 0.9 and rec.nfe_used == 10


def test_rbf_code_variant_hand_trace():
    # one chain, best-of-2 init, M = 4, budget 14: q0 = (14 - 2) // 4 = 3; rounds run while used + 1 < 14
    script = [0.2, 0.1,                 # init: best-of-2 -> r* = 0.2
              0.1, 0.3,                 # k = 0: 0.3 > 0.2 at j = 2 -> move, Q = (3 - 2) + 3 = 4
              0.0, 0.1, 0.2, 0.25,      # k = 1: j reaches Q = 4 -> forced move to 0.25 (r* stays 0.3)
              0.1, 0.5, 0.4, 0.3, 0.2]  # k = 2 = M - 2: never moves; leftover lands here
    world = scripted_world(script)
    cfg = RunConfig(method="rbf", process="linear-sde", steps=4, nfe=14,
                    params={"rbf.chains": 1, "rbf.variant": "code", "rbf.init_particles": 2})
    rec = run(cfg, world=world).record
    assert rec.nfe_per_step == [2, 2, 4, 5]
    assert rec.nfe_used == 13  # the released code stops at used + N == budget (498 of 500)
    assert rec.to_dict()["rollover_per_step"] == [0, 0, 1, 0]
    assert budget_events(rec) == [(1, "accept", 1), (2, "forced", 0)]
    assert rec.final_reward == 0.5


def test_rbf_batches_its_chains_together():
    world = scripted_world([0.0] * 1000)
    rec = run(RunConfig(method="rbf", process="linear-sde", steps=5, nfe=40, params={"rbf.chains": 4}),
              world=world).record
    assert rec.nfe_used == 40
    assert set(world.model.batches[1:]) <= {1, 2, 3, 4} and max(world.model.batches) == 4


PAPER = dict(steps=10, grid="exp", nfe=500, process="vp-sde")


@pytest.mark.parametrize(
    "method, params, per_step, used",
    [
        ("bon", {}, [50] * 10, 500),
        ("svdd", {"svdd.n": 2, "svdd.k": 25}, [50] * 10, 500),
        ("code", {"code.n": 2, "code.k": 25, "code.block": 2}, [50] * 10, 500),
        ("smc", {}, [50] * 10, 500),
        ("rbf", {"rbf.variant": "code"}, None, 498),
        ("rbf", {}, None, 500),
    ],
)
def test_paper_budgets(method, params, per_step, used):
    rec = run(RunConfig(method=method, params=params, seed=1, **PAPER)).record
    assert rec.nfe_used == used and rec.nfe_budget == 500
    if per_step is not None:
        assert rec.nfe_per_step == per_step
    if method == "rbf" and params:
        assert rec.nfe_per_step[0] == 50 and rec.to_dict()["base_quota"] == 22


def test_code_selects_every_two_steps():
    rec = run(RunConfig(method="code", params={"code.n": 2, "code.k": 25}, seed=0, **PAPER)).record
    assert [e["step"] for e in rec.events if e["kind"] == "select"] == [2, 4, 6, 8, 9]


def test_smc_with_constant_reward_keeps_uniform_weights():
    world = scripted_world([1.0] * 1000)
    rec = run(RunConfig(method="smc", process="linear-sde", steps=5, nfe=50), world=world).record
    ess = rec.to_dict()["ess_per_step"]
    assert ess == pytest.approx([10.0] * 4)
    assert not [e for e in rec.events if e["kind"] == "resample"]


def test_bon_with_one_particle_is_the_base_sample():
    base = run(RunConfig(method="base", process="linear-sde", particles=1, seed=9))
    bon = run(RunConfig(method="bon", process="linear-sde", nfe=25, seed=9))
    assert torch.equal(base.samples, bon.samples)


@pytest.mark.parametrize("method", ["bon", "sop", "smc", "code", "svdd", "rbf"])
@pytest.mark.parametrize("nfe", [57, 100, 333])
def test_nothing_exceeds_its_budget(method, nfe):
    cfg = RunConfig(method=method, process="linear-sde", steps=6, nfe=nfe, seed=2)
    if method == "rbf":
        cfg = dataclasses.replace(cfg, params={"rbf.variant": "code", "rbf.init_particles": 3})
    rec = run(cfg).record
    assert 0 < rec.nfe_used <= nfe
    assert sum(rec.nfe_per_step) == rec.nfe_used
    assert rec.best_reward_by_nfe[-1][0] == rec.nfe_used


def test_the_ledger_total_is_the_sum_of_its_steps_through_every_kind_of_charge():
    """The running total the ledger keeps equals sum(nfe_per_step) after charges at a known index, at one shared
    index found from the tensor, and at mixed indices; a charge past the budget is refused and changes nothing."""
    from flowscale.models import BudgetExceededError
    from flowscale.search.context import Ledger

    ledger = Ledger(budget=20, n_times=4)
    rewards = torch.arange(8, dtype=torch.float64)
    for steps, at in ((torch.full((3,), 1), 1), (torch.full((4,), 2), None), (torch.tensor([0, 3, 3, 1, 0]), None)):
        ledger.charge(steps, rewards[: len(steps)], at)
        assert ledger.used == sum(ledger.nfe_per_step) == ledger.best_reward_by_nfe[-1][0]
    assert ledger.nfe_per_step == [2, 4, 4, 2] and ledger.left == 8
    with pytest.raises(BudgetExceededError):
        ledger.charge(torch.zeros(9, dtype=torch.long), rewards.repeat(2)[:9])
    assert ledger.used == sum(ledger.nfe_per_step) == 12
