"""A labelled grid of frames, one row per clip or pair, one column per method, for a person to look at."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

TILE = 192
HEADER = 18
LABEL_COLOUR = (255, 255, 0)
OUTLINE_COLOUR = (0, 255, 0)


def tile(image: np.ndarray, outline: np.ndarray | None = None, size: int = TILE) -> Image.Image:
    """An RGB uint8 (H, W, 3) image fitted into a black ``size``² tile; ``outline``: (K, 2) pixel
    points of a closed polygon drawn over it (the scored face region)."""
    scale = size / max(image.shape[:2])
    width, height = round(image.shape[1] * scale), round(image.shape[0] * scale)
    canvas = Image.new("RGB", (size, size))
    offset = ((size - width) // 2, (size - height) // 2)
    canvas.paste(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR), offset)
    if outline is not None and len(outline) > 2:
        points = [(x * scale + offset[0], y * scale + offset[1]) for x, y in outline.tolist()]
        ImageDraw.Draw(canvas).polygon(points, outline=OUTLINE_COLOUR)
    return canvas


def contact_sheet(columns: list[str], rows: list[tuple[str, list[Image.Image]]]) -> Image.Image:
    """Column titles over rows of equal-size tiles, each row's label on its first tile."""
    size = rows[0][1][0].width
    sheet = Image.new("RGB", (size * len(columns), HEADER + size * len(rows)))
    draw = ImageDraw.Draw(sheet)
    for index, title in enumerate(columns):
        draw.text((index * size + 4, 3), title, fill=(255, 255, 255))
    for row, (label, tiles) in enumerate(rows):
        for index, image in enumerate(tiles):
            sheet.paste(image, (index * size, HEADER + row * size))
        draw.text((4, HEADER + row * size + 4), label, fill=LABEL_COLOUR)
    return sheet
