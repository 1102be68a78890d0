"""Long-running processes (the app, its /run workers, a bench) freeze what they loaded at start out of the collector's
walks, after freeing the garbage made while starting."""

import gc
import weakref

import pytest

from flowscale import gc_policy


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


@pytest.fixture
def unfrozen():
    gc.unfreeze()  # an app another test launched in this process froze its heap
    yield
    gc.unfreeze()  # the rest of the test session sees an ordinary collector


def test_startup_garbage_is_freed_and_live_objects_are_frozen(unfrozen):
    garbage, live = Node(), Node()
    gone = weakref.ref(garbage)
    del garbage
    assert any(o is live for o in gc.get_objects())
    frozen = gc_policy.freeze_what_is_loaded()
    assert gone() is None  # collected first, not frozen for the life of the process
    assert frozen > 0 and gc.get_freeze_count() > 0  # a frozen object whose last reference goes is still freed
    assert not any(o is live for o in gc.get_objects())  # the collector no longer walks it
    later = Node()
    assert any(o is later for o in gc.get_objects())  # what is made afterwards stays collectable


def test_the_app_freezes_before_it_serves_and_a_worker_once_its_world_is_loaded(unfrozen, monkeypatch):
    from flowscale import ui
    from flowscale.ui import workers

    seen = {}

    class Demo:
        def queue(self, **kwargs):
            return self

        def launch(self, **kwargs):
            seen["app"] = gc.get_freeze_count()

    ui.launch(Demo())
    gc.unfreeze()
    def model_status(model: str) -> None:
        seen["loaded"] = gc.get_freeze_count()

    monkeypatch.setattr("flowscale.ui.models.model_status", model_status)

    class Barrier:
        def wait(self, timeout):
            seen["worker"] = gc.get_freeze_count()

    workers._warm(Barrier())
    assert seen["app"] > 0 and seen["loaded"] == 0 and seen["worker"] > 0


def test_a_bench_freezes_before_its_runs(unfrozen, monkeypatch, tmp_path):
    from flowscale import cli

    seen = {}

    def run_bench(*args, **kwargs) -> int:
        seen["frozen"] = gc.get_freeze_count()
        return 0

    monkeypatch.setattr("flowscale.bench.run_bench", run_bench)
    assert cli.main(["bench", "--methods", "bon", "--nfe", "10", "--seeds", "1", "--out", str(tmp_path / "b")]) == 0
    assert seen["frozen"] > 0
