"""The 2-D playground: a Gaussian-mixture flow with the exact closed-form velocity (float64).

For x0 ~ sum_k w_k N(mu_k, s_k^2 I) and x_t = alpha x0 + sigma eps, component k gives
x_t ~ N(alpha mu_k, v_k I) with v_k = alpha^2 s_k^2 + sigma^2, and
    E[x0 | x_t, k] = mu_k + alpha s_k^2 / v_k (x - alpha mu_k),   E[eps | x_t, k] = sigma / v_k (x - alpha mu_k),
mixed by the posterior responsibilities gamma_k(x). The linear velocity is E[eps - x0 | x_t]: this is a
perfectly trained flow model that needs no weights, and the oracle every test checks the engine against.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import torch

from flowscale.config import ConfigError, Limits, RunConfig
from flowscale.cost_model import CostModel
from flowscale.interpolants import Coeffs, LinearInterpolant
from flowscale.worlds.base import Reward, World, WorldDefaults

MAX_COMPONENTS = 64
MAX_ABS_VALUE = 1e3
MAX_WEIGHT = 1e6  # relative weights; their sum must stay finite


@dataclass(frozen=True)
class GaussianMixture:
    """Isotropic 2-D mixture: means [K, 2], stds [K], weights [K] (normalised), all float64."""

    means: torch.Tensor
    stds: torch.Tensor
    weights: torch.Tensor

    @staticmethod
    def from_dict(data: Any) -> GaussianMixture:
        """Validate a user mixture {"means": [[x, y], ...], "stds": [...], "weights": [...]}."""
        if not isinstance(data, dict):
            raise ValueError("mixture must be a JSON object with keys means, stds, weights")
        unknown = set(data) - {"means", "stds", "weights"}
        if unknown:
            raise ValueError(f"mixture has unknown keys {sorted(unknown)}; allowed: means, stds, weights")
        for key in ("means", "stds", "weights"):
            if key not in data:
                raise ValueError(f"mixture.{key} is missing")
        raw_means = data["means"]
        if not isinstance(raw_means, list) or not all(isinstance(m, list) and len(m) == 2 for m in raw_means):
            raise ValueError("mixture.means must be a list of [x, y] pairs")
        if not 1 <= len(raw_means) <= MAX_COMPONENTS:
            raise ValueError(f"mixture.means must have 1 to {MAX_COMPONENTS} components; got {len(raw_means)}")
        means = _float_tensor([v for m in raw_means for v in m], "means").reshape(-1, 2)
        stds, weights = (_float_tensor(data[k], k) for k in ("stds", "weights"))
        k = means.shape[0]
        for key, value in (("stds", stds), ("weights", weights)):
            if value.ndim != 1 or value.shape[0] != k:
                raise ValueError(f"mixture.{key} must be a list of {k} numbers (one per mean)")
        if bool((means.abs() > MAX_ABS_VALUE).any()):
            raise ValueError(f"mixture.means must lie within [-{MAX_ABS_VALUE:g}, {MAX_ABS_VALUE:g}]")
        if not bool(((stds > 0) & (stds <= MAX_ABS_VALUE)).all()):
            raise ValueError(f"mixture.stds must be > 0 and <= {MAX_ABS_VALUE:g}")
        if bool((weights < 0).any()) or bool((weights > MAX_WEIGHT).any()) or not float(weights.sum()) > 0:
            raise ValueError(f"mixture.weights must be in [0, {MAX_WEIGHT:g}] with a positive sum")
        return GaussianMixture(means, stds, weights / weights.sum())

    def to_dict(self) -> dict[str, list]:
        return {"means": self.means.tolist(), "stds": self.stds.tolist(), "weights": self.weights.tolist()}

    def posterior(self, x: torch.Tensor, c: Coeffs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(E[x0 | x], E[eps | x], responsibilities [B, K]) under x = alpha x0 + sigma eps."""
        alpha = c.alpha.reshape(-1, 1, 1)
        sigma = c.sigma.reshape(-1, 1, 1)
        var = alpha**2 * self.stds.reshape(1, -1, 1) ** 2 + sigma**2  # [B, K, 1]
        diff = x.unsqueeze(1) - alpha * self.means.unsqueeze(0)  # [B, K, 2]
        log_n = -0.5 * (diff**2).sum(-1) / var[..., 0] - torch.log(2 * math.pi * var[..., 0])
        gamma = torch.softmax(torch.log(self.weights).unsqueeze(0) + log_n, dim=1)
        x0_k = self.means.unsqueeze(0) + alpha * self.stds.reshape(1, -1, 1) ** 2 / var * diff
        eps_k = sigma / var * diff
        g = gamma.unsqueeze(-1)
        return (g * x0_k).sum(1), (g * eps_k).sum(1), gamma

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density of the data distribution at x [B, 2]."""
        var = self.stds**2
        diff = x.unsqueeze(1) - self.means.unsqueeze(0)
        log_n = -0.5 * (diff**2).sum(-1) / var - torch.log(2 * math.pi * var)
        return torch.logsumexp(torch.log(self.weights) + log_n, dim=1)

    def component_of(self, x: torch.Tensor) -> torch.Tensor:
        """The most responsible component of each data-space point (for occupancy tests and plots)."""
        ones = torch.ones(x.shape[0], dtype=torch.float64)
        _, _, gamma = self.posterior(x, Coeffs(ones, 0 * ones, -ones, ones))
        return gamma.argmax(1)


def _float_tensor(value: Any, key: str) -> torch.Tensor:
    """A flat list of real numbers (booleans are not numbers) as float64."""
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"mixture.{key} must be a list of numbers")
    try:
        out = torch.tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise ValueError(f"mixture.{key} must contain only numbers") from None
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"mixture.{key} must contain only finite numbers")
    return out


def _ring(n: int, radius: float, std: float) -> dict[str, list]:
    angles = [2 * math.pi * i / n for i in range(n)]
    return {
        "means": [[radius * math.cos(a), radius * math.sin(a)] for a in angles],
        "stds": [std] * n,
        "weights": [1.0] * n,
    }


PRESETS: dict[str, dict[str, list]] = {
    # The default: four modes with imbalanced weights (method.md h).
    "imbalanced4": {
        "means": [[2.0, 2.0], [-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0]],
        "stds": [0.4] * 4,
        "weights": [0.4, 0.4, 0.15, 0.05],
    },
    "ring8": _ring(8, 3.0, 0.3),
    # A hard case: one rare mode (weight 2%) far from the others.
    "rare": {
        "means": [[-2.0, -1.0], [0.0, -2.0], [2.0, -1.0], [0.0, 3.0]],
        "stds": [0.45, 0.45, 0.45, 0.3],
        "weights": [0.33, 0.33, 0.32, 0.02],
    },
}
DEFAULT_PRESET = "imbalanced4"
# The point reward each preset suggests: its rarest mode.
PRESET_TARGETS = {"imbalanced4": (-2.0, 2.0), "ring8": (3.0, 0.0), "rare": (0.0, 3.0)}


class GaussianMixtureFlow:
    """Exact velocity of the linear interpolant for a Gaussian mixture (a perfect flow model)."""

    name = "toy2d"
    sample_shape = (2,)
    device = torch.device("cpu")
    dtype = torch.float64

    def __init__(self, mixture: GaussianMixture) -> None:
        self.mixture = mixture

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Any = None) -> torch.Tensor:
        x0_hat, eps_hat, _ = self.mixture.posterior(x.to(torch.float64), LinearInterpolant().coeffs(t))
        return eps_hat - x0_hat


def parse_point(spec: str) -> tuple[float, float]:
    return _numbers(spec, "point", 2)  # type: ignore[return-value]


def _numbers(spec: str, kind: str, n: int) -> tuple[float, ...]:
    body = spec.split(":", 1)[1] if ":" in spec else ""
    try:
        values = tuple(float(v) for v in body.split(","))
    except ValueError:
        values = ()
    if len(values) != n or not all(math.isfinite(v) and abs(v) <= MAX_ABS_VALUE for v in values):
        raise ValueError(f"reward {kind} takes {n} finite numbers, e.g. {kind}:{','.join(['1'] * n)}; got {spec!r}")
    return values


def make_reward(spec: str, mixture: GaussianMixture) -> Reward:
    """`point:X,Y`, `region:X0,Y0,X1,Y1` or `logp` (exact log-density: the held-out score)."""
    kind = spec.split(":", 1)[0]
    if kind == "point":
        px, py = parse_point(spec)

        def point(x: torch.Tensor) -> torch.Tensor:
            x = x.to(torch.float64)
            # = -((x - target)**2).sum(-1) bit for bit (two non-negative terms), one coordinate at a time: torch
            # pays more to broadcast over, and to reduce, a 2-wide dim than for the rest of the reward
            dx, dy = x[..., 0] - px, x[..., 1] - py
            return -(dx * dx + dy * dy)

        return Reward(spec, point, differentiable=True)
    if kind == "region":
        x0, y0, x1, y1 = _numbers(spec, "region", 4)
        lo = torch.tensor([min(x0, x1), min(y0, y1)], dtype=torch.float64)
        hi = torch.tensor([max(x0, x1), max(y0, y1)], dtype=torch.float64)
        sharpness = 10.0  # the indicator's edge is about 0.1 wide: smooth enough to rank near misses

        def region(x: torch.Tensor) -> torch.Tensor:
            x = x.to(torch.float64)
            inside = torch.sigmoid(sharpness * (x - lo)) * torch.sigmoid(sharpness * (hi - x))
            return inside.prod(-1)

        def inside(x: torch.Tensor) -> torch.Tensor:
            x = x.to(torch.float64)
            return ((x >= lo) & (x <= hi)).all(-1).to(torch.float64)

        return Reward(spec, region, accuracy_fn=inside, differentiable=True)
    if spec == "logp":
        return Reward("logp", lambda x: mixture.log_prob(x.to(torch.float64)), differentiable=True)
    raise ValueError(f"reward for toy2d must be point:X,Y, region:X0,Y0,X1,Y1 or logp; got {spec!r}")


def tilted_density(
    mixture: GaussianMixture, reward: Reward, lam: float, lo: float, hi: float, n: int = 120
) -> dict[str, Any]:
    """p(x) and the reward-tilted target p(x) exp(r(x) / lam), both normalised on an n x n grid."""
    axis = torch.linspace(lo, hi, n, dtype=torch.float64)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    log_p = mixture.log_prob(pts)
    log_tilted = log_p + reward(pts) / lam
    p = torch.softmax(log_p, 0).reshape(n, n)
    tilted = torch.softmax(log_tilted, 0).reshape(n, n)
    return {"axis": axis.tolist(), "density": p.tolist(), "tilted": tilted.tolist()}


def reward_geometry(spec: str) -> dict[str, Any]:
    """What a 2-D reward looks like on the plane: {"point": [x, y]} or {"region": [x0, y0, x1, y1]}; {} for
    logp or a spec that does not parse (the run itself reports that)."""
    kind = (spec or "").split(":", 1)[0]
    try:
        if kind == "point":
            return {"point": list(parse_point(spec))}
        if kind == "region":
            return {"region": list(_numbers(spec, "region", 4))}
    except ValueError:
        pass
    return {}


def plot_extent(mixture: GaussianMixture, reward_spec: str) -> tuple[float, float]:
    """A square window holding every mode (3 std), the reward's target and most of the N(0, I) noise."""
    values = [3.2, -3.2]
    for (mx, my), s in zip(mixture.means.tolist(), mixture.stds.tolist(), strict=True):
        values += [mx + 3 * s, mx - 3 * s, my + 3 * s, my - 3 * s]
    geometry = reward_geometry(reward_spec)
    values += geometry.get("point", []) + geometry.get("region", [])
    lo, hi = min(values), max(values)
    pad = 0.04 * (hi - lo)
    return round(lo - pad, 3), round(hi + pad, 3)


