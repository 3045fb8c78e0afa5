"""Model type detection, ONNX export, parity checks, optimization and quantization."""

import os

# transformers switches to its TensorFlow classes when TensorFlow is importable (the `tf`
# extra installs it) and then demands tf-keras; modelport exports through PyTorch only.
os.environ.setdefault("USE_TF", "0")
# TensorFlow's C++ start-up banner is noise on a command line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
