"""`shufflekit devices`: the adb devices attached, and for each address given (ssh, adb, local) whether
it answers, its Python, numpy and which inference runtimes it has."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click

from .app import main, print_table
from .numbers import Float
from .output import Failed, current

DEVICE_HELP = (
    "Where to measure: local, ssh://[user@]host[:port], a Host alias, adb://SERIAL[@HOST:PORT] (add "
    "?python=PATH for the device's Python). Repeat for several devices, measured concurrently."
)


def devices_option(command):  # noqa: ANN001, ANN201
    """``--device`` (repeatable, default local) as every measuring command takes it; the command receives
    ``devices``, a tuple of addresses."""
    return click.option("--device", "devices", multiple=True, default=("local",), show_default=True, help=DEVICE_HELP)(
        command
    )


def connect_options(command):  # noqa: ANN001, ANN201
    """The ssh options every command that reaches a device takes; the command receives them as one
    ``connect`` argument (a ConnectOptions). Use: ``@connect_options`` under ``@main.command``."""

    @click.option(
        "--trust-new-host-key",
        is_flag=True,
        help="Accept and record an ssh host key seen for the first time (a CHANGED key is always refused).",
    )
    @click.option("--ssh-config", type=click.Path(dir_okay=False, exists=True), help="ssh client config file (ssh -F).")
    @click.option(
        "--connect-timeout",
        type=Float(1, 3600),
        default=10,
        show_default=True,
        help="Seconds to wait for a device to answer.",
    )
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(*args, connect=connect_from(kwargs), **kwargs)

    return wrapper


def connect_from(params: dict[str, Any]) -> Any:
    """The ConnectOptions of a command's parsed ssh options, taken out of ``params`` (click's values)."""
    from ..runtimes.remote import ConnectOptions

    ssh_config = params.pop("ssh_config")
    return ConnectOptions(
        trust_new_host_key=params.pop("trust_new_host_key"),
        ssh_config=Path(ssh_config) if ssh_config else None,
        connect_timeout=params.pop("connect_timeout"),
    )


@main.command("devices")
@click.argument("addresses", nargs=-1, metavar="[ADDRESS]...")
@connect_options
def devices_command(addresses: tuple[str, ...], connect) -> None:  # noqa: ANN001
    """List adb devices and check devices by address: local, ssh://[user@]host[:port], a Host alias from
    your ssh config, adb://SERIAL or adb:// (add ?python=PATH for the device's Python).

    With no address, checks this computer (local). Exits 2 when a device cannot be used.
    """
    from ..runtimes.remote import parse_address
    from ..runtimes.remote.probe import check_devices

    parsed = [parse_address(a, ssh_config=connect.ssh_config) for a in (addresses or ("local",))]
    report = check_devices(parsed, connect)
    out = current()
    if out.json:
        data = report.to_dict()
        out.respond(data.pop("devices"), data)
    else:
        _print(report)
    failing = [check for check in report.checks if not check.ok]
    for check in failing:
        click.echo(f"error: {check.error}", err=True)
    if not report.ok:
        first = (failing[0].error if failing else None) or "a device cannot be used"
        raise Failed(f"{len(failing)} of {len(report.checks)} devices cannot be used ({first})" if failing else first)


def _print(report) -> None:  # noqa: ANN001
    from ..device.procfs import logical_cores_of

    if report.adb:
        print_table(
            "adb devices",
            ["address", "state", "model"],
            [(d.to_dict()["address"], d.state, d.details.get("model", "")) for d in report.adb],
            keep_whole=["address"],
        )
    elif report.adb_note:
        click.echo(report.adb_note)
    rows = []
    for check in report.checks:
        facts = check.facts
        runtimes = ", ".join(
            f"{name} {info.get('version') or ''}".strip() + (" (broken)" if "error" in info else "")
            for name, info in check.runtimes.items()
        ) or ("none" if facts else "")
        status = "ok" if check.ok else "no runtime" if facts else "error"
        emulator = facts.get("emulator")
        cpu = f"emulated {facts.get('machine')}: {emulator}" if emulator else facts.get("cpu_model") or ""
        rows.append(
            (
                check.address,
                status,
                facts.get("machine", ""),
                facts.get("python", ""),
                facts.get("numpy", ""),
                runtimes,
                cpu,
                logical_cores_of(facts) or "",
            )
        )
    print_table(
        "devices",
        ["address", "status", "arch", "python", "numpy", "runtimes", "cpu", "cores"],
        rows,
        right_align=["cores"],
        keep_whole=["address"],
        drop=["cores", "numpy", "python", "cpu", "arch"],
    )
    if any(c.facts.get("emulator") for c in report.checks):
        current().info(
            "emulated devices: their parity and accuracy are real (the device's own kernels); their "
            "latency is the emulator's, never shown as the device's speed"
        )
