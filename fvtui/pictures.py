"""Samples as pictures: the one conversion the app, the exports and the labelling files share, and the modes
the app draws them in."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import UserError

MODES = ("sixel", "kitty", "halfcell", "unicode")  # how the app draws pictures (app/images.py)


def parse_mode(value: str | None) -> str | None:
    """A mode name, None for 'detect' (empty or auto); a UserError for anything else (checked headless too:
    an --images typo there was ignored without a word)."""
    value = (value or "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in MODES:
        raise UserError(f"unknown image mode '{value}'; choose one of: {', '.join(MODES)} (or auto)")
    return value


def to_pil(x: np.ndarray, shape: tuple[int, ...]) -> Image.Image:
    """A flat sample in [0, 1] (channels last) as an 8-bit picture."""
    pixels = (np.clip(np.asarray(x, np.float64).reshape(shape), 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(pixels, "RGB" if len(shape) == 3 else "L")
