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
        "Shaded blue: the data density; shaded orange: the reward-tilted target that a perfect search would sample."
    ),
    "trajectories_image": (
        "Top: the given reward of every candidate's x̂0, step by step; lines join a candidate to the particle it "
        "was proposed from, red crosses were not continued, gold is the returned sample's lineage. Bottom: the "
        "same paths in a fixed random 2-D projection of the latent states."
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


# Labels of the method settings in the Advanced accordion (keys as in RunConfig.params).
SETTING_LABELS = {
    "bon.n": "trajectories N (0 = budget ÷ steps)",
    "sop.n": "particles N",
    "sop.k": "children per particle K",
    "sop.t_seed": "first solve stops at t_seed",
    "sop.forward": "renoise forward by Δf",
    "sop.backward": "solve back down by Δb",
    "sop.solve_steps": "Euler steps per solve (0 = as many as the budget allows)",
    "smc.n": "particles N (0 = budget ÷ steps)",
    "smc.lam": "λ: temperature of the target p·e^(r/λ)",
    "smc.ess_threshold": "resample when ESS < threshold × N",
    "smc.resampling": "resampling scheme",
    "code.n": "chains N",
    "code.k": "particles per step K (0 = the most that fit)",
    "code.block": "block size L (steps between selections)",
    "code.lam": "λ (0 = keep the best, > 0 = draw from softmax(r/λ))",
    "svdd.n": "chains N",
    "svdd.k": "particles per step K (0 = the most that fit)",
    "svdd.lam": "λ (0 = keep the best, > 0 = draw from softmax(r/λ))",
    "rbf.variant": "variant: paper (Alg. 2) or released code",
    "smc.schedule": "population: constant, or decay (the released code's linearly decaying N per step)",
    "svdd.schedule": "children K: constant, or decay (linearly decaying over the steps)",
    "code.schedule": "children K: constant, or decay (linearly decaying over the steps)",
    "rbf.chains": "chains N",
    "rbf.init_particles": "initial particles per chain (0 = paper 1, code 25)",
    "rbf.batch": "candidates per chain per model call (1 = the paper's one-at-a-time draw; Shapes starts at 8: "
                 "as accurate on the bench, 2.5x faster)",
}

API = """The app serves one named endpoint, **`/run`**, with the CLI's names and values. Settings you leave out
keep their defaults; the updates stream while the run goes, and the last one carries the run record.

```python
from gradio_client import Client

client = Client("http://127.0.0.1:7860/")
status, record = client.predict(model="toy2d", method="rbf", process="vp-sde", nfe=200, seed=0, api_name="/run")
print(record["final_reward"], record["nfe_used"])

job = client.submit(model="toy2d", method="smc", process="linear-sde", nfe=500, seed=1,
                    params={"smc.lam": 0.5}, api_name="/run")
for status, record in job:          # one update per step batch, then the record
    print(status)
```

Keywords: `model` (toy2d, shapes, flux-schnell, …), `method` (bon, sop, smc, code, svdd, rbf, ode),
`process` (linear-ode, linear-sde, vp-sde), `nfe`, `seed`, and optionally `steps`, `prompt`, `preset`,
`reward`, `heldout` and `params` (method settings such as `{"rbf.variant": "code", "svdd.k": 25}`).
A bad setting comes back as an error that names it."""
