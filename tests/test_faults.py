"""Faults (issue 12): Ctrl-C during the TFLite step, what a killed conversion left in $TMPDIR, a
read-only or full release folder for validate/report/profile, and a --plot that cannot take the plots.

Read-only and full file systems are real: root passes chmod, so the CLI runs in a user and mount
namespace (``unshare``) with the folder bind-mounted read-only, or copied onto a small tmpfs and filled."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line
from shufflekit.export.tflite import WORKSPACE_PREFIX, _offline_workspace, remove_dead_workspaces

SMALL_V2, SMALL_CLASSES, SMALL_SIZE = "shufflenet_v2_x0_5", 10, 64  # conftest's small model
REPO = Path(__file__).resolve().parents[1]


def interruptible() -> None:
    """``preexec_fn`` for a child a test will Ctrl-C: SIGINT at its default and unblocked, as in a process
    a terminal starts. A test runner started in the background (``cmd &`` in a script) passes SIGINT on
    ignored, and a process that starts with SIGINT ignored is meant to ignore it (nohup)."""
    import signal

    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too) with its bytes' sha256 ('dir' for a folder)."""
    return {
        str(p.relative_to(folder)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
    }


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not is_progress_line(line)]


# -- Ctrl-C during the TFLite step -----------------------------------------------------------------------
# The child patches one TensorFlow call that onnx2tf's ops/Concat.py makes inside a bare `except:` (it
# retries the concat there): the first call leaves a marker and waits, so the test's SIGINT lands exactly
# where onnx2tf swallowed it before (the export then ran to its end, exit 0). Everything else is real.
_CHILD = """
import sys, time
from pathlib import Path
import tensorflow as tf

marker = Path(sys.argv[1])
real_concat = tf.concat

def concat(*args, **kwargs):
    if not marker.exists() and sys._getframe(1).f_code.co_filename.endswith("Concat.py"):
        marker.write_text("in onnx2tf's Concat")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.05)
    return real_concat(*args, **kwargs)

tf.concat = concat
from shufflekit.cli import main
main(sys.argv[2:], prog_name="shufflekit")
"""


@pytest.mark.slow
def test_ctrl_c_in_the_tflite_step_stops_the_export_and_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file\n")
    before = _snapshot(out)
    marker = tmp_path / "in-concat"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    argv = ["export", "--model", SMALL_V2, "--num-classes", str(SMALL_CLASSES), "--input-size", str(SMALL_SIZE)]
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(marker), *argv, "--out", str(out)],
        env=_env(TMPDIR=str(tmpdir)),
        preexec_fn=interruptible,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 600  # torch export, TensorFlow's import, onnx2tf up to the first Concat
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), f"onnx2tf never reached a Concat: {child.communicate()[1][-2000:]}"
        assert any(tmpdir.glob(f"{WORKSPACE_PREFIX}{child.pid}-*")), "the conversion directory carries the pid"
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=120)  # a behaviour bound (it stops), not a speed target
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, stderr[-2000:]
    # (TensorFlow's import, done early by the child for the patch, logs a few lines before it)
    assert _error_lines(stderr)[-1] == "error: interrupted; finished files were kept, partial ones removed"
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert _snapshot(out) == before
    assert not list(tmpdir.glob(f"{WORKSPACE_PREFIX}*")), "the conversion directory is removed"


# -- what a killed conversion left in $TMPDIR ---------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid runs no more (and is not reused this soon)
    return child.pid


def test_a_conversion_removes_the_directories_dead_processes_left_and_keeps_live_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        left = tmp_path / f"{WORKSPACE_PREFIX}{dead}-abcd_123"
        (left / "tf").mkdir(parents=True)
        (left / "model.onnx").write_bytes(b"left by a killed run")
        running = tmp_path / f"{WORKSPACE_PREFIX}{live.pid}-zzzzzzzz"
        running.mkdir()
        not_ours = [
            tmp_path / f"{WORKSPACE_PREFIX}{dead}",  # no mkdtemp suffix
            tmp_path / f"{WORKSPACE_PREFIX}abcdefgh",  # the old naming, no pid
            tmp_path / f"other-onnx2tf-{dead}-abcdefgh",
        ]
        for path in not_ours:
            path.mkdir()
        a_file = tmp_path / f"{WORKSPACE_PREFIX}{dead}-filefile"
        a_file.write_text("a file, not a directory")

        monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
        with _offline_workspace() as workspace:  # what every conversion enters first
            assert workspace.root.parent == tmp_path
            assert workspace.root.name.startswith(f"{WORKSPACE_PREFIX}{os.getpid()}-")
            assert not left.exists()
        assert not workspace.root.exists()
        assert running.is_dir() and a_file.is_file() and all(p.is_dir() for p in not_ours)
        assert remove_dead_workspaces(tmp_path) == []
    finally:
        live.kill()
        live.wait()


