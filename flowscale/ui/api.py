"""The API endpoint /run (gr.api derives its schema from this signature): the CLI's names and values."""

from __future__ import annotations

import inspect

from flowscale import cost
from flowscale.config import RunConfig, validate_types
from flowscale.cost import check_request
from flowscale.run import estimate_run, prepare
from flowscale.ui import workers
from flowscale.ui.errors import as_gr_error
from flowscale.ui.models import APP_DEFAULTS as D


def api_run(
    model: str = D["model"],
    method: str = D["method"],
    process: str = D["process"],
    nfe: int = D["nfe"],
    seed: int = D["seed"],
    steps: int | None = None,
    prompt: str | None = None,
    height: int | None = None,
    width: int | None = None,
    preset: str | None = None,
    reward: str | None = None,
    heldout: str | None = None,
    params: dict | None = None,
    recipe: str | None = None,
    dps: float = 0.0,
) -> tuple[dict, dict | None]:  # per update (a generator): gradio reads the output schema from this
    """Run flowscale once and stream progress; the last update carries the run record (record.json).

    Names and values are the CLI's: model toy2d | shapes | flux-schnell ..., method bon | sop | smc |
    code | svdd | rbf | ode, process linear-ode | linear-sde | vp-sde, params {"rbf.variant": "code", ...};
    height and width for image worlds that take them; recipe "paper" for the released code's setting; dps > 0 guides
    an SDE with the gradient of a differentiable reward. Settings left out keep the model's defaults. Weights
    come from the host (FLOWSCALE_MODELS or the hub cache): a request cannot name a path.
    """
    try:
        cfg = RunConfig(model=model, method=method, process=process, nfe=nfe, seed=seed, steps=steps, prompt=prompt,
                        height=height, width=width, recipe=recipe, preset=preset, reward=reward, heldout=heldout, params={} if params is None else params,
                        dps=dps)
        validate_types(cfg)
        prepared = prepare(cfg)
        check_request([(prepared[0], estimate_run(prepared))], *cost.caps())
        yield from workers.stream(cfg, prepared)  # the CPU worlds in a worker process: requests run in parallel
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
        raise as_gr_error(exc) from None


# gradio reads the endpoint's outputs from the return annotation; resolve it (this module postpones annotations)
api_run.__signature__ = inspect.signature(api_run, eval_str=True)
