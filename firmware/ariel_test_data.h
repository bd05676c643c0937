/* The test input a UART build carries in flash, and the outputs ariel computed for it on the
 * host at build time (model/ariel_test_data.c, generated), for boards with no host to send
 * inputs: firmware/harness_uart.c runs the model on the input and checks its outputs. */
#ifndef ARIEL_TEST_DATA_H
#define ARIEL_TEST_DATA_H

#include <stdint.h>

typedef struct {
    const uint8_t *data; /* the input's bytes as they lie in the arena */
    uint32_t nbytes;
} ariel_test_input_t;

typedef struct {
    const uint8_t *data; /* the expected output's bytes */
    uint32_t nbytes;
    uint32_t is_float32; /* compare as float32 within `tolerance`, else byte for byte */
    float tolerance;
} ariel_test_expected_t;

extern const ariel_test_input_t ariel_test_inputs[];   /* one per model input */
extern const ariel_test_expected_t ariel_test_expected[]; /* one per model output */
extern const char ariel_test_input_source[];           /* where the input came from */

#endif
