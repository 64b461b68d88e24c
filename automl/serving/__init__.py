"""Models that ship: distillation into a compact student, and export to ONNX (:mod:`automl.serving.onnx`).
"""
