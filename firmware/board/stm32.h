/* What the STM32 families here share: the GPIO port layout, the AHB/APB prescaler
 * encodings, and the second-generation USART used by every family but the STM32F4. */
#ifndef ARIEL_STM32_H
#define ARIEL_STM32_H

#include "board.h"

/* GPIO port registers, the same on the STM32F4 (RM0090 'GPIO registers'), F7 (RM0385), L4+
 * (RM0432), G0 (RM0444) and H7 (RM0433, RM0455): MODER at 0x00, two bits per pin (10 =
 * alternate function); AFRL at 0x20 (pins 0-7) and AFRH at 0x24 (pins 8-15), four bits
 * per pin. */
#define GPIO_MODER 0x00u
#define GPIO_MODE_ALTERNATE 2u
#define GPIO_AFRL 0x20u
#define GPIO_AFRH 0x24u

static inline void stm32_pin_alternate(uint32_t port, uint32_t pin, uint32_t function)
{
    const uint32_t afr = port + (pin < 8u ? GPIO_AFRL : GPIO_AFRH);
    const uint32_t shift = 4u * (pin % 8u);
    /* The function first, then the mode, so the pin never drives another function. */
    ARIEL_REG(afr) = (ARIEL_REG(afr) & ~(0xFu << shift)) | (function << shift);
    ARIEL_REG(port + GPIO_MODER) = (ARIEL_REG(port + GPIO_MODER) & ~(3u << (2u * pin)))
                                   | (GPIO_MODE_ALTERNATE << (2u * pin));
}

/* The AHB prescaler field (HPRE; also the STM32H7's D1CPRE): 0xxx = /1, 1000 = /2, 1001 =
 * /4, 1010 = /8, 1011 = /16 (RM0090 RCC_CFGR; the same codes in RM0385, RM0432, RM0444 and
 * RM0433 RCC_D1CFGR). The divisors ariel uses are 1, 2, 4, 8 and 16. */
static inline uint32_t stm32_ahb_code(uint32_t divisor)
{
    switch (divisor) {
    case 2u: return 8u;
    case 4u: return 9u;
    case 8u: return 10u;
    case 16u: return 11u;
    default: return 0u;
    }
}

/* The APB prescaler fields (PPRE1, PPRE2; the STM32H7's D1PPRE, D2PPRE1/2, D3PPRE): 0xx =
 * /1, 100 = /2, 101 = /4, 110 = /8, 111 = /16 (same manuals). */
static inline uint32_t stm32_apb_code(uint32_t divisor)
{
    switch (divisor) {
    case 2u: return 4u;
    case 4u: return 5u;
    case 8u: return 6u;
    case 16u: return 7u;
    default: return 0u;
    }
}

/* Clock the console's TX port and the UART (the board file gives the RCC enable register
 * offsets and bits), then route the TX pin to it. The read back makes the enable take
 * effect before the peripheral is touched (RM0090 and RM0433 note a delay of two bus clocks
 * after an enable). */
static inline void stm32_console_pins(uint32_t rcc_base)
{
    ARIEL_REG(rcc_base + ARIEL_GPIO_RCC_ENR) |= 1u << ARIEL_GPIO_RCC_BIT;
    ARIEL_REG(rcc_base + ARIEL_UART_RCC_ENR) |= 1u << ARIEL_UART_RCC_BIT;
    (void)ARIEL_REG(rcc_base + ARIEL_UART_RCC_ENR);
    stm32_pin_alternate(ARIEL_GPIO_BASE, ARIEL_UART_TX_PIN, ARIEL_UART_AF);
}

/* What board_clock_init reports: the board file's clocks when the set-up went through
 * (`problem` null), else the reset clock the core stayed on (`reset_hz`, named
 * `reset_source`), with the reason. */
static inline void stm32_report_clocks(ariel_clocks_t *clocks, const char *problem,
                                       uint32_t reset_hz, const char *reset_source)
{
    clocks->problem = problem;
    clocks->core_hz = problem ? reset_hz : ARIEL_CLOCK_HZ;
    clocks->uart_hz = problem ? reset_hz : ARIEL_UART_KERNEL_HZ;
    clocks->source = problem ? reset_source : ARIEL_CLOCK_SOURCE;
}

/* The second-generation USART and LPUART (firmware/board/stm32_usart.c). */
void stm32_usart_start(uint32_t kernel_hz);

#endif
