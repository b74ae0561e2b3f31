"""Property-based tests (hypothesis): manifest.json, device addresses and data files, mutated at random
(derandomized, so CI sees the same examples every run). The promise each checks: a ShufflekitError with
one line, or success; never another exception; never a file opened outside the folder under test (an
audit hook watches every ``open``); never a shell (an audit hook watches every process started)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import site
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shufflekit.errors import DataError, ShufflekitError, UsageError

SMALL = "shufflenet_v2_x0_5"
FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- the audit hook: installed once (a hook cannot be removed), active only inside `audited` -------------------
class _Audit:
    active = False
    busy = False
    allowed: tuple[str, ...] = ()
    outside: ClassVar[list[str]] = []
    processes: ClassVar[list[tuple[str, list[str]]]] = []


_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "busybox"}


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _Audit.active or _Audit.busy:
        return
    _Audit.busy = True
    try:
        if event == "open":
            path = args[0]
            if isinstance(path, int) or path is None:
                return
            real = os.path.realpath(os.fsdecode(path))
            if not any(real == root or real.startswith(root + os.sep) for root in _Audit.allowed):
                _Audit.outside.append(real)
        elif event == "subprocess.Popen":
            executable, argv = args[0], list(args[1]) if not isinstance(args[1], (str, bytes)) else [args[1]]
            _Audit.processes.append((str(executable), [os.fsdecode(a) for a in argv]))
        elif event in ("os.system", "os.posix_spawn", "os.exec", "os.spawn", "os.startfile"):
            _Audit.processes.append((event, [repr(a) for a in args]))
    finally:
        _Audit.busy = False


sys.addaudithook(_hook)


def _system_roots() -> tuple[str, ...]:
    """Where a Python process may read without reading the user's files: the interpreter, the venv and
    its packages, this checkout's source, the kernel's pseudo files, the session's private cache."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(), site.getusersitepackages()}
    roots.update(sysconfig.get_paths().values())
    roots.add(str(Path(__file__).resolve().parents[2]))  # the checkout (shufflekit's own source)
    roots.update({"/proc", "/dev", "/sys", "/usr/lib", "/usr/share", "/usr/local/lib", "/lib", "/etc/ld.so.cache"})
    for name in ("SHUFFLEKIT_CACHE", "MPLCONFIGDIR"):
        if os.environ.get(name):
            roots.add(os.environ[name])
    try:
        import matplotlib

        roots.update({matplotlib.get_cachedir(), matplotlib.get_configdir()})
    except ImportError:
        pass
    return tuple(sorted({os.path.realpath(r) for r in roots if r}))


@contextmanager
def audited(*folders: Path) -> Iterator[_Audit]:
    _Audit.allowed = _system_roots() + tuple(os.path.realpath(f) for f in folders)
    _Audit.outside, _Audit.processes = [], []
    _Audit.active = True
    try:
        yield _Audit
    finally:
        _Audit.active = False


