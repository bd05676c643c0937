/* Power cuts on the host: the intermittent harness (firmware/harness_intermittent.c, its
 * main renamed ariel_firmware_main) boots again and again over one NVM array, and power is
 * cut before a chosen word store into NVM. Between two NVM stores a cut leaves the same NVM
 * (RAM is lost either way), so cutting before each store in turn reaches every state a cut
 * at any instruction can leave. After a cut the arena is filled with garbage, the files the
 * firmware had open are closed, and it boots again until it finishes.
 *
 * Usage: host_cuts FROM TO STEP EVERY. First a run without cuts, whose output.bin is the
 * expected one and whose NVM stores are counted (S). Then, for each K in FROM, FROM + STEP,
 * ... up to min(TO, S), a run from empty NVM and no output.bin cut before store K, and after
 * every boot again before its EVERY-th store (0: once only); its output.bin must equal the
 * expected bytes. Prints "stores S cuts C boots B" and returns 0, or names the first K whose
 * outputs differ and returns 1. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ariel_model.h"
#include "semihost.h"

#define NVM_BYTES (1024u * 1024u)
#define MAX_FILES 8
#define MAX_BOOTS 1000000L

uint8_t ariel_nvm_start[NVM_BYTES] __attribute__((aligned(65536)));
uint8_t ariel_nvm_end[1];
extern uint8_t ariel_arena[ARIEL_ARENA_SIZE];
int ariel_firmware_main(void);

static jmp_buf power_cut;
static long budget;
static long stores;
static FILE *files[MAX_FILES];

void ariel_nvm_cut_hook(void)
{
    ++stores;
    if (budget > 0 && --budget == 0) {
        longjmp(power_cut, 1);
    }
}

int32_t sh_open(const char *path, int32_t mode)
{
    static const char *const modes[] = {"r", "rb", "r+", "r+b", "w", "wb"};
    if (strcmp(path, ":tt") == 0) {
        return 0;
    }
    for (int32_t h = 1; h < MAX_FILES; ++h) {
        if (files[h] == NULL) {
            files[h] = fopen(path, modes[mode]);
            return files[h] == NULL ? -1 : h;
        }
    }
    return -1;
}

int32_t sh_close(int32_t handle)
{
    if (handle > 0 && files[handle] != NULL) {
        fclose(files[handle]);
        files[handle] = NULL;
    }
    return 0;
}

int32_t sh_read(int32_t handle, void *buffer, size_t length)
{
    return (int32_t)(length - fread(buffer, 1, length, files[handle]));
}

int32_t sh_write(int32_t handle, const void *buffer, size_t length)
{
    FILE *file = handle == 0 ? stdout : files[handle];
    const int32_t missing = (int32_t)(length - fwrite(buffer, 1, length, file));
    fflush(file);
    return missing;
}

int32_t sh_seek(int32_t handle, uint32_t position)
{
    return fseek(files[handle], (long)position, SEEK_SET) == 0 ? 0 : -1;
}

int32_t sh_file_length(int32_t handle)
{
    const long here = ftell(files[handle]);
    fseek(files[handle], 0, SEEK_END);
    const long length = ftell(files[handle]);
    fseek(files[handle], here, SEEK_SET);
    return (int32_t)length;
}

void console_write(const char *text)
{
    sh_write(0, text, strlen(text));
}

void ariel_report_stack(void)
{
}

static long run(long first, long every)
{
    volatile long boots = 0; /* volatile: it must survive the longjmp of a cut */
    budget = first;
    memset(ariel_nvm_start, 0, sizeof ariel_nvm_start);
    remove("output.bin");
    for (;;) {
        if (setjmp(power_cut) == 0) {
            ++boots;
            const int status = ariel_firmware_main();
            return status == 0 ? boots : -1;
        }
        memset(ariel_arena, 0xA5, sizeof ariel_arena);
        for (int32_t h = 1; h < MAX_FILES; ++h) {
            sh_close(h);
        }
        budget = every;
        if (boots > MAX_BOOTS) {
            return -2;
        }
    }
}

static long read_outputs(uint8_t *into, long capacity)
{
    FILE *file = fopen("output.bin", "rb");
    if (file == NULL) {
        return -1;
    }
    const long length = (long)fread(into, 1, (size_t)capacity, file);
    fclose(file);
    return length;
}

int main(int argc, char **argv)
{
    static uint8_t expected[1 << 16], got[1 << 16];
    if (argc != 5) {
        return 2;
    }
    const long from = atol(argv[1]), to = atol(argv[2]), step = atol(argv[3]);
    const long every = atol(argv[4]);
    if (run(0, 0) != 1) {
        return 2;
    }
    const long total = stores;
    const long length = read_outputs(expected, sizeof expected);
    long cuts = 0, boots = 0;
    for (long k = from; k <= to && k <= total; k += step) {
        const long booted = run(k, every);
        if (booted < 0 || read_outputs(got, sizeof got) != length ||
            memcmp(got, expected, (size_t)length) != 0) {
            printf("cut before store %ld: %s\n", k, booted == -2 ? "no progress" : "outputs differ");
            return 1;
        }
        ++cuts;
        boots += booted;
    }
    printf("stores %ld cuts %ld boots %ld\n", total, cuts, boots);
    return 0;
}
