"""The board side: board files, the cross toolchain, firmware projects and their ELF, output
folders, and the stack a build reserves."""
