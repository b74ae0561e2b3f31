"""Profile the artifacts of a release folder on a device: latency statistics, memory, the host's facts,
and (on request) time per operator and per operator category, beside each model's multiply-adds.

Every artifact runs in a fresh process of the device package, pushed as one file by the remote layer
(``remote.job.run_job``) to the device: ``local`` (this computer), ``local?python=``, ssh and adb take the
one path, so its load time and peak memory are its own, the host and the device measure with the same
code, and a failure is mapped the same way. Figures go into the manifest under the device's key: kind
``latency`` (one entry per artifact) and ``op_profile``, with the device's facts in ``latency_groups``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ..artifacts import Artifact, Manifest, update_manifest, utc_now
from ..device import backends
from ..device.bench import check_counts
from ..device.errors import RunnerError
from ..errors import UsageError
from ..export.tensorspecs import verified
from ..records import ConvPeak, DeviceAccuracy, DeviceFacts, DeviceParity, Latency, OpProfile
from . import opcategories
from .base import RuntimeOptions, get_runtime, runtime_for_format, translate
from .fanout import device_keys, per_device
from .noise import noise_warning
from .peak import PeakPlan, peak_fraction, plan_peak

log = logging.getLogger(__name__)

LOCAL = "local"
ProgressFn = Callable[[str, int, "int | None"], None]
# Op-profile nodes kept in the manifest per artifact (all of them are in --json output).
_MANIFEST_NODES = 400


@dataclass(frozen=True)
class ProfileSettings:
    """What to measure. ``iters`` and ``seconds`` exclude each other; neither means 100 iterations.
    ``min_iters`` (with ``seconds``): a time budget per file with a floor, so a slow file still gets
    that many samples. ``op_profile_runs``: the op profiler's runs (None: as many as the timed loop's,
    10 to 100)."""

    warmup: int = 10
    iters: int | None = None
    seconds: float | None = None
    batch: int = 1
    op_profile: bool = False
    min_iters: int | None = None
    op_profile_runs: int | None = None
    keep_times: bool = False  # per-iteration times (for plots)
    parity: bool = True  # also judge the device's outputs on the folder's reference inputs against PyTorch

    def __post_init__(self) -> None:
        try:  # the device package's check, so a job and the CLI refuse the same counts
            check_counts(self.warmup, self.iters, self.seconds, self.batch, cli=True, min_iters=self.min_iters)
        except RunnerError as exc:
            raise translate(exc) from None
        if self.op_profile_runs is not None and self.op_profile_runs < 1:
            raise UsageError(f"op_profile_runs must be at least 1, got {self.op_profile_runs}", hint="pass 1 or more")

    def to_dict(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup,
            "iters": self.iters if self.seconds is None else None,
            "seconds": self.seconds,
            "batch": self.batch,
            "op_profile": self.op_profile,
            "parity": self.parity,
            **({"min_iters": self.min_iters} if self.min_iters is not None else {}),
            **({"op_profile_runs": self.op_profile_runs} if self.op_profile_runs is not None else {}),
        }


@dataclass
class ArtifactProfile:
    artifact: Artifact
    result: dict[str, Any]  # the runner's benchmark result
    mult_adds: int | None
    parity: Any = None  # validate.parity.ParityResult of the device's outputs, where the folder has a reference
    accuracy: Any = None  # validate.device_parity.DeviceAccuracy: labelled images classified on the device
    peak: ConvPeak | None = None  # the device's dense-convolution peak in this runtime, provider and threads
    peak_name: str | None = None  # the name it is filed under in the device's conv_peak group
    peak_measured_now: bool = False  # by this artifact's job (filed with its figures)

    @property
    def latency(self) -> dict[str, float]:
        return self.result["latency_ms"]

    @property
    def per_image_p50_ms(self) -> float | None:
        p50 = self.latency.get("p50_ms")  # None where a native tool prints no percentiles
        return None if p50 is None else p50 / self.result["batch"]

    @property
    def us_per_mmac(self) -> float | None:
        """Per-image p50 latency in microseconds per million multiply-adds: how far FLOPs predict speed."""
        if not self.mult_adds or self.per_image_p50_ms is None:
            return None
        return self.per_image_p50_ms * 1e3 / (self.mult_adds / 1e6)

    @property
    def peak_fraction(self) -> float | None:
        """(multiply-adds / per-image p50) / the device's measured dense-convolution peak (None without
        one: emulated, a native tool, no multiply-adds)."""
        return peak_fraction(self.mult_adds, self.per_image_p50_ms, self.peak)

    @property
    def load_average(self) -> float | None:
        """The device's 1-minute load average after the timed loop (the probe's, for a native tool)."""
        load = (self.result.get("contention") or {}).get("load_average") or (self.result.get("host") or {}).get(
            "load_average"
        )
        return float(load[0]) if load else None

    @property
    def noise(self) -> str | None:
        """Why the figures are unreliable (spread, a busy device), or None."""
        return noise_warning(self.latency, self.result.get("contention"))

    @property
    def op_profile(self) -> dict[str, Any] | None:
        prof = self.result.get("op_profile")
        return prof if prof and prof.get("available") else None

    @property
    def breakdown(self) -> dict[str, Any] | None:
        prof = self.op_profile
        return opcategories.breakdown(prof["nodes"]) if prof else None

    def summary(self) -> dict[str, Any]:
        """The figures that go into the manifest (kind ``latency``)."""
        r = self.result
        keys = (
            "runtime",
            "runtime_version",
            "interpreter",
            "providers_requested",
            "providers",
            "fallback",
            "fallback_from",
            "xnnpack_declined",
            "ops",
            "delegate_partitions",
            "threads",
            "batch",
            "batching",
            "warmup",
            "iters",
            "seconds_requested",
            "min_iters",
            "load_ms",
            "first_inference_ms",
            "throughput_ips",
            "peak_rss_bytes",
            "rss_before_load_bytes",
            "tool",
        )
        data = {k: r[k] for k in keys if k in r}
        host = r.get("host") or {}
        if host.get("emulated"):  # the emulator's speed, not the device's: tables and plots leave it out
            data.update(emulated=True, emulator=host.get("emulator"))
        data.update(
            latency_ms=dict(r["latency_ms"]),
            per_image_p50_ms=self.per_image_p50_ms,
            mult_adds=self.mult_adds,
            us_per_mmac=self.us_per_mmac,
            peak_fraction=self.peak_fraction,
            conv_peak=self.peak_name if self.peak is not None else None,
            format=self.artifact.format,
            precision=self.artifact.precision,
            size_bytes=self.artifact.size_bytes,
        )
        data.update(
            noise=self.noise,
            other_busy_cores=(r.get("contention") or {}).get("other_busy_cores"),
            load_average=self.load_average,
        )
        return data

    def op_summary(self) -> dict[str, Any] | None:
        prof, parts = self.op_profile, self.breakdown
        if prof is None or parts is None:
            return None
        nodes = sorted(prof["nodes"], key=lambda n: -n["mean_ms"])[:_MANIFEST_NODES]
        return {
            "method": prof["method"],
            "runs": prof["runs"],
            "node_sum_ms": prof["node_sum_ms"],
            "run_ms": prof.get("run_ms"),
            "benchmark_mean_ms": self.latency["mean_ms"],
            "node_providers": prof.get("node_providers"),
            "categories": parts["categories"],
            "op_types": parts["op_types"],
            "nodes": [
                {
                    "name": n["name"],
                    "op_type": n["op_type"],
                    "category": n["category"],
                    "provider": n.get("provider"),
                    "mean_ms": n["mean_ms"],
                }
                for n in nodes
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        data = {"artifact": self.artifact.name, **self.summary()}
        data["op_profile"] = self.result.get("op_profile")
        data["parity"] = self.parity.to_dict() if self.parity is not None else None
        data["accuracy"] = self.accuracy.to_dict() if self.accuracy is not None else None
        data["peak"] = self.peak.to_dict() if self.peak is not None else None
        if self.op_profile:
            data["breakdown"] = self.breakdown
        if "times_ms" in self.result:
            data["times_ms"] = self.result["times_ms"]
        return data


@dataclass
class ProfileReport:
    folder: Path
    device: str
    host: dict[str, Any]
    options: RuntimeOptions
    settings: ProfileSettings
    profiles: list[ArtifactProfile] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "device": self.device,
            "host": self.host,
            "options": self.options.to_dict(),
            "settings": self.settings.to_dict(),
            "artifacts": [p.to_dict() for p in self.profiles],
        }


def select_artifacts(manifest: Manifest, selectors: Sequence[str], options: RuntimeOptions) -> list[Artifact]:
    """The artifacts to profile: by name/format/format:precision; ``--runtime`` keeps those it runs."""
    chosen = manifest.select(selectors)
    if not chosen:
        raise UsageError(f"{manifest.folder} lists no artifacts", hint="export some first: shufflekit export")
    if options.runtime:
        runtime = get_runtime(options.runtime)
        misfits = [a for a in chosen if a.format not in runtime.formats]
        if selectors and misfits:
            raise UsageError(
                f"runtime {runtime.name} cannot run {misfits[0].name} ({misfits[0].format})",
                hint=f"leave out --runtime, or pick {', '.join(runtime.formats)} artifacts",
            )
        chosen = [a for a in chosen if a.format in runtime.formats]
        if not chosen:
            raise UsageError(
                f"no artifact in {manifest.folder} runs on {runtime.name}",
                hint=f"it runs {', '.join(runtime.formats)} artifacts",
            )
    for art in chosen:
        check_provider(options, runtime_for_format(art.format).name, art)
    return chosen


def check_provider(options: RuntimeOptions, runtime: str, art: Artifact) -> None:
    """Refuse a provider the artifact's runtime has never heard of, before anything runs (a provider it
    knows but this machine lacks is the runtime's own error, with the list of what exists)."""
    backend = backends.get(runtime)
    names = options.providers
    bad = backend.unknown_providers(names)
    if backend.max_providers is not None and len(names) > backend.max_providers:
        raise UsageError(
            f"{backend.label} takes one delegate, got {options.provider!r} for {art.name}",
            hint=f"pass one of {', '.join(backend.providers)}",
        )
    if bad:
        other = next((f for b in backends.all_backends() for f in b.formats if f != art.format), "")
        raise UsageError(
            f"{runtime} has no provider {bad[0]!r} (for {art.name})",
            hint=f"its providers: {', '.join(sorted(backend.providers))}; to profile only the other "
            f"artifacts name them, e.g. `shufflekit profile DIR {other} --provider {bad[0]}`",
        )


