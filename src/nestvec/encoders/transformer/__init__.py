"""Sentence-transformers folders on two backends: torch (torch_backend.py) and ONNX Runtime
(onnx_backend.py, exported by onnx_export.py). Nothing heavy is imported here: a backend's
module imports its runtime when it loads a model."""
