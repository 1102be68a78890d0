"""/run requests (and the Compare tab's runs) of the CPU worlds in worker processes, and the updates one
request streams.

Two requests in one app process take turns for the interpreter lock wherever a method does Python work per
model call (RBF: every candidate), so two at once took 1.63 times as long as one. The 2-D and Shapes worlds
therefore run /run requests in a pool of CONCURRENCY spawned worker processes (one torch thread each; each
keeps its own loaded worlds), which stream their updates back through a queue. Text-to-image requests stay
in the app process: one copy of the weights on the GPU. FLOWSCALE_API_WORKERS=0 runs every request in the
app process. Results do not depend on where a run happens: every run owns its generator. `run_all` sends a
batch of runs (Compare's seven) to the same pool, as many at once as it has workers.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from multiprocessing.managers import SyncManager
from typing import Any

from flowscale import gc_policy
from flowscale.catalog import needs_gpu
from flowscale.config import ConfigError, RunConfig
from flowscale.run import Prepared, RunFailed, estimate_run, prepare
from flowscale.ui.session import Phase, run_phase

API_EVERY_S = 0.1  # progress period
POOL_WORTH_S = 30.0  # estimated seconds of a batch of runs for which starting the pool (about 15 s, once) pays
Update = tuple[dict, "dict | None"]  # (status, record when done)

_LOCK = threading.Lock()
_POOL: dict[str, Any] = {}


def run_updates(cfg: RunConfig, prepared: Prepared | None = None) -> Iterator[Update]:
    """A run's progress: "started", "running" every 0.1 s and every tenth of the budget, then "done" with the
    saved record."""
    prepared = prepare(cfg) if prepared is None else prepared
    phase = Phase("method", cfg)
    trace = phase.trace
    yield {"status": "started", "nfe_spent": 0, "nfe_budget": prepared[0].nfe}, None
    last, mark = time.perf_counter(), 0
    for event in run_phase(phase, None, prepared, previews=False):  # /run and Compare keep records, show no previews
        if event.kind != "candidates":
            continue
        budget = trace.config["nfe"]
        now = time.perf_counter()
        if now - last >= API_EVERY_S or event.nfe_total >= mark:
            last, mark = now, event.nfe_total + max(1, budget // 10)
            yield {"status": "running", "step": event.step, "nfe_spent": event.nfe_total, "nfe_budget": budget,
                   "best_reward": trace.best_reward_by_nfe[-1][1]}, None
    record = trace.record
    yield {"status": "done", "nfe_spent": record.nfe_used, "nfe_budget": record.nfe_budget,
           "final_reward": record.final_reward}, record.saved()


def worker_count() -> int:
    """Worker processes for /run (FLOWSCALE_API_WORKERS; default: the app's concurrency, 2)."""
    from flowscale.ui import CONCURRENCY

    raw = os.environ.get("FLOWSCALE_API_WORKERS", "").strip()
    return int(raw) if raw.isdigit() else CONCURRENCY


def in_worker(cfg: RunConfig) -> bool:
    return worker_count() > 0 and not needs_gpu(cfg.model)


def stream(cfg: RunConfig, prepared: Prepared) -> Iterator[Update]:
    """The updates of a /run request: from a worker process for the CPU worlds, else from this process."""
    if not in_worker(cfg):
        yield from run_updates(cfg, prepared)
        return
    pool, manager = _pool()
    updates, stop = manager.Queue(), manager.Event()
    future = pool.submit(_job, cfg.to_dict(), updates, stop)
    try:
        while True:
            try:
                kind, *payload = updates.get(timeout=1.0)
            except queue.Empty:
                if future.done():  # the worker ended without a word (killed, out of memory): say so, start afresh
                    _forget_pool()
                    raise RuntimeError(f"the worker process running this request ended: {future.exception()}") \
                        from None
                continue
            if kind == "update":
                yield payload[0], payload[1]
            elif kind == "end":
                return
            else:
                raise _error(*payload)
    finally:
        with contextlib.suppress(OSError, EOFError):  # the manager is gone with a broken pool
            stop.set()  # a client that went away stops its run within one step
        future.cancel()


def pool_started() -> bool:
    return bool(_POOL)


def run_all(jobs: list[tuple[RunConfig, Prepared]]) -> Iterator[tuple[int, Any]]:
    """(index, saved record or the exception that ended it) of each job as it finishes (Compare's runs).

    CPU worlds run in the worker pool, as many at once as it has workers and the longest estimated first (the
    batch then ends soonest), when the pool is up or the jobs' estimated seconds make starting it worth it;
    anything else runs here, one job after another. Records do not depend on where a job runs. Closing the
    iterator stops what is running within one step and drops what has not started.
    """
    seconds = [estimate_run(prepared).seconds for _, prepared in jobs]
    parallel = bool(jobs) and in_worker(jobs[0][0]) and (pool_started() or sum(seconds) >= POOL_WORTH_S)
    if not parallel:
        for i, (cfg, prepared) in enumerate(jobs):
            try:
                yield i, _last_record(run_updates(cfg, prepared), None)
            except Exception as exc:  # noqa: BLE001 - the caller shows it in the job's row
                yield i, exc
        return
    stop = threading.Event()
    executor = ThreadPoolExecutor(worker_count(), thread_name_prefix="flowscale-compare")
    order = sorted(range(len(jobs)), key=lambda i: -seconds[i])
    futures = {executor.submit(_last_record, stream(*jobs[i]), stop): i for i in order}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=futures.__getitem__):
                exc = future.exception()
                yield futures[future], future.result() if exc is None else exc
    finally:
        stop.set()
        executor.shutdown(wait=False, cancel_futures=True)


