"""`shufflekit profile DIR [ARTIFACT...]`: latency, memory and (with --op-profile) the per-operator
breakdown of every artifact, measured on this computer (or a device), beside multiply-adds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .app import main, print_table, progress_bar, shorten_names
from .devices_cmd import connect_options, devices_option
from .json_items import parity_item
from .numbers import MAX_DROP
from .output import current
from .paths import NonEmptyPath
from .shared_options import (
    DATA_METAVAR,
    PROVIDER_OPTIONS,
    device_accuracy_samples_option,
    parity_option,
    timing_options,
)


@main.command("profile")
@click.argument("folder", type=NonEmptyPath(path_type=Path))
@click.argument("artifacts", nargs=-1)
@click.option(
    "--runtime",
    help="onnxruntime or litert (TFLite); default: each artifact's own. Keeps the artifacts that runtime runs.",
)
@PROVIDER_OPTIONS
@timing_options(
    iters_help="Timed iterations (default 100).",
    seconds_help="Time for this long instead of a number of iterations.",
    min_iters_help="With --seconds: at least this many timed iterations.",
    op_profile=False,
)
@devices_option
@click.option(
    "--benchmark-binary",
    "benchmark_binaries",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Measure with a native tool instead of the Python runner (the way on Android, whose adb "
    "shell has no Python): TFLite's benchmark_model for .tflite, onnxruntime_perf_test for .onnx. "
    "Pushed with each artifact and removed afterwards; repeat to give both.",
)
@parity_option(
    "Also run the folder's reference inputs on the device and judge its outputs against PyTorch "
    "(the validate tolerance table); a failure exits 1 after every figure is recorded."
)
@click.option(
    "--data",
    metavar=DATA_METAVAR,
    help="Labelled images (a folder with class subfolders, its val/ split, an .npz, or demo): "
    "each device also classifies a fixed subset with its own kernels, and each file is judged by its "
    "top-1 drop against PyTorch there (needs the folder's checkpoint and torch on this computer).",
)
@device_accuracy_samples_option(
    "How many of the --data images each device classifies (a fixed subset over the classes).",
    old=("--accuracy-samples",),
)
@click.option(
    "--max-drop",
    type=MAX_DROP,
    help="Top-1 points a file may lose on a device [default: the tolerance table's, 1 point].",
)
@click.option("--plot", "plot_dir", type=NonEmptyPath(path_type=Path), help="Write PNG plots into this folder.")
@connect_options
def profile_command(
    folder: Path,
    artifacts: tuple[str, ...],
    runtime: str | None,
    provider: str,
    allow_fallback: bool,
    threads: int | None,
    warmup: int,
    iters: int | None,
    seconds: float | None,
    min_iters: int | None,
    batch: int,
    op_profile: bool,
    devices: tuple[str, ...],
    benchmark_binaries: tuple[Path, ...],
    parity: bool,
    data: str | None,
    device_accuracy_samples: int,
    max_drop: float | None,
    plot_dir: Path | None,
    connect: Any,  # runtimes.remote.ConnectOptions, from the shared options
) -> None:
    """Measure every artifact of FOLDER (or the ARTIFACTs named: file name, format, or format:precision):
    latency statistics, load time, first inference, throughput, peak memory, the device's facts, and with
    --op-profile the time per operator and operator category. Figures go into FOLDER/manifest.json under
    the device."""
    from ..runtimes import RuntimeOptions
    from ..runtimes.profile import ProfileSettings, profile_devices

    options = RuntimeOptions(runtime=runtime, provider=provider, threads=threads, allow_fallback=allow_fallback)
    settings = ProfileSettings(
        warmup=warmup,
        iters=iters,
        seconds=seconds,
        min_iters=min_iters,
        batch=batch,
        op_profile=op_profile,
        keep_times=plot_dir is not None,
        parity=parity,
    )
    native = None
    if benchmark_binaries:
        from ..runtimes.native import NativeTools

        native = NativeTools.from_paths(benchmark_binaries)
    from ..runtimes.fanout import device_keys
    from ..validate import device_parity

    device_keys(devices, getattr(connect, "ssh_config", None))  # a bad address is named before the folder is read
    _check_before_measuring(folder, plot_dir)
    accuracy = device_accuracy_images(folder, data, device_accuracy_samples, max_drop) if data is not None else None
    with progress_bar() as progress:
        reports = profile_devices(
            folder,
            artifacts,
            devices=devices,
            options=options,
            settings=settings,
            connect=connect,
            progress=progress,
            native=native,
            accuracy=accuracy,
            max_drop=max_drop,
            judge=device_parity,
        )
    out = current()
    several = len(reports) > 1
    results: list[dict[str, Any]] = []
    measured: list[dict[str, Any]] = []
    for report in reports:
        plots = []
        if plot_dir is not None:
            from ..runtimes.profile_plots import write_plots

            plots = write_plots(report, plot_dir / _safe(report.device) if several else plot_dir)
        if out.json:
            results += [_item(report.device, p) for p in report.profiles]
            measured.append(_device_entry(report, plots))
            _warn_noise(report)
            continue
        _print_summary(report)
        if op_profile:
            _print_breakdown(report)
        for path in plots:
            out.info(f"wrote {path}")
    if out.json:
        out.respond(results, {"folder": str(folder), "devices": measured})
    _raise_on_parity_failure(reports)


def _item(device: str, profile: Any) -> dict[str, Any]:
    """One artifact measured on one device: ``device``, ``artifact``, ``key``, then its figures."""
    data = profile.to_dict()
    data.pop("artifact", None)
    if data.get("parity") is not None:
        data["parity"] = parity_item(data["parity"])
    return {"device": device, "artifact": profile.artifact.name, "key": profile.artifact.key, **data}


def _device_entry(report: Any, plots: list[Path]) -> dict[str, Any]:
    """What a device's measurements share: its facts and the settings they ran with."""
    data = report.to_dict()
    return {
        "device": report.device,
        "host": data["host"],
        "options": data["options"],
        "settings": data["settings"],
        "plots": [str(p) for p in plots],
    }


