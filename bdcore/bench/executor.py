"""Running a grid: the DAG of its runs and three ways to execute it.

A grid is a DAG: each attack run is trained once, then every defense of the grid runs on it.
Run ids are content hashes of the resolved configs, so the whole DAG is known before anything
runs, finished runs are found in the store and never redone, and a run killed half-way leaves
only a temporary directory that the store sweeps later.

Executors (all write to the same run store and return the same outcomes):

- ``serial``: one run after another in this process (``--workers 1``);
- ``local``: a pool of N worker processes, each with its share of the CPU threads or its own
  GPU; an attack's defenses are submitted as soon as it finishes;
- ``ray``: one Ray task per run, defense tasks depending on their attack task's result; joins a
  cluster (``address``) or starts a local instance. Ray is the optional extra ``bdcore[ray]``.

A failing run (a user error, a plugin exception, a worker that died) is recorded as a failure
of that run only; its defenses are skipped; everything else continues.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from bdcore.config import AttackRunConfig, DefenseRunConfig
from bdcore.errors import BdbError

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Task:
    """One run of a grid. ``parent`` is the index of the attack task a defense task needs."""

    index: int
    kind: str  # "attack" or "defense"
    cfg: AttackRunConfig | DefenseRunConfig
    label: str
    parent: int | None = None

    @property
    def run_id(self) -> str:
        return self.cfg.run_id()


@dataclass
class Outcome:
    """What became of one task."""

    index: int
    run_id: str
    status: str  # done, reused, failed, diverged, skipped
    seconds: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("done", "reused")


@dataclass
class GridPlan:
    """The DAG of a grid: attack tasks, and for each the defense tasks that follow it."""

    tasks: list[Task]
    children: dict[int, list[int]] = field(default_factory=dict)

    @property
    def attacks(self) -> list[Task]:
        return [t for t in self.tasks if t.kind == "attack"]


def plan_grid(attack_cfgs: Sequence[AttackRunConfig], defense_runs: Callable[[str, int], list[DefenseRunConfig]]
              ) -> GridPlan:
    """The DAG from resolved attack configs and ``grid.defense_runs`` (attack run id, seed -> configs).

    Defense configs are resolved (every setting filled in) so each task's run id is the id the
    run is stored under.
    """
    from bdcore.bench.harness import resolve_defense_config
    from bdcore.api.registry import registry

    reg = registry()
    tasks: list[Task] = []
    children: dict[int, list[int]] = {}
    n = len(attack_cfgs)
    for i, cfg in enumerate(attack_cfgs, 1):
        a = Task(len(tasks), "attack", cfg,
                 f"[{i}/{n}] {cfg.attack} {cfg.dataset}/{cfg.model} ratio {cfg.pratio:g} seed {cfg.seed}")
        tasks.append(a)
        children[a.index] = []
        for dcfg in defense_runs(a.run_id, cfg.seed):
            dcfg = resolve_defense_config(dcfg, reg)
            d = Task(len(tasks), "defense", dcfg, f"{a.label} + {dcfg.defense}", parent=a.index)
            tasks.append(d)
            children[a.index].append(d.index)
    return GridPlan(tasks, children)


def check_executor(executor: str, address: str | None = None) -> None:
    """Fail early, in one line, on an unknown executor or a missing Ray."""
    if executor not in EXECUTORS:
        raise BdbError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        _ray()
        if address:
            check_ray_address(address)
    elif address:
        raise BdbError("--address is for the ray executor; add --executor ray")


RAY_CONNECT_TIMEOUT_S = 3.0
"""How long check_ray_address waits for the cluster's port to accept a connection."""


