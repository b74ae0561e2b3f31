"""The parity reference: fixed inputs and what PyTorch computes on them, stored once at export time
(``reference.npz``, by ``export.pipeline``) so validate, and a device reached over adb or ssh, can compare without PyTorch.

Inputs must exercise the model. Zeros, ones or white noise hide mistakes (a swapped layout, an
unfolded BatchNorm, a wrong channel order can give similar outputs on them), so the images here are
synthetic but image-like: smooth colour fields, gradients, hard-edged shapes, stripes and a little
sensor noise, in [0, 1], then normalised with the model's own mean/std. Only numpy is needed.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IntegrityError
from ..files import atomic_path, sha256_file
from ..metadata import InputSize, Preprocessing

REFERENCE_NAME = "reference.npz"
DEFAULT_SAMPLES = 16
DEFAULT_SEED = 0


def synthetic_images(count: int, size: InputSize | int, *, seed: int = DEFAULT_SEED) -> np.ndarray:
    """``count`` RGB images, NCHW float32 in [0, 1] (an int ``size`` is a square). Image ``i`` depends only
    on (seed, i, size), so asking for more images keeps the first ones unchanged."""
    shape = InputSize.of(size)
    images = np.empty((count, 3, shape.height, shape.width), dtype=np.float32)
    for index in range(count):
        images[index] = _one_image(np.random.default_rng([seed, index]), shape.height, shape.width)
    return images


def _one_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ys, xs = ys / max(height - 1, 1), xs / max(width - 1, 1)
    # Smooth colour field: a coarse random grid upsampled bilinearly, per channel.
    grid = rng.random((3, 5, 5), dtype=np.float32)
    image = np.stack([_bilinear(grid[c], height, width) for c in range(3)])
    # A linear gradient in a random direction, so channels and positions differ.
    angle = rng.uniform(0, 2 * np.pi)
    image += 0.35 * (np.cos(angle) * xs + np.sin(angle) * ys)[None] * rng.uniform(-1, 1, (3, 1, 1))
    # Hard-edged shapes: rectangles and discs of random colours.
    for _ in range(rng.integers(2, 6)):
        colour = rng.random(3, dtype=np.float32)[:, None, None]
        cy, cx = rng.random(2)
        extent = rng.uniform(0.08, 0.35)
        if rng.random() < 0.5:
            mask = (np.abs(ys - cy) < extent) & (np.abs(xs - cx) < extent * rng.uniform(0.5, 2))
        else:
            mask = (ys - cy) ** 2 + (xs - cx) ** 2 < extent**2
        image = np.where(mask[None], colour, image)
    # Stripes (high frequencies) on part of the images.
    if rng.random() < 0.5:
        freq = rng.uniform(4, 16)
        image += 0.15 * np.sin(2 * np.pi * freq * (xs if rng.random() < 0.5 else ys))[None]
    image += rng.normal(0, 0.02, image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _bilinear(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    def sample(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        points = np.linspace(0, grid.shape[0] - 1, count, dtype=np.float32)
        low = np.floor(points).astype(int)
        return low, np.minimum(low + 1, grid.shape[0] - 1), points - low

    low, high, frac = sample(height)
    rows = grid[low] * (1 - frac)[:, None] + grid[high] * frac[:, None]
    low, high, frac = sample(width)
    return rows[:, low] * (1 - frac)[None, :] + rows[:, high] * frac[None, :]


def normalize(images: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """[0, 1] NCHW RGB images -> the model's input (subtract mean, divide by std)."""
    mean = np.asarray(preprocessing.mean, dtype=np.float32)[None, :, None, None]
    std = np.asarray(preprocessing.std, dtype=np.float32)[None, :, None, None]
    return ((images - mean) / std).astype(np.float32)


def reference_inputs(count: int, preprocessing: Preprocessing, *, seed: int = DEFAULT_SEED) -> np.ndarray:
    """The model inputs a parity check feeds: normalised synthetic images, NCHW float32."""
    return normalize(synthetic_images(count, preprocessing.input_size, seed=seed), preprocessing)