def benchmark_job(art: Artifact, model: str, options: RuntimeOptions, settings: ProfileSettings) -> dict[str, Any]:
    return {
        "mode": "benchmark",
        "model": model,
        "runtime": runtime_for_format(art.format).name,
        "provider": options.provider,
        "threads": options.threads,
        "allow_fallback": options.allow_fallback,
        "layout": art.input.layout,
        "batch": settings.batch,
        "warmup": settings.warmup,
        "iters": settings.iters if settings.seconds is None else None,
        "seconds": settings.seconds,
        "min_iters": settings.min_iters,
        "op_profile": settings.op_profile,
        "op_profile_runs": settings.op_profile_runs,
        "keep_times": settings.keep_times,
    }


def _timeout(settings: ProfileSettings) -> float:
    budget = settings.seconds * 3 if settings.seconds else 0.0
    return 900.0 + budget


def run_on_device(
    device: str,
    art: Artifact,
    path: Path,
    job: dict[str, Any],
    *,
    timeout: float,
    connect: Any = None,
    parity_inputs: Path | None = None,
    parity_outputs: Path | None = None,
    extra_files: Sequence[Path] = (),
    probed: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Run one job on ``device`` ('local' or a remote address): the one measuring path, through the
    device's transport. Returns (device key, result, device facts). ``connect``: the remote layer's
    ConnectOptions (host keys, ssh config, timeouts). With ``parity_inputs``, the device also predicts
    them and its outputs end up at ``parity_outputs``. ``extra_files``: more files the job names (the
    dense-convolution micro-benchmark). ``probed``: the device's probe, cached over a run of jobs
    (``remote.job.run_job``)."""
    from .remote import parse_address
    from .remote.job import run_job

    address = parse_address(device, ssh_config=getattr(connect, "ssh_config", None))
    files, pull = [path], []
    if parity_inputs is not None and parity_outputs is not None:
        job = {**job, "parity_inputs": parity_inputs.name, "parity_outputs": parity_outputs.name}
        files, pull = [path, parity_inputs], [parity_outputs.name]
    remote = run_job(
        address,
        {**job, "model": path.name},
        [*files, *extra_files],
        artifact_format=art.format,
        timeout=timeout,
        options=connect,
        pull=pull,
        pull_into=parity_outputs.parent if pull and parity_outputs else None,
        probed=probed,
    )
    return remote.address, remote.result, {**remote.device, **remote.result.get("host", {})}


def model_mult_adds(manifest: Manifest) -> int | None:
    """Multiply-adds of one inference of the manifest's model (torch's flop counter); None when torch
    is not installed or the model is not a registered variant."""
    return model_mult_adds_of(manifest.meta)


def model_mult_adds_of(meta: Any) -> int | None:
    """``model_mult_adds`` of a model's metadata (counted once per process)."""
    try:
        from ..models.complexity import model_complexity

        return model_complexity(meta.model, meta.input_size, meta.num_classes).mult_adds
    except Exception as exc:  # noqa: BLE001 - no torch here, or an unknown variant: the column stays empty
        log.info("no multiply-adds for %s: %s", meta.model, exc)
        return None


