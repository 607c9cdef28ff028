"""Inputs a user brings to src.predict: image files, prepared the way the training images were made,
and CSV files of feature rows."""

import csv
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from src.data.salary import read_csv_columns
from src.utils.errors import DataError, InputError

SIZE = 28
INK = 0.1  # a pixel this far above the background (after stretching) is part of the drawing
# How MNIST's and Fashion-MNIST's images were made from the originals (LeCun et al.; Xiao et al. 2017):
# the drawing's box scaled to this many pixels on its longer side, and centred by its centre of mass
# (digits) or by the box (Fashion-MNIST's products).
BOX = {"digit": 20, "object": SIZE}


def input_files(path: Path) -> list[Path]:
    """The file itself, or the files of a folder (sorted; hidden ones left out)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"inputs={path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError(f"inputs={path}: the folder holds no files")
    return files


def load_image(path: Path, preparation: str) -> torch.Tensor:
    """An image file as the model takes it: (1, 28, 28) pixels in [0, 1], see prepare_image."""
    try:
        return prepare_image(read_image(path), preparation)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


def read_image(path: Path) -> torch.Tensor:
    """A PNG/JPEG/... file as grey pixels in [0, 1], (height, width)."""
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise InputError(f"not an image file that can be read ({_first_line(e)})") from None
    if "A" in image.getbands() or "transparency" in image.info:  # transparent parts: the paper they lie on
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return torch.from_numpy(np.asarray(image.convert("L"), dtype=np.float32) / 255)


def prepare_image(image: torch.Tensor, preparation: str) -> torch.Tensor:
    """(1, 28, 28) pixels in [0, 1] as in the training images: light drawing on black, its box
    scaled and centred as the data set's own images were."""
    border = torch.cat([image[0], image[-1], image[:, 0], image[:, -1]])
    background = float(border.median())
    if background > 0.5:  # dark on light (ink on paper): the training images are the reverse
        image, background = 1 - image, 1 - background
    peak = float(image.max())
    if peak - background < 0.1:
        raise InputError("the image is blank: nothing stands out from its background")
    # A photo's grey paper is not the data's black, nor its ink white: stretch both ends.
    image = ((image - background) / (peak - background)).clamp(0, 1)
    rows, cols = (image.amax(1) > INK).nonzero(), (image.amax(0) > INK).nonzero()
    image = image[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    scale = BOX[preparation] / max(image.shape)
    size = [max(1, min(BOX[preparation], round(n * scale))) for n in image.shape]
    image = F.interpolate(image[None, None], size=size, mode="bilinear", antialias=True, align_corners=False)[0, 0]
    image = image.clamp(0, 1)
    h, w = image.shape
    if preparation == "digit":  # the centre of mass at the image's centre, (14, 14)
        mass = image.sum()
        cy = float((image.sum(1) * torch.arange(h)).sum() / mass)
        cx = float((image.sum(0) * torch.arange(w)).sum() / mass)
        top, left = round(SIZE / 2 - cy), round(SIZE / 2 - cx)
    else:
        top, left = (SIZE - h) // 2, (SIZE - w) // 2
    canvas = torch.zeros(SIZE, SIZE)
    # Where the shifted box overlaps the canvas (a centre of mass near an edge can push part of it out).
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + h, SIZE), min(left + w, SIZE)
    canvas[y0:y1, x0:x1] = image[y0 - top: y1 - top, x0 - left: x1 - left]
    return canvas.unsqueeze(0)


def read_rows(path: Path, columns: list[str]) -> torch.Tensor:
    """The feature rows of a CSV file, (rows, features), in the order of `columns`; other columns are ignored."""
    try:
        return read_csv_columns(path, columns, "give a CSV file")
    except (UnicodeDecodeError, csv.Error):
        raise InputError(f"{path}: not a CSV file (not text); it needs the columns {', '.join(columns)}") from None
    except DataError as e:
        raise InputError(str(e)) from None


def _first_line(e: Exception) -> str:
    return (str(e).strip() or type(e).__name__).splitlines()[0]
