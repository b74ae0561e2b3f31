"""ONNX -> TFLite with onnx2tf in-process, offline, leaving nothing behind; one conversion, many precisions.

onnx2tf builds a Keras model from the ONNX graph (NCHW -> NHWC without transpose storms). That is
the expensive step, and it is done once: every requested precision (fp32, fp16, dynamic-range int8,
full-integer int8 with float, int8 or uint8 input/output) is then a ``tf.lite.TFLiteConverter`` run on
the same concrete function. onnx2tf's own quantisation path is not used: it always adds int16-activation
variants (slow to make, about 50x slower to run on x86), and calibrates on its bundled sample images
unless given a file; here calibration comes from the caller's array, in the model's own preprocessing.

Offline: when the model input looks like an image (4-D, 3 channels last, batch <= 20), onnx2tf 1.28
loads ``calibration_image_sample_data_20x128x128x3_float32.npy`` from the *working directory* and
downloads it from GitHub when it is missing (onnx2tf issue #932). So onnx2tf runs inside a private
temporary directory that already holds that file, written from shufflekit's synthetic images; the
working directory is restored afterwards and the temporary directory deleted. onnx2tf also rewrites
the ONNX file it is given (op renaming), so it gets a copy, never the caller's file.
tests/export/test_tflite.py blocks every socket during a conversion to prove no connection is tried.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import QuantParams, TensorSpec
from ..errors import ExportError, UsageError
from ..files import atomic_path
from ..formats import TFLITE
from .conversion import ConversionRequest, Converted

log = logging.getLogger(__name__)

TFLITE_PRECISIONS = TFLITE.precisions
IO_DTYPES = ("float32", "int8", "uint8")
LAYOUTS: tuple[str, ...] = ("NHWC", "NCHW")
# The file onnx2tf (1.28) otherwise downloads; see the module docstring.
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
_SAMPLE_SHAPE = (20, 128, 128, 3)
# onnx2tf needs static shapes to place its NCHW -> NHWC transposes (with a symbolic batch it mislays
# the channel split), and given batch 1 it bakes that batch into every Reshape: a TFLite file made
# through it cannot be resized to another batch. Refused rather than shipped half-working.
DYNAMIC_BATCH_REFUSED = str(TFLITE.fixed_batch_reason)
DYNAMIC_BATCH_HINT = "pass --batch 1 or --batch N for TFLite, or --formats onnx for a dynamic-batch ONNX file"

ProgressFn = Callable[[str, int, "int | None"], None]
_process_wide = threading.Lock()  # onnx2tf needs the working directory and the std streams to itself


@dataclass(frozen=True)
class TFLiteTarget:
    """One TFLite file to make from the conversion. ``io_dtype`` applies to int8 only: ``float32``
    keeps float input/output around an all-int8 graph; ``int8``/``uint8`` make the app quantise."""

    precision: str
    path: Path
    io_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.precision not in TFLITE_PRECISIONS:
            raise UsageError(
                f"unknown TFLite precision {self.precision!r}", hint=f"use one of {', '.join(TFLITE_PRECISIONS)}"
            )
        if self.io_dtype not in IO_DTYPES:
            raise UsageError(f"unknown input/output dtype {self.io_dtype!r}", hint=f"use one of {', '.join(IO_DTYPES)}")
        if self.io_dtype != "float32" and self.precision != "int8":
            raise UsageError(
                f"{self.io_dtype} input/output needs full-integer int8, not {self.precision}",
                hint="pass --precisions int8, or keep float32 input/output",
            )


@dataclass(frozen=True)
class TFLiteResult:
    target: TFLiteTarget
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    seconds: float  # this precision's TFLiteConverter run
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.target.path


@dataclass(frozen=True)
class TFLiteConversion:
    results: tuple[TFLiteResult, ...]
    onnx2tf_seconds: float  # the shared ONNX -> Keras step
    seconds: float  # everything, imports included


def convert_to_tflite(
    onnx_path: str | Path,
    targets: Sequence[TFLiteTarget],
    *,
    layout: str = "NHWC",
    calibration: np.ndarray | None = None,
    per_channel: bool = True,
    progress: ProgressFn | None = None,
    optimize: bool = True,
) -> TFLiteConversion:
    """Convert ``onnx_path`` once and write every target atomically.

    ``calibration``: NCHW float32 model inputs (already normalised, like the reference inputs), needed
    for int8; it is transposed to the TFLite input layout here. Nothing is written to the working
    directory and no network connection is opened. ``optimize``: onnx2tf is given the file with the exact
    rewrites chosen for TFLite (``export.rewrites.TFLITE_REWRITES``), recorded as ``rewrites``.
    """
    started = time.perf_counter()
    progress = progress or (lambda task, done, total: None)
    layout = layout.upper()
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}", hint="use nhwc (what Android and iOS apps feed) or nchw")
    if not targets:
        raise UsageError("no TFLite precision requested")
    if len({t.path for t in targets}) != len(targets):
        raise UsageError("two TFLite targets share one path")
    onnx_path = Path(onnx_path).absolute()  # the conversion runs in another working directory
    targets = [TFLiteTarget(t.precision, Path(t.path).absolute(), t.io_dtype) for t in targets]
    if not onnx_path.is_file():
        raise ExportError(f"ONNX file {onnx_path} does not exist", hint="export to ONNX first")
    needs_calibration = any(t.precision == "int8" for t in targets)
    if needs_calibration:
        calibration = _check_calibration(calibration)

    steps = 1 + len(targets)
    progress("convert to TFLite", 0, steps)
    from . import tflite_worker

    worker = tflite_worker.current()
    if worker is not None:  # a release: its converter process does it (and keeps the onnx2tf model)
        return _converted_by(worker, onnx_path, targets, layout, calibration, per_channel, optimize, progress, started)
    with _offline_workspace() as workspace:
        model, concrete, rewrites = _keras_model(
            onnx_path, workspace, layout=layout, for_int8=needs_calibration, optimize=optimize
        )
        onnx2tf_seconds = time.perf_counter() - started
        progress("convert to TFLite", 1, steps)
        results = []
        for index, target in enumerate(targets, start=2):
            t0 = time.perf_counter()
            with _captured_output(workspace.log), _InterruptSticks():
                blob = _run_converter(
                    model,
                    concrete,
                    target,
                    layout=layout,
                    calibration=calibration,
                    per_channel=per_channel,
                    log_path=workspace.log,
                )
            with atomic_path(target.path, suffix=".tflite") as tmp:
                tmp.write_bytes(blob)
            inputs, outputs = read_io_specs(target.path, layout=layout)
            options: dict[str, Any] = {
                "layout": layout,
                "io_dtype": target.io_dtype,
                "converter": "onnx2tf+TFLiteConverter",
                "optimize": optimize,
                "rewrites": list(rewrites),
            }
            if target.precision == "int8":
                assert calibration is not None  # int8 makes needs_calibration: checked by _check_calibration
                options.update(per_channel=per_channel, calibration_samples=len(calibration))
            if target.precision == "dynamic":
                options.update(per_channel=per_channel)
            results.append(TFLiteResult(target, inputs, outputs, time.perf_counter() - t0, options))
            progress("convert to TFLite", index, steps)
    return TFLiteConversion(tuple(results), onnx2tf_seconds, time.perf_counter() - started)


def _converted_by(
    worker: Any,
    onnx_path: Path,
    targets: Sequence[TFLiteTarget],
    layout: str,
    calibration: np.ndarray | None,
    per_channel: bool,
    optimize: bool,
    progress: ProgressFn,
    started: float,
) -> TFLiteConversion:
    """``convert_to_tflite`` done by the release's converter process; the files' specs are read here."""
    reply = worker.convert(
        onnx_path, targets, layout=layout, calibration=calibration, per_channel=per_channel, optimize=optimize
    )
    results = []
    for target, made in zip(targets, reply["results"]):
        inputs, outputs = read_io_specs(target.path, layout=layout)
        results.append(TFLiteResult(target, inputs, outputs, float(made["seconds"]), made["options"]))
    progress("convert to TFLite", 1 + len(targets), 1 + len(targets))
    return TFLiteConversion(tuple(results), float(reply["onnx2tf_seconds"]), time.perf_counter() - started)


# -- the offline workspace -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Workspace:
    root: Path
    log: Path


@contextlib.contextmanager
def _offline_workspace() -> Iterator[_Workspace]:
    """A private working directory holding onnx2tf's sample file; cwd restored, directory deleted."""
    from .reference import synthetic_images

    with _process_wide:
        remove_dead_workspaces()
        root = Path(tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}{os.getpid()}-"))
        previous = os.getcwd()
        try:
            count, size = _SAMPLE_SHAPE[0], _SAMPLE_SHAPE[1]
            np.save(root / ONNX2TF_SAMPLE_FILE, synthetic_images(count, size, seed=7).transpose(0, 2, 3, 1))
            os.chdir(root)
            yield _Workspace(root, root / "convert.log")
        finally:
            os.chdir(previous)
            shutil.rmtree(root, ignore_errors=True)


