/* Reset and fault handling for Cortex-M: the vector table, stack painting, .data/.bss
 * set-up, FPU enable, and a fault handler that reports where the firmware crashed instead
 * of hanging. */
#include <stdint.h>
#include <string.h>

#include "semihost.h"
#include "stack_usage.h"

/* Linker script symbols (firmware/linker.ld). */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void fault_report(const uint32_t *frame, uint32_t exc_return);
/* A build that counts cycles with SysTick (firmware/board/cycles.c, Cortex-M0+) gives its
 * own handler; elsewhere a SysTick exception is unexpected. */
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

/* Exit status the firmware reports when it faults (the harness uses 1 for bad input). */
#define EXIT_FAULT 3

__attribute__((section(".isr_vector"), used)) static void (*const vector_table[16])(void) = {
    (void (*)(void))(&_estack), /* initial stack pointer */
    Reset_Handler,
    Default_Handler, /* NMI */
    HardFault_Handler,
    HardFault_Handler, /* MemManage (ARMv7-M); reserved on ARMv6-M */
    HardFault_Handler, /* BusFault */
    HardFault_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
};

/* Fill the stack below the stack pointer with ARIEL_STACK_PAINT, so that the deepest use can
 * be read back later. Everything below the stack pointer is free at this point (no handler
 * can run yet), and the stores go through a volatile pointer so that the compiler cannot
 * turn the loop into a call to memset, whose own frame would lie in the area being painted.
 * noinline keeps it a leaf of its own: the stack pointer read here is below every byte in
 * use. */
__attribute__((noinline)) static void paint_stack(void)
{
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (volatile uint32_t *p = &_sstack; p < sp; ++p) {
        *p = ARIEL_STACK_PAINT;
    }
}

uint32_t ariel_stack_size(void)
{
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)&_sstack);
}

/* The stack grows down from _estack: the lowest word no longer holding the paint marks the
 * deepest point reached. */
uint32_t ariel_stack_high_water(void)
{
    const volatile uint32_t *p = &_sstack;
    while (p < &_estack && *p == ARIEL_STACK_PAINT) {
        ++p;
    }
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}

void ariel_report_stack(void)
{
    console_write("ariel: stack high-water ");
    console_write_uint(ariel_stack_high_water());
    console_write(" bytes of ");
    console_write_uint(ariel_stack_size());
    console_write("\n");
}

void Reset_Handler(void)
{
    /* First, before anything else has used the stack below this frame. */
    paint_stack();
#if defined(__ARM_FP)
    /* Grant full access to coprocessors 10 and 11 (the FPU) before any float instruction;
     * the barriers make the change take effect for the instructions that follow. */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    memcpy(&_sdata, &_sidata, (size_t)((uint8_t *)&_edata - (uint8_t *)&_sdata));
    memset(&_sbss, 0, (size_t)((uint8_t *)&_ebss - (uint8_t *)&_sbss));
    sh_exit(main());
}

void Default_Handler(void)
{
    console_write("ariel: unexpected exception ");
    console_write_uint(SCB_ICSR & 0x1FFu);
    console_write("\n");
    /* And how deep the stack went, which says whether it overflowed. */
    ariel_report_stack();
    sh_exit(EXIT_FAULT);
}

/* Pass the stacked exception frame (r0-r3, r12, lr, pc, xpsr) to fault_report; written with
 * ARMv6-M instructions only so it assembles for every Cortex-M. */
__attribute__((naked)) void HardFault_Handler(void)
{
    __asm__ volatile(
        "movs r0, #4\n\t"
        "mov r1, lr\n\t"
        "tst r0, r1\n\t"
        "beq 1f\n\t"
        "mrs r0, psp\n\t"
        "b 2f\n"
        "1:\n\t"
        "mrs r0, msp\n"
        "2:\n\t"
        "ldr r2, =fault_report\n\t"
        "bx r2\n");
}

void fault_report(const uint32_t *frame, uint32_t exc_return)
{
    (void)exc_return;
    console_write("ariel: fault at pc=");
    console_write_hex(frame[6]);
    console_write(" lr=");
    console_write_hex(frame[5]);
    /* Where the core pushed this fault's frame, just below the stack pointer of the code
     * that faulted: at or below _sstack, the stack had run past its end. */
    console_write(" sp=");
    console_write_hex((uint32_t)(uintptr_t)frame);
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__)
    console_write(" cfsr=");
    console_write_hex(SCB_CFSR);
    console_write(" hfsr=");
    console_write_hex(SCB_HFSR);
    console_write(" bfar=");
    console_write_hex(SCB_BFAR);
#endif
    console_write("\n");
    /* And how deep the stack went, which says whether it overflowed. */
    ariel_report_stack();
    sh_exit(EXIT_FAULT);
}
