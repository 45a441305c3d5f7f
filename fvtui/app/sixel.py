"""A Sixel encoder that paints every pixel exactly once, in its own colour.

fvtui's own, on numpy and Pillow, instead of textual-image's (0.12.0): that one fills spans with
solid blocks and patches them in later passes, defines colours while drawing, asks the terminal to
fill the background (P2=0) and scales with a bicubic filter; in xterm the result showed a grey
band over the top rows of every picture. Here:

- every colour register is defined before any pixel is drawn;
- each 6-row band paints its commonest colour as one solid stroke, then every other colour exactly
  its own pixels over it (no greedy passes: each pixel's last stroke is its own colour);
- P2=1: a 0 bit leaves the cell as it is, so nothing outside the picture is touched (a band below
  the last row included);
- up to 256 colours are kept exactly (a grey MNIST picture has at most 256); beyond that Pillow
  quantizes without dithering. Sixel gives colours in percent, so a channel value v is sent as
  round(v * 100 / 255) and comes back as round(pct * 255 / 100): at most 1.3 levels off, the
  protocol's own precision (`sixel_level`).

`scale_nearest` enlarges with the nearest pixel, so each sample pixel stays one flat block.
"""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage

MAX_COLORS = 256
_WEIGHTS = np.array([1, 2, 4, 8, 16, 32], dtype=np.uint8)


def sixel_level(value: np.ndarray | int) -> np.ndarray:
    """The 8-bit value a terminal shows for `value` after Sixel's percent encoding."""
    pct = (np.asarray(value, np.int64) * 100 + 127) // 255
    return (pct * 255 + 50) // 100


def scale_nearest(image: PILImage.Image, width: int, height: int) -> PILImage.Image:
    if image.size == (width, height):
        return image
    return image.resize((max(1, width), max(1, height)), PILImage.Resampling.NEAREST)


def _indexed(image: PILImage.Image) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) colour indices and the (N, 3) palette, exact when the picture has at most 256 colours."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    colours, index = np.unique(packed, return_inverse=True)
    if len(colours) > MAX_COLORS:
        quantized = image.convert("RGB").quantize(MAX_COLORS, method=PILImage.Quantize.MEDIANCUT,
                                                  dither=PILImage.Dither.NONE)
        return _indexed(quantized.convert("RGB"))
    palette = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1).astype(np.int64)
    return index.reshape(packed.shape).astype(np.int32), palette


def _run_length(values: np.ndarray) -> str:
    """Sixel characters for one colour's row of a band, run-length encoded; trailing empties dropped."""
    nonzero = np.flatnonzero(values)
    if not len(nonzero):
        return ""
    values = values[:nonzero[-1] + 1]
    edges = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate(([0], edges))
    lengths = np.diff(np.concatenate((starts, [len(values)])))
    out = []
    for start, length in zip(starts.tolist(), lengths.tolist()):
        char = chr(63 + int(values[start]))
        out.append(char * length if length < 4 else f"!{length}{char}")
    return "".join(out)


def encode(image: PILImage.Image) -> str:
    """The picture as one Sixel sequence (DCS ... ST), its pixels exactly as given (see above)."""
    index, palette = _indexed(image)
    height, width = index.shape
    # Colours that Sixel's percent steps cannot tell apart share one register: the same picture on
    # screen, fewer strokes per band.
    pct, merged = np.unique((palette * 100 + 127) // 255, axis=0, return_inverse=True)
    index = merged.reshape(-1)[index]
    parts = [f'\x1bP0;1;0q"1;1;{width};{height}']
    parts.extend(f"#{i};2;{r};{g};{b}" for i, (r, g, b) in enumerate(pct.tolist()))
    for top in range(0, height, 6):
        band = index[top:top + 6]
        rows = band.shape[0]
        present = np.unique(band)
        # bits[k, x]: the rows of column x whose pixel has colour present[k]
        bits = ((band[None, :, :] == present[:, None, None]) * _WEIGHTS[:rows, None]).sum(axis=1).astype(np.uint8)
        # The band's commonest colour first, as one solid stroke; every other colour then paints its
        # own pixels over it, so each pixel ends in its colour (and a black background costs 8 bytes).
        counts = (band[None, :, :] == present[:, None, None]).sum(axis=(1, 2))
        first = int(np.argmax(counts))
        solid = chr(63 + (1 << rows) - 1)
        strokes = [f"#{int(present[first])}" + (f"!{width}{solid}" if width >= 4 else solid * width)]
        for k, (colour, row) in enumerate(zip(present.tolist(), bits)):
            if k != first:
                strokes.append(f"#{colour}{_run_length(row)}")
        parts.append("$".join(strokes))
        parts.append("-")
    if parts[-1] == "-":
        parts.pop()  # no new line after the last band: the cursor stays on the picture
    parts.append("\x1b\\")
    return "".join(parts)