def background(info: dict[str, Any], reward_spec: str, lam: float = 1.0, n: int = 72) -> dict[str, Any] | None:
    """What the 2-D paths plot draws under the particles, from a run's world info: the data density and the
    reward-tilted target on an n x n grid (both scaled to a maximum of 1; the density as a square root so
    that a 5 % mode stays visible), the window, and the reward's geometry. None without a mixture."""
    if not (info or {}).get("mixture"):
        return None
    gm = GaussianMixture.from_dict(info["mixture"])
    try:
        reward = make_reward(reward_spec or "logp", gm)
    except ValueError:
        reward = make_reward("logp", gm)
    lo, hi = plot_extent(gm, reward_spec)
    data = tilted_density(gm, reward, lam, lo, hi, n)
    density = torch.tensor(data["density"]).sqrt()
    tilted = torch.tensor(data["tilted"])
    return {
        "axis": [round(v, 4) for v in data["axis"]],
        "density": (density / density.max()).round(decimals=4).tolist(),
        "tilted": (tilted / tilted.max()).round(decimals=4).tolist(),
        "lam": lam,
        "reward": reward_spec,
        "extent": [lo, hi],
        "geometry": reward_geometry(reward_spec),
    }


def load_mixture(preset: str | None, mixture: dict | str | None) -> GaussianMixture:
    if mixture is not None:
        data = json.loads(mixture) if isinstance(mixture, str) else mixture
        return GaussianMixture.from_dict(data)
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    return GaussianMixture.from_dict(PRESETS[name])


