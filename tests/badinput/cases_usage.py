"""Bad-input cases click itself refuses (unknown option or command, missing option or argument, a value
outside a choice): one `error:` line naming the command's help, not click's four-line Usage block."""

from __future__ import annotations

from .harness import SMALL, Case


def _see(message: str, command: str = "") -> str:
    """click's message (and its 'Did you mean' suggestion), then the pointer to the command's help."""
    where = f"shufflekit {command}" if command else "shufflekit"
    return message + r"[^;]*; see '" + where + r" -h' for its options$"


CASES: list[Case] = [
    Case("usage-unknown-command", lambda ws: ["exprot"], _see(r"No such command 'exprot'")),
    Case("usage-unknown-group-option", lambda ws: ["--bogus", "models"], _see(r"No such option '--bogus'")),
    Case(
        "usage-devices-ssh-option-smuggled",
        lambda ws: ["devices", "-oProxyCommand=touch pwned"],
        _see(r"No such option '-o'", "devices"),
    ),
    Case(
        "usage-export-missing-out", lambda ws: ["export", "--model", SMALL], _see(r"Missing option '--out'", "export")
    ),
    Case("usage-profile-missing-folder", lambda ws: ["profile"], _see(r"Missing argument 'FOLDER'", "profile")),
    Case("usage-validate-missing-folder", lambda ws: ["validate"], _see(r"Missing argument 'FOLDER'", "validate")),
    Case(
        "usage-export-bad-layout",
        lambda ws: ["export", "--model", SMALL, "--layout", "nwhc", "--out", str(ws.out)],
        _see(r"Invalid value for '--layout'", "export"),
    ),
    Case(
        "usage-board-build-bad-kind",
        lambda ws: ["board", "build", "--kind", "riscv", str(ws.out)],
        _see(r"Invalid value for '--kind'", "board build"),
    ),
    Case(
        "usage-train-unknown-option",
        lambda ws: ["train", "--model", SMALL, "--epoch", "3", "--out", "m.pt"],
        _see(r"No such option '--epoch'", "train"),
    ),
    Case(
        "usage-report-extra-argument", lambda ws: ["report", "a", "b"], _see(r"Got unexpected extra argument", "report")
    ),
]