def _check_before_measuring(folder: Path, plot_dir: Path | None) -> None:
    """What would only fail once everything is measured: the --plot folder, and a folder the figures
    cannot be recorded in (a read-only copy: profile always records, --json included)."""
    from ..artifacts import MANIFEST_NAME, Manifest
    from ..files import check_writable

    if plot_dir is not None:
        from ..runtimes.profile_plots import check_plot_folder

        check_plot_folder(plot_dir)
    Manifest.load(folder)  # a folder that is no release is refused as such, not as read-only
    check_writable(folder, f"profile records its figures in {folder / MANIFEST_NAME}")


def device_accuracy_images(folder: Path, data: str, samples: int, max_drop: float | None) -> Any:
    """The labelled subset every device classifies, with PyTorch's logits on it (computed here)."""
    from ..artifacts import Manifest
    from ..validate.accuracy import labelled_arrays

    # --device-accuracy-samples and --max-drop are range-checked as they are parsed (cli/numbers)
    return labelled_arrays(data, Manifest.load(folder), limit=samples)


def _raise_on_parity_failure(reports: list[Any]) -> None:
    from ..artifacts import Manifest
    from ..errors import CheckFailed
    from ..validate.parity import seeded_weights_hint

    lost = [
        (r.device, p.accuracy) for r in reports for p in r.profiles if p.accuracy is not None and not p.accuracy.passed
    ]
    if lost:
        device, first = lost[0]
        raise CheckFailed(
            f"accuracy on the device failed for {len(lost)} artifact(s) ({first.artifact} on {device}: "
            f"{first.failure()}); the figures are recorded",
            hint="ship the recipe that holds on every CPU (leave --target out) or a float file",
        )

    failed = [(r.device, p.parity) for r in reports for p in r.profiles if p.parity is not None and not p.parity.passed]
    if failed:
        device, first = failed[0]
        source = str(Manifest.load(reports[0].folder).source.get("kind", ""))
        hint = seeded_weights_hint(source, [result.key for _, result in failed]) or "see the parity column above"
        raise CheckFailed(
            f"parity on the device failed for {len(failed)} artifact(s) ({first.artifact} on {device}: "
            f"{first.failures[0]}); the figures are recorded",
            hint=hint,
        )


def _parity_cell(profile: Any) -> str:
    result = profile.parity
    if result is None:
        return ""
    if not result.passed:
        return "FAIL"
    metrics = result.metrics
    return f"ok {metrics.max_abs:.1e}" if metrics is not None else "ok"


def _safe(device: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in device)


def _mb(value: float | None) -> str:
    return "" if value is None else f"{value / 1e6:.1f}"


