/* The console on the second-generation STM32 USART and on the LPUART, which share its
 * register layout (RM0385 'USART registers' for the STM32F7, RM0432 for the L4+ USART and
 * LPUART, RM0444 for the G0, RM0433 and RM0455 for the H7): CR1 at 0x00, BRR at 0x0C, ISR
 * at 0x1C, TDR at 0x28. Transmit only, polled. */
#include "stm32.h"

#define USART_CR1 (ARIEL_UART_BASE + 0x00u)
#define USART_CR1_UE (1u << 0) /* USART enable */
#define USART_CR1_TE (1u << 3) /* transmitter enable */
#define USART_BRR (ARIEL_UART_BASE + 0x0Cu)
#define USART_ISR (ARIEL_UART_BASE + 0x1Cu)
#define USART_ISR_TXE (1u << 7) /* transmit data register empty (TXFNF with a FIFO) */
#define USART_ISR_TC (1u << 6)  /* transmission complete */
#define USART_TDR (ARIEL_UART_BASE + 0x28u)

void stm32_usart_start(uint32_t kernel_hz)
{
    ARIEL_REG(USART_CR1) = 0u;
#if ARIEL_UART_LPUART
    /* LPUART: BRR = 256 * fck / baud (RM0432 'LPUART baud rate generation'); 64-bit
     * because 256 * 120 MHz overflows 32 bits. */
    const uint64_t scaled = (uint64_t)kernel_hz * 256u;
    ARIEL_REG(USART_BRR) = (uint32_t)((scaled + ARIEL_UART_BAUD / 2u) / ARIEL_UART_BAUD);
#else
    /* Oversampling by 16 (CR1.OVER8 = 0): BRR = fck / baud, rounded (RM0385 'USART baud
     * rate generation'). */
    ARIEL_REG(USART_BRR) = (kernel_hz + ARIEL_UART_BAUD / 2u) / ARIEL_UART_BAUD;
#endif
    ARIEL_REG(USART_CR1) = USART_CR1_UE | USART_CR1_TE;
}

static void put(char c)
{
    if (ariel_wait(USART_ISR, USART_ISR_TXE, USART_ISR_TXE)) {
        ARIEL_REG(USART_TDR) = (uint8_t)c;
    }
}

void board_uart_write(const char *data, uint32_t length)
{
    for (uint32_t i = 0; i < length; ++i) {
        put(data[i]);
    }
    (void)ariel_wait(USART_ISR, USART_ISR_TC, USART_ISR_TC);
}
