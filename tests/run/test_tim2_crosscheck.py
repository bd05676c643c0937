"""An independent check of the plugin's counts, with no plugin involved on the firmware's
side: on netduinoplus2 under `-icount shift=0`, each instruction advances QEMU's virtual clock
by 1 ns and TIM2 counts at 1 GHz, so the firmware reads exact instruction counts from TIM2.
The firmware reads TIM2 around a piece of work wrapped in the profiling hooks; the TIM2
difference and the plugin's count for that segment differ by a constant, found here."""

import re

import pytest

from codegen.run.emulate.counting import count_instructions, split_inferences
from codegen.target.boards import get_board
from tests.run.support import build_firmware

pytestmark = pytest.mark.qemu

ICOUNT = ["-icount", "shift=0"]

# TIM2 difference minus the plugin's segment: the hook call before the segment (movs r0 and
# bl, 2 instructions), the end hook's bx lr after it (1), and the second read itself (1: the
# clock a read sees includes the reading instruction, so two reads in a row differ by 1).
CROSSCHECK_CONSTANT = 4
BACK_TO_BACK = 1

FIRMWARE = r"""
#include <stdint.h>
#include "ariel_runtime.h"
#include "semihost.h"

#define TIM2(offset) (*(volatile uint32_t *)(0x40000000u + (offset)))
#define TIM2_CR1 TIM2(0x00)
#define TIM2_EGR TIM2(0x14)
#define TIM2_CNT TIM2(0x24)
#define TIM2_PSC TIM2(0x28)
#define TIM2_ARR TIM2(0x2C)

/* n iterations of 2 instructions, then bx lr: 2n + 1 instructions. */
void spin(uint32_t n);
__asm__(".text\n\t.syntax unified\n\t.thumb\n.global spin\n.thumb_func\nspin:\n"
        "1:\n\tsubs r0, r0, #1\n\tbne 1b\n\tbx lr\n");

/* Compiled work: floating point with loads, and data-dependent branches. */
static float xs[256], ys[256];
static uint32_t keys[64];
volatile float dot_result;

void dot(uint32_t n)
{
    float sum = 0.0f;
    for (uint32_t i = 0; i < n; ++i) {
        sum += xs[i] * ys[i];
    }
    dot_result = sum;
}

void sort(uint32_t n)
{
    for (uint32_t i = 1; i < n; ++i) {
        const uint32_t key = keys[i];
        uint32_t j = i;
        for (; j > 0 && keys[j - 1] > key; --j) {
            keys[j] = keys[j - 1];
        }
        keys[j] = key;
    }
}

/* TIM2 read, hook, work, hook, TIM2 read: all in one asm statement so that the
 * instructions between the reads and outside the hooks are fixed. */
static uint32_t measure(void (*work)(uint32_t), uint32_t argument)
{
    uint32_t t0, t1;
    __asm__ volatile("ldr %[t0], [%[cnt]]\n\t"
                     "movs r0, #0\n\t"
                     "bl ariel_profile_begin\n\t"
                     "mov r0, %[arg]\n\t"
                     "blx %[work]\n\t"
                     "movs r0, #0\n\t"
                     "bl ariel_profile_end\n\t"
                     "ldr %[t1], [%[cnt]]\n\t"
                     : [t0] "=&r"(t0), [t1] "=&r"(t1)
                     : [cnt] "r"(&TIM2_CNT), [arg] "r"(argument), [work] "r"(work)
                     : "r0", "r1", "r2", "r3", "r12", "lr", "s0", "s1", "s2", "s3", "s4",
                       "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15",
                       "cc", "memory");
    return t1 - t0;
}

static uint32_t back_to_back(void)
{
    uint32_t t0, t1;
    __asm__ volatile("ldr %[t0], [%[cnt]]\n\tldr %[t1], [%[cnt]]"
                     : [t0] "=&r"(t0), [t1] "=&r"(t1)
                     : [cnt] "r"(&TIM2_CNT)
                     : "memory");
    return t1 - t0;
}

static void report(uint32_t value)
{
    console_write(" ");
    console_write_uint(value);
}

int main(void)
{
    uint32_t state = 12345u;
    for (uint32_t i = 0; i < 256u; ++i) {
        xs[i] = (float)i * 0.5f;
        ys[i] = 1.0f / (float)(i + 1u);
    }
    for (uint32_t i = 0; i < 64u; ++i) {
        state = state * 1103515245u + 12345u;
        keys[i] = state >> 16;
    }
    /* Free-running at the timer clock (1 GHz in QEMU): no prescaler, full 32-bit period. */
    TIM2_PSC = 0u;
    TIM2_ARR = 0xFFFFFFFFu;
    TIM2_EGR = 1u;
    TIM2_CR1 = 1u;
    console_write("tim2");
    report(back_to_back());
    report(measure(spin, 1u));
    report(measure(spin, 10u));
    report(measure(spin, 100000u));
    report(measure(dot, 3u));
    report(measure(dot, 256u));
    report(measure(sort, 64u));
    report(measure(sort, 64u));
    console_write("\n");
    return 0;
}
"""
WORKS = 7  # measure() calls
SPIN = {0: 1, 1: 10, 2: 100000}  # measure() call -> spin iterations


@pytest.fixture(scope="module")
def board():
    return get_board("netduinoplus2")


@pytest.fixture(scope="module")
def elf(tmp_path_factory, board):
    return build_firmware(tmp_path_factory.mktemp("tim2"), board, FIRMWARE)


def layer_counts(counts) -> list[int]:
    split = split_inferences(counts, [{"index": k} for k in range(WORKS)], 1)
    return [layer.instructions for layer in split.inferences[0].layers]


def tim2_readings(console: str) -> list[int]:
    match = re.search(r"tim2((?: \d+)+)", console)
    assert match, console
    return [int(v) for v in match.group(1).split()]


def test_tim2_and_plugin_agree_up_to_the_read_constant(elf, board, tmp_path):
    counts = count_instructions(board, elf, tmp_path, qemu_args=ICOUNT)
    back_to_back, *deltas = tim2_readings(counts.console)
    assert back_to_back == BACK_TO_BACK
    layers = layer_counts(counts)
    assert [d - n for d, n in zip(deltas, layers, strict=True)] == [CROSSCHECK_CONSTANT] * WORKS
    # The spin loop's count is also known by construction: the begin hook's bx lr, mov r0,
    # blx, 2n + 1 in spin, then movs r0 and bl for the end hook.
    for call, n in SPIN.items():
        assert layers[call] == 2 * n + 6
    # Sorting already sorted keys takes fewer instructions than sorting shuffled ones.
    assert layers[6] < layers[5]


def test_icount_does_not_change_the_counts(elf, board, tmp_path):
    with_icount = count_instructions(board, elf, tmp_path, qemu_args=ICOUNT)
    without = count_instructions(board, elf, tmp_path)
    assert layer_counts(with_icount) == layer_counts(without)
