"""Many visitors at once: concurrent /run requests do not change each other's results."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client

from flowscale.trace import RUNTIME_KEYS as TIMING

REQUESTS = [dict(method=m, process=p, nfe=120, seed=s) for s, (m, p) in enumerate(
    [("rbf", "vp-sde"), ("smc", "linear-sde"), ("svdd", "linear-sde"), ("bon", "linear-ode"),
     ("code", "vp-sde"), ("rbf", "linear-sde")])]


@pytest.fixture(scope="module")
def url(app_url):
    return app_url


def record_of(url: str, kwargs: dict) -> dict:
    client = Client(url, verbose=False, download_files=False)
    try:
        status, record = client.predict(api_name="/run", **kwargs)
    finally:
        client.close()
    assert status["status"] == "done"
    return {k: v for k, v in record.items() if k not in TIMING}


def test_six_concurrent_requests_equal_the_same_requests_alone(url):
    alone = [record_of(url, kw) for kw in REQUESTS]
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(lambda kw: record_of(url, kw), REQUESTS))
    for a, b, kw in zip(alone, together, REQUESTS, strict=True):
        assert a == b, kw


def test_absurd_budget_is_refused_by_name_and_the_server_keeps_serving(url):
    client = Client(url, verbose=False, download_files=False)
    try:
        with pytest.raises(Exception) as info:
            client.predict(method="rbf", nfe=10**9, api_name="/run")
        assert "nfe" in str(info.value) and "Traceback" not in str(info.value)
        status, record = client.predict(method="rbf", nfe=80, api_name="/run")
        assert status["status"] == "done" and record["nfe_used"] == 80
    finally:
        client.close()
