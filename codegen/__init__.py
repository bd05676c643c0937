"""ariel: ONNX models to firmware for microcontrollers, with an adaptive-resolution dispatcher."""

__version__ = "0.1.0"
