"""From an ONNX file to C text, as pure functions on one ir.Graph: frontend, passes,
quantization, operators, memory plan and emission."""
