"""Particle schedules over the denoising steps (method.md b.8): the released code's linearly decaying one.

    d = floor(2 (B - M) / (M (M - 1))),  n_0 = floor((B + d M (M - 1) / 2) / M),  n_i = n_0 - i d,

with what is left of B added one by one to the earliest steps. B = 500, M = 10 gives
[95, 85, 75, 65, 55, 45, 35, 25, 15, 5]. A budget-allocation baseline beside RBF's rollover: more particles
where the sample is still undecided (near noise), fewer near data.
"""

from __future__ import annotations

from flowscale.config import ConfigError

SCHEDULES = ("constant", "decay")


def decaying(budget: int, steps: int) -> list[int]:
    """Particles per step, summing to at most `budget`, each >= 1."""
    if steps < 1 or budget < steps:
        raise ConfigError("nfe", f"a decaying schedule needs nfe >= steps (one particle per step); got nfe={budget}, "
                          f"steps={steps}")
    if steps == 1:
        return [budget]
    d = (2 * (budget - steps)) // (steps * (steps - 1))
    n0 = (budget + d * steps * (steps - 1) // 2) // steps
    sizes = [max(1, n0 - i * d) for i in range(steps)]
    left = budget - sum(sizes)
    for i in range(max(0, left)):
        sizes[i % steps] += 1
    while sum(sizes) > budget:  # only if the clamp at 1 overshot: take from the largest steps first
        sizes[sizes.index(max(sizes))] -= 1
    return sizes