class DeviceJudge(Protocol):
    """Judges what a device computed against PyTorch (``shufflekit.validate.device_parity`` is one): handed
    in by the caller, so measuring does not depend on validating."""

    OUTPUTS_NAME: str

    def stored_reference(self, manifest: Manifest) -> Any: ...

    def write_inputs(self, reference: Any, folder: Path, accuracy: Any = None) -> Path: ...

    def judge_device_outputs(
        self,
        artifact: Artifact,
        result: dict[str, Any],
        outputs_path: Path,
        reference: Any,
        accuracy: Any,
        max_drop: float | None,
    ) -> tuple[Any, Any]: ...


def profile_folder(
    folder: str | Path,
    selectors: Sequence[str] = (),
    *,
    options: RuntimeOptions | None = None,
    settings: ProfileSettings | None = None,
    device: str = LOCAL,
    connect: Any = None,
    progress: ProgressFn | None = None,
    native: Any = None,
    accuracy: Any = None,
    max_drop: float | None = None,
    judge: DeviceJudge | None = None,
    probed: dict[str, Any] | None = None,
) -> ProfileReport:
    """Profile the selected artifacts of a release folder on ``device`` and record the figures in its
    manifest (each artifact's as soon as it is measured, so an interruption keeps the earlier ones).
    ``native``: a native.NativeTools (--benchmark-binary) that measures instead of the Python runner.
    ``accuracy``: labelled images (``validate.accuracy.LabelledArrays``) the device also classifies with
    its own kernels, each file judged by its top-1 drop against PyTorch on them (``max_drop`` points).
    ``judge``: what judges the device's outputs (``validate.device_parity``); without one, parity and
    accuracy on the device are not measured. ``probed``: the device's probe, shared by the caller's calls
    (the release's one per artifact); the device is probed once per call otherwise."""
    folder = Path(folder)
    probed = {} if probed is None else probed
    options = options or RuntimeOptions()
    settings = settings or ProfileSettings()
    progress = progress or (lambda task, done, total: None)
    manifest = Manifest.load(folder)
    chosen = select_artifacts(manifest, selectors, options)
    if native is not None:
        native.check(chosen, options, settings)
    for art in chosen:  # refuse a changed file before spending minutes on the others
        verified(art, folder)
    mult_adds = model_mult_adds(manifest)
    # Native tools print timings only; parity needs the Python runner's outputs.
    reference = judge.stored_reference(manifest) if judge is not None and settings.parity and native is None else None
    if native is not None or judge is None:
        accuracy = None
    report = ProfileReport(folder, device, {}, options, settings)
    timeout = _timeout(settings)
    peaks = _Peaks(folder, device, connect, options)
    with tempfile.TemporaryDirectory(prefix="shufflekit-parity-") as scratch:
        inputs = (
            judge.write_inputs(reference, Path(scratch), accuracy)
            if judge is not None and (reference is not None or accuracy is not None)
            else None
        )
        outputs = Path(scratch) / (judge.OUTPUTS_NAME if judge is not None else "outputs.npy")
        for index, art in enumerate(chosen):
            progress("profile", index, len(chosen))
            path = verified(art, folder)
            parity = on_device = plan = peak = None
            peak_now = False
            if native is not None:  # categories come with the tool's op names (XNNPACK's too)
                key, result, facts = native.measure(
                    device, art, path, options, settings, timeout=timeout, connect=connect
                )
            else:
                job = benchmark_job(art, str(path), options, settings)
                plan = peaks.plan(job["runtime"])
                if plan is not None and plan.cached is None:  # measured once, in this job, after the artifact
                    job["peak"] = plan.job_entry()
                outputs.unlink(missing_ok=True)  # never judge the previous artifact's answer
                key, result, facts = run_on_device(
                    device,
                    art,
                    path,
                    job,
                    timeout=timeout,
                    connect=connect,
                    parity_inputs=inputs,
                    parity_outputs=outputs,
                    extra_files=[plan.path] if "peak" in job and plan is not None else [],
                    probed=probed,
                )
                peak, peak_now = peaks.settle(plan, result.pop("conv_peak", None), facts)
                if result.get("conv_peak_error"):
                    log.warning("%s: no dense-convolution peak: %s", key, result["conv_peak_error"])
                result["op_profile"] = _with_categories(result.get("op_profile"))
                if judge is not None and inputs is not None and result.get("parity_outputs") and outputs.is_file():
                    parity, on_device = judge.judge_device_outputs(art, result, outputs, reference, accuracy, max_drop)
            profile = ArtifactProfile(art, result, mult_adds, parity, on_device)
            if native is None and peak is not None and plan is not None:
                profile.peak, profile.peak_name, profile.peak_measured_now = peak, plan.name, peak_now
            report.profiles.append(profile)
            report.device, report.host = key, facts
            _record(folder, profile, key, facts)
    progress("profile", len(chosen), len(chosen))
    return report


