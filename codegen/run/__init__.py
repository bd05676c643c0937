"""Running a build without a board: QEMU (plain and counting), the host runner for generated C,
profiling with the cycle model, and time and energy from a board's figures."""
