"""The release folder's README.md, a model card an app team reads first: what the model is, how to
feed it, every file with its size, sha256, parity, accuracy and latency per device, and how to run it
on Android, iOS and in Python. Written from the manifest alone."""

from __future__ import annotations

import json

from ..artifacts import Artifact
from ..metadata import Preprocessing
from ..records import GpuCompatibility
from .tables import DEVICE_COLUMNS, NOISE_NOTE, PEAK_NOTE, artifact_table, device_rows, noise_lines, peak_lines
from .view import ArtifactRow, ReleaseView

_FAMILY = {
    "shufflenet_v2": "ShuffleNet V2 (Ma et al., ECCV 2018): channel split, concat and channel shuffle units",
    "shufflenet_v1": "ShuffleNet (Zhang et al., CVPR 2018): pointwise group convolutions and channel shuffle",
}


def _md_table(columns: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _family(model: str) -> str:
    for prefix, text in _FAMILY.items():
        if model.startswith(prefix):
            return text
    return model


def pick(view: ReleaseView, fmt: str, prefer: tuple[str, ...]) -> ArtifactRow | None:
    """The artifact to show in a platform's example: the first preferred precision that passed parity
    (and the accuracy gate where it ran)."""
    rows = [r for r in view.rows if r.artifact.format == fmt]
    for precision in prefer:
        for row in rows:
            if (
                row.artifact.precision == precision
                and row.parity_passed is not False
                and row.accuracy_passed is not False
            ):
                return row
    return rows[0] if rows else None


def _io_notes(artifact: Artifact) -> str:
    spec = artifact.input
    text = f"`{spec.name}` {list(spec.shape)} {spec.dtype} {spec.layout or ''}".rstrip()
    if spec.quantization is not None:
        q = spec.quantization
        text += f", quantized: q = round(x / {q.scale:.8g}) + {q.zero_point}"
    out = artifact.outputs[0]
    text += f" -> `{out.name}` {list(out.shape)} {out.dtype}"
    if out.quantization is not None:
        q = out.quantization
        text += f" (logits = (q - {q.zero_point}) * {q.scale:.8g})"
    return text


GPU_NOTE = (
    "Mobile GPU delegate, per TFLite file (the TFLite model analyzer, plus any op on a tensor of more than "
    "4 dimensions or a custom op: those run on the CPU)"
)


def gpu_lines(view: ReleaseView) -> list[tuple[str, str]]:
    """(file, line) for each TFLite file: its GPU-delegate summary, as checked on the file as it is now."""
    checked = view.manifest.results(GpuCompatibility)  # fresh only: by the file's sha256
    out = []
    for row in view.rows:
        if row.artifact.format != "tflite":
            continue
        record = checked.get(row.name)
        if row.file_problem is not None:
            line = f"not vouched for: {row.file_problem}"
        elif record is None:
            line = "GPU delegate: not checked (run `shufflekit validate` on the folder)"
        else:
            line = record.summary()
        out.append((row.name, line))
    return out


def write_card(view: ReleaseView) -> str:
    meta = view.meta
    pre = meta.preprocessing
    facts = view.model_facts
    labels = meta.label_names()
    out: list[str] = [*_front_matter(view), f"# {meta.model}: release", ""]
    out.append(f"{_family(meta.model)}; {meta.num_classes} classes, RGB input {pre.input_size.describe()}.")
    details = []
    if facts is not None and facts.params:
        details.append(f"{facts.params / 1e6:.2f}M parameters")
    if facts is not None and facts.mult_adds:
        details.append(f'{facts.mult_adds / 1e6:.1f}M multiply-adds per image (the papers\' "FLOPs")')
    if details:
        out.append(", ".join(details) + ".")
    out += ["", _source_line(view), ""]
    out += ["## Verdict", ""]
    for verdict in view.verdicts():
        out.append(f"- **{verdict.word}** {verdict.headline()}")
        out += [f"  - {reason}" for reason in verdict.reasons()]
    if view.emulated:
        out.append(
            "- Emulated devices: parity and accuracy are the device's own kernels; their latency is the "
            "emulator's and is not shown as the device's speed."
        )
    out.append("")

    out += [
        "## Preprocessing",
        "",
        f"1. Decode to RGB; {_resize_rule(pre)} (bilinear).",
        f"2. Center-crop {pre.input_size} (width x height).",
        "3. Scale to [0, 1] (divide by 255).",
        f"4. Normalize per channel: (x - mean) / std with mean = {list(pre.mean)}, std = {list(pre.std)}.",
        "5. Lay out as each file's input says: ONNX takes NCHW, TFLite NHWC (batch 1).",
        "",
        "Inputs and outputs per file:",
        "",
    ]
    for row in view.rows:
        out.append(f"- `{row.name}`: {_io_notes(row.artifact)}")
    out += ["", "The output is logits; apply softmax for probabilities. Class i is line i+1 of `labels.txt`.", ""]

    out += [
        "## Labels",
        "",
        f"{len(labels)} classes in `labels.txt` (one per line, in output order)"
        + (": " + ", ".join(f"`{label}`" for label in labels) if len(labels) <= 30 else "."),
        "",
    ]

    columns, rows = artifact_table(view, full_sha=True)
    out += ["## Artifacts", "", _md_table(columns, rows), ""]
    out.append(
        "Parity: each file run in its runtime on the stored reference inputs and compared with PyTorch "
        "(tolerances per format and precision; int8 judged by top-1 agreement). "
        + (
            "Accuracy: top-1 on the evaluation data, Δ in points against PyTorch. "
            if view.has_accuracy
            else "Accuracy: not measured (released without --data). "
        )
        + "Latency: median per image over the timed runs, on each device."
    )
    out.append("")
    gpu = gpu_lines(view)
    if gpu:
        out += [f"{GPU_NOTE}:", ""] + [f"- `{name}`: {line}" for name, line in gpu] + [""]
    peaks = peak_lines(view)
    if peaks:
        out += [f"{PEAK_NOTE}:", ""] + [f"- {line}" for line in peaks] + [""]
    if view.devices:
        out += ["## Devices", "", _md_table(DEVICE_COLUMNS, device_rows(view)), ""]
    noisy = noise_lines(view)
    if noisy:
        out += [f"{NOISE_NOTE}:", ""] + [f"- {line}" for line in noisy] + [""]
    notes = view.notes
    if notes:
        out += ["## Notes", ""] + [f"- {line}" for line in notes] + [""]

    out += _how_to_run(view)
    tools = sorted({f"{k} {v}" for row in view.rows for k, v in row.artifact.tools.items()})
    out += [
        "## Provenance",
        "",
        "Everything above is read from `manifest.json` (sha256, sizes, tensor specs, preprocessing, labels, "
        "parity, accuracy, latency per device, lineage, tool versions). `report.html` has the plots. "
        "Rebuild both with `shufflekit report <this folder>`.",
        "",
        "Tools: " + ", ".join(tools) + ".",
        "",
    ]
    return "\n".join(out)


def _source_line(view: ReleaseView) -> str:
    source = view.manifest.source
    training = view.meta.training or {}
    if source.get("kind") == "checkpoint":
        text = f"Weights: checkpoint sha256 `{str(source.get('checkpoint_sha256', ''))[:16]}`"
        if training.get("val_top1") is not None:
            text += (
                f", trained {training.get('epochs', '?')} epochs on {training.get('data', 'its data')} "
                f"(validation top-1 {training['val_top1']:.1f}%)"
            )
        return text + "."
    return (
        "**Weights: random** (no checkpoint; seed {}, with non-trivial BatchNorm statistics): for checking the "
        "toolchain and measuring speed, not for predictions.".format(source.get("seed", "?"))
    )


def _resize_rule(pre: Preprocessing) -> str:
    """Step 1 of the card's preprocessing, in words: for a square the familiar shorter-side rule."""
    box = pre.resize_size
    if box.is_square:
        return f"resize the shorter side to {box.width} px"
    return (
        f"resize, keeping the aspect ratio, to the smallest size that covers {box} (width x height): "
        f"scale by max({box.width} / width, {box.height} / height)"
    )


def _front_matter(view: ReleaseView) -> list[str]:
    """YAML front-matter as Hugging Face model cards carry it (the Hub and other tools read it): what the
    model is, its files and the verdict per device. Strings are JSON-quoted, which YAML reads as they are."""
    meta, facts = view.meta, view.model_facts

    def q(value: object) -> str:
        return json.dumps(str(value))

    lines = [
        "---",
        "library_name: shufflekit",
        "pipeline_tag: image-classification",
        f"tags: [{', '.join(q(t) for t in ('image-classification', 'shufflenet', *sorted({r.artifact.format for r in view.rows})))}]",
        f"model_name: {q(meta.model)}",
        f"num_classes: {meta.num_classes}",
        f"input_size: {{width: {meta.input_size.width}, height: {meta.input_size.height}}}",
        f"weights: {q('checkpoint' if view.manifest.source.get('kind') == 'checkpoint' else 'random')}",
    ]
    if facts is not None and facts.mult_adds:
        lines.append(f"mult_adds: {facts.mult_adds}")
    lines.append("artifacts:")
    lines += [
        f"  - {{file: {q(r.name)}, format: {q(r.artifact.format)}, precision: {q(r.artifact.precision)}, "
        f"sha256: {q(r.artifact.sha256)}}}"
        for r in view.rows
    ]
    lines.append("verdict:")
    lines += [f"  {q(v.device)}: {q(v.word)}" for v in view.verdicts()]
    return [*lines, "---", ""]


def _how_to_run(view: ReleaseView) -> list[str]:
    meta = view.meta
    pre = meta.preprocessing
    mean = ", ".join(f"{v:g}f" for v in pre.mean)
    std = ", ".join(f"{v:g}f" for v in pre.std)
    size, classes = pre.input_size, meta.num_classes
    box = pre.resize_size
    out = ["## How to run it", ""]
    mobile = pick(view, "tflite", ("int8", "fp16", "fp32", "dynamic"))
    python_onnx = pick(view, "onnx", ("fp32", "fp16", "dynamic", "int8"))
    if mobile is not None:
        name = mobile.name
        spec = mobile.artifact.input
        quant = spec.quantization
        if quant is not None:
            low, high = (-128, 127) if spec.dtype == "int8" else (0, 255)
            feed = (
                f"val q = Math.round(v / {quant.scale:.8g}f) + {quant.zero_point}\n"
                f"        input.put(q.coerceIn({low}, {high}).toByte())  // {spec.dtype} input"
            )
            alloc = f"ByteBuffer.allocateDirect({size.width} * {size.height} * 3)"
        else:
            feed = "input.putFloat(v)"
            alloc = f"ByteBuffer.allocateDirect(4 * {size.width} * {size.height} * 3)"
        out += [
            f"### Android (Kotlin, LiteRT / TensorFlow Lite): `{name}`",
            "",
            "Add the LiteRT (or TensorFlow Lite) interpreter dependency to the app, put the .tflite file and "
            "labels.txt in `assets/`, then:",
            "",
            "```kotlin",
            "import android.graphics.Bitmap",
            "import java.nio.ByteBuffer",
            "import java.nio.ByteOrder",
            "import kotlin.math.roundToInt",
            "import org.tensorflow.lite.Interpreter",
            "import org.tensorflow.lite.support.common.FileUtil  // org.tensorflow:tensorflow-lite-support",
            "",
            "// source: the camera frame or photo, a Bitmap",
            f'val model = FileUtil.loadMappedFile(context, "{name}")',
            "val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(4))",
            f"val scale = maxOf({box.width}f / source.width, {box.height}f / source.height)  // cover {box}, aspect kept",
            "val scaled = Bitmap.createScaledBitmap(source, (source.width * scale).roundToInt(), "
            "(source.height * scale).roundToInt(), true)",
            f"val bitmap = Bitmap.createBitmap(scaled, (scaled.width - {size.width}) / 2, "
            f"(scaled.height - {size.height}) / 2, {size.width}, {size.height})  // the center, "
            f"{size.width} wide, {size.height} high",
            f"val mean = floatArrayOf({mean}); val std = floatArrayOf({std})",
            f"val input = {alloc}.order(ByteOrder.nativeOrder())",
            f"for (y in 0 until {size.height}) for (x in 0 until {size.width}) {{",
            "    val p = bitmap.getPixel(x, y)",
            "    val rgb = intArrayOf((p shr 16) and 0xFF, (p shr 8) and 0xFF, p and 0xFF)",
            "    for (c in 0 until 3) {",
            "        val v = (rgb[c] / 255f - mean[c]) / std[c]",
            f"        {feed}",
            "    }",
            "}",
            _kotlin_output(mobile.artifact, classes),
            "```",
            "",
        ]
        out += [
            f"### iOS (Swift, TensorFlowLiteSwift): `{name}`",
            "",
            "```swift",
            "import TensorFlowLite",
            f'let path = Bundle.main.path(forResource: "{name.rsplit(".", 1)[0]}", ofType: "tflite")!',
            "let interpreter = try Interpreter(modelPath: path)",
            "try interpreter.allocateTensors()",
            f"// inputData: {size.height} rows x {size.width} columns x 3 values, row-major RGB, "
            "normalized as in Preprocessing"
            + (f", then quantized to {spec.dtype}" if quant is not None else " (Float32)"),
            "try interpreter.copy(inputData, toInputAt: 0)",
            "try interpreter.invoke()",
            "let output = try interpreter.output(at: 0)",
            _swift_output(mobile.artifact),
            "```",
            "",
        ]
    out += [
        "### Python",
        "",
        "```python",
        "import numpy as np",
        "from PIL import Image",
        "",
        f"MEAN, STD = np.array({list(pre.mean)}, np.float32), np.array({list(pre.std)}, np.float32)",
        "labels = open('labels.txt').read().splitlines()",
        "",
        "def preprocess(path):",
        "    image = Image.open(path).convert('RGB')",
        f"    w, h = image.size  # cover {box} (width x height), aspect kept, as torchvision's Resize",
        f"    size = (max(int({box.height} * w / h), {box.width}), {box.height}) if {box.height} * w >= {box.width} * h "
        f"else ({box.width}, max(int({box.width} * h / w), {box.height}))",
        "    image = image.resize(size, Image.BILINEAR)",
        f"    left, top = round((image.width - {size.width}) / 2), round((image.height - {size.height}) / 2)",
        f"    image = image.crop((left, top, left + {size.width}, top + {size.height}))",
        "    x = (np.asarray(image, np.float32) / 255 - MEAN) / STD",
        "    return x[None]  # NHWC, batch 1",
        "",
    ]
    if python_onnx is not None:
        out += [
            f"# ONNX Runtime (pip install onnxruntime): {python_onnx.name}",
            "import onnxruntime as ort",
            f"session = ort.InferenceSession('{python_onnx.name}', providers=['CPUExecutionProvider'])",
            f"logits = session.run(None, {{'{python_onnx.artifact.input.name}': "
            "preprocess('image.jpg').transpose(0, 3, 1, 2)})[0]",
            "print(labels[int(logits.argmax())])",
            "",
        ]
    if mobile is not None:
        spec = mobile.artifact.input
        out += [
            f"# LiteRT (pip install ai-edge-litert; on boards tflite-runtime): {mobile.name}",
            "from ai_edge_litert.interpreter import Interpreter",
            f"interpreter = Interpreter(model_path='{mobile.name}')",
            "interpreter.allocate_tensors()",
            "inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]",
            "x = preprocess('image.jpg')",
        ]
        if spec.quantization is not None:
            out += [
                "scale, zero = inp['quantization']",
                "x = np.clip(np.round(x / scale) + zero, -128 if inp['dtype'] == np.int8 else 0, "
                "127 if inp['dtype'] == np.int8 else 255).astype(inp['dtype'])",
            ]
        out += [
            "interpreter.set_tensor(inp['index'], x)",
            "interpreter.invoke()",
            "y = interpreter.get_tensor(out['index'])",
        ]
        if mobile.artifact.outputs[0].quantization is not None:
            out += ["scale, zero = out['quantization']", "y = (y.astype(np.float32) - zero) * scale"]
        out += ["print(labels[int(y.argmax())])"]
    out += ["```", ""]
    return out


def _kotlin_output(artifact: Artifact, classes: int) -> str:
    spec = artifact.outputs[0]
    if spec.quantization is None:
        return (
            f"val logits = Array(1) {{ FloatArray({classes}) }}\n"
            "interpreter.run(input, logits)\n"
            "val best = logits[0].indices.maxByOrNull { logits[0][it] }!!  // index into labels.txt"
        )
    q = spec.quantization
    value = "(it.toInt() and 0xFF)" if spec.dtype == "uint8" else "it.toInt()"  # Kotlin's Byte is signed
    return (
        f"val raw = Array(1) {{ ByteArray({classes}) }}\n"
        "interpreter.run(input, raw)\n"
        f"val logits = raw[0].map {{ ({value} - {q.zero_point}) * {q.scale:.8g}f }}\n"
        "val best = logits.indices.maxByOrNull { logits[it] }!!  // index into labels.txt"
    )


def _swift_output(artifact: Artifact) -> str:
    spec = artifact.outputs[0]
    if spec.quantization is None:
        return (
            "let logits = output.data.withUnsafeBytes { Array($0.bindMemory(to: Float32.self)) }\n"
            "let best = logits.indices.max { logits[$0] < logits[$1] }!  // index into labels.txt"
        )
    q = spec.quantization
    return (
        "let raw = [Int8](output.data)\n"
        f"let logits = raw.map {{ (Float32($0) - {q.zero_point}) * {q.scale:.8g} }}\n"
        "let best = logits.indices.max { logits[$0] < logits[$1] }!  // index into labels.txt"
    )


def labels_text(view: ReleaseView) -> str:
    return "\n".join(view.meta.label_names()) + "\n"
