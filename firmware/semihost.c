/* Arm semihosting calls: the operation number goes in r0, a pointer to its argument block in
 * r1, and `bkpt 0xab` traps to the host (Thumb encoding, valid on every M-profile core). */
#include "semihost.h"

#include <string.h>

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_SEEK = 0x0A,
    SYS_FLEN = 0x0C,
    SYS_EXIT = 0x18,
    SYS_EXIT_EXTENDED = 0x20,
};

/* ADP_Stopped_ApplicationExit: a normal exit; SYS_EXIT_EXTENDED adds the status code. */
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int32_t semihost_call(int32_t operation, const void *arguments)
{
    register int32_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = arguments;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int32_t sh_open(const char *path, int32_t mode)
{
    const uint32_t block[3] = {(uint32_t)path, (uint32_t)mode, (uint32_t)strlen(path)};
    return semihost_call(SYS_OPEN, block);
}

int32_t sh_close(int32_t handle)
{
    const uint32_t block[1] = {(uint32_t)handle};
    return semihost_call(SYS_CLOSE, block);
}

int32_t sh_read(int32_t handle, void *buffer, size_t length)
{
    const uint32_t block[3] = {(uint32_t)handle, (uint32_t)buffer, (uint32_t)length};
    return semihost_call(SYS_READ, block);
}

int32_t sh_write(int32_t handle, const void *buffer, size_t length)
{
    const uint32_t block[3] = {(uint32_t)handle, (uint32_t)buffer, (uint32_t)length};
    return semihost_call(SYS_WRITE, block);
}

int32_t sh_file_length(int32_t handle)
{
    const uint32_t block[1] = {(uint32_t)handle};
    return semihost_call(SYS_FLEN, block);
}

int32_t sh_seek(int32_t handle, uint32_t position)
{
    const uint32_t block[2] = {(uint32_t)handle, position};
    return semihost_call(SYS_SEEK, block);
}

void sh_exit(int32_t status)
{
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    semihost_call(SYS_EXIT_EXTENDED, block);
    /* A host without SYS_EXIT_EXTENDED ignores it: fall back to the plain exit, which can
     * only say whether the application stopped normally. */
    semihost_call(SYS_EXIT, (const void *)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT : 0u));
    for (;;) {
    }
}

static int32_t console = -1;

void console_write(const char *text)
{
    if (console < 0) {
        console = sh_open(":tt", SH_MODE_WRITE);
    }
    sh_write(console, text, strlen(text));
}
