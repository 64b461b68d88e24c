"""Omniglot-shaped zips made up for tests: drawings are squares whose place depends on the character (needs Pillow)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image


def drawing(seed: int) -> bytes:
    """A 105 x 105 PNG, white paper with a black square whose place depends on ``seed``."""
    pixels = np.full((105, 105), 255, dtype=np.uint8)
    row, column = 10 + 7 * (seed % 10), 10 + 7 * (seed // 10 % 10)
    pixels[row:row + 20, column:column + 20] = 0
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def make_background(path, root: str, alphabets: int = 4, characters: int = 3, drawers: int = 4) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for a in range(alphabets):
            for c in range(characters):
                for d in range(drawers):
                    z.writestr(f"{root}/alphabet{a}/character{c:02d}/{a}{c}_{d:02d}.png", drawing(10 * c + a))
