/* Numbers on the console, in decimal and hex, for whichever console_write the build links:
 * semihosting (firmware/semihost.c) or the board's UART (firmware/uart_console.c). */
#include <stdint.h>

#include "semihost.h"

void console_write_uint(uint32_t value)
{
    char digits[11];
    int position = (int)sizeof digits - 1;
    digits[position] = '\0';
    do {
        digits[--position] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    console_write(&digits[position]);
}

void console_write_hex(uint32_t value)
{
    char text[11] = "0x";
    for (int i = 0; i < 8; ++i) {
        text[2 + i] = "0123456789abcdef"[(value >> (28 - 4 * i)) & 0xFu];
    }
    text[10] = '\0';
    console_write(text);
}