# -- a read-only or full release folder -------------------------------------------------------------
def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


needs_unshare = pytest.mark.skipif(
    not _unshare_works(), reason="needs unshare (user + mount namespaces) for a real read-only or full file system"
)


def _run_read_only(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``shufflekit ARGV`` with ``folder`` mounted read-only (root too is refused a write there)."""
    command = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c"]
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    return subprocess.run(
        [*command, script, "sh", str(folder), sys.executable, "-m", "shufflekit", *argv],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@needs_unshare
@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["validate"], "validate records its results in {folder}/manifest.json"),
        (["report"], "report writes labels.txt, README.md, report.html into it"),
        (
            ["profile", "--iters", "3", "--warmup", "1", "--json"],
            "profile records its figures in {folder}/manifest.json",
        ),
    ],
    ids=["validate", "report", "profile"],
)
def test_a_read_only_release_folder_is_refused_in_one_line_before_any_work(
    small_release_copy: Path, argv: list[str], says: str
) -> None:
    folder = small_release_copy
    before = _snapshot(folder)
    done = _run_read_only(folder, argv[0], str(folder), *argv[1:])
    assert done.returncode == 2, done.stderr[-2000:]
    expected = f"error: {folder} is read-only: {says.format(folder=folder)}; copy the folder somewhere writable"
    assert _error_lines(done.stderr) == [expected]
    if "--json" in argv:  # nothing measured: the envelope says why, as the line does
        envelope = json.loads(done.stdout)
        assert not envelope["ok"] and envelope["results"] == [] and envelope["error"]["exit_code"] == 2
        assert f"{envelope['error']['message']}; {envelope['error']['hint']}" == expected[len("error: ") :]
    else:
        assert done.stdout == ""  # nothing measured, nothing printed
    assert _snapshot(folder) == before


@needs_unshare
def test_a_full_disk_while_validate_records_is_one_line_and_the_old_manifest_stays(
    small_release: Path, tmp_path: Path
) -> None:
    size = sum(p.stat().st_size for p in small_release.rglob("*") if p.is_file())
    mount, report = tmp_path / "disk", tmp_path / "after"
    mount.mkdir()
    script = (
        'mount -t tmpfs -o size="$1" tmpfs "$2" && cp -a "$3" "$2/release" '
        '&& (dd if=/dev/zero of="$2/filler" bs=1k 2>/dev/null; true) '
        '&& "$5" -m shufflekit validate "$2/release"; rc=$?; '
        'cd "$2/release" && sha256sum $(ls -A) > "$4"; exit $rc'
    )
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"]
        + [str(size + 256 * 1024), str(mount), str(small_release), str(report), sys.executable],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]  # LiteRT logs a line too
    assert "No space left on device" in lines[0] and "manifest.json" in lines[0] and "free some space" in lines[0]
    after = dict(reversed(line.split(maxsplit=1)) for line in report.read_text().splitlines())
    expected = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in small_release.iterdir() if p.is_file()}
    assert after == expected  # byte-identical, and no .partial left


# -- --plot that cannot take the plots ----------------------------------------------------------------
@pytest.mark.parametrize("where", ["file", "under-a-file", "plot-name-is-a-folder"])
def test_profile_refuses_a_plot_path_it_cannot_write_before_measuring(
    small_release_copy: Path, tmp_path: Path, where: str
) -> None:
    folder = small_release_copy
    user_file = tmp_path / "plots.png"
    user_file.write_bytes(b"the user's own picture")
    plot = {"file": user_file, "under-a-file": user_file / "plots", "plot-name-is-a-folder": tmp_path / "plots"}[where]
    if where == "plot-name-is-a-folder":
        (plot / "latency.png").mkdir(parents=True)
    before = _snapshot(tmp_path)  # the release copy included
    result = CliRunner().invoke(main, ["profile", str(folder), "--iters", "3", "--warmup", "1", "--plot", str(plot)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = _error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"error: --plot {plot} "), result.stderr
    assert result.stdout == ""  # refused before anything was measured
    assert _snapshot(tmp_path) == before
