"""`shufflekit board`: build emulated boards (an arm64 one, an x86-64 one without AVX-512/VNNI) in a
folder, to profile and check on them like on a device without having the hardware."""

from __future__ import annotations

from pathlib import Path

import click

from .app import main, print_table
from .output import current
from .paths import NonEmptyPath


@main.group("board")
def board_group() -> None:
    """Emulated boards (qemu user mode): a folder whose `python` runs like a board's Python. Use one as the
    device local?python=DIR/python (or ssh://HOST?python=DIR/python when DIR is on HOST)."""


@board_group.command("build")
@click.option(
    "--kind",
    type=click.Choice(["arm64", "x86-avx2"]),
    required=True,
    help="arm64: Debian 12's arm64 Python 3.11 with numpy, onnxruntime and ai-edge-litert under "
    "qemu-aarch64-static. x86-avx2: this host's Python with numpy, tflite-runtime and onnxruntime "
    "under qemu-x86_64-static -cpu Haswell (AVX2, no AVX-512, no VNNI).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace a board shufflekit built in DIR that is of another kind or holds other packages "
    "(an up-to-date one is kept; any other non-empty folder is always refused).",
)
@click.argument("folder", type=NonEmptyPath(file_okay=False, path_type=Path))
def build_command(kind: str, force: bool, folder: Path) -> None:
    """Build a board of KIND in FOLDER and check that numpy, onnxruntime and the TFLite interpreter load on it.

    This is the only command that downloads: Debian's arm64 .deb files (apt-get download) and the wheels
    (pip download), kept in $SHUFFLEKIT_CACHE/boards (else ~/.cache/shufflekit/boards) so a rebuild runs
    offline. Installs qemu-user-static with apt-get when it is missing and this is root. Emulation is
    slow (roughly 50-250x native): a board shows what works and which kernels run, not how fast.
    """
    from ..runtimes.remote.boards import build_board

    out = current()
    board = build_board(kind, folder, force=force, progress=lambda line: out.info(line, err=True))
    if out.json:
        out.respond([board.to_dict()], {"folder": str(folder)})
        return
    click.echo(f"device address: {board.address}")
    click.echo(f"(or ssh://HOST?python={board.python}&name={board.label} where this folder lies on HOST)")
    out.info(
        "its parity and accuracy are the emulated CPU's own kernels; its latency is the emulator's and is "
        "never shown as a device's speed"
    )


@board_group.command("list")
@click.argument("folders", nargs=-1, required=True, type=NonEmptyPath(file_okay=False, path_type=Path))
def list_command(folders: tuple[Path, ...]) -> None:
    """Show the boards built in FOLDERS: kind, emulator, Python, packages and the address to use."""
    from ..runtimes.remote.boards import load_board

    boards = [load_board(folder) for folder in folders]
    out = current()
    if out.json:
        out.respond([b.to_dict() for b in boards], {"folders": [str(f) for f in folders]})
        return
    print_table(
        "boards",
        ["address", "kind", "emulator", "python", "packages"],
        [
            (b.address, b.kind, b.emulator, b.python_version, ", ".join(f"{k} {v}" for k, v in b.packages.items()))
            for b in boards
        ],
        keep_whole=["address"],
        drop=["emulator", "python", "packages"],
    )
