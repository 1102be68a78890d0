"""/run in worker processes: the same updates and record as in the app process, and a closed request stops."""

import dataclasses

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


def compare_jobs(model: str, nfe: int, methods=("bon", "smc", "rbf", "ode")) -> list:
    extra = {"prompt": "2 red circles", "steps": 10} if model == "shapes" else {}
    configs = [RunConfig(model=model, method=m, process="vp-sde", nfe=nfe, seed=3, **extra) for m in methods]
    return [(cfg, prepare(cfg)) for cfg in configs]


def test_compare_runs_go_to_the_pool_longest_first_with_the_records_of_solo_runs(pool, monkeypatch):
    jobs = compare_jobs("shapes", 60) + compare_jobs("toy2d", 100, ("sop", "code"))
    monkeypatch.setattr(workers, "POOL_WORTH_S", 0.0)
    remote = list(workers.run_all(jobs))
    assert workers.pool_started() and sorted(i for i, _ in remote) == list(range(len(jobs)))
    monkeypatch.setenv("FLOWSCALE_API_WORKERS", "0")  # the same jobs in this process, at a worker's thread count
    threads = torch.get_num_threads()
    torch.set_num_threads(threads_mod.threads_for(2))
    try:
        local = dict(workers.run_all(jobs))
    finally:
        torch.set_num_threads(threads)
    for i, record in remote:
        assert comparable(record) == comparable(local[i]), jobs[i][0].method


def test_a_small_comparison_runs_here_while_the_pool_is_down(monkeypatch):
    workers.shutdown()
    jobs = compare_jobs("toy2d", 100, ("bon", "smc"))
    assert all(isinstance(r, dict) for _, r in workers.run_all(jobs))
    assert not workers.pool_started()  # two short 2-D runs are not worth starting the pool


def test_a_comparison_closed_early_stops_its_runs_and_a_failure_comes_back_in_its_row(pool, monkeypatch):
    import time

    monkeypatch.setattr(workers, "POOL_WORTH_S", 0.0)
    long = RunConfig(method="rbf", process="vp-sde", nfe=400000, steps=25, seed=0)  # minutes if it ran to the end
    fine = RunConfig(method="bon", nfe=100, seed=0)
    broken = dataclasses.replace(fine, params={"bon.n": 10**6})  # refused where it runs, in the worker
    jobs = [(long, prepare(long)), (broken, prepare(fine))]
    results = workers.run_all(jobs)
    index, failure = next(results)  # the broken job fails at once while the long one runs
    assert index == 1 and isinstance(failure, ConfigError) and failure.field == "bon.n"
    results.close()
    start = time.perf_counter()
    assert all(isinstance(r, dict) for _, r in workers.run_all(compare_jobs("toy2d", 100, ("bon", "smc"))))
    assert time.perf_counter() - start < 60  # both workers were free again: the long run stopped
