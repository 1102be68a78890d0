"""Fixtures shared across the test tree (which mirrors flowscale/: engine, search, worlds, rewards, figures,
ui, cli, train). Servers and processes started here listen on loopback only and stop by themselves."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry threads

ROOT = Path(__file__).resolve().parents[1]
# Paths of reward models and services a developer's shell may point at; the tests use tiny local ones.
REWARD_ENV = ("FLOWSCALE_CLIP_PATH", "FLOWSCALE_AESTHETIC_HEAD", "FLOWSCALE_PICKSCORE_PATH",
              "FLOWSCALE_PICKSCORE_PROCESSOR", "FLOWSCALE_GDINO_PATH", "FLOWSCALE_SAM_PATH", "FLOWSCALE_VQASCORE_URL")


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    return _free_port


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    """The app, launched in this process on loopback, shared by the API and concurrency tests."""
    from flowscale.ui import build_demo, launch

    demo = build_demo()
    _, url, _ = launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), quiet=True)
    try:
        yield url
    finally:
        demo.close()


@contextlib.contextmanager
def served_app_py(log_path: Path, **env: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """app.py as a user starts it, in its own process on a free loopback port; yields (process, url)."""
    port = _free_port()
    environ = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
                   GRADIO_ANALYTICS_ENABLED="False", **env)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=environ, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 180
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"app.py exited with {proc.returncode}; see {log_path}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        pytest.fail("app.py did not start listening within 180 s")
                    time.sleep(0.5)
            yield proc, f"http://127.0.0.1:{port}/"
        finally:
            proc.terminate()
            proc.wait(30)


@pytest.fixture(scope="session")
def app_py() -> Callable[..., contextlib.AbstractContextManager]:
    """Start app.py in its own process: `with app_py(log_path, ENV=value) as (proc, url): ...`."""
    return served_app_py


@pytest.fixture(scope="module")
def offline_single_thread() -> Iterator[None]:
    """HF_HUB_OFFLINE=1, the CPU, no user reward paths, one torch thread (tiny models are slower with
    contention); the loaded-model caches are cleared afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("FLOWSCALE_DEVICE", "cpu")
        for var in REWARD_ENV:
            mp.delenv(var, raising=False)
        yield
    torch.set_num_threads(threads)
    from flowscale.rewards import common
    from flowscale.worlds.t2i.availability import clear_cache

    common.clear_cache()
    clear_cache()