WORKSPACE_PREFIX = "shufflekit-onnx2tf-"
_WORKSPACE_NAME = re.compile(re.escape(WORKSPACE_PREFIX) + r"(\d+)-[a-z0-9_]{8}")  # mkdtemp's 8 characters


def remove_dead_workspaces(tmp: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the conversion directories (``shufflekit-onnx2tf-<pid>-XXXXXXXX`` in ``tmp``, default the
    temporary directory) whose process no longer runs: what a killed conversion left. Only directories of
    exactly that name, owned by this user; one whose pid runs (or cannot be asked) is kept."""
    base = Path(tmp if tmp is not None else tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _WORKSPACE_NAME.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        pid = int(match.group(1))
        try:
            if entry.stat().st_uid != os.geteuid() or pid == os.getpid() or _pid_runs(pid):
                continue
        except OSError:
            continue
        log.info("removing %s, left by a conversion whose process %d no longer runs", entry, pid)
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or a pid we cannot ask about: keep its directory
    return True


class _InterruptSticks:
    """While the block runs foreign code (onnx2tf, TensorFlow), make a Ctrl-C stick: the first SIGINT
    raises KeyboardInterrupt as usual and then is raised again every ``REPEAT_S`` seconds, wherever the
    main thread is in foreign code, until it leaves the block; a bare ``except:`` that swallowed it
    (onnx2tf has dozens) gets the next one. The block re-raises it on exit if every one was swallowed.
    Never raised inside this module's own frames, so the clean-up (working directory, file descriptors,
    the workspace) always runs. Does nothing off the main thread or when SIGINT is not Python's default."""

    REPEAT_S = 0.1

    def __init__(self) -> None:
        self.active = False
        self.pending = False
        self.previous: Any = None
        self._stop = threading.Event()
        self._repeater: threading.Thread | None = None

    def __enter__(self) -> _InterruptSticks:
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._handle)
            self.active = True
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.pending = True
        if not self.active or (frame is not None and frame.f_globals.get("__name__") == __name__):
            return  # our own clean-up, or the block is ending: __exit__ raises it
        if self._repeater is None:
            self._repeater = threading.Thread(target=self._repeat, name="shufflekit-sigint", daemon=True)
            self._repeater.start()
        raise KeyboardInterrupt

    def _repeat(self) -> None:
        while not self._stop.wait(self.REPEAT_S):
            _thread.interrupt_main(signal.SIGINT)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self.active:
            return
        self.active = False  # from here on the handler only records
        self._stop.set()
        if self._repeater is not None:
            self._repeater.join()
        _let_pending_signals_run()  # a repeat already on its way lands in _handle, not in the default
        signal.signal(signal.SIGINT, self.previous)
        if self.pending and not (exc_type is not None and issubclass(exc_type, KeyboardInterrupt)):
            raise KeyboardInterrupt


