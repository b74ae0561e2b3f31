"""The console script (``shufflekit.cli.entry``): the command's exit status and every byte it printed
survive the quick exit that skips Python's own shutdown."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from shufflekit.cli import main


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shufflekit", *args], capture_output=True, text=True, timeout=120)


def test_the_script_prints_what_the_command_prints_and_exits_with_its_status():
    listed = _script("models", "--json")
    assert listed.returncode == 0
    assert listed.stdout == CliRunner().invoke(main, ["models", "--json"]).stdout  # all of it, flushed
    missing = _script("validate", "/no/such/folder")  # bad input: exit 2 and its one line, after the exit
    assert missing.returncode == 2 and missing.stderr.strip().splitlines()[-1].startswith("error: /no/such/folder")
