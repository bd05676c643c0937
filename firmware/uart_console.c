/* The console of a UART build (--io uart): what firmware/semihost.h declares for the
 * harness and startup.c, written to the board's UART instead of a debugger. There is no
 * host to exit to: sh_exit prints the status and stops the core. Nothing is written until
 * the harness has started the UART. */
#include <string.h>

#include "board/board.h"
#include "semihost.h"

static int started;

void ariel_console_start(void)
{
    started = 1;
}

/* Lines end in CR LF, as serial terminals expect; readers strip the CR. */
void console_write(const char *text)
{
    if (!started) {
        return;
    }
    const char *line = text;
    for (const char *p = text; *p; ++p) {
        if (*p == '\n') {
            board_uart_write(line, (uint32_t)(p - line));
            board_uart_write("\r\n", 2u);
            line = p + 1;
        }
    }
    board_uart_write(line, (uint32_t)strlen(line));
}

void sh_exit(int32_t status)
{
    console_write("ariel: stopped with status ");
    console_write_uint((uint32_t)status);
    console_write("\n");
    for (;;) {
        __asm__ volatile("wfi");
    }
}