def _let_pending_signals_run() -> None:
    """A Python function call: the interpreter runs pending signal handlers on entering one."""


@contextlib.contextmanager
def _captured_output(log_path: Path) -> Iterator[None]:
    """Send TensorFlow's and onnx2tf's console output (Python and C++ alike) to a log file."""
    sys.stdout.flush()
    sys.stderr.flush()
    with open(log_path, "a", buffering=1, encoding="utf-8", errors="replace") as sink:
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                yield
        finally:
            sink.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


def _log_tail(log_path: Path, lines: int = 40) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _conversion_failed(what: str, exc: BaseException, log_path: Path) -> ExportError:
    tail = _log_tail(log_path)
    log.info("%s failed; last converter output:\n%s", what, tail)
    meaningful = [line for line in tail.splitlines() if "Error" in line or "error" in line]
    reason = (
        str(exc).strip().splitlines()[0] if str(exc).strip() else (meaningful[-1] if meaningful else type(exc).__name__)
    )
    return ExportError(f"{what} failed: {reason[:200]}", hint="run with -v to see the converter's output")


# -- conversion steps ------------------------------------------------------------------------------
# The last conversion's Keras model, by (sha256 of the ONNX bytes, layout, optimize): a release converts its fp32
# file in the export stage and its fp16/dynamic/int8 files in the quantize stage, from the same ONNX
# file; onnx2tf is the expensive step (about 8 s for v2 1.0x at 224), so it runs once per process. One
# entry only: a process converting many models keeps one Keras model alive, not all of them.
_last_keras: dict[tuple[str, str, bool], tuple[Any, Any, bool, list[str]]] = {}


