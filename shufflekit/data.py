"""One data layer for training, calibration and evaluation.

Sources (``open_images``):
- ``"demo"``: scikit-learn's handwritten digits written out as an image folder (``data_demo``), so the
  same folder code runs on it;
- a folder with one subfolder per class holding JPEG/PNG files (ImageNet's layout). A folder that holds
  ``train/`` and ``val/`` (each with class subfolders) is split that way;
- a ``.npy`` file: uint8 RGB pixels, shape (N, H, W, 3), or grayscale (N, H, W) / (N, H, W, 1); no labels;
- a ``.npz`` file: ``images`` as above, optional ``labels`` (N,) integers and ``classes`` (K,) strings.

Every image is preprocessed the way the model's metadata says (``metadata.Preprocessing``): resize the
shorter side, center-crop, scale to [0, 1], normalize with mean/std; the user never types these. Training
augmentation (``augment``) is applied on top, for training only. A file that is not a readable image is
skipped and counted in one warning; a set with no images is a ``DataError``.

Only numpy and Pillow are needed here, so evaluation and calibration run without torch.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import BackendMissingError, DataError
from .files import not_regular
from .metadata import InputSize, Preprocessing, bad_label
from .splits import stratified_split

if TYPE_CHECKING:
    from PIL import Image as PILImage

log = logging.getLogger(__name__)

DEMO = "demo"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"})
SPLITS = ("train", "val")
Split = Literal["train", "val"]
Layout = Literal["nchw", "nhwc"]

# Images whose header claims more pixels than this are skipped before decoding: decoding one would take
# gigabytes (Pillow's own decompression-bomb limit is 89 M pixels; a 100,000 x 100,000 PNG header is 10 G).
MAX_IMAGE_PIXELS = 50_000_000


# An .npz is decompressed whole into memory: members declaring more than this are refused before reading.
MAX_NPZ_BYTES = 8 * 2**30


class ImageTooLarge(ValueError):
    """An image whose header claims more pixels than ``MAX_IMAGE_PIXELS``."""


# Errors Pillow raises for a file that is not an image, is truncated, or is damaged (and ImageTooLarge).
DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, SyntaxError, EOFError)


def _pil():  # noqa: ANN202 - Pillow is imported lazily and named in the error when missing
    try:
        from PIL import Image
    except ImportError:
        raise BackendMissingError("reading images needs Pillow", hint="pip install 'shufflekit[data]'") from None
    return Image


@contextmanager
def open_image(path: Path) -> Iterator[PILImage.Image]:
    """Pillow's Image.open (header only), raising ImageTooLarge for an image too large to decode safely:
    Pillow's own decompression-bomb error and warning included, which are no OSError."""
    Image = _pil()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            found = re.search(r"\((\d+) pixels\)", str(exc))
            raise ImageTooLarge(
                f"too large to decode safely ({found.group(1) if found else 'too many'} pixels)"
            ) from None
    with image:
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ImageTooLarge(f"too large to decode safely ({width} x {height} pixels)")
        yield image


def _check_class_names(where: Path, names: Sequence[str], what: str) -> None:
    """Class names become labels.txt lines and card rows: a newline, tab or escape in one corrupts them."""
    for name in names:
        reason = bad_label(name)
        if reason is not None:
            raise DataError(
                f"{where}: {what} {name!r} {reason}",
                hint="rename it to printable text (letters, digits, spaces, punctuation)",
            )


