"""The built-in ``demo`` data set: scikit-learn's handwritten digits (1,797 real 8x8 scans of ten
digits, shipped inside the scikit-learn wheel, so nothing is downloaded) rendered as 32x32 RGB PNG
files and written out as an image folder, ``train/<digit>/NNNN.png`` and ``val/<digit>/NNNN.png``
(a stratified 80/20 split with a fixed seed), so the demo runs through the same folder code as a
user's data.

The folder is written once into the user's cache (``$SHUFFLEKIT_CACHE``, else
``$XDG_CACHE_HOME/shufflekit``, else ``~/.cache/shufflekit``) under a temporary name and renamed when
complete, so concurrent writers (torchrun ranks, parallel tests) never see half a data set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import BackendMissingError, DataError
from .files import cache_root
from .splits import stratified_split

DEMO_NAME = "demo-digits-v1"  # bump when the rendering changes, so old caches are not reused
IMAGE_SIZE = 32
_DIGIT_SIZE = 24  # the 8x8 scan is drawn at 24x24 on a 32x32 page: the center crop keeps the whole digit
VAL_FRACTION = 0.2
SEED = 0


def demo_folder() -> Path:
    """The demo image folder, written on first use. Works offline."""
    root = cache_root() / DEMO_NAME
    if not root.is_dir():
        write_demo(root)
    return root


def render_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (1797, 32, 32, 3): dark ink on white paper, labels (1797,) 0..9)."""
    try:
        from PIL import Image
        from sklearn.datasets import load_digits
    except ImportError:
        raise BackendMissingError(
            "the demo set needs scikit-learn and Pillow", hint="pip install 'shufflekit[data]'"
        ) from None
    digits = load_digits()  # read from the CSV inside the scikit-learn package
    offset = (IMAGE_SIZE - _DIGIT_SIZE) // 2
    pages = []
    for scan in digits.images:  # values 0 (paper) .. 16 (ink)
        ink = Image.fromarray(np.round(255 - scan * (255 / 16)).astype(np.uint8))  # 2-D uint8: mode L
        page = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 255)
        page.paste(ink.resize((_DIGIT_SIZE, _DIGIT_SIZE), Image.Resampling.BICUBIC), (offset, offset))
        pages.append(np.asarray(page.convert("RGB")))
    return np.stack(pages), digits.target.astype(np.int64)


def write_demo(dest: str | os.PathLike[str]) -> Path:
    """Write the demo image folder to ``dest`` (a new folder); the same bytes on every run."""
    from PIL import Image

    dest = Path(dest)
    if dest.exists():
        raise DataError(f"{dest} exists already", hint="write the demo set into a new folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    pixels, labels = render_digits()
    # Split the scans' indices (not the pixels), so each file is named after the scan it shows.
    train, val = stratified_split(labels, val_fraction=VAL_FRACTION, seed=SEED)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        for split, subset in (("train", train), ("val", val)):
            for digit in range(10):
                (tmp / split / str(digit)).mkdir(parents=True)
            for index in subset:
                label = int(labels[index])
                Image.fromarray(pixels[index]).save(tmp / split / str(label) / f"{index:04d}.png")
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():  # another process did not win the race: a real failure
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first; theirs is identical
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
