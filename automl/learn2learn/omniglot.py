"""Omniglot handwritten characters as a task series, read straight from the published zips.

The background zips hold ``ROOT/alphabet/characterNN/DRAWER_NN.png`` (105 x 105,
black ink on white). :func:`omniglot` reads one or more of them (a zip, or a
folder of ``images_background*.zip``), shrinks every drawing to 28 x 28 with
ink as 1, and splits the characters into meta-train, meta-validation and
meta-test by alphabet, so that no test alphabet is seen in meta-training. A
character's drawings from several zips are one class. Episodes are N-way
K-shot: ``ways`` characters of the split, ``shots`` support and ``query``
query drawings of each; ``rotations=True`` adds each character turned by 90,
180 and 270 degrees as classes of their own (the usual augmentation).

:func:`official_runs` reads ``all_runs.zip``: the 20 one-shot runs of Lake et
al. (2015), each 20 training drawings (one per class) and 20 test drawings to
classify among them.

>>> series = omniglot("../shared/datasets/omniglot", split="train")   # doctest: +SKIP
>>> episode = series.episode(np.random.default_rng(0), shots=1, query=5, ways=5)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from automl.errors import DataError
from automl.learn2learn.series import CLASSIFICATION, Episode, TaskSeries

SIZE = 28
SPLITS = ("train", "validation", "test")


def _image(data: bytes) -> np.ndarray:
    """A PNG drawing as a SIZE x SIZE float array, ink 1 and paper 0."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        small = image.convert("L").resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    return 1.0 - np.asarray(small, dtype=np.float32) / 255.0


def _zips(path: str | Path) -> list[Path]:
    path = Path(path).expanduser()
    if path.is_dir():
        found = sorted(path.glob("images_background*.zip"))
        if not found:
            raise DataError(f"{str(path)!r} holds no images_background*.zip: point omniglot() at the Omniglot zips")
        return found
    if path.suffix != ".zip" or not path.exists():
        raise DataError(f"{str(path)!r} is not an Omniglot zip or a folder of them")
    return [path]


def read_characters(path: str | Path) -> dict[tuple[str, str], list[np.ndarray]]:
    """Every drawing of every (alphabet, character) in the zips ``path`` names."""
    characters: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    for archive in _zips(path):
        try:
            with zipfile.ZipFile(archive) as z:
                for name in sorted(z.namelist()):
                    parts = name.split("/")
                    if len(parts) == 4 and parts[3].lower().endswith(".png"):
                        characters[(parts[1], parts[2])].append(_image(z.read(name)))
        except zipfile.BadZipFile as error:
            raise DataError(f"{str(archive)!r} is not a readable zip: {error}") from error
    if not characters:
        raise DataError(f"{str(path)!r} holds no drawings in the alphabet/character/drawing.png layout")
    return dict(characters)


def split_alphabets(alphabets: list[str], fractions: tuple[float, float, float], seed: int) -> dict[str, list[str]]:
    """Alphabets shuffled with ``seed`` and cut into train / validation / test (each split gets at least one)."""
    if len(alphabets) < 3:
        raise DataError(f"{len(alphabets)} alphabets cannot be split three ways: Omniglot series need at least 3")
    order = [alphabets[i] for i in np.random.default_rng(seed).permutation(len(alphabets))]
    validation = max(1, round(fractions[1] * len(order)))
    test = max(1, round(fractions[2] * len(order)))
    train = len(order) - validation - test
    if train < 1:
        raise DataError(f"fractions {fractions} leave no alphabet for meta-training")
    return {"train": order[:train], "validation": order[train:train + validation], "test": order[train + validation:]}


