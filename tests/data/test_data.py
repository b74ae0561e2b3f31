import io
import logging
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shufflekit.data import calibration_images, iter_batches, open_images, preprocess, train_val_sets
from shufflekit.data_demo import demo_folder, write_demo
from shufflekit.errors import DataError
from shufflekit.metadata import Preprocessing

PRE = Preprocessing.for_size(32)


def _image(color: tuple[int, int, int], size: tuple[int, int] = (40, 48)) -> Image.Image:
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[...] = color
    pixels[::4, ::4] = 255 - np.asarray(color, np.uint8)  # some texture so resizing is not trivial
    return Image.fromarray(pixels)


def _folder_with_junk(root: Path) -> Path:
    """Two classes, three good images each (PNG and JPEG), plus a text file, random bytes named .jpg,
    a JPEG cut in half (its header reads, its pixels do not) and a .DS_Store (ignored, not counted)."""
    for name, color in (("cat", (200, 30, 30)), ("dog", (30, 30, 200))):
        (root / name).mkdir(parents=True)
        for i in range(3):
            _image(color).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / "garbage.jpg").write_bytes(np.random.default_rng(0).bytes(500))
    buffer = io.BytesIO()
    noise = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "JPEG")  # mostly pixel data, so half of it keeps the header
    (root / "dog" / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (root / "cat" / ".DS_Store").write_bytes(b"\0\1")
    return root


def _skip_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "skipped" in r.getMessage()]


def test_folder_skips_corrupt_and_non_image_files_in_one_warning(tmp_path, caplog):
    root = _folder_with_junk(tmp_path / "data")
    images = open_images(root, split="val")  # no train/ val/ here: the folder is used whole
    assert images.classes == ("cat", "dog")
    assert len(images) == 7  # the truncated JPEG passes the header scan; it fails when decoded
    assert {Path(s.path).name for s in images.skipped} == {"notes.txt", "garbage.jpg"}

    caplog.set_level(logging.WARNING)
    batches = list(iter_batches(images, PRE, batch_size=4))
    assert sum(len(b.images) for b in batches) == 6
    labels = np.concatenate([b.labels for b in batches])
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    warnings = _skip_warnings(caplog)
    assert len(warnings) == 1 and warnings[0].startswith("skipped 3 files")
    assert "truncated.jpg" in warnings[0] or "and 1 more" in warnings[0]


