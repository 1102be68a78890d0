"""The exact reward-tilted target of the 2-D world, and how far a run's samples are from it.

A method that samples rather than maximises aims at p*(x) ∝ p0(x) exp(r(x) / lam): SMC with its lam, and
reward guidance (DPS) with lam = 1 / dps (at t = 0 the guided score is grad log p0 + dps * grad r, the
score of that tilt; paper App. E.1). For a `point:X,Y` reward r(x) = -|x - m|^2 on an isotropic mixture
sum_k w_k N(mu_k, s_k^2 I) in d = 2, each component times exp(-|x - m|^2 / lam) is again a Gaussian:

    s_k'^2 = s_k^2 lam / (lam + 2 s_k^2),   mu_k' = (lam mu_k + 2 s_k^2 m) / (lam + 2 s_k^2),
    w_k' ∝ w_k * lam / (lam + 2 s_k^2) * exp(-|mu_k - m|^2 / (lam + 2 s_k^2)),

so the tilted target is a Gaussian mixture in closed form. Other rewards (`region`, `logp`) are tilted
on a fine grid. Distances: the per-mode occupancy error (total variation between the samples' share of
each mode and the target's weight of it) and the energy distance to draws of the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from flowscale.worlds.toy2d import GaussianMixture, make_reward, parse_point, plot_extent

GRID_N = 400  # grid points per axis for tilts with no closed form (cells of about 0.03 on the default window)
REFERENCE_DRAWS = 4000  # target draws the energy distance compares with


def tilted_mixture(mixture: GaussianMixture, point: tuple[float, float], lam: float) -> GaussianMixture:
    """The closed-form tilt p0(x) exp(-|x - point|^2 / lam) of an isotropic mixture (module docstring)."""
    if not lam > 0:
        raise ValueError(f"lam must be > 0; got {lam}")
    m = torch.tensor(point, dtype=torch.float64)
    s2 = mixture.stds**2
    denom = lam + 2 * s2
    means = (lam * mixture.means + 2 * s2.unsqueeze(1) * m) / denom.unsqueeze(1)
    stds = torch.sqrt(s2 * lam / denom)
    log_w = torch.log(mixture.weights) + torch.log(lam / denom) - ((mixture.means - m) ** 2).sum(1) / denom
    return GaussianMixture(means, stds, torch.softmax(log_w, 0))


@dataclass(frozen=True)
class TiltedTarget:
    """The tilted target: its weight on each mode of the data mixture, and draws from it.

    `modes` assigns points to modes: the tilted mixture's own components when it is closed-form (component
    k of the tilt is the tilt of data component k), else the data mixture's.
    """

    weights: torch.Tensor  # [K]
    modes: GaussianMixture
    closed_form: bool
    _cells: torch.Tensor | None = None  # grid targets: cell centres [G, 2]
    _cell_p: torch.Tensor | None = None  # and their probabilities [G]
    _cell: float = 0.0

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n draws [n, 2] (float64) from the target."""
        if self.closed_form:
            k = torch.multinomial(self.modes.weights, n, replacement=True, generator=generator)
            z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
            return self.modes.means[k] + self.modes.stds[k].unsqueeze(1) * z
        assert self._cells is not None and self._cell_p is not None
        idx = torch.multinomial(self._cell_p, n, replacement=True, generator=generator)
        jitter = (torch.rand(n, 2, generator=generator, dtype=torch.float64) - 0.5) * self._cell
        return self._cells[idx] + jitter

    def occupancy(self, samples: torch.Tensor) -> torch.Tensor:
        """The samples' share of each mode [K]."""
        k = self.modes.component_of(samples.to(torch.float64))
        return torch.bincount(k, minlength=self.weights.shape[0]).to(torch.float64) / samples.shape[0]


def tilted_target(mixture: GaussianMixture, reward_spec: str, lam: float, grid_n: int = GRID_N) -> TiltedTarget:
    """p0 exp(r / lam) for a 2-D reward spec: closed form for `point`, a grid_n x grid_n grid otherwise."""
    if reward_spec.startswith("point:"):
        tilt = tilted_mixture(mixture, parse_point(reward_spec), lam)
        return TiltedTarget(tilt.weights, tilt, True)
    lo, hi = plot_extent(mixture, reward_spec)
    axis = torch.linspace(lo, hi, grid_n, dtype=torch.float64)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    cells = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    p = torch.softmax(mixture.log_prob(cells) + make_reward(reward_spec, mixture)(cells) / lam, 0)
    k = mixture.component_of(cells)
    weights = torch.zeros(mixture.weights.shape[0], dtype=torch.float64).index_add_(0, k, p)
    return TiltedTarget(weights, mixture, False, cells, p, float(axis[1] - axis[0]))


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Energy distance 2 E|a - b| - E|a - a'| - E|b - b'| (>= 0, 0 iff the distributions agree)."""
    a, b = a.to(torch.float64), b.to(torch.float64)
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


def distance_to_target(samples: torch.Tensor, target: TiltedTarget, seed: int = 0) -> dict[str, float | list]:
    """How far samples [N, 2] are from the target: occupancy error (total variation over modes, in [0, 1]),
    energy distance to REFERENCE_DRAWS seeded target draws, and both occupancies."""
    occupancy = target.occupancy(samples)
    reference = target.sample(REFERENCE_DRAWS, torch.Generator().manual_seed(seed))
    return {
        "occupancy_error": float(0.5 * (occupancy - target.weights).abs().sum()),
        "energy_distance": energy_distance(samples, reference),
        "occupancy": [round(v, 4) for v in occupancy.tolist()],
        "target_weights": [round(v, 4) for v in target.weights.tolist()],
    }


def target_distance(info: dict, reward_spec: str, lam: float, samples: torch.Tensor) -> dict[str, float | list] | None:
    """The world hook (worlds.target_distance_for): a run's final samples against its tilted target, from the
    run's world info (the mixture); None for a run without a mixture."""
    if not (info or {}).get("mixture"):
        return None
    return distance_to_target(samples, tilted_target(GaussianMixture.from_dict(info["mixture"]), reward_spec, lam))