def profile_devices(
    folder: str | Path,
    selectors: Sequence[str] = (),
    *,
    devices: Sequence[str] = (LOCAL,),
    options: RuntimeOptions | None = None,
    settings: ProfileSettings | None = None,
    connect: Any = None,
    progress: ProgressFn | None = None,
    native: Any = None,
    accuracy: Any = None,
    max_drop: float | None = None,
    judge: DeviceJudge | None = None,
) -> list[ProfileReport]:
    """``profile_folder`` on several devices at once, one worker per device (the manifest's lock merges
    their results). Every device runs to its end; the first failure is raised after the others finish,
    so what they measured is kept."""
    devices = list(dict.fromkeys(devices)) or [LOCAL]
    device_keys(devices, getattr(connect, "ssh_config", None))  # a device named twice is refused
    if len(devices) > 1:  # bad selections fail once, before any device is reached
        chosen = select_artifacts(Manifest.load(folder), selectors, options or RuntimeOptions())
        if native is not None:
            native.check(chosen, options or RuntimeOptions(), settings or ProfileSettings())

    def work(device: str) -> Callable[[Any], ProfileReport]:
        return lambda stop: profile_folder(
            folder,
            selectors,
            options=options,
            settings=settings,
            device=device,
            connect=connect,
            progress=_per_device(progress, device) if len(devices) > 1 else progress,
            native=native,
            accuracy=accuracy,
            max_drop=max_drop,
            judge=judge,
        )

    return list(per_device({d: work(d) for d in devices}).values())