def _keras_model(
    onnx_path: Path, workspace: _Workspace, *, layout: str, for_int8: bool, optimize: bool
) -> tuple[Any, Any, list[str]]:
    """The onnx2tf Keras model of ``onnx_path`` and its concrete function, reused when the same bytes
    were converted last. The same model serves every precision: MaxPool is padded with zeros wherever
    its input is a ReLU's (exact in float, and what int8 needs), so fp32 and int8 share one conversion."""
    from ..files import sha256_file

    key = (sha256_file(onnx_path), layout, optimize)
    cached = _last_keras.get(key)
    if cached is not None:
        log.info("reusing the onnx2tf conversion of %s", onnx_path.name)
        model, concrete, zero_padded, rewrites = cached
    else:
        _last_keras.clear()  # before converting: the old model's memory is freed first
        given, rewrites = (
            _rewritten_for_tflite(onnx_path, workspace) if optimize else (onnx_path, carried_rewrites(onnx_path))
        )
        model, zero_padded = _onnx_to_keras(given, workspace, layout=layout)
        with _captured_output(workspace.log), _InterruptSticks():
            concrete = _concrete_function(model)
        _last_keras[key] = (model, concrete, zero_padded, rewrites)
    if for_int8 and not zero_padded:
        log.warning("a MaxPool input may be negative: int8 accuracy may suffer from its padding")
    return model, concrete, list(rewrites)


def _rewritten_for_tflite(onnx_path: Path, workspace: _Workspace) -> tuple[Path, list[str]]:
    """A copy of the ONNX file with TFLite's rewrites, under the same name (for messages) in the workspace.
    An unreadable file is passed on unchanged: _onnx_to_keras says what is wrong with it."""
    from .rewrites import TFLITE_REWRITES, combined, rewrite_file

    target = workspace.root / "rewritten" / onnx_path.name
    target.parent.mkdir()
    try:
        import onnx

        onnx.load(str(onnx_path), load_external_data=False)
    except Exception:  # noqa: BLE001 - protobuf decode errors and the like
        return onnx_path, []
    applied = rewrite_file(onnx_path, target, TFLITE_REWRITES)
    carried = carried_rewrites(onnx_path)
    return target, combined(carried, applied)


