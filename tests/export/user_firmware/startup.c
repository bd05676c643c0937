/* The test's own start-up: a two-entry vector table, .data copied and .bss zeroed, the FPU
 * enabled, main called and its status handed to QEMU through semihosting. */
#include <stdint.h>
#include <string.h>

extern uint32_t data_load, data_start, data_end, bss_start, bss_end, stack_top;
int main(void);
void reset(void);
void semihost(uint32_t operation, const void *argument);

__attribute__((section(".vectors"), used)) static const void *const vectors[2] = {
    &stack_top, (const void *)reset};

void semihost(uint32_t operation, const void *argument)
{
    register uint32_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}

void reset(void)
{
    memcpy(&data_start, &data_load, (uintptr_t)&data_end - (uintptr_t)&data_start);
    memset(&bss_start, 0, (uintptr_t)&bss_end - (uintptr_t)&bss_start);
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10 and CP11 full access */
    __asm__ volatile("dsb\n isb");
#endif
    const uint32_t status = (uint32_t)main();
    /* SYS_EXIT_EXTENDED: ADP_Stopped_ApplicationExit with main's status. */
    const uint32_t exit_block[2] = {0x20026u, status};
    semihost(0x20u, exit_block);
    for (;;) {
    }
}
