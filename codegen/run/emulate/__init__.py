"""Running firmware without a board: QEMU (and later instrumented runs)."""