def carried_rewrites(onnx_path: Path) -> list[str]:
    """The rewrites an ONNX file made by export_onnx already carries (its metadata), [] for any other file."""
    import json

    from .onnx import REWRITES_KEY, read_metadata

    try:
        names = json.loads(read_metadata(onnx_path).get(REWRITES_KEY, "[]"))
    except Exception:  # noqa: BLE001 - an unreadable file: _onnx_to_keras says what is wrong with it
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def _onnx_to_keras(onnx_path: Path, workspace: _Workspace, *, layout: str) -> tuple[Any, bool]:
    """The Keras model onnx2tf builds, and whether its MaxPool is padded with zeros."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _captured_output(workspace.log):
        try:
            import onnx
            import onnx2tf
        except ImportError as exc:
            from ..errors import BackendMissingError

            raise BackendMissingError(
                f"TFLite export needs onnx2tf and TensorFlow ({exc})", hint="pip install 'shufflekit[tflite]'"
            ) from None
        local = workspace.root / "model.onnx"
        try:
            graph = onnx.load(str(onnx_path), load_external_data=False).graph
        except Exception as exc:  # noqa: BLE001 - protobuf decode errors and the like
            raise ExportError(
                f"{onnx_path.name} is not a readable ONNX file ({_first_line(exc)})",
                hint="the file is truncated or damaged; export it again",
            ) from None
        input_name = graph.input[0].name
        # onnx2tf pads MaxPool explicitly with the float minimum; calibrated to int8, that minimum
        # stretches the tensor's scale until every activation rounds to zero (constant logits; onnx2tf
        # issue #444). Its int8 switch pads with 0 instead, exact where MaxPool follows a ReLU, as in
        # every ShuffleNet, so it is used for every precision and one conversion serves them all. The
        # switch only changes that padding and op names when no model is saved.
        zero_pad_max_pool = _max_pool_inputs_non_negative(graph)
        if not graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value"):
            raise UsageError(DYNAMIC_BATCH_REFUSED, hint=DYNAMIC_BATCH_HINT)

        def convert(strict: bool) -> Any:
            shutil.copyfile(onnx_path, local)  # a fresh copy: onnx2tf renames ops in the file it is given
            try:
                with _InterruptSticks():
                    return onnx2tf.convert(
                        input_onnx_file_path=str(local),
                        output_folder_path=str(workspace.root / "tf"),
                        disable_model_save=True,  # the Keras model is all we need: no SavedModel, no extra files
                        not_use_onnxsim=True,  # already simplified with onnxslim; onnxsim is not installed
                        keep_ncw_or_nchw_or_ncdhw_input_names=[input_name] if layout == "NCHW" else None,
                        output_integer_quantized_tflite=zero_pad_max_pool,
                        disable_strict_mode=not strict,
                        verbosity="error",
                        non_verbose=True,
                    )
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - onnx2tf raises anything, and sys.exit(1) on some errors
                raise _conversion_failed(f"onnx2tf conversion of {onnx_path.name}", exc, workspace.log) from None

        # onnx2tf's strict mode builds and runs a partial model at every Reshape to choose its layout: 6 of
        # its 7.5 s on v2 1.0x at 224. Without it the same graph comes out for most networks (bit-identical
        # logits on v1 and v2), but not for all (SE units drift to 9e-4): the fast conversion is kept only
        # where its outputs equal ONNX Runtime's on one random input, else the strict one is made.
        model = convert(strict=False)
        drift = _keras_drift(model, onnx_path, layout)
        if drift is None or drift > STRICT_MODE_DRIFT:
            log.info("%s: onnx2tf's fast conversion drifts (%s); converting in strict mode", onnx_path.name, drift)
            model = convert(strict=True)
        return model, zero_pad_max_pool


STRICT_MODE_DRIFT = 1e-5  # max abs difference / max abs output: float32 rounding, not a layout mistake


def _keras_drift(model: Any, onnx_path: Path, layout: str) -> float | None:
    """How far the Keras model's outputs are from ONNX Runtime's on one random input, relative to the
    outputs' size; None when they cannot be compared (then the strict conversion is made)."""
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        given = session.get_inputs()[0]
        x = np.random.default_rng(0).standard_normal([int(d) for d in given.shape]).astype(np.float32)
        want = session.run(None, {given.name: x})[0]
        fed = x.transpose(0, 2, 3, 1) if layout == "NHWC" and x.ndim == 4 else x
        got = np.asarray(model(fed))
        if got.shape != want.shape and got.ndim == 4:
            got = got.transpose(0, 3, 1, 2)  # a feature-map output comes back NHWC
        if got.shape != want.shape:
            return None
        scale = float(np.abs(want).max()) or 1.0
        return float(np.abs(got - want).max()) / scale
    except Exception:  # noqa: BLE001 - any failure to compare means: take the strict conversion
        return None