def test_calibration_draws_readable_images_and_says_when_there_are_fewer(tmp_path, caplog):
    root = _folder_with_junk(tmp_path / "data")
    caplog.set_level(logging.WARNING)
    batch = calibration_images(root, PRE, count=4)
    assert batch.shape == (4, 3, 32, 32) and batch.dtype == np.float32
    assert calibration_images(root, PRE, count=4).tobytes() == batch.tobytes()  # fixed seed
    caplog.clear()
    everything = calibration_images(root, PRE, count=100)
    assert everything.shape == (6, 3, 32, 32)
    assert len(_skip_warnings(caplog)) == 1
    assert any("only 6 readable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("layout", ["empty classes", "only junk", "no class folders"])
def test_an_empty_set_is_a_data_error(tmp_path, layout):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    if layout == "only junk":
        (root / "a" / "readme.md").write_text("hello")
        (root / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    if layout == "no class folders":
        (root / "a").rmdir()
        _image((1, 2, 3)).save(root / "loose.png")
    with pytest.raises(DataError) as info:
        open_images(root, split="train")
    assert "hint" not in info.value.one_line() and ";" in info.value.one_line()
    if layout == "only junk":
        assert "2 unreadable file(s) skipped" in info.value.message
    with pytest.raises(DataError):
        calibration_images(root, PRE, count=8)


def test_missing_path_and_unknown_file_type_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_images(tmp_path / "nope", split="val")
    (tmp_path / "list.csv").write_text("a,b")
    with pytest.raises(DataError, match="neither a folder nor a .npy/.npz file"):
        open_images(tmp_path / "list.csv", split="val")


def test_preprocessing_comes_from_the_metadata():
    pre = Preprocessing.for_size(64, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    gray = Image.new("RGB", (300, 200), (51, 51, 51))  # 0.2 on every channel
    nchw = preprocess(gray, pre)
    assert nchw.shape == (3, 64, 64) and nchw.dtype == np.float32
    np.testing.assert_allclose(nchw[:, 10, 10], [(0.2 - 0.5) / 0.5, (0.2 - 0.25) / 0.25, 0.2], rtol=1e-5)
    np.testing.assert_array_equal(preprocess(gray, pre, layout="nhwc"), nchw.transpose(1, 2, 0))
    # Shorter side to resize_size (73 for 64), then the center crop: a left/right stripe pattern 300 px
    # wide keeps its middle.
    stripes = np.zeros((200, 300, 3), np.uint8)
    stripes[:, 150:] = 255
    out = preprocess(Image.fromarray(stripes), Preprocessing.for_size(64))
    assert out[0, 32, 0] < 0 < out[0, 32, 63]


def test_npy_images_go_through_the_same_preprocessing(tmp_path):
    pixels = np.stack([np.asarray(_image((10 * i, 100, 200 - 10 * i))) for i in range(5)])  # (5, 48, 40, 3)
    np.save(tmp_path / "batch.npy", pixels)
    batch = calibration_images(tmp_path / "batch.npy", PRE, count=5)
    assert batch.shape == (5, 3, 32, 32)
    expected = {preprocess(Image.fromarray(p), PRE).tobytes() for p in pixels}
    assert {b.tobytes() for b in batch} == expected

    np.save(tmp_path / "gray.npy", pixels[..., 0])  # (N, H, W) grayscale
    assert calibration_images(tmp_path / "gray.npy", PRE, count=2).shape == (2, 3, 32, 32)

    images = open_images(tmp_path / "batch.npy", split="val")
    assert not images.has_labels
    with pytest.raises(DataError, match="no labels"):
        images.require_labels("evaluation")


def test_npz_carries_labels_and_class_names(tmp_path):
    pixels = np.stack([np.asarray(_image((i * 40, 0, 0))) for i in range(6)])
    np.savez(
        tmp_path / "set.npz",
        images=pixels,
        labels=np.array([0, 1, 2, 0, 1, 2]),
        classes=np.array(["ant", "bee", "cow"]),
    )
    images = open_images(tmp_path / "set.npz", split="val")
    assert images.classes == ("ant", "bee", "cow") and images.labels.tolist() == [0, 1, 2, 0, 1, 2]
    # Re-indexed by name to another label order (a model's):
    reordered = open_images(tmp_path / "set.npz", split="val", classes=("cow", "bee", "ant", "dog"))
    assert reordered.labels.tolist() == [2, 1, 0, 2, 1, 0]
    with pytest.raises(DataError, match="classes the model does not know: ant"):
        open_images(tmp_path / "set.npz", split="val", classes=("bee", "cow"))


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((2, 8, 8, 3), np.float32), "not uint8 pixels"),
        (np.zeros((2, 3, 16, 16), np.uint8), "channels-first"),
        (np.zeros((2, 8, 8, 4), np.uint8), "not \\(N, H, W, 3\\)"),
    ],
)
def test_npy_of_the_wrong_kind_is_one_clear_error(tmp_path, array, message):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(DataError, match=message):
        open_images(tmp_path / "x.npy", split="val")


def test_npz_labels_must_fit(tmp_path):
    pixels = np.zeros((3, 8, 8, 3), np.uint8)
    np.savez(tmp_path / "bad.npz", images=pixels, labels=np.array([0, 1, 5]), classes=np.array(["a", "b"]))
    with pytest.raises(DataError, match="labels run from 0 to 5"):
        open_images(tmp_path / "bad.npz", split="val")
    np.savez(tmp_path / "none.npz", pixels=pixels)
    with pytest.raises(DataError, match="no 'images' array"):
        open_images(tmp_path / "none.npz", split="val")


def test_flat_folder_is_split_with_a_fixed_seed(tmp_path):
    root = tmp_path / "data"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(10):
            _image((i * 20, 0, 0)).save(root / name / f"{i}.png")
    train, val = train_val_sets(root, val_fraction=0.2)
    assert (len(train), len(val)) == (16, 4) and np.bincount(val.labels).tolist() == [2, 2]
    assert not set(map(str, train.items)) & set(map(str, val.items))
    again_train, _ = train_val_sets(root, val_fraction=0.2)
    assert list(map(str, again_train.items)) == list(map(str, train.items))


