/* nRF52840 (Product Specification v1.x): the 64 MHz clock from the crystal (HFXO), the
 * flash instruction cache, and the console on UARTE0 with EasyDMA. */
#include "board.h"

/* nRF52840 PS 'Memory' (peripheral instantiation) and the 'CLOCK' registers. */
#define CLOCK_BASE 0x40000000u
#define CLOCK_TASKS_HFCLKSTART (CLOCK_BASE + 0x000u)
#define CLOCK_EVENTS_HFCLKSTARTED (CLOCK_BASE + 0x100u)

/* PS 'NVMC': ICACHECNF at 0x540, CACHEEN bit 0. */
#define NVMC_BASE 0x4001E000u
#define NVMC_ICACHECNF (NVMC_BASE + 0x540u)
#define NVMC_ICACHECNF_CACHEEN 1u

/* PS 'GPIO': port 0 at 0x50000000 (port 1 at 0x50000300), OUTSET at 0x508, DIRSET at
 * 0x518. */
#define GPIO_OUTSET 0x508u
#define GPIO_DIRSET 0x518u

/* PS 'UARTE' registers. */
#define UARTE_TASKS_STARTTX (ARIEL_UART_BASE + 0x008u)
#define UARTE_EVENTS_ENDTX (ARIEL_UART_BASE + 0x120u)
#define UARTE_ENABLE (ARIEL_UART_BASE + 0x500u)
#define UARTE_ENABLE_ENABLED 8u
#define UARTE_PSEL_TXD (ARIEL_UART_BASE + 0x50Cu) /* PIN 4:0, PORT 5, CONNECT 31 (0 = yes) */
#define UARTE_PSEL_RXD (ARIEL_UART_BASE + 0x514u)
#define UARTE_PSEL_DISCONNECTED 0xFFFFFFFFu
#define UARTE_BAUDRATE (ARIEL_UART_BASE + 0x524u)
#define UARTE_TXD_PTR (ARIEL_UART_BASE + 0x544u)
#define UARTE_TXD_MAXCNT (ARIEL_UART_BASE + 0x548u)
#define UARTE_CONFIG (ARIEL_UART_BASE + 0x56Cu) /* 0: no parity, one stop bit, no flow control */

/* PS 'UARTE' BAUDRATE values. */
#if ARIEL_UART_BAUD == 115200
#define UARTE_BAUDRATE_VALUE 0x01D7E000u
#elif ARIEL_UART_BAUD == 9600
#define UARTE_BAUDRATE_VALUE 0x00275000u
#else
#error "UARTE0: no BAUDRATE value for this baud rate"
#endif

#define HFCLK_HZ 64000000u

void board_clock_init(ariel_clocks_t *clocks)
{
    /* The CPU runs at 64 MHz from the internal RC (HFINT) out of reset; the crystal makes the
     * UART's baud rate accurate. */
    ARIEL_REG(CLOCK_EVENTS_HFCLKSTARTED) = 0u;
    ARIEL_REG(CLOCK_TASKS_HFCLKSTART) = 1u;
    const int started = ariel_wait(CLOCK_EVENTS_HFCLKSTARTED, 1u, 1u);
    ARIEL_REG(NVMC_ICACHECNF) = NVMC_ICACHECNF_CACHEEN;
    clocks->core_hz = HFCLK_HZ;
    clocks->uart_hz = HFCLK_HZ;
    clocks->source = started ? ARIEL_CLOCK_SOURCE : "HFINT 64 MHz (internal RC)";
    clocks->problem = started ? 0 : "the 32 MHz crystal did not start (EVENTS_HFCLKSTARTED)";
}

void board_uart_init(uint32_t uart_hz)
{
    (void)uart_hz; /* BAUDRATE is a fixed code for the 16 MHz peripheral clock */
    const uint32_t port = ARIEL_GPIO_BASE + 0x300u * ARIEL_UART_TX_PORT;
    ARIEL_REG(port + GPIO_OUTSET) = 1u << ARIEL_UART_TX_PIN; /* idle high before enabling */
    ARIEL_REG(port + GPIO_DIRSET) = 1u << ARIEL_UART_TX_PIN;
    ARIEL_REG(UARTE_PSEL_TXD) = (ARIEL_UART_TX_PORT << 5) | ARIEL_UART_TX_PIN;
    ARIEL_REG(UARTE_PSEL_RXD) = UARTE_PSEL_DISCONNECTED;
    ARIEL_REG(UARTE_BAUDRATE) = UARTE_BAUDRATE_VALUE;
    ARIEL_REG(UARTE_CONFIG) = 0u;
    ARIEL_REG(UARTE_ENABLE) = UARTE_ENABLE_ENABLED;
}

/* EasyDMA reads from RAM only (PS 'EasyDMA'), so text in flash goes through this buffer. */
static char buffer[64];

void board_uart_write(const char *data, uint32_t length)
{
    while (length > 0u) {
        const uint32_t chunk = length < sizeof buffer ? length : (uint32_t)sizeof buffer;
        for (uint32_t i = 0; i < chunk; ++i) {
            buffer[i] = data[i];
        }
        ARIEL_REG(UARTE_TXD_PTR) = (uint32_t)(uintptr_t)buffer;
        ARIEL_REG(UARTE_TXD_MAXCNT) = chunk;
        ARIEL_REG(UARTE_EVENTS_ENDTX) = 0u;
        ARIEL_REG(UARTE_TASKS_STARTTX) = 1u;
        (void)ariel_wait(UARTE_EVENTS_ENDTX, 1u, 1u);
        data += chunk;
        length -= chunk;
    }
}