def _max_pool_inputs_non_negative(graph: Any) -> bool:
    producers = {out: node for node in graph.node for out in node.output}
    pools = [node for node in graph.node if node.op_type == "MaxPool"]
    return all(
        producers.get(node.input[0]) is not None and producers[node.input[0]].op_type == "Relu" for node in pools
    )


def _concrete_function(model: Any) -> Any:
    import tensorflow as tf

    run = tf.function(
        lambda *inputs: model(inputs),
        input_signature=[tf.TensorSpec(t.shape, t.dtype, name=t.name.split(":")[0]) for t in model.inputs],
    )
    return run.get_concrete_function()


SIGNATURE_KEY = "serving_default"
OUTPUT_NAME = "logits"  # as the ONNX file names its output


def with_signature(blob: bytes) -> bytes:
    """The converted file with the names an app calls it by: a ``serving_default`` signature from
    ``input`` to ``logits`` (``runSignature`` in Kotlin, ``get_signature_runner`` in Python) and the output
    tensor named ``logits``, like the ONNX file. TFLiteConverter's frozen-graph path (taken for the onnx2tf
    model) writes neither; the flatbuffer is otherwise unchanged (same operators, tensors and buffers)."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(blob, 0)
    graph = model.subgraphs[0]
    if model.signatureDefs or len(graph.inputs) != 1 or len(graph.outputs) != 1:
        return blob  # already named, or not a one-in one-out classifier: left as converted
    graph.tensors[graph.outputs[0]].name = OUTPUT_NAME.encode()
    input_name = graph.tensors[graph.inputs[0]].name.decode()
    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = SIGNATURE_KEY, 0
    signature.inputs, signature.outputs = [schema.TensorMapT()], [schema.TensorMapT()]
    signature.inputs[0].name, signature.inputs[0].tensorIndex = input_name, graph.inputs[0]
    signature.outputs[0].name, signature.outputs[0].tensorIndex = OUTPUT_NAME, graph.outputs[0]
    model.signatureDefs = [signature]
    builder = flatbuffers.Builder(len(blob) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _run_converter(
    model: Any,
    concrete: Any,
    target: TFLiteTarget,
    *,
    layout: str,
    calibration: np.ndarray | None,
    per_channel: bool,
    log_path: Path,
) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    # Builtin ops only: a Flex (SELECT_TF_OPS) op would need the Flex delegate, which LiteRT and
    # tflite_runtime on a phone or board do not have. Better to fail here than there.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if target.precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif target.precision == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter._experimental_disable_per_channel = not per_channel
        # Per-channel dense weights make FULLY_CONNECTED version 12, which tflite-runtime 2.14 (the last
        # release, what boards run) cannot load; per-tensor for the one classifier layer costs nothing.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    elif target.precision == "int8":
        assert calibration is not None
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter._experimental_disable_per_channel = not per_channel
        converter.representative_dataset = _representative_dataset(model, calibration, layout)
        io_type = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8}[target.io_dtype]
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    try:
        return with_signature(converter.convert())
    except Exception as exc:  # noqa: BLE001 - TF's converter errors are long; keep the first line
        raise _conversion_failed(f"TFLite {target.precision} conversion", exc, log_path) from None


def _representative_dataset(
    model: Any, calibration: np.ndarray, layout: str
) -> Callable[[], Iterator[list[np.ndarray]]]:
    batch = model.inputs[0].shape[0]
    batch = batch if isinstance(batch, int) and batch > 0 else 1
    data = calibration.transpose(0, 2, 3, 1) if layout == "NHWC" else calibration
    if len(data) < batch:
        raise UsageError(
            f"{len(data)} calibration samples cannot fill one batch of {batch}",
            hint="give at least one batch of calibration images",
        )
    expected = tuple(d for d in model.inputs[0].shape[1:])
    if tuple(data.shape[1:]) != expected:
        raise UsageError(
            f"calibration samples of shape {tuple(calibration.shape[1:])} do not fit the model input",
            hint="calibrate with images at the model's input size",
        )

    def generate() -> Iterator[list[np.ndarray]]:
        for start in range(0, len(data) - batch + 1, batch):
            yield [np.ascontiguousarray(data[start : start + batch], dtype=np.float32)]

    return generate


def _check_calibration(calibration: np.ndarray | None) -> np.ndarray:
    if calibration is None:
        raise UsageError("full-integer int8 needs calibration data", hint="pass calibration images (--data DATA)")
    calibration = np.asarray(calibration)
    if calibration.ndim != 4 or calibration.shape[1] != 3 or len(calibration) == 0:
        raise UsageError(f"calibration data must be N x 3 x H x W model inputs, got shape {calibration.shape}")
    if not np.isfinite(calibration).all():
        raise UsageError("calibration data holds NaN or infinite values")
    return calibration.astype(np.float32, copy=False)


# -- reading a .tflite file ------------------------------------------------------------------------
def _interpreter(path: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # boards: the lean tflite_runtime
        from tflite_runtime.interpreter import Interpreter
    return Interpreter(model_path=str(path))


def read_io_specs(
    path: str | Path, *, layout: str | None = None
) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Input and output specs as the file declares them (names, shapes, dtypes, quantisation).
    ``layout`` is checked against the input's shape and recorded on image inputs."""
    path = Path(path)
    try:
        interpreter = _interpreter(path)
        details_in, details_out = interpreter.get_input_details(), interpreter.get_output_details()
    except Exception as exc:  # noqa: BLE001 - a damaged flatbuffer raises ValueError or RuntimeError
        raise ExportError(
            f"{path.name} is not a loadable TFLite model ({str(exc).splitlines()[0][:120]})",
            hint="the file is truncated or damaged; re-export it",
        ) from None
    inputs = tuple(_spec(d, image=True, layout=layout, path=path) for d in details_in)
    outputs = tuple(_spec(d, image=False, layout=None, path=path) for d in details_out)
    return inputs, outputs


