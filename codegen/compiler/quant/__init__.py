"""int8 quantization: calibration, lowering of quantized ONNX models to integer IR, and the
fixed-point arithmetic the integer kernels share.

Integer semantics, decided once (the conventions of TFLite and CMSIS-NN):
- real = scale * (q - zero_point).
- Activations: int8, one scale and zero point per tensor (Tensor.quant, axis None).
- Weights: int8, symmetric (zero point 0), one scale per output channel (Tensor.quant with
  the channel axis).
- Bias: int32 at scale s_in * s_w[c], zero point 0.
- Every integer kernel ends the same way: the int32 accumulator is requantized by a 32-bit
  multiplier and a right shift computed in Python (fixedpoint.quantize_multiplier), the
  output zero point added, the result clamped to the output range and any fused activation
  (codegen.compiler.quant.fixedpoint.requantize; ariel_requantize in firmware/ariel_runtime.h).
- Rounding: one rule everywhere, round half up (toward +infinity) of the exact product, as
  floor((acc * M + 2**(shift - 1)) / 2**shift) in 64-bit integers.
- No float arithmetic inside an integer kernel. Only QuantizeLinear and DequantizeLinear, at
  the model's float boundary, touch floats.
"""