@dataclass(frozen=True)
class Reference:
    """Fixed inputs (NCHW float32, already normalised) and PyTorch's logits on them."""

    inputs: np.ndarray
    logits: np.ndarray
    seed: int

    def __post_init__(self) -> None:
        if self.inputs.ndim != 4 or self.logits.ndim != 2 or len(self.inputs) != len(self.logits):
            raise ValueError(f"reference shapes do not fit: inputs {self.inputs.shape}, logits {self.logits.shape}")

    @property
    def samples(self) -> int:
        return len(self.inputs)

    def head(self, count: int) -> Reference:
        return Reference(self.inputs[:count], self.logits[:count], self.seed)

    def save(self, path: str | Path) -> str:
        """Write atomically; returns the file's sha256 for the manifest."""
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez(
                    handle,
                    inputs=self.inputs.astype(np.float32),
                    logits=self.logits.astype(np.float32),
                    seed=np.int64(self.seed),
                )
        return sha256_file(path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        sha256: str | None = None,
        input_shape: tuple[int, ...] | None = None,
        num_classes: int | None = None,
    ) -> Reference:
        """Read a reference.npz (never a pickle). The arrays' headers are read first: names, dtypes and
        shapes (against ``input_shape`` per sample and ``num_classes`` when given) are checked before any
        array is, so a damaged, truncated or oversized file is one IntegrityError, never a traceback."""
        path = Path(path)
        if not path.is_file():
            raise IntegrityError(
                f"parity reference {path.name} is missing from {path.parent}",
                hint="re-export the folder; validate recomputes it with --checkpoint PATH",
            )
        if sha256 is not None and sha256_file(path) != sha256:
            raise IntegrityError(
                f"parity reference {path.name} was changed after export (sha256 mismatch)",
                hint="refusing to use it; re-export the folder",
            )
        try:
            headers = _npz_headers(path)
            _check_headers(headers, input_shape, num_classes)
            with np.load(path, allow_pickle=False) as data:
                return cls(
                    np.asarray(data["inputs"], dtype=np.float32),
                    np.asarray(data["logits"], dtype=np.float32),
                    int(data["seed"]),
                )
        except _Unfit as exc:
            raise IntegrityError(
                f"parity reference {path.name} does not fit the model ({exc})", hint="re-export the folder"
            ) from None
        except (OSError, EOFError, KeyError, ValueError, TypeError, zipfile.BadZipFile, zlib.error) as exc:
            shown = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
            raise IntegrityError(
                f"parity reference {path.name} is unreadable ({shown})", hint="re-export the folder"
            ) from None


_ARRAYS = {"inputs": 4, "logits": 2, "seed": 0}  # the members a reference holds, and each one's rank
MAX_REFERENCE_BYTES = 1 << 31  # what the arrays may claim to hold, at most: no allocation of absurd sizes


class _Unfit(ValueError):
    """A reference whose arrays are not the model's (shape, dtype, members)."""


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
    """Shape and dtype of every array in an .npz, from the .npy headers alone (no array is read)."""
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _fortran, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _fortran, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise ValueError(f"{info.filename} has .npy version {version}")
            headers[name] = (tuple(shape), dtype)
    return headers


def _check_headers(
    headers: dict[str, tuple[tuple[int, ...], np.dtype[Any]]],
    input_shape: tuple[int, ...] | None,
    num_classes: int | None,
) -> None:
    missing = [n for n in _ARRAYS if n not in headers]
    if missing:
        raise _Unfit(f"no {', '.join(missing)} array")
    total = 0
    for name, rank in _ARRAYS.items():
        shape, dtype = headers[name]
        want = "i" if name == "seed" else "f"
        if dtype.kind != want or dtype.hasobject or len(shape) != rank:
            raise _Unfit(f"{name} is {dtype} of shape {shape}")
        total += int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if total > MAX_REFERENCE_BYTES:
        raise _Unfit(f"its arrays claim {total / 2**30:.1f} GiB")
    inputs, logits = headers["inputs"][0], headers["logits"][0]
    if inputs[0] != logits[0] or inputs[0] < 1:
        raise _Unfit(f"{inputs[0]} inputs, {logits[0]} outputs")
    if input_shape is not None and inputs[1:] != tuple(input_shape):
        raise _Unfit(f"inputs of {inputs[1:]}, the model takes {tuple(input_shape)}")
    if num_classes is not None and logits[1] != num_classes:
        raise _Unfit(f"{logits[1]} classes, the model has {num_classes}")
