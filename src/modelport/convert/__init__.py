"""Model type detection, ONNX export, parity checks, optimization and quantization."""
