"""VQAScore through HTTP: the model (CLIP-FlanT5-XXL via t2v_metrics) lives in its own environment, because
t2v_metrics pins torch 2.5 / transformers 4.49 (ecosystem.md 4.7). method.md e: score = P("Yes" | image,
'Does this figure show "{prompt}"? Please answer yes or no.') in [0, 1].

Server contract (docs/t2i.md has a reference server):
    GET  {URL}/health -> 200 (any body)
    POST {URL}/score  JSON {"prompt": str, "images": [base64 PNG, ...]} -> JSON {"scores": [float, ...]}
URL comes from FLOWSCALE_VQASCORE_URL (e.g. http://127.0.0.1:5000); timeout FLOWSCALE_VQASCORE_TIMEOUT s.
"""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.error
import urllib.request

import torch

from flowscale.config import ConfigError
from flowscale.rewards.common import to_uint8_hwc

URL_ENV = "FLOWSCALE_VQASCORE_URL"
TIMEOUT_ENV = "FLOWSCALE_VQASCORE_TIMEOUT"


def encode_png(images: torch.Tensor) -> list[str]:
    from PIL import Image

    out = []
    for arr in to_uint8_hwc(images):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        out.append(base64.b64encode(buf.getvalue()).decode("ascii"))
    return out


class VQAScoreClient:
    """Scores images against a prompt by POSTing them to a VQAScore server."""

    def __init__(self, url: str, timeout: float = 120.0, field: str = "reward", check: bool = True) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        if check:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=min(timeout, 5.0)) as resp:
                    resp.read()
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise ConfigError(field, f"VQAScore server at {self.url} is not reachable ({exc}); start it "
                                  "(docs/t2i.md) or unset the reward") from exc

    def score(self, images: torch.Tensor, prompt: str) -> torch.Tensor:
        body = json.dumps({"prompt": prompt, "images": encode_png(images)}).encode()
        req = urllib.request.Request(f"{self.url}/score", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            scores = json.loads(resp.read())["scores"]
        return torch.tensor([float(s) for s in scores], dtype=torch.float64)


def vqascore_client(field: str = "reward") -> VQAScoreClient:
    url = os.environ.get(URL_ENV)
    if not url:
        raise ConfigError(field, f"vqascore needs a running VQAScore server: set {URL_ENV} (see docs/t2i.md)")
    return VQAScoreClient(url, float(os.environ.get(TIMEOUT_ENV, "120")), field)
