"""Bad-input cases of the "faults" part of issue 12: a --plot that cannot take the plots is refused before
anything is measured. (A read-only or full folder needs a mount namespace: tests/test_faults.py.)"""

from __future__ import annotations

from collections.abc import Callable

from .harness import Case, Workspace


def _user_file(ws: Workspace) -> None:
    (ws.root / "plot.png").write_bytes(b"the user's own picture")


def _plot_name_taken(ws: Workspace) -> None:
    (ws.root / "plots" / "latency.png").mkdir(parents=True)


def _profile(plot: str) -> Callable[[Workspace], list[str]]:
    return lambda ws: ["profile", str(ws.release), "--iters", "3", "--warmup", "1", "--plot", plot]


CASES: list[Case] = [
    Case(
        id="profile-plot-is-a-file",
        argv=_profile("plot.png"),
        error=r"--plot plot\.png is a file, not a folder; name a folder",
        setup=_user_file,
        needs_release=True,
    ),
    Case(
        id="profile-plot-under-a-file",
        argv=_profile("plot.png/plots"),
        error=r"--plot plot\.png/plots lies under plot\.png, which is a file, not a folder",
        setup=_user_file,
        needs_release=True,
    ),
    Case(
        id="profile-plot-name-taken-by-a-folder",
        argv=_profile("plots"),
        error=r"--plot plots holds a folder named latency\.png; move it",
        setup=_plot_name_taken,
        needs_release=True,
    ),
    Case(
        id="profile-plot-json-is-a-file",
        argv=lambda ws: [*_profile("plot.png")(ws), "--json"],
        error=r"--plot plot\.png is a file, not a folder",
        setup=_user_file,
        needs_release=True,
    ),
]
