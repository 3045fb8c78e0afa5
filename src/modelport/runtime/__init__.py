"""ONNX Runtime sessions, execution providers, task pipelines and the modelport.yml spec.

Nothing in this package imports torch or transformers.
"""
