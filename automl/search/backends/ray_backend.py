"""Searching on a Ray cluster: many processes, machines and GPUs, same results as in-process.

Two modes share the search space, the evaluator, the budget and the result:

- ``"batched"`` (the default, for the many small trials of tabular AutoML):
  Ray Tune runs one long-lived *worker trial* per slot of the cluster; each
  pulls configurations from a coordinator actor (which runs the same
  :class:`~automl.search.backends.driver.StudyDriver` as the in-process backend, on
  the driver's node) and evaluates them one after another under their time
  limits. A configuration then costs two actor calls instead of a Tune trial
  (about a second of start-up each), and Tune still places the workers,
  restarts those whose node dies, and stores every reported result.
- ``"tune"``: plain Ray Tune, one Tune trial per configuration, searched by
  Tune's Optuna search algorithm (seeded through ``points_to_evaluate``) and
  stopped early by the ASHA scheduler on the intermediate scores learners
  report. Best for few, long trials.

The training data goes to the cluster once, through the object store. Trials of
learners that can use a GPU run on GPU slots where the cluster has GPUs;
CPU-only learners never hold one. A job whose worker dies is retried once.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import deque
from typing import Any

import numpy as np

from automl.errors import ConfigError
from automl.search.backends.base import Backend, ResultCallback, SearchPlan
from automl.search.backends.driver import Job, StudyDriver
from automl.search.backends.optuna_backend import make_pruner, open_study, resolve_storage, study_marks
from automl.search.budget import Budget
from automl.search.evaluation import CRASHED, PRUNED, Evaluator, TrialResult
from automl.search.optuna_setup import make_sampler, quiet_optuna
from automl.search.refit import RefitScale
from automl.search.worker import WorkerPool
from searchspaces import config_from_flat, flat_from_config
from searchspaces.to_optuna import suggest

log = logging.getLogger(__name__)

MODES = ("batched", "tune")
LOST_GRACE_SECONDS = 10.0  # a job this late past its limit has lost its worker
TEARDOWN_SECONDS = 3.5  # Ray Tune needs this long to end its trials and write its state (measured on 2 nodes)
MAX_RETRIES = 1


def _require_ray():
    try:
        import ray
        from ray import tune
    except ImportError:
        raise ConfigError("backend='ray' needs Ray Tune: pip install 'automl-engine[ray]'") from None
    return ray, tune


def connect(address: str | None) -> Any:
    """Join the cluster at ``address`` (``"auto"``, ``"host:port"``, ``"ray://host:port"``), or start a local one."""
    ray, _ = _require_ray()
    if not ray.is_initialized():
        options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if address is None:
            options["include_dashboard"] = False
        try:
            ray.init(address=address, **options)
        except ConnectionError as error:
            raise ConfigError(
                f"could not connect to the Ray cluster at {address!r}: {error}. Start one with 'ray start --head' "
                "(and the same RAY_AUTH_MODE / RAY_AUTH_TOKEN here as on the cluster)."
            ) from None
    return ray


class _Coordinator:
    """Runs the study for the workers (a Ray actor on the driver's node)."""

    def __init__(self, plan, limits, metric, scale, storage, study_name, sampler, pruner, seed, marks, gpu_learners,
                 n_workers):
        seconds, max_trials, trial_time_limit, reserve = limits
        # this process's clock
        budget = Budget(seconds, max_trials=max_trials, trial_time_limit=trial_time_limit, reserve=reserve)
        with quiet_optuna():
            self.study = open_study(resolve_storage(storage), study_name, make_sampler(sampler, seed, n_workers),
                                    make_pruner(pruner), metric, marks)
            self.driver = StudyDriver(self.study, plan, budget, metric, scale, pruner is not None, seed)
        self.gpu_learners = set(gpu_learners)
        self.waiting: dict[bool, deque] = {True: deque(), False: deque()}
        self.assigned: dict[int, tuple[Job, float]] = {}
        self.retries: dict[str, int] = {}
        self.results: list[TrialResult] = list(self.driver.previous)
        self.stopped = False

    def next(self, on_gpu: bool, gpu_slots: bool) -> Job | None:
        """A job for a worker; GPU-capable learners go to GPU slots when the cluster has them."""
        with quiet_optuna():
            self._reclaim_lost()
            while not self.stopped:
                if self.waiting[on_gpu]:
                    job = self.waiting[on_gpu].popleft()
                else:
                    job = self.driver.next()
                    if job is None:
                        return self._drain(on_gpu)
                    wants_gpu = gpu_slots and job.config.learner in self.gpu_learners
                    if wants_gpu != on_gpu:
                        self.waiting[wants_gpu].append(job)
                        continue
                self.assigned[job.number] = (job, time.monotonic())
                return job
            return None

    def _drain(self, on_gpu: bool) -> Job | None:
        if self.waiting[on_gpu]:
            job = self.waiting[on_gpu].popleft()
            self.assigned[job.number] = (job, time.monotonic())
            return job
        return None

    def report(self, number: int, step: int, value: float) -> bool:
        with quiet_optuna():
            return self.driver.report(number, step, value)

    def finish(self, number: int, result: TrialResult) -> dict | None:
        """Record a worker's result; what it reports to Tune (its data without the predictions), or None if lost."""
        if number not in self.assigned:
            return None  # already reclaimed as lost
        self.assigned.pop(number)
        with quiet_optuna():
            done = self.driver.finish(number, result)
        self.results.append(done)
        return done.to_dict()

    def _reclaim_lost(self) -> None:
        """Jobs far past their limit lost their worker: record them, and run the configuration once more."""
        now = time.monotonic()
        for number, (job, started) in list(self.assigned.items()):
            if now - started > job.seconds + LOST_GRACE_SECONDS:
                self.assigned.pop(number)
                key = job.config.key()
                lost = TrialResult(job.config, CRASHED, error="the worker running this trial was lost (node died?)")
                self.results.append(self.driver.finish(number, lost))
                if self.retries.get(key, 0) < MAX_RETRIES:
                    self.retries[key] = self.retries.get(key, 0) + 1
                    self.driver.done.pop(key, None)
                    self.study.enqueue_trial(flat_from_config(job.config), user_attrs={"origin": f"retry:{job.origin}"})

    def all_results(self) -> list[TrialResult]:
        return self.results

    def stop(self) -> None:
        self.stopped = True
        with quiet_optuna():
            self.driver.fail_running()


def _batched_worker(config: dict, evaluator: Evaluator | None = None) -> None:
    """A long-lived Tune trial: evaluate the coordinator's jobs until it has no more."""
    import ray
    from ray import tune

    coordinator = ray.get_actor(config["coordinator"], namespace=config["namespace"])
    node = ray.util.get_node_ip_address()
    gpus = ",".join(str(g) for g in ray.get_gpu_ids())
    evaluator.device = "cuda" if gpus and _cuda_available() else "cpu"  # type: ignore[union-attr]
    evaluated = 0  # not "done": Tune reads that key as "this trial is finished"
    with WorkerPool(evaluator, 1, config.get("memory_limit_mb")) as pool:  # type: ignore[arg-type]
        while True:
            job = ray.get(coordinator.next.remote(bool(gpus), config["gpu_slots"]))
            if job is None:
                break

            def report(step, value, number=job.number):
                return ray.get(coordinator.report.remote(number, step, value))

            pool.submit(job.config, time.monotonic() + job.seconds, report if config["pruning"] else None,
                        ticket=job.number)
            finished: list = []
            while not finished:
                finished = pool.wait(60.0)
            result = finished[0][1]
            result.node, result.gpus = node, gpus
            recorded = ray.get(coordinator.finish.remote(job.number, result))
            evaluated += 1
            tune.report({"evaluated": evaluated, "trial": recorded})


def _single_trial(config: dict, evaluator: Evaluator | None = None, limit: float | None = None,
                  memory_limit_mb: float | None = None) -> None:
    """Plain Tune: evaluate one configuration, reporting each intermediate score to the scheduler."""
    import ray
    from ray import tune

    chosen = config_from_flat(config)
    node = ray.util.get_node_ip_address()
    gpus = ",".join(str(g) for g in ray.get_gpu_ids())
    evaluator.device = "cuda" if gpus and _cuda_available() else "cpu"  # type: ignore[union-attr]
    last = {"step": 0}

    def report(step, value):
        last["step"] = step
        tune.report({"score": value, "step": step, "trial": None, "node": node, "gpus": gpus})
        return False

    with WorkerPool(evaluator, 1, memory_limit_mb) as pool:  # type: ignore[arg-type]
        pool.submit(chosen, time.monotonic() + (limit or 1e9), report)
        finished: list = []
        while not finished:
            finished = pool.wait(60.0)
    result = finished[0][1]
    result.node, result.gpus = node, gpus
    score = result.value if result.ok else float("nan")
    tune.report({"score": score, "step": last["step"] + 1, "trial": result.to_dict()})


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


class RayBackend(Backend):
    """Ray Tune over a Ray cluster (see the module docstring)."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        resources_per_trial: dict[str, float] | None = None,
        max_concurrent: int | None = None,
        mode: str = "batched",
        storage: Any = None,
        study_name: str | None = None,
        sampler: Any = "tpe",
        pruner: Any = "auto",
        seed: int = 0,
        memory_limit_mb: float | None = None,
        storage_path: str | None = None,
    ):
        """``storage`` keeps the study (opened on the driver's node); ``storage_path`` is Ray Tune's experiment
        storage."""
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
        resources = {"cpu": 1, "gpu": 0, **(resources_per_trial or {})}
        unknown = set(resources) - {"cpu", "gpu"}
        if unknown or resources["cpu"] <= 0 or resources["gpu"] < 0:
            raise ConfigError(f"resources_per_trial takes 'cpu' (> 0) and 'gpu' (>= 0), got {resources_per_trial}")
        if max_concurrent is not None and max_concurrent < 1:
            raise ConfigError(f"max_concurrent must be at least 1, got {max_concurrent}")
        if storage is not None and not isinstance(storage, (str, os.PathLike)):
            raise ConfigError("backend='ray' takes storage as a path or database URL (it is opened on the cluster)")
        self.storage = None if storage is None else str(storage)
        self.address, self.resources, self.max_concurrent, self.mode = address, resources, max_concurrent, mode
        self.study_name, self.sampler, self.pruner, self.seed = study_name, sampler, pruner, seed
        self.memory_limit_mb, self.storage_path = memory_limit_mb, storage_path
        self.interrupted = False

    def _slots(self, ray: Any, plan: SearchPlan, evaluator: Evaluator) -> list[bool]:
        """One entry per concurrent worker: True for a GPU slot."""
        cluster = ray.cluster_resources()
        cpus, gpus = int(cluster.get("CPU", 1)), int(cluster.get("GPU", 0))
        gpu_learners = [n for n, learner in evaluator.learners.items() if learner.gpu]
        per_gpu_trial = max(1.0, float(self.resources["gpu"]) or 1.0)
        gpu_slots = int(gpus // per_gpu_trial) if gpu_learners and gpus else 0
        cpu_slots = max(1, int((cpus - gpu_slots * self.resources["cpu"]) // self.resources["cpu"]))
        if self.max_concurrent is not None:
            gpu_slots = min(gpu_slots, self.max_concurrent)
            cpu_slots = max(0, min(cpu_slots, self.max_concurrent - gpu_slots)) or (0 if gpu_slots else 1)
        return [False] * cpu_slots + [True] * gpu_slots

    def run(self, plan: SearchPlan, evaluator: Evaluator, budget: Budget,
            on_result: ResultCallback) -> list[TrialResult]:
        plan.started()  # Ray's workers are processes of their own: this process primes for its final fit only
        ray = connect(self.address)
        runner = self._run_batched if self.mode == "batched" else self._run_tune
        try:
            return runner(ray, plan, evaluator, budget, on_result)
        except KeyboardInterrupt:
            self.interrupted = True
            log.warning("search interrupted; finished trials are kept")
            return getattr(self, "_partial", [])

    # -- batched -------------------------------------------------------------
    def _run_batched(self, ray, plan, evaluator, budget, on_result) -> list[TrialResult]:
        from ray import tune
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        slots = self._slots(ray, plan, evaluator)
        namespace, name = "automl", f"automl-coordinator-{uuid.uuid4().hex[:8]}"
        seconds = None if budget.time_budget is None else max(0.5, budget.remaining() - TEARDOWN_SECONDS)
        limits = (seconds, budget.max_trials, budget.trial_time_limit, budget.reserve)
        marks = study_marks(plan, evaluator, self.storage)
        Coordinator = ray.remote(num_cpus=0, max_concurrency=1)(_Coordinator)
        coordinator = Coordinator.options(
            name=name, namespace=namespace,
            scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False),
        ).remote(
            plan, limits, evaluator.metric, RefitScale.of(evaluator), self.storage, self.study_name,
            self.sampler, None if make_pruner(self.pruner) is None else self.pruner, self.seed, marks,
            [n for n, learner in evaluator.learners.items() if learner.gpu], len(slots),
        )
        for result in ray.get(coordinator.all_results.remote()):
            on_result(result)
        cpu, gpu = self.resources["cpu"], max(1.0, self.resources["gpu"])
        trainable = tune.with_resources(
            tune.with_parameters(_batched_worker, evaluator=evaluator),
            lambda config: tune.PlacementGroupFactory([{"CPU": cpu, "GPU": gpu if config["on_gpu"] else 0}]),
        )
        param_space = {
            "on_gpu": tune.grid_search(slots), "coordinator": name, "namespace": namespace,
            "gpu_slots": any(slots), "pruning": make_pruner(self.pruner) is not None,
            "memory_limit_mb": self.memory_limit_mb,
        }
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=len(slots), reuse_actors=False),
            run_config=self._run_config(on_result, "automl-batched"),
        )
        try:
            with quiet_optuna():
                tuner.fit()
        finally:
            results = ray.get(coordinator.all_results.remote())
            ray.get(coordinator.stop.remote())
            ray.kill(coordinator)
        return results

    # -- plain Tune ----------------------------------------------------------
    def _run_tune(self, ray, plan, evaluator, budget, on_result) -> list[TrialResult]:
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch

        slots = self._slots(ray, plan, evaluator)
        rng = np.random.default_rng(self.seed)
        initial = [flat_from_config(c) for c, _ in plan.initial]
        origins = {c.key(): origin for c, origin in plan.initial}
        for _ in range(len(initial) if plan.priors else 0):
            drawn = plan.draw_from_priors(rng)
            if drawn is not None:
                initial.append(flat_from_config(drawn))
                origins.setdefault(drawn.key(), "prior")
        direction = "max" if evaluator.metric.greater_is_better else "min"
        search = OptunaSearch(
            space=_DefineByRun(plan.space), metric="score", mode=direction,
            points_to_evaluate=initial or None, sampler=make_sampler(self.sampler, self.seed, len(slots)),
            seed=self.seed,
        )
        scheduler = None
        if make_pruner(self.pruner) is not None:
            # steps are epochs for neural learners, then folds (see automl.search.evaluation):
            # max_t must not cut them short
            scheduler = ASHAScheduler(time_attr="step", metric="score", mode=direction, max_t=1024, grace_period=1,
                                      reduction_factor=3)
        cpu, gpu, has_gpus = self.resources["cpu"], max(1.0, self.resources["gpu"]), any(slots)
        trainable = tune.with_resources(
            tune.with_parameters(_single_trial, evaluator=evaluator, limit=budget.trial_time_limit,
                                 memory_limit_mb=self.memory_limit_mb),
            lambda config: tune.PlacementGroupFactory(
                [{"CPU": cpu, "GPU": gpu if has_gpus and evaluator.learners[config["learner"]].gpu else 0}]
            ),
        )
        collected: list[TrialResult] = []

        def record(result: TrialResult) -> None:
            result.origin = origins.get(result.config.key(), "search")
            result.number = len(collected)
            result.finished_at = budget.elapsed()
            collected.append(result)
            on_result(result)

        self._partial = collected
        seconds = (None if budget.time_budget is None
                   else max(1.0, budget.search_deadline() - time.monotonic() - TEARDOWN_SECONDS))
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=search, scheduler=scheduler, num_samples=budget.max_trials or -1,
                max_concurrent_trials=len(slots), time_budget_s=seconds, reuse_actors=False,
            ),
            run_config=self._run_config(record, "automl-tune", stoppable=True),
        )
        with quiet_optuna():
            tuner.fit()
        return collected

    def _run_config(self, on_result: ResultCallback, name: str, stoppable: bool = False):
        from ray import tune

        return tune.RunConfig(
            name=f"{name}-{uuid.uuid4().hex[:6]}",
            storage_path=self.storage_path or os.path.join(os.path.expanduser("~"), "ray_results"),
            failure_config=tune.FailureConfig(max_failures=3),
            verbose=0,
            callbacks=[_Forward(on_result, stoppable)],
        )


class _DefineByRun:
    """Our space as Optuna's define-by-run function (a class, so Tune can checkpoint the searcher)."""

    def __init__(self, space):
        self.space = space

    def __call__(self, trial) -> None:
        suggest(trial, self.space)  # the one translation of our space to Optuna calls


def _Forward(on_result: ResultCallback, stoppable: bool = False):
    """A Tune callback handing each finished configuration's result to ``on_result`` on the driver.

    With ``stoppable`` (plain Tune under ASHA), a trial the scheduler stops
    never sends its final result: it is handed on as pruned, with the last
    score it reported, so the leaderboard shows every configuration tried.
    """
    from ray import tune

    class Forward(tune.Callback):
        def __init__(self) -> None:
            self.finished: set[str] = set()

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if result.get("trial"):
                self.finished.add(trial.trial_id)
                on_result(TrialResult.from_dict(result["trial"]))

        def on_trial_complete(self, iteration, trials, trial, **info):
            if not stoppable or trial.trial_id in self.finished:
                return
            last = trial.last_result or {}
            score = last.get("score")
            value = float(score) if score is not None and np.isfinite(score) else None
            on_result(TrialResult(config_from_flat(trial.config), PRUNED, value, node=last.get("node", ""),
                                  gpus=last.get("gpus", "")))

    return Forward()

