"""torch -> ONNX -> TFLite, the parity reference, and the release folder that records them.

``export_model`` is the entry point (``pipeline``); ``onnx.export_onnx`` and ``tflite.convert_to_tflite``
are the single steps, reused by quantization. Heavy backends are imported inside the functions.
"""

from .pipeline import ExportOptions, ExportReport, artifact_filename, export_model

__all__ = ["ExportOptions", "ExportReport", "artifact_filename", "export_model"]
