"""Hostile requests to a served app (app.py in its own process, on loopback): each refused by name in one
bounded message, none exhausting the server's memory or logging a traceback, and good requests still served."""

import time
from pathlib import Path

import pytest
from gradio_client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory, app_py):
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with app_py(log_path, FLOWSCALE_MAX_REQUEST_S="20") as (proc, url):
        client = Client(url, verbose=False, download_files=False)
        yield proc, client, log_path
        client.close()


def refusal(client: Client, **kwargs) -> str:
    start = time.perf_counter()
    with pytest.raises(Exception) as info:
        client.predict(api_name="/run", **kwargs)
    assert time.perf_counter() - start < 5, "a refusal comes before any work"
    message = str(info.value)
    assert "Traceback" not in message and len(message) < 420, message
    return message


@pytest.mark.parametrize("kwargs, field", [
    ({"params": {"sop.forward": 1e-8, "sop.backward": 2e-8}, "method": "sop"}, "sop.backward"),
    ({"method": "rbf", "nfe": 50_000}, "nfe"),  # valid, but past the host's cost cap
    ({"params": "rbf.variant=code"}, "params"),
    ({"params": [1, 2]}, "params"),
    ({"params": {"rbf.chains": "x" * 1_000_000}}, "rbf.chains"),
    ({"params": {"smc.lam": 0.5}}, "smc.lam"),  # another method's setting: refused, not dropped
    ({"params": {"rfb.variant": "code"}}, "rfb.variant"),
])
def test_each_hostile_request_is_refused_by_name(server, kwargs, field):
    _, client, _ = server
    message = refusal(client, **kwargs)
    assert f"“{field}”" in message, message
    if kwargs.get("nfe") == 50_000:
        assert "this server allows 20 s" in message and "lower nfe to about" in message


hostile = st.one_of(
    st.fixed_dictionaries({"nfe": st.one_of(st.integers(-10**9, 0), st.integers(4_000_001, 10**15))}),
    st.fixed_dictionaries({"method": st.text(max_size=30)}),
    st.fixed_dictionaries({"process": st.text(max_size=30)}),
    st.fixed_dictionaries({"reward": st.text(min_size=1, max_size=300).map(lambda s: "point:" + s)}),
    st.fixed_dictionaries({"params": st.dictionaries(
        st.sampled_from(["rbf.chains", "rbf.variant", "svdd.k", "smc.ess_threshold", "sop.forward", "x", "rbf."]),
        st.one_of(st.floats(allow_nan=True), st.integers(-10**12, 10**12), st.text(max_size=40)), min_size=1,
        max_size=3)}),
    st.fixed_dictionaries({"steps": st.integers(2001, 10**9)}),
    st.fixed_dictionaries({"preset": st.text(max_size=40)}),
)


@pytest.mark.slow
def test_fuzzed_requests_leave_memory_bounded_and_the_log_free_of_tracebacks(server):
    proc, client, log_path = server
    client.predict(nfe=60, api_name="/run")  # warm: first-request allocations are not growth
    before = rss_mb(proc.pid)
    seen = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(kwargs=hostile)
    def one(kwargs):
        try:
            status, _ = client.predict(api_name="/run", **kwargs)
            seen.append(status["status"])  # some random settings are valid and simply run
        except Exception as exc:  # noqa: BLE001 - every refusal is an AppError with a message
            assert "Traceback" not in str(exc) and len(str(exc)) < 420
            seen.append("refused")

    one()
    after = rss_mb(proc.pid)
    assert seen.count("refused") >= 20
    assert after - before < 250, f"server RSS grew {after - before:.0f} MB over {len(seen)} hostile requests"
    status, record = client.predict(nfe=60, seed=1, api_name="/run")
    assert status["status"] == "done" and record["nfe_used"] == 60  # a good request is still served
    log = log_path.read_text()
    assert "Traceback" not in log
    assert "refused a request: " in log  # user errors: one INFO line each