def _per_device(progress: ProgressFn | None, device: str) -> ProgressFn | None:
    if progress is None:
        return None
    return lambda task, done, total: progress(f"{task} on {device}", done, total)


def _with_categories(prof: dict[str, Any] | None) -> dict[str, Any] | None:
    if prof and prof.get("available"):
        for node in prof["nodes"]:
            node["category"] = opcategories.categorize(node["op_type"], node.get("input_shapes"))
    return prof


def _record(folder: Path, profile: ArtifactProfile, device: str, facts: dict[str, Any]) -> None:
    with update_manifest(folder) as manifest:
        current = {a.name: a for a in manifest.artifacts}.get(profile.artifact.name)
        if current is None or current.sha256 != profile.artifact.sha256:
            log.warning("%s changed while it was profiled; its figures are not recorded", profile.artifact.name)
            return
        if profile.peak is not None and profile.peak_name and profile.peak_measured_now:
            manifest.record(profile.peak, profile.peak_name, group=device)
        manifest.record(Latency.from_dict(profile.summary()), current, group=device)
        manifest.set_device_facts(device, DeviceFacts.from_dict(facts, where=f"{DeviceFacts.kind}.{device}"))
        ops = profile.op_summary()
        if ops is not None:
            manifest.record(OpProfile.from_dict(ops), current, group=device)
        if profile.parity is not None:
            manifest.record(DeviceParity.from_dict(profile.parity.to_dict()), current, group=device)
        if profile.accuracy is not None:
            manifest.record(DeviceAccuracy.from_dict(profile.accuracy.to_dict()), current, group=device)


