"""MAML++, the model-based attentive learner, runs that stop and resume, and the meta-training report."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from automl.errors import ConfigError
from automl.learn2learn.series import from_function, sinusoid

torch = pytest.importorskip("torch")

import automl  # noqa: E402
from automl.learn2learn.maml_plus_plus import FIRST_ORDER_SHARE, MSL_SHARE, MAMLPlusPlus  # noqa: E402


def untrained_mse(meta) -> float:
    """What the same learner scores before any meta-training (its first checkpoint, at step 0 or 1)."""
    return meta.history[0][2]


def test_maml_plus_plus_follows_its_schedule_and_learns_the_sinusoids():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4, track_running_stats=False),
                              torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 16, 3))
    learner = MAMLPlusPlus(net, "classification", inner_lr=0.1, inner_steps=3)
    assert set(learner.step_norms) == {"1.weight", "1.bias"}  # batch norm: a scale and shift per step, not adapted
    assert learner.step_norms["1.weight"].shape == (4, 4) and "1.weight" not in learner.adapted
    assert all(rates.shape == (3,) and rates.requires_grad for rates in learner.step_rates.values())
    learner.schedule(0.0)
    assert not learner.second_order and learner.step_weights == pytest.approx([1 / 3] * 3)
    start_lr = learner.optimizer.param_groups[0]["lr"]
    learner.schedule(FIRST_ORDER_SHARE + 0.01)
    assert learner.second_order
    learner.schedule(MSL_SHARE + 0.01)
    assert learner.step_weights[-1] > 0.95 and sum(learner.step_weights) == pytest.approx(1.0)
    learner.schedule(1.0)
    assert learner.optimizer.param_groups[0]["lr"] < 0.05 * start_lr  # cosine annealing

    meta = automl.meta_fit(sinusoid(), algorithm="maml++", shots=10, time_budget=8, verbose=0)
    assert meta.algorithm == "maml++" and meta.settings.inner_steps == 3
    assert meta.validation_score < 0.7 * untrained_mse(meta)
    assert mse_against_zero(meta) < 0.7


def mse_against_zero(meta, tasks: int = 30) -> float:
    """The mean squared error of ``meta`` adapted on 10 points of new sinusoids, as a share of predicting zero."""
    rng = np.random.default_rng(3)
    episodes = [sinusoid().episode(rng, 10, 40) for _ in range(tasks)]
    errors = [np.mean((meta.adapt(e.X_support, e.y_support).predict(e.X_query) - e.y_query) ** 2) for e in episodes]
    return float(np.mean(errors) / np.mean([np.mean(e.y_query ** 2) for e in episodes]))


def test_the_attentive_learner_reads_a_new_task_with_no_gradient_steps(tmp_path):
    meta = automl.meta_fit(sinusoid(), algorithm="attentive", shots=10, time_budget=8, verbose=0)
    assert meta.validation_score < 0.7 * untrained_mse(meta)
    episode = sinusoid().episode(np.random.default_rng(5), 10, 40)
    reader = meta.adapt(episode.X_support, episode.y_support)
    weights = {name: p.detach().clone() for name, p in meta.learner.model.named_parameters()}
    predictions = reader.predict(episode.X_query)
    assert all(torch.equal(weights[name], p) for name, p in meta.learner.model.named_parameters())  # no step taken
    assert mse_against_zero(meta) < 0.7
    other = sinusoid().episode(np.random.default_rng(6), 10, 40)  # another support set: other predictions
    assert not np.allclose(meta.adapt(other.X_support, other.y_support).predict(episode.X_query), predictions)
    meta.save(tmp_path / "attentive.pkl")
    loaded = automl.load(tmp_path / "attentive.pkl")
    assert np.allclose(loaded.adapt(episode.X_support, episode.y_support).predict(episode.X_query), predictions)


def test_the_attentive_learner_learns_many_way_tasks_from_one_example_a_class():
    """Ten classes, one example each: attention spread over ten support examples left the learner at chance (0.14
    in 6 s before its similarity votes; 0.85 with them)."""
    def sample(rng):
        y = np.repeat(np.arange(12), 8)
        centres = rng.normal(scale=3, size=(12, 4))
        return (centres[y] + rng.normal(size=(96, 4))).astype(np.float32), y

    series = from_function(sample, "classification")
    meta = automl.meta_fit(series, algorithm="attentive", ways=10, shots=1, query=3, time_budget=6, verbose=0)
    assert meta.evaluate(series, query=3, episodes=100).mean > 0.5  # chance is 0.1


def test_the_attentive_learner_classifies_and_names_the_classes_it_was_given():
    def sample(rng):
        y = np.repeat(np.arange(6), 12)
        centres = rng.normal(scale=3, size=(6, 4))  # each task its own class centres
        return (centres[y] + rng.normal(size=(72, 4))).astype(np.float32), y

    series = from_function(sample, "classification")
    meta = automl.meta_fit(series, algorithm="attentive", ways=3, shots=3, query=5, time_budget=8, verbose=0)
    assert meta.evaluate(series, query=5, episodes=100).mean > 0.6  # chance is 1/3
    episode = series.episode(np.random.default_rng(2), shots=3, query=5, ways=3)
    named = np.array(["cat", "dog", "owl"])[episode.y_support]
    reader = meta.adapt(episode.X_support, named)
    assert set(reader.predict(episode.X_query)) <= {"cat", "dog", "owl"}
    assert reader.predict_proba(episode.X_query).shape == (len(episode.X_query), 3)
    five = series.episode(np.random.default_rng(3), shots=2, query=1, ways=5)
    with pytest.raises(ConfigError, match="3-way"):
        meta.adapt(five.X_support, five.y_support)


def _interrupt_after(seconds: float) -> None:
    """Press Ctrl-C in ``seconds``, as a user would."""
    def press(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, press)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def test_a_run_stopped_halfway_and_resumed_ends_where_an_uninterrupted_run_does(tmp_path):
    whole = automl.meta_fit(sinusoid(), algorithm="maml", shots=10, time_budget=12, seed=1, verbose=0)

    checkpoint = tmp_path / "run.pkl"
    try:
        _interrupt_after(6)
        stopped = automl.meta_fit(sinusoid(), algorithm="maml", shots=10, time_budget=12, seed=1,
                                  checkpoint=checkpoint, verbose=0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    assert checkpoint.exists() and stopped.seconds < 9
    halfway = stopped.progress.steps
    resumed = automl.meta_fit(sinusoid(), time_budget=12, resume=checkpoint, verbose=0)
    assert resumed.algorithm == "maml" and resumed.shots == 10  # the run's own settings
    assert resumed.progress.steps > halfway  # counted on from where it stopped
    assert 11 <= resumed.seconds <= 14  # the rest of the 12 s, not 12 s more
    a, b = whole.evaluate(sinusoid(), episodes=400), resumed.evaluate(sinusoid(), episodes=400)
    assert abs(a.mean - b.mean) < max(2 * (a.ci95 + b.ci95), 0.25 * a.mean)
    # the file holds the finished run: resuming it with no more time changes nothing
    again = automl.meta_fit(sinusoid(), time_budget=12, resume=checkpoint, verbose=0)
    assert again.progress.steps == resumed.progress.steps


def test_resume_refuses_what_it_cannot_continue(tmp_path):
    meta = automl.meta_fit(sinusoid(), algorithm="reptile", time_budget=2, checkpoint=tmp_path / "r.pkl", verbose=0)
    assert meta.progress is not None
    with pytest.raises(ConfigError, match="reptile run"):
        automl.meta_fit(sinusoid(), algorithm="maml", time_budget=4, resume=tmp_path / "r.pkl", verbose=0)
    with pytest.raises(ConfigError, match="regression series"):
        automl.meta_fit(from_function(lambda rng: (rng.normal(size=(20, 2)), np.repeat([0, 1], 10)),
                                      "classification"), ways=2, time_budget=4, resume=tmp_path / "r.pkl", verbose=0)


def test_the_report_shows_the_training_curve_and_the_evaluations(tmp_path):
    meta = automl.meta_fit(sinusoid(), algorithm="metasgd", time_budget=4, verbose=0)
    meta.evaluate(sinusoid(), shots=5, episodes=50)
    page = meta.report(tmp_path / "meta.html").read_text()
    assert "Training curve" in page and "<img" in page  # the curve, drawn
    assert "5-shot" in page and "mse" in page  # the evaluation's row
    assert f"{meta.validation_score:.4f}" in page
    assert page.count("<tr>") >= len(meta.history) + 2