def check_ray_address(address: str, timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Fail in seconds, in one line, when nothing listens at a Ray address (Ray's own client waits
    a minute or more). Only host:port or ray://host[:port] is checked, with one TCP connection to
    that address; 'auto', 'local' and forms this does not parse are left to Ray."""
    import socket
    from urllib.parse import urlsplit

    text = address.strip()
    if "://" not in text:
        if text in ("auto", "local") or ":" not in text:
            return
        text = "gcs://" + text
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise BdbError(f"--address {address!r} is not a Ray address; use host:port, ray://host:port or auto") from None
    if parts.scheme == "ray" and port is None:
        port = 10001  # the Ray client server's default port
    if parts.scheme not in ("ray", "gcs") or not host or port is None:
        return
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise BdbError(f"no Ray cluster answers at {host}:{port} ({why}); start one with 'ray start --head' "
                       "or leave out --address") from None


# -- one run, in whatever process executes it ---------------------------------------------------


def execute(task: Task, runs_root: str, device: str, data_root: str | None, force: bool,
            progress: Callable[[int, int, float], None] | None = None, worker: bool = False) -> Outcome:
    """Run (or reuse) one task; never raises: a failure is an Outcome.

    worker: this is a pool worker or a Ray task, not the driver; its store leaves the index alone.
    """
    from bdcore.runs.store import RunStore

    t0 = time.perf_counter()
    store = RunStore(runs_root, index=not worker)  # workers never write the index (see DESIGN: one writer)
    rid = task.run_id
    try:
        if not force and store.is_complete(rid):
            run = store.load(rid)
            return Outcome(task.index, rid, "diverged" if run.diverged else "reused", 0.0)
        from bdcore.bench.harness import run_attack, run_defense

        runner = run_attack if task.kind == "attack" else run_defense
        run = runner(task.cfg, store=store, force=force, device=device, data_root=data_root, progress=progress)
        status = "diverged" if run.diverged else "done"
        return Outcome(task.index, run.run_id, status, time.perf_counter() - t0)
    except BdbError as exc:
        return Outcome(task.index, rid, "failed", time.perf_counter() - t0, str(exc))
    except Exception as exc:  # a plugin's bug fails its run, not the grid
        if os.environ.get("BDB_DEBUG"):
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc).strip() else "(no message)"
        return Outcome(task.index, rid, "failed", time.perf_counter() - t0, f"{type(exc).__name__}: {first}")


def _skipped(task: Task, parent: Outcome) -> Outcome:
    why = "diverged" if parent.status == "diverged" else "failed"
    return Outcome(task.index, task.run_id, "skipped", 0.0, f"its attack run {why}")


# -- executors ------------------------------------------------------------------------------------


class Reporter:
    """Receives the executor's events (the CLI draws them; tests record them)."""

    def start(self, plan: GridPlan) -> None: ...
    def started(self, task: Task) -> None: ...
    def finished(self, task: Task, outcome: Outcome) -> None: ...
    def stop(self) -> None: ...

    def run_progress(self, task: Task) -> Callable[[int, int, float], None] | None:
        """An in-process per-epoch progress callback (serial executor only)."""
        return None


def run_grid(plan: GridPlan, runs_root: str, *, device: str = "auto", data_root: str | None = None,
             force: bool = False, workers: int = 1, executor: str = "local", address: str | None = None,
             threads: int | None = None, reporter: Reporter | None = None) -> list[Outcome]:
    """Execute a grid plan; outcomes in task order."""
    rep = reporter or Reporter()
    check_executor(executor, address)
    if workers < 1:
        raise BdbError(f"--workers must be at least 1, got {workers}")
    rep.start(plan)
    try:
        if executor == "ray":
            return _run_ray(plan, runs_root, device, data_root, force, workers, address, threads, rep)
        if workers == 1:
            return _run_serial(plan, runs_root, device, data_root, force, rep)
        return _run_pool(plan, runs_root, device, data_root, force, workers, threads, rep)
    finally:
        rep.stop()


def _run_serial(plan, runs_root, device, data_root, force, rep) -> list[Outcome]:
    outcomes: dict[int, Outcome] = {}
    for task in plan.tasks:
        parent = outcomes.get(task.parent) if task.parent is not None else None
        if parent is not None and not parent.ok:
            o = _skipped(task, parent)
        else:
            rep.started(task)
            o = execute(task, runs_root, device, data_root, force, progress=rep.run_progress(task))
        outcomes[task.index] = o
        rep.finished(task, o)
    return [outcomes[t.index] for t in plan.tasks]


def default_threads(workers: int) -> int:
    """CPU threads per worker: the machine's cores shared evenly."""
    return max(1, (os.cpu_count() or 1) // workers)


def _gpu_ids(device: str) -> list[int]:
    if device.startswith("cuda") or device == "auto":
        try:
            import torch

            if torch.cuda.is_available():
                if ":" in device:
                    return [int(device.split(":", 1)[1])]
                return list(range(torch.cuda.device_count()))
        except Exception:
            return []
    return []


def _init_worker(threads: int, gpus: Any) -> None:
    """Worker process start: its CPU threads, and one GPU of its own when there are GPUs."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus.get())
    import torch

    torch.set_num_threads(threads)


def _pool_device(device: str, gpus: list[int]) -> str:
    return "cuda:0" if gpus else device  # each worker sees only its own GPU


def _run_pool(plan, runs_root, device, data_root, force, workers, threads, rep) -> list[Outcome]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")  # no forked torch state; the same on every OS
    gpus = _gpu_ids(device)
    workers = min(workers, len(gpus)) if gpus else workers
    threads = threads or default_threads(workers)
    wdevice = _pool_device(device, gpus)

    def new_pool() -> ProcessPoolExecutor:
        queue = None
        if gpus:
            queue = ctx.Manager().Queue()
            for g in gpus[:workers]:
                queue.put(g)
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(threads, queue))

    outcomes: dict[int, Outcome] = {}
    crashes: dict[int, int] = {}
    ready = [t.index for t in plan.attacks]
    pool = new_pool()
    running: dict[Any, Task] = {}

    def settle(task: Task, o: Outcome) -> None:
        outcomes[task.index] = o
        rep.finished(task, o)
        for c in plan.children.get(task.index, []):
            if o.ok:
                ready.append(c)
            else:
                child = plan.tasks[c]
                outcomes[c] = _skipped(child, o)
                rep.finished(child, outcomes[c])

    try:
        while ready or running:
            while ready:
                task = plan.tasks[ready.pop(0)]
                if not force and _complete(runs_root, task.run_id):
                    settle(task, execute(task, runs_root, device, data_root, False))
                    continue
                rep.started(task)
                running[pool.submit(execute, task, runs_root, wdevice, data_root, force, None, True)] = task
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                task = running.pop(fut)
                try:
                    settle(task, fut.result())
                except BrokenProcessPool:
                    broken = True
                    crashes[task.index] = crashes.get(task.index, 0) + 1
                    if crashes[task.index] >= 2:
                        settle(task, Outcome(task.index, task.run_id, "failed", 0.0,
                                             "its worker process died twice (out of memory? a crash in native code?)"))
                    else:
                        ready.insert(0, task.index)
            if broken:  # every future of a broken pool fails: resubmit the in-flight ones to a new pool
                for fut, task in list(running.items()):
                    crashes[task.index] = crashes.get(task.index, 0) + 1
                    ready.insert(0, task.index)
                running.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [outcomes[t.index] for t in plan.tasks]


def _complete(runs_root: str, run_id: str) -> bool:
    from bdcore.runs.store import RunStore

    return RunStore(runs_root).is_complete(run_id)


# -- Ray ------------------------------------------------------------------------------------------


def _ray():
    try:
        import ray
    except ImportError:
        raise BdbError("the ray executor needs Ray: pip install 'bdcore[ray]'") from None
    return ray


def _ray_attack(task: Task, runs_root: str, device: str, data_root: str | None, force: bool, threads: int) -> Outcome:
    import torch

    torch.set_num_threads(threads)
    return execute(task, runs_root, device, data_root, force, worker=True)


def _ray_defense(task: Task, parent: Outcome, runs_root: str, device: str, data_root: str | None, force: bool,
                 threads: int) -> Outcome:
    if not parent.ok:
        return _skipped(task, parent)
    return _ray_attack(task, runs_root, device, data_root, force, threads)


def _run_ray(plan, runs_root, device, data_root, force, workers, address, threads, rep) -> list[Outcome]:
    ray = _ray()
    gpus = device != "cpu" and bool(_gpu_ids(device))
    threads = threads or (1 if address else default_threads(workers))
    started_here = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            kw["address"] = address
        else:
            kw["num_cpus"] = workers * threads  # a local instance sized for N concurrent runs
        try:
            ray.init(**kw)
        except Exception as exc:
            where = f"at {address}" if address else "locally"
            raise BdbError(f"could not start Ray {where}: {str(exc).splitlines()[0]}") from None
        started_here = True
    try:
        opts: dict[str, Any] = {"num_cpus": threads, "num_gpus": 1 if gpus else 0, "max_retries": 1}
        attack_fn = ray.remote(**opts)(_ray_attack)
        defense_fn = ray.remote(**opts)(_ray_defense)
        wdevice = "cuda" if gpus else ("cpu" if device == "auto" else device)
        root = os.path.abspath(runs_root)  # workers may run elsewhere: the store must be on a shared path
        refs: dict[Any, Task] = {}
        attack_refs: dict[int, Any] = {}
        for task in plan.tasks:
            if task.kind == "attack":
                ref = attack_fn.remote(task, root, wdevice, data_root, force, threads)
                attack_refs[task.index] = ref
            else:
                ref = defense_fn.remote(task, attack_refs[task.parent], root, wdevice, data_root, force, threads)
            refs[ref] = task
            rep.started(task)
        outcomes: dict[int, Outcome] = {}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                task = refs[ref]
                try:
                    o = ray.get(ref)
                except Exception as exc:  # the task's process died (Ray retried it once)
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    o = Outcome(task.index, task.run_id, "failed", 0.0, f"Ray task failed: {first}")
                outcomes[task.index] = o
                rep.finished(task, o)
        return [outcomes[t.index] for t in plan.tasks]
    finally:
        if started_here:
            ray.shutdown()
