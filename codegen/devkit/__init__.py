"""The real board: `--io uart` firmware, its static ELF check, runs on an emulated UART,
Renode files, and flashing through pyOCD."""
