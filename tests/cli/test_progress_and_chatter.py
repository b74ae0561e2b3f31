"""Off a terminal a command is never silent for long: plain ``progress:`` lines on stderr (none with
--json or -q); third-party C++ chatter on stderr (LiteRT's XNNPACK banner, absl's INFO lines) is hidden
unless -vv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shufflekit.cli.chatter import filtered_stderr, is_chatter
from shufflekit.cli.output import is_progress_line
from shufflekit.cli.progress import PlainProgress

REPO = Path(__file__).resolve().parents[2]
XNNPACK = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_say_start_progress_at_most_every_interval_and_the_end():
    clock, lines = _Clock(), []
    progress = PlainProgress(lines.append, interval=5.0, clock=clock)
    progress("export", 0, 4)
    clock.now += 1
    progress("export", 1, 4)  # within the interval: no line
    clock.now += 5
    progress("export", 2, 4)
    clock.now += 5
    progress.tick()  # a long step with no call: still a line
    progress.tick()  # and not again until the interval has passed
    clock.now += 2.5
    progress("export", 4, 4)
    assert lines == [
        "progress: export started",
        "progress: export 2/4, 6 s",
        "progress: export 2/4, 11 s",
        "progress: export done in 13.5 s",
    ]
    assert all(is_progress_line(line) for line in lines)


def test_a_task_without_a_total_is_ended_when_the_display_closes():
    clock, lines = _Clock(), []
    progress = PlainProgress(lines.append, interval=5.0, clock=clock)
    progress("profile on ssh://pi", 0, None)
    clock.now += 6
    progress.tick()
    progress.close()
    assert lines == [
        "progress: profile on ssh://pi started",
        "progress: profile on ssh://pi 6 s",
        "progress: profile on ssh://pi done in 6.0 s",
    ]


def test_chatter_is_told_from_what_a_user_must_see():
    for line in (
        XNNPACK,
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796173509.788753    7213 port.cc:153] oneDNN custom operations are on.",
        "I0312 10:04:05.123456  4242 cudart_stub.cc:31] Could not find cuda drivers on your machine",
    ):
        assert is_chatter(line.encode()), line
    for line in (
        "error: parity failed for 1 of 2 artifacts",
        "warning: local: x.onnx: unreliable figures",
        "WARNING shufflekit.export.quantize: calibrated on 10 images",
        "E0000 00:00:1796173509.788753    7213 op.cc:10] a real error",
        "progress: export started",
    ):
        assert not is_chatter(line.encode()), line


def test_the_filter_drops_chatter_written_to_fd_2_and_passes_the_rest(capfd):
    with filtered_stderr():
        os.write(2, f"{XNNPACK}\nERROR: a real problem\nI0000 00:00:17.5 1 a.cc:1] noise\nlast words".encode())
    assert capfd.readouterr().err == "ERROR: a real problem\nlast words"


def test_what_a_crashing_library_writes_last_still_reaches_stderr():
    code = (
        "import os\n"
        "from shufflekit.cli.chatter import filtered_stderr\n"
        "with filtered_stderr():\n"
        f"    os.write(2, b'{XNNPACK}\\nterminate called without an active exception\\n')\n"
        "    os.abort()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert done.returncode != 0
    assert done.stderr == "terminate called without an active exception\n"


def _validate(folder: Path, *flags: str) -> subprocess.CompletedProcess:
    """The CLI as a user pipes it (stderr is a pipe, not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "shufflekit", "validate", str(folder), "--no-gpu-check", *flags],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=600,
    )


def test_a_piped_command_prints_plain_progress_and_no_chatter(small_release):
    done = _validate(small_release)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "progress: parity started" in lines
    assert any(line.startswith("progress: parity done in ") for line in lines)
    assert XNNPACK not in done.stderr  # LiteRT printed it on fd 2 when the TFLite file was opened
    assert all(is_progress_line(line) for line in lines), lines
    assert "parity vs PyTorch" in done.stdout


def test_vv_shows_the_chatter_and_json_and_quiet_show_no_progress(small_release):
    loud = _validate(small_release, "-vv")
    assert loud.returncode == 0 and XNNPACK in loud.stderr
    for flag in ("--json", "-q"):
        done = _validate(small_release, flag)
        assert done.returncode == 0, done.stderr
        assert not any(is_progress_line(line) for line in done.stderr.splitlines()), done.stderr
