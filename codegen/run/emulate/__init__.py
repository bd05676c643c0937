"""QEMU: plain runs, runs on an emulated UART, and counting runs with ariel's TCG plugin and the
cycle model of each core."""