def _last_record(updates: Iterator[Update], stop: threading.Event | None) -> dict[str, Any]:
    """Drain a run's updates to its saved record; a set `stop` ends it (closing the updates stops the run)."""
    try:
        for _, record in updates:
            if record is not None:
                return record
            if stop is not None and stop.is_set():
                raise RuntimeError("stopped")
        raise RuntimeError("the run ended without a record")
    finally:
        close = getattr(updates, "close", None)
        if close is not None:
            close()


def _pool() -> tuple[ProcessPoolExecutor, Any]:
    """The pool, started on the first request with every worker up and its Shapes world loaded (about 10 s on
    two cores, once per server), so that two requests never wait for a worker to start."""
    with _LOCK:
        if not _POOL:
            context = multiprocessing.get_context("spawn")  # a fork would copy torch's thread pools
            manager = SyncManager(ctx=context)
            manager.start(_watch_parent, (os.getpid(),))
            n = worker_count()
            pool = ProcessPoolExecutor(n, mp_context=context, initializer=_start_worker, initargs=(n, os.getpid()))
            barrier = manager.Barrier(n)  # each warm-up task holds its worker until all n have one
            for future in [pool.submit(_warm, barrier) for _ in range(n)]:
                future.result()
            _POOL.update(pool=pool, manager=manager)
            atexit.register(shutdown)
        return _POOL["pool"], _POOL["manager"]


def _forget_pool() -> None:
    """Drop a broken pool (a worker died); the next request starts a new one."""
    with _LOCK:
        pool, manager = _POOL.pop("pool", None), _POOL.pop("manager", None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    if manager is not None:
        manager.shutdown()


def shutdown() -> None:
    with _LOCK:
        if _POOL:
            _POOL.pop("pool").shutdown(cancel_futures=True)
            _POOL.pop("manager").shutdown()


def _watch_parent(parent: int) -> None:
    """End this helper process when the app process is gone (however it ended), so none is left behind."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="flowscale-parent-watch").start()


def _start_worker(workers: int, parent: int) -> None:
    from flowscale import threads

    _watch_parent(parent)
    threads.apply(workers)  # the workers share the cores: two on two cores get one thread each (FLOWSCALE_THREADS wins)


def _warm(barrier: Any) -> None:
    from flowscale.ui.models import model_status

    model_status("shapes")  # loads the Shapes world once (its weights are cached per process)
    gc_policy.freeze_what_is_loaded()  # this worker has loaded what it keeps: no collection walks it again
    barrier.wait(timeout=120)


def _job(cfg_dict: dict[str, Any], updates: Any, stop: Any) -> None:
    """In a worker: run one request, putting ("update", status, record) / ("end",) / ("error", ...) in order."""
    try:
        for status, record in run_updates(RunConfig.from_dict(cfg_dict)):
            if stop.is_set():
                break
            updates.put(("update", status, record))
        updates.put(("end",))
    except ConfigError as exc:
        updates.put(("error", "config", exc.field, str(exc).split(": ", 1)[-1]))
    except Exception as exc:  # noqa: BLE001 - the parent shows it as the request's failure
        kind = "failed" if isinstance(exc, RunFailed) else type(exc).__name__
        updates.put(("error", kind, "", str(exc)))


def _error(kind: str, field: str, message: str) -> Exception:
    if kind == "config":
        return ConfigError(field, message)
    return RuntimeError(message) if kind == "failed" else RuntimeError(f"{kind}: {message}")
