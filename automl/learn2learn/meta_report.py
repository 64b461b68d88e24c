"""``MetaModel.report(path)``: one self-contained HTML page about a meta-training run.

The page holds the run's settings and facts (algorithm, episode shape,
meta-training time and steps, the best validation score), its training curve
(the validation metric at each checkpoint against seconds of meta-training,
with the best so far: the weights the model keeps) and every evaluation
measured with :meth:`MetaModel.evaluate`. Like the search report
(:mod:`automl.reporting.report`) it needs nothing outside the file to open,
and draws its figure only where matplotlib is installed.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from automl._version import __version__
from automl.learn2learn.series import CLASSIFICATION, REGRESSION
from automl.reporting.html import esc, facts, number, page, score, table
from automl.reporting.report import embedded_figure


def write_meta_report(meta: Any, path: str | Path) -> Path:
    """Write the report of ``meta`` (a :class:`automl.learn2learn.meta_model.MetaModel`) to ``path`` (see the module
    docstring); the path."""
    started = time.monotonic()
    path = Path(path).expanduser()
    metric = "MSE" if meta.task == REGRESSION else "accuracy"
    shape = f"{meta.ways}-way {meta.shots}-shot" if meta.task == CLASSIFICATION else f"{meta.shots}-shot"
    progress = meta.progress
    parts = [
        f"<h1>Meta-training report: {esc(meta.algorithm)}</h1>",
        f"<p>A {esc(meta.task)} series, {esc(shape)} episodes; checkpoints scored on validation episodes by "
        f"{esc(metric)} ({'lower' if meta.task == REGRESSION else 'higher'} is better).</p>",
        facts([
            (score(meta.validation_score), f"best validation {metric}"),
            (f"{meta.seconds:.0f} s", "meta-training, the whole run" + (" (resumed)" if _resumed(meta) else "")),
            (str(progress.steps) if progress is not None else "", "outer steps"),
            (str(len(meta.history)), "checkpoints"),
        ]),
        "<h2>Training curve</h2>", _curve(meta, metric),
        "<h2>Evaluations</h2>", _evaluations(meta),
        "<h2>Settings</h2>", _settings(meta),
        f'<p class="note">Written by automl {esc(__version__)} on {datetime.now():%Y-%m-%d %H:%M} '
        f"in {time.monotonic() - started:.1f} s.</p>",
    ]
    path.write_text(page(f"automl meta-training: {meta.algorithm}", "\n".join(parts)), encoding="utf-8")
    return path


def _resumed(meta: Any) -> bool:
    """Whether the run's checkpoints show a pause (training went on from a checkpoint file)."""
    return meta.progress is not None and meta.progress.trained_seconds < meta.seconds * 0.5


def _curve(meta: Any, metric: str) -> str:
    points = [entry for entry in meta.history if len(entry) == 3]
    if not points:
        return '<p class="note">No checkpoint was scored.</p>'
    steps, seconds, values = zip(*points)
    figure, _ = embedded_figure("validation metric over meta-training", "training_curve", seconds, values, metric,
                                meta.task == REGRESSION)
    rows = [(str(step), number(second, 3), score(value)) for step, second, value in points]
    return figure + table(["outer step", "seconds", f"validation {metric}"], rows, numeric=(0, 1, 2))


def _evaluations(meta: Any) -> str:
    if not meta.evaluations:
        return ('<p class="note">None yet: <code>meta.evaluate(series)</code> scores new tasks of a series, and the '
                "report lists each evaluation.</p>")
    rows = [(esc(name), esc(result.metric), score(result.mean), score(result.ci95), str(result.episodes))
            for name, result in meta.evaluations.items()]
    return table(["episodes", "metric", "mean", "± 95 % CI", "tasks"], rows, numeric=(2, 3, 4))


def _settings(meta: Any) -> str:
    settings = asdict(meta.settings) if meta.settings is not None else {}
    rows = [(esc(name), esc(value)) for name, value in settings.items()]
    rows += [("trial", esc(trial)) for trial in meta.trials]
    return table(["setting", "value"], rows) if rows else '<p class="note">A network of your own.</p>'
