"""Bad input to `shufflekit predict`: refused in one line, nothing written, before any image is classified."""

from __future__ import annotations

from .harness import Case, Workspace


def _predict(*images: str, extra: tuple[str, ...] = ()):
    return lambda ws: ["predict", str(ws.release), *(str(ws.root / i) for i in images), *extra]


def _not_an_image(ws: Workspace) -> None:
    (ws.root / "photo.jpg").write_bytes(b"\xff\xd8 not really a jpeg")


def _an_empty_folder(ws: Workspace) -> None:
    (ws.root / "photos").mkdir()
    (ws.root / "photos" / "notes.txt").write_text("no image here\n")


CASES: list[Case] = [
    Case(
        "predict-missing-image",
        _predict("missing.png"),
        r"missing\.png is neither an image file nor a folder; check the path$",
        needs_release=True,
    ),
    Case(
        "predict-not-an-image",
        _predict("photo.jpg"),
        r"^cannot read .*photo\.jpg as an image",
        setup=_not_an_image,
        needs_release=True,
    ),
    Case(
        "predict-no-image-in-folder",
        _predict("photos"),
        r"^no image found in .*photos",
        setup=_an_empty_folder,
        needs_release=True,
    ),
    Case("predict-no-images", lambda ws: ["predict", str(ws.release)], r"missing argument 'images", needs_release=True),
    Case(
        "predict-unknown-artifact",
        _predict("photo.jpg", extra=("--artifact", "coreml")),
        r"^no artifact matches 'coreml'",
        setup=_not_an_image,
        needs_release=True,
    ),
    Case(
        "predict-top-k-zero",
        _predict("photo.jpg", extra=("--top-k", "0")),
        r"--top-k must be",
        setup=_not_an_image,
        needs_release=True,
    ),
    Case(
        "predict-bad-device",
        _predict("photo.jpg", extra=("--device", "ssh://-oProxyCommand=sh")),
        r"^bad host '-oProxyCommand=sh'",
        setup=_not_an_image,
        needs_release=True,
    ),
    Case(
        "predict-not-a-release",
        lambda ws: ["predict", str(ws.root), str(ws.root / "photo.jpg")],
        r"manifest",
        setup=_not_an_image,
    ),
]
