"""Model registries (Hugging Face Hub, ONNX Model Zoo, …) behind one ``Hub`` interface."""
