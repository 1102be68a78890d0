"""Concurrent runs in one process give exactly the results of the same runs alone."""

from concurrent.futures import ThreadPoolExecutor

import torch

from flowscale import RunConfig, run

CONFIGS = [
    RunConfig(method=m, process=p, nfe=150, seed=s)
    for s, (m, p) in enumerate([("rbf", "vp-sde"), ("smc", "linear-sde"), ("svdd", "linear-sde"),
                                ("bon", "linear-ode"), ("code", "vp-sde"), ("sop", "linear-sde")])
]


def test_threads_do_not_cross_talk():
    alone = [run(cfg) for cfg in CONFIGS]
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(run, CONFIGS * 2))
    for i, out in enumerate(together):
        ref = alone[i % len(CONFIGS)]
        assert torch.equal(out.samples, ref.samples)
        assert out.record.comparable() == ref.record.comparable()
