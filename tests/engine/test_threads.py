"""The thread policy: passive OpenMP waiting before torch loads, threads per run by cores and concurrency,
FLOWSCALE_THREADS honoured, and the count a run used in its record."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowscale import ConfigError, threads

ROOT = Path(__file__).resolve().parents[2]


def test_threads_split_the_cores_between_concurrent_runs(monkeypatch):
    monkeypatch.delenv("FLOWSCALE_THREADS", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 8)
    assert [threads.threads_for(c) for c in (1, 2, 3, 16)] == [8, 4, 2, 1]
    monkeypatch.setenv("FLOWSCALE_THREADS", "3")
    assert threads.threads_for(2) == 3
    for bad in ("0", "two", "-1", "99999"):
        monkeypatch.setenv("FLOWSCALE_THREADS", bad)
        with pytest.raises(ConfigError):
            threads.threads_for()


@pytest.mark.parametrize("count", ["1", "2"])
def test_a_cli_run_records_the_threads_it_used(count, tmp_path):
    env = {**os.environ, "FLOWSCALE_THREADS": count}
    env.pop("OMP_WAIT_POLICY", None)
    done = subprocess.run([sys.executable, "-m", "flowscale", "run", "--method", "rbf", "--nfe", "60", "--out",
                           str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["threads"] == int(count)


def test_openmp_waits_passively_unless_told_otherwise():
    code = "import os, flowscale; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120).stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120).stdout.strip() == "ACTIVE"
