"""Samples as pictures: the one conversion the app, the exports and the labelling files share."""

from __future__ import annotations

import numpy as np
from PIL import Image


def to_pil(x: np.ndarray, shape: tuple[int, ...]) -> Image.Image:
    """A flat sample in [0, 1] (channels last) as an 8-bit picture."""
    pixels = (np.clip(np.asarray(x, np.float64).reshape(shape), 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(pixels, "RGB" if len(shape) == 3 else "L")