def test_demo_set_is_written_offline_and_identically(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the demo set tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    first, second = write_demo(tmp_path / "one"), write_demo(tmp_path / "two")
    files = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    assert len(files) == 1797
    assert files == sorted(p.relative_to(second) for p in second.rglob("*.png"))
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    assert sorted(p.name for p in (first / "train").iterdir()) == [str(d) for d in range(10)]
    assert not list(tmp_path.glob(".*partial"))  # written under a temporary name, then renamed

    train, val = train_val_sets("demo")
    assert (len(train), len(val)) == (1438, 359)
    assert train.classes == tuple(str(d) for d in range(10))
    assert demo_folder().is_dir()
    image = train.load(0)
    assert image.mode == "RGB" and image.size == (32, 32)


# ------------------------------------------------------------ issue 12: FIFOs, control characters, bombs


def _finishes(call, seconds: float = 20.0):
    """Run ``call`` in a daemon thread; the old code blocked forever opening a FIFO, so never wait unbounded."""
    import threading

    outcome: dict[str, BaseException | object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked (reading a FIFO?)"
    return outcome


@pytest.mark.parametrize("name", ["calib.npy", "calib.npz", "calib"])
def test_fifo_as_data_is_refused_without_blocking(tmp_path, name):
    import os

    fifo = tmp_path / name
    os.mkfifo(fifo)
    outcome = _finishes(lambda: calibration_images(fifo, PRE, 4))
    assert isinstance(outcome.get("error"), DataError), outcome
    assert "is a FIFO, not a regular file" in outcome["error"].one_line()


def test_fifo_inside_a_data_folder_is_refused(tmp_path):
    import os

    root = _folder_with_junk(tmp_path / "data")
    os.mkfifo(root / "cat" / "stream.png")
    outcome = _finishes(lambda: open_images(root, split="train"))
    assert isinstance(outcome.get("error"), DataError), outcome
    message = outcome["error"].one_line()
    assert "stream.png" in message and "a FIFO" in message and "\n" not in message


@pytest.mark.parametrize("bad", ["two\nlines", "tab\there", "esc\x1b[2J", "bell\x07"])
def test_class_folder_with_control_characters_is_refused(tmp_path, bad):
    root = tmp_path / "data"
    for name in ("ok", bad):
        (root / name).mkdir(parents=True)
        _image((10, 200, 10)).save(root / name / "0.png")
    with pytest.raises(DataError) as info:
        open_images(root, split="train")
    message = info.value.one_line()
    assert "control character" in message and repr(bad) in message and "\n" not in message


def test_npz_class_names_with_control_characters_are_refused(tmp_path):
    path = tmp_path / "set.npz"
    images = np.zeros((2, 8, 8, 3), np.uint8)
    np.savez(path, images=images, labels=np.array([0, 1]), classes=np.array(["fine", "evil\nline"]))
    with pytest.raises(DataError, match="control character"):
        open_images(path, split="val")


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a few bytes of pixel data follow)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [100_000, 8_000], ids=["pillow-bomb-error", "above-our-limit"])
def test_image_too_large_to_decode_is_skipped_in_one_warning(tmp_path, caplog, side):
    root = tmp_path / "data"
    (root / "cat").mkdir(parents=True)
    _image((200, 30, 30)).save(root / "cat" / "0.png")
    (root / "cat" / "huge.png").write_bytes(_png_header(side, side))
    images = open_images(root, split="train")
    assert len(images) == 1
    with caplog.at_level(logging.WARNING, logger="shufflekit.data"):
        images.warn_skipped()
    assert "huge.png (too large to decode safely" in caplog.text


def test_a_set_of_only_huge_images_is_one_data_error(tmp_path):
    root = tmp_path / "data"
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "huge.png").write_bytes(_png_header(100_000, 100_000))
    with pytest.raises(DataError, match=r"holds no images .*huge\.png: too large to decode safely"):
        open_images(root, split="train")


def test_npz_member_declaring_terabytes_is_refused_before_decompressing(tmp_path):
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (1_000_000, 1000, 1000, 3)}
    )
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images.npy", header.getvalue() + b"\0" * 1024)
    with pytest.raises(DataError, match=r"'images' declares [\d,.]+ GiB"):
        open_images(path, split="val")


@pytest.mark.parametrize(
    "label, ok",
    [
        ("golden retriever", True),
        ("café", True),
        ("می\u200cخواهم", True),  # Persian writes with a zero-width non-joiner: text, not a control
        ("a\nb", False),
        ("a\rb", False),
        ("nul\x00", False),
        ("bidi\u202eevil", False),  # right-to-left override: shows text other than what is stored
        ("", False),
        ("x" * 300, False),
    ],
)
def test_which_labels_can_be_class_names(label, ok):
    from shufflekit.metadata import bad_label

    assert (bad_label(label) is None) == ok