def _shell_runs(processes: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    bad = []
    for executable, argv in processes:
        names = {Path(executable).name, Path(argv[0]).name if argv else ""}
        if executable.startswith("os.") or (names & _SHELLS and "-c" in argv):
            bad.append((executable, argv))
    return bad


def _is_stderr_filter(process: tuple[str, list[str]]) -> bool:
    """shufflekit's own filter of third-party chatter on fd 2 (cli/chatter.py), which every command starts:
    this interpreter running a fixed script, no input of the user's in its command line."""
    executable, argv = process
    return executable == sys.executable and argv[1:3] == ["-I", "-c"] and "chatter = re.compile" in argv[3]


def _one_line(exc: ShufflekitError) -> None:
    line = exc.one_line()
    assert line and "\n" not in line and "Traceback" not in line, repr(line)


def _cli(argv: list[str]):
    from shufflekit.cli import main

    return CliRunner().invoke(main, argv, catch_exceptions=True)


def _assert_cli_ok_or_one_line(result, argv: list[str]) -> None:
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        import traceback

        raise AssertionError(
            f"{argv}: traceback:\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-3000:]
        )
    assert "Traceback" not in result.output, result.output[-3000:]
    if result.exit_code != 0:
        lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1, f"{argv}: exit {result.exit_code} without one 'error: ' line:\n{result.stderr[-2000:]}"


@pytest.fixture()
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and TMPDIR inside tmp_path (so an ssh config, a cache or a temporary file is the test's own)."""
    for name in ("home", "tmp"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- (a) manifest.json ------------------------------------------------------------------------------------------
_OUTSIDE = "{OUTSIDE}"  # replaced by the canary file's absolute path outside the folder
_PATHS = [
    "../outside/secret.txt",
    "sub/../../outside/secret.txt",
    _OUTSIDE,
    "/etc/passwd",
    "link-out",  # a symlink in the folder to the canary outside it
    "link-dir/secret.txt",  # through a symlinked folder
    "",
    ".",
    "..",
    "manifest.json",
    "m.onnx",
    "reference.npz",
    "a\x00b",
    "x" * 300,
    "~/secret.txt",
]
_PATH_TEXT = st.sampled_from(_PATHS)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False)  # FTZ: a backend sets it
    | st.text(max_size=12)
    | _PATH_TEXT
)
_JUNK = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _base_folder(folder: Path) -> dict[str, Any]:
    """A release-shaped folder (m.onnx of junk bytes, a real reference.npz, links to the canary outside)
    and its valid manifest data; the canary is ``folder.parent/outside/secret.txt``."""
    from shufflekit.artifacts import Manifest
    from shufflekit.export.reference import Reference
    from shufflekit.metadata import ModelMeta, Preprocessing

    outside = folder.parent / "outside"
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.txt").write_text("the user's secret\n")
    folder.mkdir()
    (folder / "link-out").symlink_to(outside / "secret.txt")
    (folder / "link-dir").symlink_to(outside)
    model = b"not really onnx" * 4
    (folder / "m.onnx").write_bytes(model)
    rng = np.random.default_rng(0)
    ref = Reference(rng.standard_normal((2, 3, 64, 64)).astype(np.float32), rng.standard_normal((2, 10)), 0)
    ref_sha = ref.save(folder / "reference.npz")
    meta = ModelMeta(model=SMALL, num_classes=10, preprocessing=Preprocessing.for_size(64))
    data = Manifest.new(folder, meta).to_dict()
    data["artifacts"] = [
        {
            "name": "m.onnx",
            "format": "onnx",
            "precision": "fp32",
            "sha256": hashlib.sha256(model).hexdigest(),
            "size_bytes": len(model),
            "inputs": [{"name": "input", "shape": [1, 3, 64, 64], "dtype": "float32", "layout": "NCHW"}],
            "outputs": [{"name": "logits", "shape": [1, 10], "dtype": "float32", "layout": None}],
            "meta": meta.to_dict(),
        }
    ]
    data["reference"] = {"file": "reference.npz", "sha256": ref_sha, "samples": 2, "seed": 0}
    return data


@st.composite
def _mutations(draw: st.DrawFn) -> list[tuple[list[Any], str, Any]]:
    """A few (path of keys, action, value) edits; paths are drawn against the base manifest's shape."""
    return draw(
        st.lists(
            st.tuples(
                st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=6),
                st.sampled_from(["replace", "delete", "path"]),
                _JUNK,
            ),
            min_size=1,
            max_size=3,
        )
    )