DEFAULTS = WorldDefaults(
    steps=25,
    grid="uniform",
    grid_space="process",
    nfe=500,
    particles=64,
    reward="point:-2,2",
    heldout="logp",
    max_batch=8192,
)


# The exact 2-D model costs microseconds per NFE: a million-NFE base run takes about a second.
LIMITS = Limits(max_nfe=4_000_000, max_particles=16384, max_steps=2000)
UNUSED = ("prompt", "model_path", "height", "width")
DIFFERENTIABLE = ("point:X,Y", "region:X0,Y0,X1,Y1", "logp")  # rewards that can guide the SDE (dps)
ORACLE = "flowscale.worlds.toy2d_oracle"  # the exact tilted target (worlds.target_distance_for loads it)
# Measured on the 2-core machine, one thread: 0.73 ms per evaluation batch alone and 2.2 ms with a second
# request running beside it; 0.5 us per NFE. Estimates use the shared-server figure.
COST = CostModel(sec_per_call=2.2e-3, sec_per_nfe=1e-6)  # settings of other worlds: an error here, never ignored


def build_world(cfg: RunConfig) -> World:
    """The 2-D world of a run config; each bad setting is a ConfigError naming its field."""
    if cfg.prompt is not None:
        raise ConfigError("prompt", "toy2d takes no prompt; use preset or mixture")
    try:
        gm = load_mixture(cfg.preset, cfg.mixture)
    except ValueError as exc:
        raise ConfigError("preset" if cfg.mixture is None else "mixture", str(exc)) from None
    reward_spec = cfg.reward
    if reward_spec is None:
        tx, ty = PRESET_TARGETS.get(cfg.preset or DEFAULT_PRESET, (0.0, 0.0)) if cfg.mixture is None else (0.0, 0.0)
        reward_spec = f"point:{tx:g},{ty:g}"
    heldout_spec = cfg.heldout or DEFAULTS.heldout
    rewards = {}
    for name, spec in (("reward", reward_spec), ("heldout", heldout_spec)):
        try:
            rewards[name] = None if spec == "none" else make_reward(spec, gm)
        except ValueError as exc:
            raise ConfigError(name, str(exc)) from None
    if rewards["reward"] is None:
        raise ConfigError("reward", "the given reward cannot be none")
    return World(
        name="toy2d",
        model=GaussianMixtureFlow(gm),
        cond=None,
        reward=rewards["reward"],
        heldout=rewards["heldout"],
        decode=lambda x0: x0,
        project=lambda x: x.to(torch.float64),
        defaults=DEFAULTS,
        info={"mixture": gm.to_dict(), "preset": None if cfg.mixture is not None else (cfg.preset or DEFAULT_PRESET)},
    )
