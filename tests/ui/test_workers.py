"""/run in worker processes: the same updates and record as in the app process, and a closed request stops."""

import pytest
import torch

from flowscale import threads as threads_mod
from flowscale.config import ConfigError, RunConfig
from flowscale.run import prepare
from flowscale.trace import RunRecord
from flowscale.ui import workers


@pytest.fixture(scope="module")
def pool():
    yield
    workers.shutdown()


def comparable(record: dict) -> dict:
    return RunRecord.from_dict(record).comparable()


def test_a_worker_streams_what_the_app_process_would(pool, monkeypatch):
    cfg = RunConfig(model="shapes", method="rbf", process="vp-sde", nfe=60, steps=10, seed=4)
    monkeypatch.setenv("FLOWSCALE_API_WORKERS", "2")
    assert workers.in_worker(cfg) and not workers.in_worker(RunConfig(model="flux-schnell", prompt="x"))
    remote = list(workers.stream(cfg, prepare(cfg)))
    threads = torch.get_num_threads()
    torch.set_num_threads(threads_mod.threads_for(2))  # as each of the two workers (the UNet's sums depend on it)
    try:
        local = list(workers.run_updates(cfg))
    finally:
        torch.set_num_threads(threads)
    assert [u[0]["status"] for u in remote][0] == "started" and remote[-1][0]["status"] == "done"
    assert remote[-1][0] == local[-1][0] and comparable(remote[-1][1]) == comparable(local[-1][1])
    assert remote[-1][1]["threads"] == threads_mod.threads_for(2)  # the two workers share the cores


def test_a_request_closed_early_stops_and_the_pool_serves_the_next(pool):
    cfg = RunConfig(method="rbf", process="vp-sde", nfe=20000, steps=25, seed=0)
    updates = workers.stream(cfg, prepare(cfg))
    assert next(updates)[0]["status"] == "started"
    updates.close()  # the client went away
    small = RunConfig(method="bon", process="linear-sde", nfe=100, seed=1)
    assert list(workers.stream(small, prepare(small)))[-1][0]["nfe_spent"] == 100


def test_worker_errors_come_back_as_the_errors_they_were():
    err = workers._error("config", "nfe", "must be in [1, 10]")
    assert isinstance(err, ConfigError) and err.field == "nfe" and "must be in [1, 10]" in str(err)
    assert str(workers._error("failed", "", "reward 'count' failed")) == "reward 'count' failed"
    assert str(workers._error("ValueError", "", "bad")) == "ValueError: bad"


LEAVER = """
import os, sys
from flowscale.config import RunConfig
from flowscale.run import prepare
from flowscale.ui import workers
if __name__ == "__main__":
    cfg = RunConfig(method="bon", nfe=50)
    list(workers.stream(cfg, prepare(cfg)))
    pool, manager = workers._pool()
    print(" ".join(str(p) for p in [*pool._processes, manager._process.pid]), flush=True)
    os._exit(0)  # the app process dies without any cleanup
"""


def test_no_worker_outlives_the_app_process(tmp_path):
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "leaver.py"
    script.write_text(LEAVER)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)})
    pids = [int(p) for p in done.stdout.split()]
    assert len(pids) == 3, done.stderr[-2000:]  # two workers and the queue manager

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return Path(f"/proc/{pid}/status").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()

    deadline = time.time() + 15
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.5)
    assert not any(alive(p) for p in pids)


def test_a_worker_that_dies_fails_its_request_and_the_next_request_gets_a_new_pool(pool):
    import os
    import signal
    import threading
    import time

    cfg = RunConfig(method="rbf", process="vp-sde", nfe=40000, steps=25, seed=0)
    updates = workers.stream(cfg, prepare(cfg))
    assert next(updates)[0]["status"] == "started"
    victims = list(workers._pool()[0]._processes)
    threading.Thread(target=lambda: (time.sleep(0.5), [os.kill(p, signal.SIGKILL) for p in victims])).start()
    with pytest.raises(RuntimeError, match="worker process running this request ended"):
        for _ in updates:
            pass
    small = RunConfig(method="bon", process="linear-sde", nfe=100, seed=1)
    assert list(workers.stream(small, prepare(small)))[-1][0]["nfe_spent"] == 100