def _apply(data: dict[str, Any], edits: list[tuple[list[int], str, Any]], outside: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for picks, action, value in edits:
        node: Any = data
        for depth, pick in enumerate(picks):
            keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
            if not keys:
                break
            key = keys[pick % len(keys)]
            child = node[key]
            if depth < len(picks) - 1 and isinstance(child, (dict, list)) and child:
                node = child
                continue
            if action == "delete":
                del node[key]
            elif action == "path":
                node[key] = _PATHS[pick % len(_PATHS)].replace(_OUTSIDE, outside)
            else:
                node[key] = value
            break
    return data


def _write_manifest(folder: Path, data: dict[str, Any]) -> None:
    (folder / "manifest.json").write_text(json.dumps(data), encoding="utf-8")  # NaN and Infinity allowed


_counter = iter(range(10**9))


@contextmanager
def _fresh(base: Path) -> Iterator[Path]:
    """A new folder per example, removed afterwards (hundreds of damaged manifests are scratch, not results
    for conftest's schema check to read)."""
    scratch = base / f"ex{next(_counter)}"
    try:
        yield scratch / "release"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@FUZZ
@given(edits=_mutations())
def test_manifest_load_is_a_shufflekit_error_or_a_manifest(sandbox: Path, edits: list) -> None:
    from shufflekit.artifacts import Manifest

    with _fresh(sandbox) as folder:
        data = _apply(_base_folder(folder), edits, str(folder.parent / "outside" / "secret.txt"))
        _write_manifest(folder, data)
        try:
            Manifest.load(folder)
        except ShufflekitError as exc:
            _one_line(exc)


@FUZZ
@given(edits=_mutations(), command=st.sampled_from(["report", "validate"]))
def test_report_and_validate_give_one_line_on_any_manifest(sandbox: Path, edits: list, command: str) -> None:
    with _fresh(sandbox) as folder:
        data = _apply(_base_folder(folder), edits, str(folder.parent / "outside" / "secret.txt"))
        _write_manifest(folder, data)
        argv = [command, str(folder)]
        with audited(folder) as audit:
            result = _cli(argv)
        _assert_cli_ok_or_one_line(result, argv)
        assert not _shell_runs(audit.processes), audit.processes
        assert not audit.outside, f"{command} opened files outside {folder}: {sorted(set(audit.outside))[:5]}"


@settings(FUZZ, max_examples=6)
@given(depth=st.sampled_from([2_000, 100_000]), opener=st.sampled_from(["[", '{"a":']))
def test_a_deeply_nested_manifest_is_one_line(sandbox: Path, depth: int, opener: str) -> None:
    from shufflekit.artifacts import Manifest

    closer = "]" if opener == "[" else "}"
    with _fresh(sandbox) as folder:
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(opener * depth + "1" + closer * depth)
        with pytest.raises(ShufflekitError) as caught:
            Manifest.load(folder)
        _one_line(caught.value)


@settings(FUZZ, max_examples=30)
@given(
    field=st.sampled_from([("reference", "file"), ("artifacts", 0, "name")]),
    path=_PATH_TEXT,
    command=st.sampled_from(["report", "validate"]),
)
def test_paths_in_a_manifest_never_reach_outside_the_folder(
    sandbox: Path, field: tuple[Any, ...], path: str, command: str
) -> None:
    """Every path a manifest holds, set to '../x', an absolute path, or a link out of the folder."""
    with _fresh(sandbox) as folder:
        data = _base_folder(folder)
        node: Any = data
        for key in field[:-1]:
            node = node[key]
        node[field[-1]] = path.replace(_OUTSIDE, str(folder.parent / "outside" / "secret.txt"))
        _write_manifest(folder, data)
        argv = [command, str(folder)]
        with audited(folder) as audit:
            result = _cli(argv)
        _assert_cli_ok_or_one_line(result, argv)
        assert not audit.outside, f"{command} opened files outside {folder}: {sorted(set(audit.outside))[:5]}"


# -- (b) device addresses ------------------------------------------------------------------------------------
_ADDRESS_PIECES = st.sampled_from(
    [
        "local",
        "ssh://",
        "adb://",
        "ftp://",
        "ssh",
        "://",
        "@",
        ":",
        "/",
        "?",
        "&",
        "=",
        ";",
        "|",
        "&&",
        "$(",
        ")",
        "`",
        "'",
        '"',
        " ",
        "\n",
        "\x00",
        "-",
        "--",
        "..",
        "[",
        "]",
        "%",
        "host",
        "pi",
        "22",
        "99999",
        "::1",
        "python=",
        "tmp=",
        "name=",
        "/usr/bin/python3",
        "rm -rf x",
        "touch PWNED",
        "-oProxyCommand=sh",
        "\u00e9",
    ]
)
_ADDRESSES = st.lists(_ADDRESS_PIECES | st.text(max_size=6), min_size=1, max_size=8).map("".join)
_SHELL_CHARS = set(";|&$`'\"<>\n\x00 ()\\")


@FUZZ
@given(text=_ADDRESSES)
def test_address_parser_refuses_or_gives_a_clean_address(sandbox: Path, text: str) -> None:
    from shufflekit.runtimes.remote.address import parse_address

    with audited(sandbox) as audit:
        try:
            address = parse_address(text)
        except UsageError as exc:
            _one_line(exc)
            address = None
    # parsing starts nothing but OpenSSH's own reading of the config (ssh -G), for a bare name only
    started = [argv for _, argv in audit.processes]
    assert all(argv[1:3] == ["-G", "--"] and len(argv) == 4 and "://" not in argv[3] for argv in started), started
    if address is None:
        return
    for part in (address.host, address.user, address.serial):
        assert part is None or not (set(part) & _SHELL_CHARS), (text, address)
    assert parse_address(str(address)).key == address.key  # the printed form means the same device


@FUZZ
@given(text=_ADDRESSES)
def test_devices_command_gives_one_line_and_never_a_shell(sandbox: Path, text: str) -> None:
    """Only addresses the parser refuses (an accepted ssh or adb address would reach for the network)."""
    from shufflekit.runtimes.remote.address import parse_address

    try:
        parse_address(text)
    except UsageError:
        pass
    else:
        return
    with audited(sandbox) as audit:
        result = _cli(["devices", "--", text])  # `--`: an address may start with '-' (click's options otherwise)
    _assert_cli_ok_or_one_line(result, ["devices", "--", text])
    assert result.exit_code == 2
    started = [p for p in audit.processes if not _is_stderr_filter(p)]
    assert not _shell_runs(audit.processes) and not started, started


@settings(FUZZ, max_examples=20)
@given(python=st.text(alphabet=st.sampled_from("ab/;|&$`' ()-.x\n"), min_size=1, max_size=16))
def test_local_python_paths_never_reach_a_shell(sandbox: Path, python: str) -> None:
    """``local?python=PATH`` runs PATH itself (an argv, never a shell line): a hostile PATH is refused or
    fails to start, as one line."""
    argv = ["devices", f"local?python=/{python}", "--connect-timeout", "2"]
    with audited(sandbox) as audit:
        result = _cli(argv)
    _assert_cli_ok_or_one_line(result, argv)
    assert not _shell_runs(audit.processes), audit.processes


# -- (c) data files ------------------------------------------------------------------------------------------
_NPY_HEADER = b"\x93NUMPY\x01\x00"
_NOT_ZIP = st.one_of(
    st.binary(max_size=256).filter(lambda b: not b.startswith(b"PK")),
    st.binary(max_size=128).map(lambda b: _NPY_HEADER + b),
    st.binary(max_size=128).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
    st.binary(max_size=128).map(lambda b: b"\xff\xd8\xff\xe0" + b),  # JPEG
)
_ZIPPISH = st.binary(max_size=128).map(lambda b: b"PK\x03\x04" + b)  # a zip (.npz) header, then junk


def _real_array_bytes(np_array: np.ndarray, suffix: str) -> bytes:
    import io

    buffer = io.BytesIO()
    if suffix == ".npz":
        np.savez(buffer, images=np_array)
    else:
        np.save(buffer, np_array)
    return buffer.getvalue()


_ARRAYS = st.sampled_from(
    [
        np.zeros((2, 8, 8, 3), np.uint8),
        np.zeros((2, 8, 8), np.uint8),
        np.zeros((0, 8, 8, 3), np.uint8),
        np.full((1, 4, 4, 3), np.nan, np.float32),
        np.zeros((1, 4, 4, 3), np.complex64),
        np.zeros((3,), np.int64),
        np.array("text"),
        np.zeros((1, 2, 2, 3, 1, 1), np.uint8),
    ]
)


@st.composite
def _data_source(
    draw: st.DrawFn, suffixes: tuple[str, ...] = (".npy",), junk: st.SearchStrategy[bytes] = _NOT_ZIP
) -> tuple[str, dict[str, bytes]]:
    """(source relative to the root, {relative path: bytes}) for a .npy or .npz file of random bytes, a
    real array file maybe cut short, or an image folder of random bytes."""
    kind = draw(st.sampled_from(["file", "folder", "truncated-array"]))
    if kind == "file":
        suffix = draw(st.sampled_from(suffixes))
        return f"d{suffix}", {f"d{suffix}": draw(junk)}
    if kind == "truncated-array":
        suffix = draw(st.sampled_from(suffixes))
        data = _real_array_bytes(draw(_ARRAYS), suffix)
        cut = draw(st.integers(min_value=0, max_value=len(data)))
        return f"d{suffix}", {f"d{suffix}": data[: cut if draw(st.booleans()) else len(data)]}
    files = {}
    for index in range(draw(st.integers(min_value=0, max_value=4))):
        name = draw(st.sampled_from(["cat", "dog", ".hidden", "train", "val"]))
        ext = draw(st.sampled_from([".png", ".jpg", ".jpeg", ".txt", ""]))
        files[f"imgs/{name}/f{index}{ext}"] = draw(junk)
    return "imgs", files


@FUZZ
@given(source=_data_source(), split=st.sampled_from(["train", "val"]))
def test_data_files_give_a_data_error_or_images(
    sandbox: Path, source: tuple[str, dict[str, bytes]], split: str
) -> None:
    """.npy files and image folders of random bytes."""
    _open_data(sandbox, source, split)


@FUZZ
@given(source=_data_source((".npz", ".npy"), _NOT_ZIP | _ZIPPISH), split=st.sampled_from(["train", "val"]))
def test_npz_files_give_a_data_error_or_images(sandbox: Path, source: tuple[str, dict[str, bytes]], split: str) -> None:
    _open_data(sandbox, source, split)


def _open_data(sandbox: Path, source: tuple[str, dict[str, bytes]], split: str) -> None:
    from shufflekit.data import calibration_images, open_images
    from shufflekit.metadata import Preprocessing

    root = sandbox / f"data{next(_counter)}"  # small files: left for the tmp_path clean-up
    rel, files = source
    (root / rel).mkdir(parents=True) if rel == "imgs" else root.mkdir(parents=True)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    with audited(root) as audit:
        try:
            images = open_images(root / rel, split=split)  # type: ignore[arg-type]
            for index in range(min(len(images), 3)):
                with suppress(DataError):
                    images.load(index)
        except DataError as exc:
            _one_line(exc)
        try:
            calibration_images(root / rel, Preprocessing.for_size(32), count=2)
        except DataError as exc:
            _one_line(exc)
    assert not audit.outside, sorted(set(audit.outside))[:5]
    assert not audit.processes, audit.processes


def test_the_audit_hook_sees_a_read_outside(sandbox: Path) -> None:
    """The fuzzers' guard works: an open outside the folder is recorded, one inside is not."""
    inside = sandbox / "inside"
    inside.mkdir()
    (inside / "a").write_text("a")
    (sandbox / "b").write_text("b")
    with audited(inside) as audit:
        (inside / "a").read_text()
        (sandbox / "b").read_text()
    assert audit.outside == [os.path.realpath(sandbox / "b")]


def test_the_audit_hook_sees_a_shell() -> None:
    import subprocess

    with audited() as audit:
        subprocess.run("true", shell=True, check=False)
        subprocess.run(["true"], check=False)
    assert len(_shell_runs(audit.processes)) == 1 and len(audit.processes) == 2
