"""Building a knowledge base from a corpus of datasets (``automl kb build``).

Every dataset of a directory in the PMLB layout is loaded, described by its
meta-features and evaluated on the shared candidate set with the engine's own
evaluator (cross-validation, per-trial time limits, worker processes). Each
run is written as soon as it ends, so an interrupted build resumes where it
stopped: finished (task, configuration) pairs are skipped. A dataset that
fails to load is recorded with its error and skipped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from automl._version import __version__
from automl.data.dataset import Dataset, load_dataset
from automl.data.sources import dataset_name
from automl.knowledge.describe import describe
from automl.search.evaluation import PRUNED, Evaluator, Resampling, TrialResult
from automl.search.metrics import get_metric
from automl.search.worker import WorkerPool
from metaknowledge.candidates import candidate_set, neural_candidates
from metaknowledge.features import EXTRACTOR_VERSION
from metaknowledge.store import KnowledgeBase, Run
from searchspaces import Config, get_learner
from searchspaces.torch_learners import available as torch_available
from searchspaces.torch_learners import missing_reason as torch_missing_reason

log = logging.getLogger(__name__)

CORPUS_SOURCE = "corpus"
BUILDER_ORIGIN = "builder"


@dataclass
class BuildReport:
    """What a build did."""

    datasets: int = 0
    runs_added: int = 0
    skipped_pairs: int = 0
    failed_datasets: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def corpus_files(directory: str | Path, names: Sequence[str] | None = None) -> list[Path]:
    """Data files of a PMLB-layout directory (smallest first), optionally only ``names``.

    Where the directory describes its datasets with ``NAME.yaml`` files, only
    the described ones count (an index or a license beside them is no dataset).
    """
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(f"no dataset directory at {str(directory)!r}")
    files = {dataset_name(p): p for p in directory.iterdir() if p.name.endswith((".tsv.gz", ".tsv", ".csv", ".csv.gz"))}
    described = {p.name[: -len(".yaml")] for p in directory.glob("*.yaml")}
    if described:
        files = {name: path for name, path in files.items() if name in described}
    if names is not None:
        unknown = sorted(set(names) - set(files))
        if unknown:
            raise FileNotFoundError(f"datasets not found in {str(directory)!r}: {unknown}")
        files = {n: files[n] for n in names}
    return sorted(files.values(), key=lambda p: (p.stat().st_size, p.name))


def stored_candidates(
    kb: KnowledgeBase, task_kind: str, n_configs: int, seed: int, neural: bool = False,
    learners: Sequence[str] | None = None
) -> list[Config]:
    """The build's candidate set, fixed in the base on first use so a resumed build reuses it.

    ``learners`` limits it to some learners (a build extending a base with new
    learners' histories); otherwise it covers the default space.
    """
    chosen = f":{','.join(learners)}" if learners else ""
    key = "neural-candidates" if neural else f"candidates:{task_kind}:{n_configs}:{seed}{chosen}"
    def make() -> str:
        configs = neural_candidates() if neural else candidate_set(task_kind, n_configs, seed, learners)
        return json.dumps([c.to_dict() for c in configs])

    return [Config.from_dict(c) for c in json.loads(kb.fixed_value(key, make))]


def record_meta_features(kb: KnowledgeBase, name: str, dataset: Dataset, seed: int = 0) -> None:
    """Compute and store the dataset's meta-features unless this extractor version already did."""
    if kb.has_meta_features(name, EXTRACTOR_VERSION):
        return
    started = time.perf_counter()
    values = describe(dataset, seed)
    kb.set_meta_features(name, EXTRACTOR_VERSION, values, seconds=time.perf_counter() - started)


def build_knowledge_base(
    kb_path: str | Path,
    datasets: str | Path,
    names: Sequence[str] | None = None,
    n_configs: int = 150,
    folds: int = 3,
    max_rows: int = 5000,
    jobs: int = 1,
    trial_time_limit: float = 60.0,
    seed: int = 0,
    progress: bool = True,
    neural: bool = False,
    learners: Sequence[str] | None = None,
) -> BuildReport:
    """Evaluate the candidate set on every dataset; resumable (see the module docstring).

    ``neural``: evaluate the neural grid (:func:`metaknowledge.candidates.neural_candidates`:
    architectures x learning rates, capped epochs) instead of the tabular candidates.
    ``learners``: only these learners' candidates (``n_configs`` shared among them), to
    add new learners' histories to a base built before they existed.
    """
    started = time.monotonic()
    kb = KnowledgeBase(kb_path)
    files = corpus_files(datasets, names)
    report = BuildReport()
    if neural:
        if not torch_available():
            raise RuntimeError(torch_missing_reason())
        n_configs = len(neural_candidates())
    bar = tqdm(total=len(files) * n_configs, desc="kb build", unit="run", disable=not progress, smoothing=0.05)
    for path in files:
        name = dataset_name(path)
        bar.set_postfix_str(name)
        try:
            dataset = load_dataset(path)
        except Exception as error:  # a broken corpus file must not stop the build
            kb.add_task(name, CORPUS_SOURCE, status="load_failed", error=f"{type(error).__name__}: {error}")
            report.failed_datasets[name] = str(error)
            bar.update(n_configs)
            continue
        metric = get_metric(None, dataset.task)
        kb.add_task(
            name, CORPUS_SOURCE, dataset.task, metric.name, len(dataset.X), dataset.X.shape[1],
            len(dataset.classes), fingerprint=dataset.fingerprint(), status="ok", error="",
        )
        record_meta_features(kb, name, dataset, seed)
        candidates = stored_candidates(kb, dataset.kind, n_configs, seed, neural, learners)
        done = kb.evaluated_configs(name, origin=BUILDER_ORIGIN)
        todo = [c for c in candidates if c.key() not in done]
        report.skipped_pairs += len(candidates) - len(todo)
        bar.update(len(candidates) - len(todo))
        report.datasets += 1
        if todo:
            evaluated = {c.learner: get_learner(c.learner, dataset.kind) for c in todo}
            evaluator = Evaluator(dataset, metric, evaluated, Resampling("cv", n_folds=folds), seed=seed,
                                  max_rows=max_rows)
            report.runs_added += _evaluate_all(kb, name, evaluator, todo, jobs, trial_time_limit, __version__, bar)
    bar.close()
    report.seconds = time.monotonic() - started
    return report


def _evaluate_all(kb, name, evaluator, todo, jobs, trial_time_limit, version, bar) -> int:
    added = 0
    for result in evaluate_configs(evaluator, todo, jobs, trial_time_limit):
        learner = evaluator.learner(result.config.learner)
        run = Run(
            config=result.config,
            metric=evaluator.metric.name,
            score=result.value if result.ok else None,
            status="failed" if result.status == PRUNED else result.status,
            fold_scores=[float(v) for v in result.fold_values if np.isfinite(v)],
            fit_seconds=result.fit_seconds or result.wall_seconds,
            error=result.error,
            origin=BUILDER_ORIGIN,
            engine_version=version,
            space_version=learner.space.fingerprint(),
        )
        added += kb.add_runs(name, [run])
        bar.update(1)
    return added


def evaluate_configs(evaluator: Evaluator, configs: Sequence[Config], jobs: int,
                     trial_time_limit: float) -> Iterator[TrialResult]:
    """Each of ``configs`` evaluated on ``jobs`` worker processes under a per-run time limit, as each ends."""
    queue = list(configs)
    with WorkerPool(evaluator, jobs) as pool:
        while queue or pool.busy:
            while queue and pool.idle:
                pool.submit(queue.pop(0), time.monotonic() + trial_time_limit)
            for _, result in pool.wait(1.0):
                yield result