@dataclass(frozen=True)
class Skipped:
    """A file left out of a data set, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class ImageSet:
    """Images with optional integer labels, decoded on demand so a large folder costs only a scan.

    ``items`` is a list of file paths (folder sources) or a uint8 array (N, H, W, 3) (array sources).
    ``labels[i]`` indexes ``classes``; both are None for unlabeled sources such as a bare .npy file.
    """

    source: str
    items: Sequence[Path] | np.ndarray
    labels: np.ndarray | None = None
    classes: tuple[str, ...] | None = None
    skipped: tuple[Skipped, ...] = field(default=(), repr=False)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def name(self, index: int) -> str:
        item = self.items[index]
        return str(item) if isinstance(item, Path) else f"{self.source}[{index}]"

    def load(self, index: int) -> PILImage.Image:
        """The image as RGB. Raises an OSError/ValueError from Pillow if the file cannot be decoded."""
        Image = _pil()
        item = self.items[index]
        if isinstance(item, Path):
            with open_image(item) as image:  # checked again: the file may have changed since the scan
                return image.convert("RGB")  # convert() decodes fully, so a truncated file fails here
        return Image.fromarray(np.ascontiguousarray(item))  # uint8 (H, W, 3): RGB

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageSet:
        indices = np.asarray(indices, dtype=np.int64)
        items = self.items[indices] if isinstance(self.items, np.ndarray) else [self.items[i] for i in indices]
        labels = self.labels[indices] if self.labels is not None else None
        return replace(self, items=items, labels=labels)

    def require_labels(self, purpose: str) -> np.ndarray:
        """The labels, or a DataError saying ``purpose`` needs them."""
        if self.labels is None:
            raise DataError(
                f"{self.source} has no labels, which {purpose} needs",
                hint="use a class-per-folder image folder, or an .npz with 'images' and 'labels'",
            )
        return self.labels

    def warn_skipped(self, failed: Sequence[Skipped] = ()) -> int:
        """Log ONE warning for every file left out (at scan time, plus ``failed`` while decoding)."""
        return report_skipped(self.source, list(self.skipped) + list(failed))


def report_skipped(source: str, skipped: Sequence[Skipped]) -> int:
    """One warning that counts the files left out of ``source`` and names the first few."""
    if skipped:
        shown = ", ".join(f"{Path(s.path).name} ({s.reason})" for s in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        what = (
            "1 file that is not a readable image"
            if len(skipped) == 1
            else f"{len(skipped)} files that are not readable images"
        )
        log.warning("skipped %s in %s: %s%s", what, source, shown, more)
    return len(skipped)


# ---------------------------------------------------------------------------------------------- sources


def open_images(
    source: str | os.PathLike[str] | ImageSet, *, split: Split, classes: Sequence[str] | None = None
) -> ImageSet:
    """Open ``source`` ("demo", a folder, a .npy or .npz file) without decoding any image yet.

    ``split`` picks ``train/`` or ``val/`` when the folder has them (the demo set does); a folder or
    file without splits is used whole. ``classes`` fixes the label order (e.g. the training set's, or a
    model's labels): the source's classes must be among them. Raises DataError when nothing usable is there.
    """
    if isinstance(source, ImageSet):
        images = source
    elif str(source) == DEMO:
        from .data_demo import demo_folder

        images = replace(_open_folder(demo_folder() / split), source=f"the demo set ({split})")
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(
                f"data {path} does not exist",
                hint="pass an image folder (one subfolder per class), a .npy/.npz file, or 'demo'",
            )
        kind = not_regular(path)
        if path.is_dir():
            images = _open_folder(path / split if has_splits(path) else path)
        elif kind is not None:
            raise DataError(
                f"data {path} is {kind}, not a regular file or a folder",
                hint="pass an image folder (one subfolder per class), a .npy/.npz file, or 'demo'",
            )
        elif path.suffix.lower() in (".npy", ".npz"):
            images = _open_array(path, classes)
        else:
            raise DataError(
                f"data {path} is neither a folder nor a .npy/.npz file",
                hint="pass an image folder (one subfolder per class), a .npy/.npz file, or 'demo'",
            )
    if classes is not None and images.classes is not None and tuple(images.classes) != tuple(classes):
        images = relabel(images, classes)
    if len(images) == 0:
        first = images.skipped[0] if images.skipped else None
        reason = (
            f" ({len(images.skipped)} unreadable file(s) skipped, e.g. {Path(first.path).name}: {first.reason})"
            if first
            else ""
        )
        raise DataError(
            f"{images.source} holds no images{reason}", hint="add JPEG or PNG files, one subfolder per class"
        )
    return images


def has_splits(folder: Path) -> bool:
    """True for a folder laid out as ``train/<class>/...`` and ``val/<class>/...``."""
    return all((folder / name).is_dir() for name in SPLITS)


def _open_folder(root: Path) -> ImageSet:
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist", hint="check the path")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(
            f"data folder {root} has no class subfolders",
            hint="put the images of each class in a subfolder named after the class",
        )
    _check_class_names(root, [p.name for p in class_dirs], "class folder")
    _pil()  # a missing Pillow is named before the scan
    paths: list[Path] = []
    labels: list[int] = []
    skipped: list[Skipped] = []
    for label, class_dir in enumerate(class_dirs):
        for path in sorted(class_dir.rglob("*")):
            if path.name.startswith(".") or path.is_dir():  # .DS_Store and friends are not data
                continue
            kind = not_regular(path)
            if kind is not None:  # a FIFO, socket or device would block or never end when read
                raise DataError(
                    f"data folder {root} holds {path}, which is {kind}, not a regular file",
                    hint="remove it from the folder (only image files belong there)",
                )
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(Skipped(str(path), "not an image file"))
                continue
            try:  # reads the header only: cheap, and catches files that are not images at all
                with open_image(path):
                    pass
            except DECODE_ERRORS as exc:
                skipped.append(Skipped(str(path), _reason(exc)))
                continue
            paths.append(path)
            labels.append(label)
    return ImageSet(
        source=str(root),
        items=paths,
        labels=np.asarray(labels, dtype=np.int64),
        classes=tuple(p.name for p in class_dirs),
        skipped=tuple(skipped),
    )


def _open_array(path: Path, classes: Sequence[str] | None) -> ImageSet:
    try:
        if path.suffix.lower() == ".npy":
            images, labels, names = np.load(path, mmap_mode="r", allow_pickle=False), None, None
        else:
            with np.load(path, allow_pickle=False) as archive:
                if "images" not in archive:
                    raise DataError(
                        f"{path} has no 'images' array (it has {', '.join(archive.files) or 'none'})",
                        hint="save it with np.savez(path, images=..., labels=...)",
                    )
                for key in ("images", "labels", "classes"):
                    _check_member_size(archive, key, path)
                images = archive["images"]
                labels = archive.get("labels", None)
                names = archive.get("classes", None)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:  # np.load on a damaged .npz
        raise DataError(
            f"{path} is not a readable numpy file ({_reason(exc)})", hint="save uint8 images with np.save or np.savez"
        ) from None
    images = _check_pixels(path, images)
    if labels is None:
        return ImageSet(source=str(path), items=images)
    labels = np.asarray(labels)
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{path}: 'labels' must be {len(images)} integers, got {labels.dtype} {labels.shape}",
            hint="one integer class index per image",
        )
    if names is not None:
        names = tuple(str(n) for n in np.asarray(names).reshape(-1))
        _check_class_names(path, names, "class name")
    else:
        names = tuple(classes) if classes is not None else tuple(str(i) for i in range(int(labels.max(initial=0)) + 1))
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise DataError(
            f"{path}: labels run from {labels.min()} to {labels.max()} but there are {len(names)} classes",
            hint="labels must index 'classes' (0-based)",
        )
    return ImageSet(source=str(path), items=images, labels=labels.astype(np.int64), classes=names)


def _check_member_size(archive: Any, key: str, path: Path) -> None:
    """Refuse an .npz member whose header declares more than MAX_NPZ_BYTES, before it is decompressed:
    a few kilobytes of zeros can claim terabytes, and .npz members are read whole into memory."""
    if f"{key}.npy" not in archive.zip.namelist():
        return
    with archive.zip.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(member)
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_NPZ_BYTES:
        raise DataError(
            f"{path}: '{key}' declares {size / 2**30:,.1f} GiB {tuple(shape)}, more than the "
            f"{MAX_NPZ_BYTES / 2**30:.0f} GiB an .npz may hold",
            hint="save it uncompressed with np.save (read memory-mapped) or as an image folder",
        )


def _check_pixels(path: Path, images: np.ndarray) -> np.ndarray:
    """uint8 RGB (N, H, W, 3); grayscale (N, H, W) or (N, H, W, 1) is repeated to three channels."""
    if images.dtype != np.uint8:
        raise DataError(
            f"{path} holds {images.dtype} values, not uint8 pixels",
            hint="save raw uint8 RGB images (N, H, W, 3); shufflekit applies the model's preprocessing",
        )
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        raise DataError(
            f"{path} looks channels-first {tuple(images.shape)}",
            hint="save NHWC (N, H, W, 3): np.transpose(images, (0, 2, 3, 1))",
        )
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(
            f"{path} has shape {tuple(images.shape)}, not (N, H, W, 3) or (N, H, W)",
            hint="save uint8 RGB images (N, H, W, 3) or grayscale (N, H, W)",
        )
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images


def relabel(images: ImageSet, classes: Sequence[str]) -> ImageSet:
    """Re-index labels to ``classes`` by name (e.g. a model's label order). Unknown classes are an error."""
    if images.classes is None or images.labels is None:
        return images
    order = {name: i for i, name in enumerate(classes)}
    missing = [name for name in images.classes if name not in order]
    if missing:
        raise DataError(
            f"{images.source} has classes the model does not know: {', '.join(missing[:5])}",
            hint="use data with the classes the model was trained on",
        )
    mapping = np.asarray([order[name] for name in images.classes], dtype=np.int64)
    return replace(
        images, labels=mapping[images.labels] if images.labels.size else images.labels, classes=tuple(classes)
    )


def split_train_val(images: ImageSet, *, val_fraction: float = 0.1, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Hold out ``val_fraction`` of each class (at least one image of a class with two or more), with a
    fixed seed so the split is the same on every run and every rank."""
    labels = images.require_labels("splitting into train and val")
    train, val = stratified_split(labels, val_fraction=val_fraction, seed=seed)
    return images.subset(train), images.subset(val)


def train_val_sets(
    source: str | os.PathLike[str], *, val_fraction: float = 0.1, seed: int = 0
) -> tuple[ImageSet, ImageSet]:
    """The training and validation sets of ``source``: its ``train/`` and ``val/`` folders when it has
    them (the demo set does), else a fixed, stratified hold-out of ``val_fraction``."""
    if str(source) == DEMO or (Path(source).is_dir() and has_splits(Path(source))):
        train = open_images(source, split="train")
        train.require_labels("training")
        return train, open_images(source, split="val", classes=train.classes)
    images = open_images(source, split="train")
    images.require_labels("training")
    train, val = split_train_val(images, val_fraction=val_fraction, seed=seed)
    return replace(train, skipped=images.skipped), replace(val, skipped=())


# ------------------------------------------------------------------------------------------ preprocessing


def cover_size(width: int, height: int, box: InputSize) -> tuple[int, int]:
    """(width, height) of a ``width`` x ``height`` image scaled, aspect kept, to the smallest size that
    covers ``box``: the side that binds is set to the box's, the other rounded down as torchvision's
    Resize does. For a square box this is torchvision's Resize(side): the shorter side to the side."""
    if box.height * width >= box.width * height:  # the height binds (box.height / height >= box.width / width)
        return max(int(box.height * width / height), box.width), box.height
    return box.width, max(int(box.width * height / width), box.height)


def resize_center_crop(image: PILImage.Image, pre: Preprocessing) -> PILImage.Image:
    """Resize (bilinear, aspect kept) to the smallest size covering ``pre.resize_size`` and crop the center
    ``pre.input_size``, rounding as torchvision's Resize/CenterCrop do, so published ImageNet weights see
    what they expect. For a square size this is torchvision's Resize(shorter side) + CenterCrop; a frame
    of another aspect than the input loses its sides (or top and bottom), never gets stretched."""
    Image = _pil()
    size = cover_size(*image.size, pre.resize_size)
    if size != image.size:
        image = image.resize(size, Image.BILINEAR)
    width, height = image.size
    crop = pre.input_size
    left, top = round((width - crop.width) / 2.0), round((height - crop.height) / 2.0)
    return image.crop((left, top, left + crop.width, top + crop.height))


def to_array(image: PILImage.Image, pre: Preprocessing, layout: Layout = "nchw") -> np.ndarray:
    """An RGB image of the input size -> float32 (3, H, W) or (H, W, 3), scaled and normalized."""
    pixels: np.ndarray = np.asarray(image, dtype=np.float32) * (1.0 / 255.0)
    pixels = (pixels - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1) if layout == "nchw" else pixels)


def preprocess(image: PILImage.Image, pre: Preprocessing, layout: Layout = "nchw") -> np.ndarray:
    """Inference preprocessing of one image, exactly as the model's metadata describes it."""
    return to_array(resize_center_crop(image, pre), pre, layout)


@dataclass(frozen=True)
class Augmentation:
    """Standard training augmentation: a random resized crop (area fraction ``scale``, aspect ``ratio``)
    and, where the classes allow it, a horizontal flip. Digits and text must not be flipped."""

    scale: tuple[float, float] = (0.25, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True

    def to_dict(self) -> dict[str, object]:
        return {"scale": list(self.scale), "ratio": list(self.ratio), "hflip": self.hflip}


def augment(
    image: PILImage.Image, pre: Preprocessing, aug: Augmentation, rng: np.random.Generator, layout: Layout = "nchw"
) -> np.ndarray:
    """Training preprocessing: random resized crop to the input size, optional flip, then normalize
    like inference. The crop follows torchvision's RandomResizedCrop (ten tries, then a center crop);
    ``aug.ratio`` is relative to the input's aspect (width / height), so a 640x480 input draws crops
    around 4:3 and a square one around 1:1, as torchvision does."""
    Image = _pil()
    width, height = image.size
    area = width * height
    shape = pre.input_size.width / pre.input_size.height
    ratio = (aug.ratio[0] * shape, aug.ratio[1] * shape)
    box = None
    for _ in range(10):
        target = area * rng.uniform(*aug.scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        w, h = round(np.sqrt(target * aspect)), round(np.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            box = (left, top, left + w, top + h)
            break
    if box is None:  # fall back to the largest center crop within the ratio range
        aspect = width / height
        w, h = (
            (width, round(width / ratio[0]))
            if aspect < ratio[0]
            else (round(height * ratio[1]), height)
            if aspect > ratio[1]
            else (width, height)
        )
        w, h = min(w, width), min(h, height)
        box = ((width - w) // 2, (height - h) // 2, (width - w) // 2 + w, (height - h) // 2 + h)
    size = pre.input_size
    image = image.resize((size.width, size.height), Image.BILINEAR, box=box)
    if aug.hflip and rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return to_array(image, pre, layout)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return "not an image" if "cannot identify image file" in text else text[:80]


# ------------------------------------------------------------------------------- evaluation, calibration


@dataclass(frozen=True)
class Batch:
    """Preprocessed images (float32, NCHW or NHWC), their labels (or None) and their indices in the set."""

    images: np.ndarray
    labels: np.ndarray | None
    indices: np.ndarray


def iter_batches(
    images: ImageSet, pre: Preprocessing, *, batch_size: int = 64, layout: Layout = "nchw", limit: int | None = None
) -> Iterator[Batch]:
    """Inference-preprocessed batches in order, for evaluation. Undecodable files are skipped; ONE
    warning at the end counts them with the files the scan left out."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    total = len(images) if limit is None else min(limit, len(images))
    failed: list[Skipped] = []
    arrays: list[np.ndarray] = []
    indices: list[int] = []

    def flush() -> Batch:
        idx = np.asarray(indices, dtype=np.int64)
        labels = images.labels[idx] if images.labels is not None else None
        batch = Batch(np.stack(arrays), labels, idx)
        arrays.clear()
        indices.clear()
        return batch

    for index in range(total):
        try:
            arrays.append(preprocess(images.load(index), pre, layout))
        except DECODE_ERRORS as exc:
            failed.append(Skipped(images.name(index), _reason(exc)))
            continue
        indices.append(index)
        if len(arrays) == batch_size:
            yield flush()
    if arrays:
        yield flush()
    images.warn_skipped(failed)
    if total and len(failed) == total:
        raise DataError(
            f"none of the {total} images of {images.source} could be decoded",
            hint="check that the files are JPEG or PNG images",
        )


def calibration_images(
    source: str | os.PathLike[str] | ImageSet,
    pre: Preprocessing,
    count: int = 256,
    *,
    seed: int = 0,
    layout: Layout = "nchw",
) -> np.ndarray:
    """``count`` inference-preprocessed images, float32 (N, 3, S, S) (or NHWC), drawn from any source
    with a fixed seed and spread over the whole set. Undecodable files are replaced by the next ones
    drawn. A source with fewer images gives all it has (a warning says so); the caller records
    ``len(result)``, the count actually used. An empty source is a DataError."""
    if count < 1:
        raise DataError(f"calibration needs at least one image, asked for {count}", hint="pass a positive count")
    images = open_images(source, split="train")
    order = np.random.default_rng(seed).permutation(len(images))
    arrays: list[np.ndarray] = []
    failed: list[Skipped] = []
    for index in order:
        if len(arrays) == count:
            break
        try:
            arrays.append(preprocess(images.load(int(index)), pre, layout))
        except DECODE_ERRORS as exc:
            failed.append(Skipped(images.name(int(index)), _reason(exc)))
    images.warn_skipped(failed)
    if not arrays:
        raise DataError(
            f"none of the images of {images.source} could be decoded",
            hint="check that the files are JPEG or PNG images",
        )
    if len(arrays) < count:
        log.warning(
            "asked for %d calibration images but %s has only %d readable; using %d",
            count,
            images.source,
            len(arrays),
            len(arrays),
        )
    return np.stack(arrays)
