"""The Omniglot reader: alphabets split apart, N-way K-shot episodes, the official one-shot runs."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from automl.errors import DataError

Image = pytest.importorskip("PIL.Image")

from automl.learn2learn.omniglot import official_runs, omniglot  # noqa: E402
from tests.omniglot_zips import drawing, make_background  # noqa: E402


def test_episodes_come_from_one_split_of_alphabets_with_ink_as_one(tmp_path):
    make_background(tmp_path / "images_background_small1.zip", "images_background_small1")
    train = omniglot(tmp_path, "train", fractions=(0.5, 0.25, 0.25))
    test = omniglot(tmp_path, "test", fractions=(0.5, 0.25, 0.25))
    alphabets = lambda series: {name.split("/")[0] for name in series.names}  # noqa: E731
    assert len(alphabets(train)) == 2 and len(alphabets(test)) == 1 and not alphabets(train) & alphabets(test)
    episode = train.episode(np.random.default_rng(0), shots=1, query=3, ways=4)
    assert episode.X_support.shape == (4, 1, 28, 28) and episode.X_query.shape == (12, 1, 28, 28)
    assert episode.y_support.tolist() == [0, 1, 2, 3] and np.bincount(episode.y_query).tolist() == [3] * 4
    assert 0.0 <= episode.X_support.min() and episode.X_support.max() == pytest.approx(1.0, abs=0.05)
    assert episode.X_support.mean() < 0.2  # mostly paper


def test_drawings_of_one_character_in_two_zips_are_one_class_and_rotations_add_classes(tmp_path):
    make_background(tmp_path / "images_background_small1.zip", "images_background_small1", drawers=2)
    make_background(tmp_path / "images_background_small2.zip", "images_background_small2", drawers=3)
    plain = omniglot(tmp_path, "train", fractions=(0.5, 0.25, 0.25))
    assert {len(drawings) for drawings in plain.classes} == {5}
    turned = omniglot(tmp_path, "train", fractions=(0.5, 0.25, 0.25), rotations=True)
    assert len(turned.classes) == 4 * len(plain.classes)
    assert np.allclose(turned.classes[1], np.rot90(plain.classes[0], 1, axes=(1, 2)))


def test_too_many_shots_or_ways_and_foreign_paths_get_clear_errors(tmp_path):
    make_background(tmp_path / "images_background_small1.zip", "images_background_small1")
    series = omniglot(tmp_path, "train", fractions=(0.5, 0.25, 0.25))
    with pytest.raises(DataError, match="fewer than shots"):
        series.episode(np.random.default_rng(0), shots=3, query=3, ways=2)
    with pytest.raises(DataError, match="ways=50"):
        series.episode(np.random.default_rng(0), shots=1, query=1, ways=50)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images_background"):
        omniglot(tmp_path / "empty")
    (tmp_path / "notes.zip").write_text("not a zip")
    with pytest.raises(DataError, match="not a readable zip"):
        omniglot(tmp_path / "notes.zip")


def test_official_runs_map_each_test_drawing_to_its_training_class(tmp_path):
    path = tmp_path / "all_runs.zip"
    with zipfile.ZipFile(path, "w") as z:
        pairs = [("run01/test/item01.png", "run01/training/class02.png"),
                 ("run01/test/item02.png", "run01/training/class01.png")]
        z.writestr("run01/class_labels.txt", "\n".join(f"{a} {b}" for a, b in pairs))
        for i, (item, cls) in enumerate(pairs):
            z.writestr(item, drawing(i))
            z.writestr(cls, drawing(i))
    (run,) = official_runs(path)
    assert run.training.shape == (2, 1, 28, 28) and run.answers.tolist() == [1, 0]
    assert np.allclose(run.test[0], run.training[1])
    with pytest.raises(DataError, match="all_runs"):
        official_runs(tmp_path / "missing.zip")


OMNIGLOT = __import__("pathlib").Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "omniglot"


@pytest.mark.slow
@pytest.mark.skipif(not OMNIGLOT.exists(), reason="needs ../shared/datasets/omniglot")
def test_first_order_maml_keeps_pace_with_maml_on_omniglot():
    """Issue 29: with one inner step, first-order MAML stayed at chance on shuffled-label episodes. With its
    classification defaults it reaches at least 90 % of MAML's accuracy after the same 200 meta-steps."""
    import torch

    from automl.learn2learn.meta_model import MetaSettings, make_learner

    train, test = omniglot(OMNIGLOT, "train"), omniglot(OMNIGLOT, "test")
    shape = train.episode(np.random.default_rng(0), 1, 5, 5).X_support.shape[1:]
    held_out = [test.episode(np.random.default_rng(1), 1, 5, 5) for _ in range(100)]
    accuracy = {}
    for algorithm in ("maml", "fomaml"):
        torch.manual_seed(0)
        defaults = MetaSettings.defaults(algorithm, "cnn", None, "classification")
        settings = MetaSettings(algorithm, defaults.inner_lr, defaults.outer_lr, defaults.inner_steps, 32, 4)
        learner = make_learner(settings, "cnn", train, shape, 5, torch.device("cpu"))
        rng = np.random.default_rng(0)
        for _ in range(200):
            learner.meta_step([train.episode(rng, 1, 5, 5) for _ in range(8)])
        accuracy[algorithm] = learner.episode_metrics(held_out).mean()
    assert accuracy["maml"] > 0.5  # it learned: chance is 0.2
    assert accuracy["fomaml"] >= 0.9 * accuracy["maml"], accuracy
