"""Samples as pictures for the terminal.

textual-image asks the terminal what it can draw (Sixel, Kitty, else coloured half cells) when it is
imported, which no longer works once Textual owns the terminal: so this module is imported before
the app runs. FVTUI_IMAGES=halfcell|unicode forces a fallback where detection misfires (e.g. over
a slow SSH link).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image as PILImage
from textual_image.widget import HalfcellImage, Image, UnicodeImage

_FORCED = {"halfcell": HalfcellImage, "unicode": UnicodeImage}
TerminalImage = _FORCED.get(os.environ.get("FVTUI_IMAGES", "").lower(), Image)


def to_pil(x: np.ndarray, shape: tuple[int, ...]) -> PILImage.Image:
    """A flat sample in [0, 1] (channels last) as an 8-bit picture."""
    pixels = (np.clip(np.asarray(x, np.float64).reshape(shape), 0, 1) * 255).round().astype(np.uint8)
    return PILImage.fromarray(pixels, "RGB" if len(shape) == 3 else "L")


def amplified_difference(original: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, float]:
    """|other - original| scaled so its largest pixel is white, and the factor used (1 when equal)."""
    diff = np.abs(np.asarray(other, np.float64) - np.asarray(original, np.float64))
    peak = float(diff.max()) if diff.size else 0.0
    return (diff / peak, 1.0 / peak) if peak > 0 else (diff, 1.0)


def cell_size(shape: tuple[int, ...], width: int) -> tuple[int, int]:
    """Cells for an image `width` cells wide: two pixel rows per cell, as half-cell rendering draws."""
    return width, max(1, round(width * shape[0] / shape[1] / 2))
