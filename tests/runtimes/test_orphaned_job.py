"""A device job whose parent dies (the command killed, the ssh or adb session dropped) exits on its own
instead of measuring on for hours. Seen: two profile jobs with a huge --iters outlived their killed command
by two hours, each holding a core."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:  # a zombie waiting for init to reap it has exited
        return handle.read().split(")")[-1].split()[0] != "Z"


def _wait_until_running(job: int) -> None:
    """Until the job's main() has started (it points fd 1 at stderr, here /dev/null): its watch is on."""
    deadline = time.monotonic() + 120
    while os.readlink(f"/proc/{job}/fd/1") != os.devnull:
        assert time.monotonic() < deadline, "the device job never started"
        time.sleep(0.1)


def test_a_job_whose_parent_is_killed_exits_on_its_own(tmp_path):
    # The job reads its JSON from a pipe `sleep` keeps open, so it would wait two minutes; its parent, the
    # shell, is killed the way a timeout or the OOM killer does it.
    shell = subprocess.Popen(
        [
            "sh",
            "-c",
            f"sleep 120 | {sys.executable} -m shufflekit.device - >{tmp_path}/out 2>/dev/null & echo $!; wait",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert shell.stdout is not None
    job = int(shell.stdout.readline())
    try:
        _wait_until_running(job)  # up and waiting on its input
        shell.send_signal(signal.SIGKILL)
        shell.wait()
        deadline = time.monotonic() + 30  # generous: a behaviour bound, not a speed target
        while _alive(job) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(job), "the device job kept running after its parent was killed"
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