def _spec(detail: Mapping[str, Any], *, image: bool, layout: str | None, path: Path) -> TensorSpec:
    signature = detail.get("shape_signature")
    dims = [int(d) for d in (signature if signature is not None and len(signature) else detail["shape"])]
    shape = tuple("batch" if (i == 0 and d < 0) else d for i, d in enumerate(dims))
    scale, zero_point = detail.get("quantization", (0.0, 0))
    quant = QuantParams(float(scale), int(zero_point)) if scale else None
    spec_layout = None
    if image and len(shape) == 4:
        channels_last = shape[3] == 3
        spec_layout = "NHWC" if channels_last else "NCHW"
        if layout is not None and 3 not in (shape[1], shape[3]):
            spec_layout = layout  # a feature map, not an RGB image (the guideline benchmarks): as asked for
        elif layout is not None and spec_layout != layout:
            raise ExportError(
                f"{path.name} has a {spec_layout} input {shape}, not the {layout} asked for",
                hint="report this as a converter bug",
            )
    return TensorSpec(
        name=str(detail["name"]),
        shape=shape,
        dtype=np.dtype(detail["dtype"]).name,
        layout=spec_layout,
        quantization=quant,
    )


def convert_fp32(request: ConversionRequest) -> Converted:
    """The export's converter: the float32 TFLite file of the exported ONNX file."""
    conversion = convert_to_tflite(
        request.onnx,
        [TFLiteTarget("fp32", request.out)],
        layout=request.layout,
        progress=request.progress,
        optimize=request.optimize,
    )
    result = conversion.results[0]
    return Converted(
        inputs=result.inputs,
        outputs=result.outputs,
        tools=("onnx2tf", "tensorflow", "tf_keras", "onnx"),
        options={**result.options, "batch": request.batch},
    )
