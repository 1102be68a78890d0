"""Teaching texts shown in the app: one paragraph per method and per process, and how to read each plot.

Symbols follow method.md: t runs from 1 (noise) to 0 (data), x̂0 is the model's prediction of the clean
sample, r is the given reward, NFE counts model evaluations (the budget every method spends).
"""

from __future__ import annotations

INTRO = (
    "**Inference-time scaling** spends more model evaluations (NFE) at sampling time to find samples that a "
    "reward likes, without retraining. A flow model turns noise (t = 1) into data (t = 0); every particle "
    "method below proposes several continuations, scores each one by the reward of its x̂0 prediction, and "
    "decides which to keep. Pick a world, a process and a method, press **Run**, and watch where the "
    "particles go, where the budget is spent, and how the best reward grows with compute. The deterministic "
    "ODE baseline (one trajectory, same seed) and Best-of-N at the same budget run alongside for comparison."
)

METHODS = {
    "ode": (
        "**ODE baseline.** One trajectory of the Linear-ODE from the seed's noise: no search and no reward. "
        "It costs one NFE per step and is what the model gives you without inference-time scaling."
    ),
    "bon": (
        "**Best-of-N (BoN).** Draw N = budget / steps independent trajectories and return the one whose final "
        "x̂0 scores highest. The particles never interact, so extra compute only buys more lottery tickets; "
        "the paper runs BoN with the deterministic Linear-ODE."
    ),
    "sop": (
        "**Search over Paths (SoP).** Solve N particles from noise down to a small time t_seed, then repeat: "
        "renoise each one forward by Δf with the interpolant's exact forward kernel, solve it back down by "
        "Δb > Δf, and keep the best of its K children. The search moves along whole ODE paths, so it needs "
        "no stochastic sampler; every solve step costs one NFE per particle."
    ),
    "smc": (
        "**Sequential Monte Carlo (SMC).** N particles move with the stochastic sampler. Each carries an "
        "importance weight, multiplied at every step by exp((r_new − r_parent)/λ). When the effective sample "
        "size (ESS) falls below threshold·N, the population is resampled in proportion to the weights: good "
        "particles are copied, poor ones die (see the branching lineage). It targets p(x)·exp(r(x)/λ): a small "
        "λ chases the reward, a large λ keeps diversity."
    ),
    "code": (
        "**CoDe.** Like SVDD, but each of the K children of a survivor runs L steps on its own before the best "
        "child of each group is kept. Fewer, longer look-aheads: selection sees where a branch leads after L "
        "steps, at the same N·K NFE per step."
    ),
    "svdd": (
        "**SVDD.** Keep N survivors; at every step replicate each one K times, take one stochastic step with "
        "every copy (N·K NFE), score the children by the reward of their x̂0, and keep the best child in each "
        "group (or draw one from softmax(r/λ) when λ > 0). The budget per step is fixed."
    ),
    "rbf": (
        "**Rollover Budget Forcing (RBF).** N chains walk down the time grid one step at a time. At each step a "
        "chain draws candidates (1 NFE each) until one beats the chain's best reward so far; it moves on at "
        "once and **rolls the unused quota over** to the next step. If the quota runs out, it takes the step's "
        "best candidate. Compute flows to the steps where improvement is hard: the budget plot shows where."
    ),
    "base": "**Base sampler.** Independent samples of the chosen process, without any selection.",
}

PROCESSES = {
    "linear-ode": (
        "**Linear-ODE.** Euler steps of the learned velocity along the linear interpolant "
        "x_t = (1 − t)·x₀ + t·ε. Deterministic: one noise gives one sample, so a search can only choose "
        "among starting noises (BoN) or whole paths (SoP)."
    ),
    "linear-sde": (
        "**Linear-SDE.** The same marginals as the ODE, but every step injects fresh noise: "
        "dx = [u − ½g²∇log p]dt + g dw, with g(t) = g_norm·schedule(t) (the paper uses 3t²). The noise lets a "
        "particle branch into many different continuations: the raw material of particle search."
    ),
    "vp-sde": (
        "**VP-SDE.** First convert the flow to the variance-preserving interpolant (α² + σ² = 1, β from "
        "β_min to β_max) by matching signal-to-noise ratios, then sample the SDE there, as the paper does. "
        "On FLUX this gave the most diverse candidates; on a coarse 2-D grid its discretisation noise shows."
    ),
    "vp-ode": "**VP-ODE.** The deterministic sampler in the variance-preserving interpolant.",
}

PLOTS = {
    "trajectories": (
        "Each grey line is one transition of a particle (t: 1 → 0, noise → data). Red crosses are candidates "
        "that were evaluated but not continued; the gold line follows the returned sample back to its noise. "
        "Shaded: the data density; orange contours: the reward-tilted target that a perfect search samples."
    ),
    "budget": (
        "How many model evaluations each denoising step received. RBF plans an even base quota (grey) and "
        "moves what a step did not need to the next step (orange); blue bars show what was spent."
    ),
    "reward": (
        "The best reward among all x̂0 predictions evaluated so far, against NFE spent. Stars mark the sample "
        "each run returned; the dotted purple line carries the one-trajectory ODE baseline across the budget."
    ),
}


def explain(method: str, process: str) -> str:
    """The paragraphs for the selected method and process."""
    return METHODS.get(method, f"**{method}**") + "\n\n" + PROCESSES.get(process, f"**{process}**")