class OmniglotSeries(TaskSeries):
    """N-way K-shot episodes over the characters of some alphabets (images of shape (1, 28, 28))."""

    task = CLASSIFICATION

    def __init__(self, classes: list[np.ndarray], names: list[str]):
        self.classes, self.names = classes, names  # one array (drawings, 28, 28) per class

    def episode(self, rng, shots, query, ways=None):
        ways = ways or 5
        if not 2 <= ways <= len(self.classes):
            raise DataError(f"ways={ways}, but this split has {len(self.classes)} characters: "
                            f"ask for 2 to {len(self.classes)}")
        chosen = rng.choice(len(self.classes), size=ways, replace=False)
        fewest = min(len(self.classes[i]) for i in chosen)
        if shots + query > fewest:
            raise DataError(f"a character has {fewest} drawings, fewer than shots + query = {shots + query}")
        support, query_set = [], []
        for drawings in (self.classes[i] for i in chosen):
            order = rng.permutation(len(drawings))
            support.append(drawings[order[:shots]])
            query_set.append(drawings[order[shots:shots + query]])
        labels = np.arange(ways, dtype=np.int64)
        return Episode(np.concatenate(support)[:, None], np.repeat(labels, shots),
                       np.concatenate(query_set)[:, None], np.repeat(labels, query), CLASSIFICATION)


def omniglot(path: str | Path, split: str = "train", seed: int = 0, rotations: bool = False,
             fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> OmniglotSeries:
    """The characters of one split (``"train"``, ``"validation"`` or ``"test"``) of the Omniglot zips at ``path``."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {list(SPLITS)}, got {split!r}")
    characters = read_characters(path)
    alphabets = split_alphabets(sorted({alphabet for alphabet, _ in characters}), fractions, seed)[split]
    classes, names = [], []
    for (alphabet, character), drawings in sorted(characters.items()):
        if alphabet in alphabets:
            stack = np.stack(drawings)
            for turns in range(4 if rotations else 1):
                classes.append(np.rot90(stack, k=turns, axes=(1, 2)).copy())
                names.append(f"{alphabet}/{character}" + (f"/rot{90 * turns}" if turns else ""))
    return OmniglotSeries(classes, names)


@dataclass(frozen=True)
class OneShotRun:
    """One official run: a drawing per class to learn from, and test drawings with the class each belongs to."""

    training: np.ndarray  # (20, 1, 28, 28), class i at row i
    test: np.ndarray  # (20, 1, 28, 28)
    answers: np.ndarray  # the training row each test drawing belongs to


def official_runs(path: str | Path) -> list[OneShotRun]:
    """The 20-way one-shot runs of ``all_runs.zip`` (``runNN/class_labels.txt`` maps test items to classes)."""
    path = Path(path).expanduser()
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise DataError(f"{str(path)!r} is not the Omniglot all_runs.zip: {error}") from error
    runs = []
    with z:
        for label_file in sorted(n for n in z.namelist() if n.endswith("class_labels.txt")):
            pairs = [line.split() for line in z.read(label_file).decode().splitlines() if line.strip()]
            training_names = sorted({train for _, train in pairs})
            index = {name: i for i, name in enumerate(training_names)}
            training = np.stack([_image(z.read(name)) for name in training_names])[:, None]
            test = np.stack([_image(z.read(item)) for item, _ in pairs])[:, None]
            runs.append(OneShotRun(training, test, np.array([index[train] for _, train in pairs])))
    if not runs:
        raise DataError(f"{str(path)!r} holds no runNN/class_labels.txt: is it the Omniglot all_runs.zip?")
    return runs


def official_error(model, runs: list[OneShotRun]) -> tuple[int, int]:
    """(wrong, total) over the test drawings of ``runs``, each run learned from its 20 drawings by ``model.adapt``.

    ``model`` is a meta-trained :class:`~automl.learn2learn.meta_model.MetaModel` (anything
    with ``adapt(X, y)`` returning an estimator with ``predict``); one trained
    for 20-way tasks, or a Prototypical Network, which takes any number of ways.
    """
    wrong = total = 0
    for run in runs:
        adapted = model.adapt(run.training, np.arange(len(run.training)))
        wrong += int(np.sum(adapted.predict(run.test) != run.answers))
        total += len(run.answers)
    return wrong, total