def _ran_on(result: dict[str, Any]) -> str:
    ran = ",".join(p.replace("ExecutionProvider", "") for p in result.get("providers", []))
    return f"{ran}*" if result.get("fallback") else ran


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"  # empty where a native tool prints no such figure


def _fallback_notes(report: Any) -> str:
    notes = []
    for p in report.profiles:
        r = p.result
        if r.get("fallback"):
            notes.append(
                f"* {p.artifact.name}: fallback from {', '.join(r.get('fallback_from', []))} "
                f"(not available), ran on {_ran_on(r)[:-1]}"
            )
        elif r.get("xnnpack_declined"):
            notes.append(f"{p.artifact.name}: XNNPACK declined the model, TFLite's built-in kernels ran")
        notes.extend(f"{p.artifact.name}: {w}" for w in (r.get("tool") or {}).get("warnings", []))
    return "\n".join(notes)


def _accuracy_cell(profile: Any) -> str:
    result = profile.accuracy
    if result is None:
        return ""
    return f"{result.top1:.1f}%" + ("" if result.passed else " FAIL")


def _print_summary(report: Any) -> None:
    rows = []
    emulated = bool(report.host.get("emulated"))
    with_accuracy = any(p.accuracy is not None for p in report.profiles)  # a column only where --data gave one
    for p in report.profiles:
        r, lat = p.result, p.latency
        if emulated:  # the emulator's speed is not the device's: never shown as such
            lat = dict.fromkeys(("p50_ms", "p90_ms", "p99_ms", "mean_ms"))
            r = {**r, "throughput_ips": None, "load_ms": None, "first_inference_ms": None, "peak_rss_bytes": None}
        tool = f" ({r['tool']['binary']})" if r.get("tool") else ""  # a native tool measured, not the runner
        rows.append(
            (
                p.artifact.name,
                p.artifact.key,
                _mb(p.artifact.size_bytes),
                f"{p.mult_adds / 1e6:.1f}M" if p.mult_adds else "",
                f"{r['runtime']}{tool} {_ran_on(r)}",
                _ms(lat["p50_ms"]) or ("emulated" if emulated else ""),
                _ms(lat["p90_ms"]),
                _ms(lat["p99_ms"]),
                ""
                if lat["mean_ms"] is None
                else f"{lat['mean_ms']:.3f}" + (f" ± {lat['std_ms']:.3f}" if lat.get("std_ms") is not None else ""),
                "" if r.get("throughput_ips") is None else f"{r['throughput_ips']:.1f}",
                "" if r.get("load_ms") is None else f"{r['load_ms']:.0f}",
                "" if r.get("first_inference_ms") is None else f"{r['first_inference_ms']:.1f}",
                _mb(r.get("peak_rss_bytes")),
                "" if p.us_per_mmac is None or emulated else f"{p.us_per_mmac:.2f}",
                "" if p.peak_fraction is None or emulated else f"{p.peak_fraction * 100:.0f}%",
                _parity_cell(p),
            )
            + ((_accuracy_cell(p),) if with_accuracy else ())
        )
    host = report.host
    batch = report.settings.batch
    emulation = (
        (
            f"EMULATED ({host.get('emulator')}): parity and accuracy are the device's own kernels; latency "
            "is the emulator's and is not shown; "
        )
        if emulated
        else ""
    )
    load = max((p.load_average for p in report.profiles if p.load_average is not None), default=None)
    caption = (
        f"{emulation}{report.device}: {host.get('cpu_model') or '?'}, {host.get('logical_cores')} cores"
        f"{', governor ' + host['governor'] if host.get('governor') else ''}; {host.get('os', '')}; "
        f"{f'load average {load:.2f} while measured; ' if load is not None else ''}"
        f"latency per batch of {batch} in ms; µs/M-MAC = per-image p50 per million multiply-adds; "
        f"{_peak_caption(report, emulated)}"
        f"parity: the device's outputs against PyTorch (max abs error); top-1: labelled images classified on the "
        f"device (--data)"
    )
    notes = _fallback_notes(report)
    print_table(
        f"Profile of {report.folder}",
        [
            "artifact",
            "format:precision",
            "MB",
            "mult-adds",
            "ran on",
            "p50",
            "p90",
            "p99",
            "mean ± std",
            "img/s",
            "load ms",
            "first ms",
            "peak RSS MB",
            "µs/M-MAC",
            "% peak",
            "parity",
        ]
        + (["top-1"] if with_accuracy else []),
        rows,
        right_align=[
            "MB",
            "mult-adds",
            "p50",
            "p90",
            "p99",
            "mean ± std",
            "img/s",
            "load ms",
            "first ms",
            "peak RSS MB",
            "µs/M-MAC",
            "% peak",
        ],
        caption=caption + ("\n" + notes if notes else ""),
        keep_whole=["artifact"],
        drop=[
            "p90",
            "load ms",
            "first ms",
            "peak RSS MB",
            "mean ± std",
            "MB",
            "% peak",
            "mult-adds",
            "µs/M-MAC",
            "p99",
            "img/s",
            "format:precision",
            "ran on",
        ],
        shorten=shorten_names("artifact", [p.artifact.name for p in report.profiles]),
    )
    _warn_noise(report)


