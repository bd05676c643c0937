/* Arm semihosting: file and console I/O through the debugger or emulator (QEMU here).
 * Only what the harness needs; see Arm's "Semihosting for AArch32 and AArch64" v2. */
#ifndef ARIEL_SEMIHOST_H
#define ARIEL_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

/* Open modes, as semihosting numbers them (ISO C fopen modes in this order). */
enum {
    SH_MODE_READ_BINARY = 1,
    SH_MODE_UPDATE_BINARY = 3, /* "r+b": an intermittent build rewrites its outputs in place */
    SH_MODE_WRITE = 4,
    SH_MODE_WRITE_BINARY = 5,
};

int32_t sh_open(const char *path, int32_t mode);
int32_t sh_close(int32_t handle);
/* Both return the number of bytes NOT transferred (0 on success), as semihosting does. */
int32_t sh_read(int32_t handle, void *buffer, size_t length);
int32_t sh_write(int32_t handle, const void *buffer, size_t length);
int32_t sh_file_length(int32_t handle);
/* Moves to byte `position` from the start; 0 on success. */
int32_t sh_seek(int32_t handle, uint32_t position);
void sh_exit(int32_t status) __attribute__((noreturn));

/* Console output on the host's standard output (QEMU sends SYS_WRITE0 to stderr instead,
 * so the console is the special file ":tt" opened for writing). */
void console_write(const char *text);
void console_write_uint(uint32_t value);
void console_write_hex(uint32_t value);

#endif