class _Peaks:
    """The device's dense-convolution peaks during one ``profile_folder``: per runtime, the plan (its
    micro-benchmark file and the record the manifest holds), settled by the job that measured it."""

    def __init__(self, folder: Path, device: str, connect: Any, options: RuntimeOptions) -> None:
        from .remote import parse_address

        self._folder, self._options = folder, options
        self._key = parse_address(device, ssh_config=getattr(connect, "ssh_config", None)).key
        self._plans: dict[str, PeakPlan | None] = {}

    def plan(self, runtime: str) -> PeakPlan | None:
        if runtime not in self._plans:
            try:
                self._plans[runtime] = plan_peak(
                    Manifest.load(self._folder), self._key, runtime, self._options.provider, self._options.threads
                )
            except ImportError as exc:  # no onnx / tensorflow here to build the micro-benchmark with
                log.info("no dense-convolution peak for %s: %s", runtime, exc)
                self._plans[runtime] = None
        return self._plans[runtime]

    def settle(
        self, plan: PeakPlan | None, measured: dict[str, Any] | None, facts: dict[str, Any]
    ) -> tuple[ConvPeak | None, bool]:
        """The peak a job's figures are set against and whether that job measured it: the cached one, or
        the one it just measured (stamped now, filed with the artifact's figures); None on an emulated
        device."""
        if plan is None:
            return None, False
        if facts.get("emulated"):  # no speed, so no peak: later jobs on this device do not carry it either
            self._plans[plan.runtime] = None
            return None, False
        if plan.cached is not None:
            return plan.cached, False
        if not measured:
            return None, False
        peak = replace(plan.record(measured), measured_at=utc_now())
        self._plans[plan.runtime] = replace(plan, cached=peak)
        return peak, True