def _warn_noise(report: Any) -> None:
    if report.host.get("emulated"):  # an emulator's figures are never shown as speed: no verdict on their noise
        return
    for p in report.profiles:
        if p.noise:
            current().warn(f"{report.device}: {p.artifact.name}: unreliable figures: {p.noise}")


def _peak_caption(report: Any, emulated: bool) -> str:
    """What "% peak" is set against: this device's measured dense-convolution peak per runtime."""
    if emulated:
        return ""
    peaks = {p.peak_name: p.peak for p in report.profiles if p.peak is not None}
    if not peaks:
        return ""
    rates = ", ".join(f"{peak.runtime} {peak.gmacs:.1f}" for peak in peaks.values())
    first = next(iter(peaks.values()))
    return (
        f"% peak = multiply-adds per second against this device's dense-convolution peak in the same runtime "
        f"and threads ({rates} GMAC/s: {first.benchmark}; int8 kernels can pass 100%); "
    )


def _print_breakdown(report: Any) -> None:
    from ..runtimes.opcategories import CATEGORIES

    profiled = [p for p in report.profiles if p.breakdown]
    for p in report.profiles:
        prof = p.result.get("op_profile") or {}
        if not prof.get("available"):
            click.echo(f"{p.artifact.name}: no operator profile: {prof.get('reason', 'not measured')}")
    if not profiled:
        return
    used = [c for c in CATEGORIES if any(e["category"] == c for p in profiled for e in p.breakdown["categories"])]
    rows = []
    for category in used:
        cells = []
        for p in profiled:
            entry = next((e for e in p.breakdown["categories"] if e["category"] == category), None)
            cells.append("" if entry is None else f"{entry['ms']:.3f} ({entry['share'] * 100:.0f}%)")
        rows.append((category, *cells))
    rows.append(("sum of operators", *(f"{p.op_profile['node_sum_ms']:.3f}" for p in profiled)))
    rows.append(
        (
            "profiled run",
            *("" if p.op_profile.get("run_ms") is None else f"{p.op_profile['run_ms']:.3f}" for p in profiled),
        )
    )
    rows.append(("benchmark mean", *(f"{p.latency['mean_ms']:.3f}" for p in profiled)))
    names = [p.artifact.name for p in profiled]
    print_table(
        "Time per operator category, ms per batch (share)",
        ["category", *names],
        rows,
        right_align=names,
        caption="; ".join(sorted({f"{p.artifact.format}: {p.op_profile['method']}" for p in profiled})),
        keep_whole=["category"],
        drop=names[:0:-1],  # the last artifacts first; the first always stays
        shorten=shorten_names(None, names),  # the headers
    )
    for p in profiled:
        types = p.breakdown["op_types"][:12]
        print_table(
            f"{p.artifact.name}: per operator type",
            ["op type", "category", "count", "ms", "share"],
            [(t["op_type"], t["category"], t["count"], f"{t['ms']:.3f}", f"{t['share'] * 100:.1f}%") for t in types],
            right_align=["count", "ms", "share"],
            keep_whole=["op type"],
        )
        top = sorted(p.op_profile["nodes"], key=lambda n: -n["mean_ms"])[:10]
        print_table(
            f"{p.artifact.name}: slowest operators",
            ["operator", "op type", "category", "ran on", "ms"],
            [
                (
                    n["name"].split(";")[0],
                    n["op_type"],
                    n["category"],
                    (n.get("provider") or "").replace("ExecutionProvider", ""),
                    f"{n['mean_ms']:.3f}",
                )
                for n in top
            ],
            right_align=["ms"],
            drop=["ran on", "category", "op type"],
        )
