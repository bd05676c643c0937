/* ariel runtime: the few types and macros that generated models and the harness share. */
#ifndef ARIEL_RUNTIME_H
#define ARIEL_RUNTIME_H

#include <stdint.h>
#include <string.h>

/* A model input or output: where it lives in the arena and how many bytes it holds. */
typedef struct {
    const char *name;
    uint32_t offset;
    uint32_t nbytes;
} ariel_tensor_t;

/* Layer markers around every kernel call. They compile to nothing unless a profiling
 * build defines ARIEL_PROFILE and provides the two hooks. */
#ifdef ARIEL_PROFILE
void ariel_profile_begin(uint32_t layer);
void ariel_profile_end(uint32_t layer);
#define ARIEL_LAYER_BEGIN(layer) ariel_profile_begin(layer)
#define ARIEL_LAYER_END(layer) ariel_profile_end(layer)
#else
#define ARIEL_LAYER_BEGIN(layer) ((void)0)
#define ARIEL_LAYER_END(layer) ((void)0)
#endif

/* The one rounding rule of integer kernels: floor((value + 2^(shift-1)) / 2^shift), i.e. the
 * exact quotient rounded half up; 1 <= shift <= 62. (GCC's >> on a negative int64_t is an
 * arithmetic shift, which this relies on.) codegen/compiler/quant/fixedpoint.py is its numpy
 * twin. */
static inline int64_t ariel_rounding_shift(int64_t value, int32_t shift)
{
    return (value + ((int64_t)1 << (shift - 1))) >> shift;
}

/* floor(sqrt(v)), exactly, digit by digit (at most 32 steps of shifts and subtractions, no
 * division): the int8 normalizations' one square root per group. Python's math.isqrt is its
 * twin. */
static inline uint64_t ariel_isqrt_u64(uint64_t v)
{
    uint64_t root = 0;
    uint64_t bit = (uint64_t)1 << 62;
    while (bit > v) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (v >= root + bit) {
            v -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return root;
}

/* acc + x * y, the product exact in 64 bits: one SMLAL on Armv7-M and Armv8-M Mainline (GCC
 * multiplies a constant x as unsigned and corrects the sign with two MLAs). */
static inline int64_t ariel_mla64(int64_t acc, int32_t x, int32_t y)
{
#if defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_8M_MAIN__)
    __asm__("smlal %Q0, %R0, %1, %2" : "+r"(acc) : "r"(x), "r"(y));
    return acc;
#else
    return acc + (int64_t)x * y;
#endif
}

/* The output stage every integer kernel ends with: scale the int32 accumulator by
 * multiplier * 2^-shift (both computed at compile time), add the output zero point, clamp
 * to [low, high] (the int8 range narrowed by any fused activation). */
static inline int32_t ariel_requantize(int32_t acc, int32_t multiplier, int32_t shift,
                                       int32_t zero_point, int32_t low, int32_t high)
{
    const int64_t value = ariel_rounding_shift((int64_t)acc * multiplier, shift) + zero_point;
    return (int32_t)(value < low ? low : (value > high ? high : value));
}

/* ----------------------------------------------------------------------------------------
 * Packed kernels: the helpers the Conv, Gemm and MatMul kernels call on weights that
 * codegen/compiler/ops/conv.py and gemm.py re-laid at compile time in the order read here.
 * ------------------------------------------------------------------------------------- */

#define ARIEL_INLINE static inline __attribute__((always_inline))
/* Every kernel stays a function of its own (model.c declares each with this): inlined into
 * the run function, which calls it once, GCC would allocate its registers together with every
 * other kernel's and spill inner-loop values, and its time on that one function grows faster
 * than the number of kernels. */
#define ARIEL_KERNEL static __attribute__((noinline))

/* Which int8 path the kernels compile. ARIEL_DSP is 1 on cores with the DSP extension
 * (__ARM_FEATURE_DSP: Cortex-M4, M7, M33), where two 16 x 16-bit products are summed by one
 * SMLAD; 0 elsewhere (Cortex-M0+, the host), where the plain C loops run. Both paths add the
 * same exact integer products, so they give the same bits. Defining ARIEL_NO_DSP forces the
 * plain path on a DSP core; ARIEL_EMULATE_DSP runs the DSP path anywhere on C twins of the
 * instructions (tests use it on the host). */
#if defined(__ARM_FEATURE_DSP) || defined(__ARM_FEATURE_SAT)
#include <arm_acle.h>
#endif
#if defined(__ARM_FEATURE_DSP) && !defined(ARIEL_NO_DSP)
#define ARIEL_DSP 1
ARIEL_INLINE int32_t ariel_sxtb16(int32_t x) { return __sxtb16(x); }
ARIEL_INLINE int32_t ariel_sxtab16(int32_t a, int32_t x) { return __sxtab16(a, x); }
ARIEL_INLINE int32_t ariel_smlad(int32_t x, int32_t y, int32_t acc) { return __smlad(x, y, acc); }
ARIEL_INLINE int32_t ariel_smlabb(int32_t x, int32_t y, int32_t acc) { return __smlabb(x, y, acc); }
ARIEL_INLINE int32_t ariel_smlatt(int32_t x, int32_t y, int32_t acc) { return __smlatt(x, y, acc); }
ARIEL_INLINE int32_t ariel_smlabt(int32_t x, int32_t y, int32_t acc) { return __smlabt(x, y, acc); }
ARIEL_INLINE int32_t ariel_smlatb(int32_t x, int32_t y, int32_t acc) { return __smlatb(x, y, acc); }
/* SXTB16 of x rotated right by 8 (bytes 1 and 3 widened) and SXTAB16 likewise: one
 * instruction each, the rotation being SXTB16's own operand (GCC 12 keeps a separate ROR
 * before the intrinsic). */
ARIEL_INLINE int32_t ariel_sxtb16_ror8(int32_t x)
{
    int32_t result;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(result) : "r"(x));
    return result;
}
ARIEL_INLINE int32_t ariel_sxtab16_ror8(int32_t a, int32_t x)
{
    int32_t result;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(result) : "r"(a), "r"(x));
    return result;
}
/* The bottom halves of a and b as (bottom of a, bottom of b), and their top halves as
 * (top of a, top of b): PKHBT and PKHTB. */
ARIEL_INLINE int32_t ariel_pack_bottoms(int32_t a, int32_t b)
{
    int32_t result;
    __asm__ volatile("pkhbt %0, %1, %2, lsl #16" : "=r"(result) : "r"(a), "r"(b));
    return result;
}
ARIEL_INLINE int32_t ariel_pack_tops(int32_t a, int32_t b)
{
    int32_t result;
    __asm__ volatile("pkhtb %0, %1, %2, asr #16" : "=r"(result) : "r"(b), "r"(a));
    return result;
}
/* The four signed byte maxima of two words of four int8 values: SSUB8 sets a GE flag for
 * each byte of a whose difference with b's is >= 0, and SEL takes those bytes from a and the
 * others from b. One asm statement, so nothing can come between the flags and their use. */
ARIEL_INLINE int32_t ariel_max_s8x4(int32_t a, int32_t b)
{
    int32_t result;
    __asm__("ssub8 %0, %1, %2\n\t"
            "sel %0, %1, %2"
            : "=&r"(result) : "r"(a), "r"(b) : "cc");
    return result;
}
#elif defined(ARIEL_EMULATE_DSP)
#define ARIEL_DSP 1
/* C twins of the instructions, as the Armv7-M reference manual defines them: halfwords
 * wrap to 16 bits, SMLAD's sum wraps to 32 bits. */
ARIEL_INLINE int32_t ariel_halves(int32_t low, int32_t high)
{
    return (int32_t)(((uint32_t)high << 16) | ((uint32_t)low & 0xFFFFu));
}
ARIEL_INLINE int32_t ariel_bottom(int32_t x) { return (int16_t)(uint16_t)((uint32_t)x & 0xFFFFu); }
ARIEL_INLINE int32_t ariel_top(int32_t x) { return (int16_t)(uint16_t)((uint32_t)x >> 16); }
ARIEL_INLINE int32_t ariel_sxtb16(int32_t x)
{
    return ariel_halves((int8_t)(uint8_t)((uint32_t)x & 0xFFu),
                        (int8_t)(uint8_t)(((uint32_t)x >> 16) & 0xFFu));
}
ARIEL_INLINE int32_t ariel_sxtab16(int32_t a, int32_t x)
{
    const int32_t b = ariel_sxtb16(x);
    return ariel_halves(ariel_bottom(a) + ariel_bottom(b), ariel_top(a) + ariel_top(b));
}
ARIEL_INLINE int32_t ariel_smlad(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(ariel_bottom(x) * ariel_bottom(y))
                     + (uint32_t)(ariel_top(x) * ariel_top(y)));
}
ARIEL_INLINE int32_t ariel_smlabb(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(ariel_bottom(x) * ariel_bottom(y)));
}
ARIEL_INLINE int32_t ariel_smlatt(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(ariel_top(x) * ariel_top(y)));
}
ARIEL_INLINE int32_t ariel_smlabt(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(ariel_bottom(x) * ariel_top(y)));
}
ARIEL_INLINE int32_t ariel_smlatb(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(ariel_top(x) * ariel_bottom(y)));
}
ARIEL_INLINE int32_t ariel_sxtb16_ror8(int32_t x)
{
    return ariel_sxtb16((int32_t)(((uint32_t)x >> 8) | ((uint32_t)x << 24)));
}
ARIEL_INLINE int32_t ariel_sxtab16_ror8(int32_t a, int32_t x)
{
    return ariel_sxtab16(a, (int32_t)(((uint32_t)x >> 8) | ((uint32_t)x << 24)));
}
ARIEL_INLINE int32_t ariel_pack_bottoms(int32_t a, int32_t b)
{
    return ariel_halves(ariel_bottom(a), ariel_bottom(b));
}
ARIEL_INLINE int32_t ariel_pack_tops(int32_t a, int32_t b)
{
    return ariel_halves(ariel_top(a), ariel_top(b));
}
ARIEL_INLINE int32_t ariel_max_s8x4(int32_t a, int32_t b)
{
    uint32_t result = 0;
    for (int32_t bit = 0; bit < 32; bit += 8) {
        const int32_t x = (int8_t)(uint8_t)((uint32_t)a >> bit);
        const int32_t y = (int8_t)(uint8_t)((uint32_t)b >> bit);
        result |= (uint32_t)(uint8_t)(x - y >= 0 ? x : y) << bit;
    }
    return (int32_t)result;
}
#else
#define ARIEL_DSP 0
#endif

/* rint(q) (half to even) confined to [low, high], NaN giving low: the integer part of
 * QuantizeLinear. With a single-precision FPU, VCVTR converts in the FPSCR's rounding mode
 * (to nearest, ties to even, by default) and saturates, so the rest is integer compares
 * without branches. Elsewhere q is confined in float first; then q plus 1.5 * 2^23 lies in
 * [2^23, 2^24], where the floats are the integers, so the addition rounds q and the sum's
 * bit pattern is 0x4B400000 plus that integer (no call to newlib's software rintf). */
ARIEL_INLINE int32_t ariel_rint_clamp(float q, int32_t low, int32_t high)
{
#if defined(__ARM_FP) && (__ARM_FP & 4)
    float converted;
    int32_t value;
    __asm__("vcvtr.s32.f32 %0, %1" : "=t"(converted) : "t"(q));
    memcpy(&value, &converted, sizeof value);
    value = q == q ? value : low;
    value = value < low ? low : value;
    return value > high ? high : value;
#else
    q = q >= (float)low ? q : (float)low;
    q = q <= (float)high ? q : (float)high;
    const float sum = q + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &sum, sizeof bits);
    return bits - 0x4B400000;
#endif
}

#if defined(__ARM_FP) && (__ARM_FP & 4) && defined(__ARM_FEATURE_SAT) && \
    defined(__ARM_FEATURE_DSP)
/* rint(x / scale) for an 8-bit output, exact within +-2^19 and otherwise only its sign kept
 * (NaN as negative), with a multiplication in place of the division (VDIV takes 14 cycles)
 * wherever both give the same integer. p = x * reciprocal4096, where reciprocal4096 is 4096
 * times 1 / scale rounded to float, is 4096 (x * (1 / scale)) rounded: for |x / scale| < 512
 * it lies within 0.375 units of 2^-12 of 4096 times the rounded quotient x / scale (three
 * roundings of 2^-24 relative), and VCVTR adds at most 0.5 more. So unless the 12 fraction
 * bits of rint(p) are 2048, the quotient rounds to the same integer as rint(p) / 4096
 * rounded half up; 2047 to 2049 (a unit to spare each side) and NaN take the division.
 * Beyond 512 both saturate an 8-bit output alike. */
ARIEL_INLINE int32_t ariel_quantize_8bit(float x, float scale, float reciprocal4096)
{
    const float product = x * reciprocal4096;
    float converted;
    int32_t fixed;
    __asm__("vcvtr.s32.f32 %0, %1" : "=t"(converted) : "t"(product));
    memcpy(&fixed, &converted, sizeof fixed);
    if ((uint32_t)((fixed & 4095) - 2047) <= 2u || x != x) {
        return ariel_rint_clamp(x / scale, -(1 << 20), 1 << 20);
    }
    return (fixed >> 12) + ((fixed >> 11) & 1);
}
/* ariel_quantize_8bit plus the zero point, times 4096, for a pass over many values that
 * checks FPSCR's cumulative Invalid Operation flag (IOC, bit 0) after the last: VCVTR sets it
 * for a NaN product (converted to 0 here) and for one beyond int32 (|x / scale| >= 2^19,
 * saturated), and nothing else here can, so wherever the flag stays clear the result r has
 * r >> 12 = ariel_quantize_8bit(x) + zero_point, within +-2^19 (SSAT with ASR #12 then
 * saturates it in one instruction). QADD adds 4096 zero_point + 2048 to VCVTR's result,
 * which rounds half up what >> 12 floors, and saturates instead of wrapping near +-2^31 (the
 * 12 fraction bits are then 4095 or 0, which send it to the division). The division's
 * result is confined to +-2^18 so that shifted it stays in int32: it saturates alike. */
static __attribute__((noinline, cold, unused)) int32_t ariel_quantize_divided(float x,
                                                                              float scale,
                                                                              int32_t zero)
{
    return (ariel_rint_clamp(x / scale, -(1 << 18), 1 << 18) + zero) * 4096;
}
ARIEL_INLINE int32_t ariel_quantize_8bit_fixed(float x, float scale, float reciprocal4096,
                                               int32_t zero, int32_t zero4096_half)
{
    const float product = x * reciprocal4096;
    float converted;
    int32_t fixed;
    __asm__("vcvtr.s32.f32 %0, %1" : "=t"(converted) : "t"(product));
    memcpy(&fixed, &converted, sizeof fixed);
    int32_t sum;
    __asm__("qadd %0, %1, %2" : "=r"(sum) : "r"(fixed), "r"(zero4096_half));
    /* The fraction bits of `fixed` 2047 to 2049 are those of `sum` 4095, 0 and 1. */
    if (__builtin_expect(((uint32_t)sum + 1u) << 20 < (3u << 20), 0)) {
        return ariel_quantize_divided(x, scale, zero);
    }
    return sum;
}
/* The fast pass's step: four floats from *x on (x is advanced past them), each as
 * f = rint(x * reciprocal65536) (one VLDM, four VMULs, four VCVTRs), moved to the core two
 * per VMOV, and v = f + offset by QADD, offset = 65536 zero point + 32768 +
 * ARIEL_QUANTIZE_WINDOW. reciprocal65536 is 65536 times 1 / scale rounded to float, so f is
 * 16 times ariel_quantize_8bit's product: for |x / scale| < 512 within 6 units of 2^-16 of
 * 65536 times the rounded quotient x / scale, 6.5 after VCVTR. So where the low half of v is
 * at least 2 ARIEL_QUANTIZE_WINDOW (32 units), the quotient plus 1/2 lies at least 16 - 6.5
 * units from an integer, and v >> 16 = rint(x / scale) + zero point exactly (beyond 512 both
 * saturate an 8-bit output alike; QADD saturates instead of wrapping; beyond 2^15 VCVTR
 * saturates and raises IOC, which the pass checks). Where the low half is below 32, the rare
 * case, the step returns nonzero and its caller redoes the four the exact way. The four
 * tests are one chain of CMPs in an IT block: `limit` (65536 * 32 - 1) against v << 16, the
 * first v << 16 at most `limit` leaving the carry set. */
#define ARIEL_QUANTIZE_WINDOW 16
ARIEL_INLINE int32_t ariel_quantize_4_fixed16(const float **x, float reciprocal65536,
                                              int32_t offset, int32_t v[4])
{
    const float *p = *x;
    const int32_t limit = ARIEL_QUANTIZE_WINDOW * 2 * 65536 - 1;
    int32_t a, b, c, d, suspect;
    __asm__("vldmia %[p]!, {s0-s3}\n\t"
            "vmul.f32 s0, s0, %[r]\n\t"
            "vmul.f32 s1, s1, %[r]\n\t"
            "vmul.f32 s2, s2, %[r]\n\t"
            "vmul.f32 s3, s3, %[r]\n\t"
            "vcvtr.s32.f32 s0, s0\n\t"
            "vcvtr.s32.f32 s1, s1\n\t"
            "vcvtr.s32.f32 s2, s2\n\t"
            "vcvtr.s32.f32 s3, s3\n\t"
            "vmov %[a], %[b], s0, s1\n\t"
            "vmov %[c], %[d], s2, s3\n\t"
            "qadd %[a], %[a], %[o]\n\t"
            "qadd %[b], %[b], %[o]\n\t"
            "qadd %[c], %[c], %[o]\n\t"
            "qadd %[d], %[d], %[o]\n\t"
            "cmp %[k], %[a], lsl #16\n\t"
            "ittt lo\n\t"
            "cmplo %[k], %[b], lsl #16\n\t"
            "cmplo %[k], %[c], lsl #16\n\t"
            "cmplo %[k], %[d], lsl #16"
            : [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d), [p] "+r"(p),
              "=@cchs"(suspect)
            : [r] "t"(reciprocal65536), [o] "r"(offset), [k] "r"(limit),
              "m"(*(const float(*)[4])p)
            : "s0", "s1", "s2", "s3");
    *x = p;
    v[0] = a;
    v[1] = b;
    v[2] = c;
    v[3] = d;
    return suspect;
}
/* ariel_quantize_4_fixed16 for three channel planes at once, where an int8 output interleaves
 * them (NCHW floats to NHWC bytes, an RGB input): four or eight floats from each of *x0, *x1
 * and *x2 (each advanced past them) become the bytes of four or eight pixels at y, a word
 * store for four bytes where byte stores would take four. offset = 65536 (zero point + 128)
 * + 32768 + ARIEL_QUANTIZE_WINDOW: v >> 16 is the output plus 128, exact on the same terms
 * as there. PKHTB takes two values' upper halves into one register (bytes 0 and 2 of a word,
 * or 1 and 3), USAT16 saturates both to 0..255 (their upper bytes zero), ORR with a shift of
 * 8 packs the word and EOR takes 128 back off every byte. The near-half test is
 * ariel_quantize_4_fixed16's, one chain of CMPs in IT blocks of four (nothing between them
 * sets the flags); nonzero: the caller redoes the pixels the exact way (the words are stored
 * either way). Eight pixels a step take one VLDM per plane and one branch where two steps
 * of four take two. */
#define ARIEL_QUANTIZE_MUL4(a, b, c, d)                                                       \
    "vmul.f32 " a ", " a ", %[r]\n\tvmul.f32 " b ", " b ", %[r]\n\t"                         \
    "vmul.f32 " c ", " c ", %[r]\n\tvmul.f32 " d ", " d ", %[r]\n\t"
#define ARIEL_QUANTIZE_CVT4(a, b, c, d)                                                       \
    "vcvtr.s32.f32 " a ", " a "\n\tvcvtr.s32.f32 " b ", " b "\n\t"                           \
    "vcvtr.s32.f32 " c ", " c "\n\tvcvtr.s32.f32 " d ", " d "\n\t"
/* The compare chain's start: the first step's CMP, or a later step's IT and CMPLO. */
#define ARIEL_QUANTIZE_CHAIN_OPEN "cmp %[k], %[a], lsl #16\n\tittt lo\n\t"
#define ARIEL_QUANTIZE_CHAIN_GO_ON "itttt lo\n\tcmplo %[k], %[a], lsl #16\n\t"
/* Four pixels' twelve values in S registers, as pairs "sN, sN+1": pixels 0 and 1 of each
 * channel (c0, c1, c2), then pixels 2 and 3 (c0n, c1n, c2n); the three words stored at y
 * plus at0, at1, at2 bytes. */
#define ARIEL_QUANTIZE_4X3_WORDS(open, c0, c1, c2, c0n, c1n, c2n, at0, at1, at2)             \
    "vmov %[a], %[b], " c0 "\n\t"                                                             \
    "vmov %[c], %[d], " c1 "\n\t"                                                             \
    "vmov %[e], %[f], " c2 "\n\t"                                                             \
    "qadd %[a], %[a], %[o]\n\tqadd %[b], %[b], %[o]\n\tqadd %[c], %[c], %[o]\n\t"            \
    "qadd %[d], %[d], %[o]\n\tqadd %[e], %[e], %[o]\n\tqadd %[f], %[f], %[o]\n\t"            \
    open                                                                                      \
    "cmplo %[k], %[c], lsl #16\n\tcmplo %[k], %[e], lsl #16\n\tcmplo %[k], %[b], lsl #16\n\t" \
    /* word 0: pixel 0's channels 0, 1, 2 and pixel 1's channel 0 */                          \
    "pkhtb %[a], %[e], %[a], asr #16\n\tpkhtb %[c], %[b], %[c], asr #16\n\t"                 \
    "usat16 %[a], #8, %[a]\n\tusat16 %[c], #8, %[c]\n\t"                                      \
    "orr %[a], %[a], %[c], lsl #8\n\teor %[a], %[a], #0x80808080\n\t"                        \
    "str %[a], [%[y], #" at0 "]\n\t"                                                          \
    "vmov %[a], %[b], " c0n "\n\t"                                                            \
    "vmov %[c], %[e], " c1n "\n\t"                                                            \
    "qadd %[a], %[a], %[o]\n\tqadd %[b], %[b], %[o]\n\t"                                      \
    "qadd %[c], %[c], %[o]\n\tqadd %[e], %[e], %[o]\n\t"                                      \
    "itttt lo\n\tcmplo %[k], %[d], lsl #16\n\tcmplo %[k], %[f], lsl #16\n\t"                 \
    "cmplo %[k], %[a], lsl #16\n\tcmplo %[k], %[c], lsl #16\n\t"                             \
    /* word 1: pixel 1's channels 1, 2 and pixel 2's channels 0, 1 */                         \
    "pkhtb %[d], %[a], %[d], asr #16\n\tpkhtb %[f], %[c], %[f], asr #16\n\t"                 \
    "usat16 %[d], #8, %[d]\n\tusat16 %[f], #8, %[f]\n\t"                                      \
    "orr %[d], %[d], %[f], lsl #8\n\teor %[d], %[d], #0x80808080\n\t"                        \
    "str %[d], [%[y], #" at1 "]\n\t"                                                          \
    "vmov %[a], %[c], " c2n "\n\t"                                                            \
    "qadd %[a], %[a], %[o]\n\tqadd %[c], %[c], %[o]\n\t"                                      \
    "itttt lo\n\tcmplo %[k], %[b], lsl #16\n\tcmplo %[k], %[e], lsl #16\n\t"                 \
    "cmplo %[k], %[a], lsl #16\n\tcmplo %[k], %[c], lsl #16\n\t"                             \
    /* word 2: pixel 2's channel 2 and pixel 3's channels 0, 1, 2 */                          \
    "pkhtb %[a], %[e], %[a], asr #16\n\tpkhtb %[b], %[c], %[b], asr #16\n\t"                 \
    "usat16 %[a], #8, %[a]\n\tusat16 %[b], #8, %[b]\n\t"                                      \
    "orr %[a], %[a], %[b], lsl #8\n\teor %[a], %[a], #0x80808080\n\t"                        \
    "str %[a], [%[y], #" at2 "]\n\t"
/* The operands of both steps, `pixels` per plane. */
#define ARIEL_QUANTIZE_PLANES_OPERANDS(pixels)                                                \
    : [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d), [e] "=&r"(e), [f] "=&r"(f),   \
      [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), "=@cchs"(suspect),                        \
      "=m"(*(int8_t(*)[3 * (pixels)])y)                                                      \
    : [y] "r"(y), [r] "t"(reciprocal65536), [o] "r"(offset), [k] "r"(limit),                 \
      "m"(*(const float(*)[pixels])p0), "m"(*(const float(*)[pixels])p1),                    \
      "m"(*(const float(*)[pixels])p2)
#define ARIEL_QUANTIZE_PLANES_STEP(name, pixels, code, ...)                                   \
    ARIEL_INLINE int32_t name(const float **x0, const float **x1, const float **x2, int8_t *y, \
                              float reciprocal65536, int32_t offset)                          \
    {                                                                                         \
        const float *p0 = *x0, *p1 = *x1, *p2 = *x2;                                          \
        const int32_t limit = ARIEL_QUANTIZE_WINDOW * 2 * 65536 - 1;                          \
        int32_t a, b, c, d, e, f, suspect;                                                    \
        __asm__(code ARIEL_QUANTIZE_PLANES_OPERANDS(pixels) : __VA_ARGS__);                   \
        *x0 = p0;                                                                             \
        *x1 = p1;                                                                             \
        *x2 = p2;                                                                             \
        return suspect;                                                                       \
    }
ARIEL_QUANTIZE_PLANES_STEP(
    ariel_quantize_4x3_fixed16, 4,
    "vldmia %[p0]!, {s0-s3}\n\tvldmia %[p1]!, {s4-s7}\n\tvldmia %[p2]!, {s8-s11}\n\t"
    ARIEL_QUANTIZE_MUL4("s0", "s1", "s2", "s3") ARIEL_QUANTIZE_MUL4("s4", "s5", "s6", "s7")
    ARIEL_QUANTIZE_MUL4("s8", "s9", "s10", "s11")
    ARIEL_QUANTIZE_CVT4("s0", "s1", "s2", "s3") ARIEL_QUANTIZE_CVT4("s4", "s5", "s6", "s7")
    ARIEL_QUANTIZE_CVT4("s8", "s9", "s10", "s11")
    ARIEL_QUANTIZE_4X3_WORDS(ARIEL_QUANTIZE_CHAIN_OPEN, "s0, s1", "s4, s5", "s8, s9",
                             "s2, s3", "s6, s7", "s10, s11", "0", "4", "8"),
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11")
ARIEL_QUANTIZE_PLANES_STEP(
    ariel_quantize_8x3_fixed16, 8,
    "vldmia %[p0]!, {s0-s7}\n\tvldmia %[p1]!, {s8-s15}\n\tvldmia %[p2]!, {s16-s23}\n\t"
    ARIEL_QUANTIZE_MUL4("s0", "s1", "s2", "s3") ARIEL_QUANTIZE_MUL4("s4", "s5", "s6", "s7")
    ARIEL_QUANTIZE_MUL4("s8", "s9", "s10", "s11")
    ARIEL_QUANTIZE_MUL4("s12", "s13", "s14", "s15")
    ARIEL_QUANTIZE_MUL4("s16", "s17", "s18", "s19")
    ARIEL_QUANTIZE_MUL4("s20", "s21", "s22", "s23")
    ARIEL_QUANTIZE_CVT4("s0", "s1", "s2", "s3") ARIEL_QUANTIZE_CVT4("s4", "s5", "s6", "s7")
    ARIEL_QUANTIZE_CVT4("s8", "s9", "s10", "s11")
    ARIEL_QUANTIZE_CVT4("s12", "s13", "s14", "s15")
    ARIEL_QUANTIZE_CVT4("s16", "s17", "s18", "s19")
    ARIEL_QUANTIZE_CVT4("s20", "s21", "s22", "s23")
    ARIEL_QUANTIZE_4X3_WORDS(ARIEL_QUANTIZE_CHAIN_OPEN, "s0, s1", "s8, s9", "s16, s17",
                             "s2, s3", "s10, s11", "s18, s19", "0", "4", "8")
    ARIEL_QUANTIZE_4X3_WORDS(ARIEL_QUANTIZE_CHAIN_GO_ON, "s4, s5", "s12, s13", "s20, s21",
                             "s6, s7", "s14, s15", "s22, s23", "12", "16", "20"),
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13",
    "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23")
/* DequantizeLinear's step on FPU cores: the four 8-bit values of `word` as floats at *y on
 * (y is advanced past them), y[k] = (x[k] - zero point) * scale bit for bit as the plain
 * loop computes it. SXTAB or UXTAB (`extend`) adds each byte, extended, to -zero point: an
 * integer within +-255, which VCVT converts exactly (as the plain loop's float subtraction
 * of two such integers is exact), so VMUL rounds once, as there. Two VMOVs carry the four
 * to S registers, one VSTM stores them. */
#define ARIEL_DEQUANTIZE_4(name, extend)                                                      \
    ARIEL_INLINE void name(uint32_t word, int32_t negative_zero, float scale, float **y)     \
    {                                                                                         \
        float *out = *y;                                                                      \
        int32_t a, b, c, d;                                                                   \
        __asm__(extend " %[a], %[z], %[w]\n\t"                                                \
                extend " %[b], %[z], %[w], ror #8\n\t"                                        \
                extend " %[c], %[z], %[w], ror #16\n\t"                                       \
                extend " %[d], %[z], %[w], ror #24\n\t"                                       \
                "vmov s0, s1, %[a], %[b]\n\t"                                                 \
                "vmov s2, s3, %[c], %[d]\n\t"                                                 \
                "vcvt.f32.s32 s0, s0\n\t"                                                     \
                "vcvt.f32.s32 s1, s1\n\t"                                                     \
                "vcvt.f32.s32 s2, s2\n\t"                                                     \
                "vcvt.f32.s32 s3, s3\n\t"                                                     \
                "vmul.f32 s0, s0, %[s]\n\t"                                                   \
                "vmul.f32 s1, s1, %[s]\n\t"                                                   \
                "vmul.f32 s2, s2, %[s]\n\t"                                                   \
                "vmul.f32 s3, s3, %[s]\n\t"                                                   \
                "vstmia %[y]!, {s0-s3}"                                                       \
                : [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d), [y] "+r"(out),    \
                  "=m"(*(float(*)[4])out)                                                     \
                : [w] "r"(word), [z] "r"(negative_zero), [s] "t"(scale)                       \
                : "s0", "s1", "s2", "s3");                                                    \
        *y = out;                                                                             \
    }
ARIEL_DEQUANTIZE_4(ariel_dequantize_4_s8, "sxtab")
ARIEL_DEQUANTIZE_4(ariel_dequantize_4_u8, "uxtab")
/* FPSCR with IOC cleared, before such a pass; the value to restore after it. */
ARIEL_INLINE uint32_t ariel_quantize_pass_begin(void)
{
    uint32_t fpscr;
    __asm__ volatile("vmrs %0, fpscr" : "=r"(fpscr) : : "memory");
    __asm__ volatile("vmsr fpscr, %0" : : "r"(fpscr & ~1u) : "memory");
    return fpscr;
}
/* Whether the pass since ariel_quantize_pass_begin met a NaN or a value beyond int32 (then
 * its results are not all exact), FPSCR restored to `saved` either way. */
ARIEL_INLINE int32_t ariel_quantize_pass_invalid(uint32_t saved)
{
    uint32_t fpscr;
    __asm__ volatile("vmrs %0, fpscr" : "=r"(fpscr) : : "memory");
    __asm__ volatile("vmsr fpscr, %0" : : "r"(saved) : "memory");
    return (int32_t)(fpscr & 1u);
}
ARIEL_INLINE int8_t ariel_saturate_s8(int32_t value) { return (int8_t)__ssat(value, 8); }
ARIEL_INLINE uint8_t ariel_saturate_u8(int32_t value) { return (uint8_t)__usat(value, 8); }
#define ARIEL_QUANTIZE_BY_RECIPROCAL 1
#else
#define ARIEL_QUANTIZE_BY_RECIPROCAL 0
#endif

/* The bottom and top halves of a word of two int16 values (weights stored as pairs for SMLAD,
 * read one at a time by the plain C path). */
ARIEL_INLINE int32_t ariel_bottom16(int32_t word) { return (int16_t)(uint16_t)((uint32_t)word & 0xFFFFu); }
ARIEL_INLINE int32_t ariel_top16(int32_t word) { return (int16_t)(uint16_t)((uint32_t)word >> 16); }

/* The word of int16 pairs (bottom, top) SMLAD reads: bottom in bits 0-15, top in 16-31. */
ARIEL_INLINE int32_t ariel_pair_s16(int32_t bottom, int32_t top)
{
#if defined(__ARM_FEATURE_DSP) && !defined(ARIEL_NO_DSP)
    return ariel_pack_bottoms(bottom, top); /* one PKHBT, where GCC gives UXTH and ORR */
#else
    return (int32_t)(((uint32_t)bottom & 0xFFFFu) | ((uint32_t)top << 16));
#endif
}

/* acc plus the products of the bottom halves and of the top halves of x and w: one SMLAD on
 * the DSP extension, two multiplies elsewhere (the same sum; codegen/compiler/ops/gemm.py's
 * bound checks keep it within int32). */
ARIEL_INLINE int32_t ariel_mac_pairs(int32_t x, int32_t w, int32_t acc)
{
#if ARIEL_DSP
    return ariel_smlad(x, w, acc);
#else
    return acc + ariel_bottom16(x) * ariel_bottom16(w) + ariel_top16(x) * ariel_top16(w);
#endif
}

/* acc plus the bottom half of x times the top half of w (SMLABT), and acc plus the top half
 * of x times the bottom half of w (SMLATB): one product of a word of int16 pairs. */
ARIEL_INLINE int32_t ariel_mac_bottom_top(int32_t x, int32_t w, int32_t acc)
{
#if ARIEL_DSP
    return ariel_smlabt(x, w, acc);
#else
    return acc + ariel_bottom16(x) * ariel_top16(w);
#endif
}
ARIEL_INLINE int32_t ariel_mac_top_bottom(int32_t x, int32_t w, int32_t acc)
{
#if ARIEL_DSP
    return ariel_smlatb(x, w, acc);
#else
    return acc + ariel_top16(x) * ariel_bottom16(w);
#endif
}
/* acc plus the bottom halves of x and w multiplied (SMLABB). */
ARIEL_INLINE int32_t ariel_mac_bottoms(int32_t x, int32_t w, int32_t acc)
{
#if ARIEL_DSP
    return ariel_smlabb(x, w, acc);
#else
    return acc + ariel_bottom16(x) * ariel_bottom16(w);
#endif
}

/* Four int8 values as one 32-bit word (a single LDR; Armv7-M loads unaligned words). */
ARIEL_INLINE int32_t ariel_load_s8x4(const int8_t *p)
{
    int32_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

/* Two pixels' words of four int8 channels, a and b, as four words of int16 pairs, one per
 * channel j at to[j * stride]: (a's channel j + offset, b's channel j + offset), offset being
 * minus the input's zero point, or 0 where it is folded into the bias. On the DSP extension
 * two SXTB16 (or SXTAB16) per word and one PKHBT or PKHTB per channel. */
ARIEL_INLINE void ariel_pair_channels_s8x4(int32_t a, int32_t b, int32_t offset, int32_t *to,
                                           int32_t stride)
{
#if ARIEL_DSP
    const int32_t offset2 = (int32_t)(((uint32_t)offset & 0xFFFFu) * 0x10001u);
    const int32_t a02 = offset == 0 ? ariel_sxtb16(a) : ariel_sxtab16(offset2, a);
    const int32_t b02 = offset == 0 ? ariel_sxtb16(b) : ariel_sxtab16(offset2, b);
    const int32_t a13 = offset == 0 ? ariel_sxtb16_ror8(a) : ariel_sxtab16_ror8(offset2, a);
    const int32_t b13 = offset == 0 ? ariel_sxtb16_ror8(b) : ariel_sxtab16_ror8(offset2, b);
    to[0] = ariel_pack_bottoms(a02, b02);
    to[stride] = ariel_pack_bottoms(a13, b13);
    to[2 * stride] = ariel_pack_tops(a02, b02);
    to[3 * stride] = ariel_pack_tops(a13, b13);
#else
    for (int32_t j = 0; j < 4; ++j) {
        to[j * stride] = ariel_pair_s16((int8_t)(uint8_t)((uint32_t)a >> (8 * j)) + offset,
                                        (int8_t)(uint8_t)((uint32_t)b >> (8 * j)) + offset);
    }
#endif
}

/* value clamped to [low, high] (within the int8 range): SSAT where the core has it. */
ARIEL_INLINE int32_t ariel_clamp_s8(int32_t value, int32_t low, int32_t high)
{
#if defined(__ARM_FEATURE_SAT)
    value = __ssat(value, 8);
    if (low > -128) {
        value = value < low ? low : value;
    }
    if (high < 127) {
        value = value > high ? high : value;
    }
    return value;
#else
    return value < low ? low : (value > high ? high : value);
#endif
}

/* The output stage of ariel_requantize for shift >= 33, given shift33 = shift - 33
 * (codegen/compiler/ops/gemm.py chooses it when every shift of a node is 33 or more). The same
 * result in 32-bit steps. With v = acc * multiplier exact (|v| <= 2^62), ariel_requantize
 * returns floor((v + 2^(shift-1)) / 2^shift). For any integer a and t >= 1,
 *   floor((a + 2^(t-1)) / 2^t) = floor((floor(a / 2^(t-1)) + 1) / 2)
 * (write a = q 2^(t-1) + r with 0 <= r < 2^(t-1): both sides are floor((q + 1) / 2), as
 * r / 2^t < 1/2), and floor(v / 2^(shift-1)) = floor(h / 2^shift33) with h = floor(v / 2^32),
 * the high word of the product (floor(floor(a / b) / c) = floor(a / (b c))). So the result
 * is ((h >> shift33) + 1) >> 1, and with the zero point added, ((h >> shift33) + 1 + 2 zp) >> 1.
 * |h| <= 2^30, so nothing leaves int32. On Armv7-M: SMULL, two shifts and an add. */
ARIEL_INLINE int32_t ariel_requantize_hi(int32_t acc, int32_t multiplier, int32_t shift33,
                                         int32_t zero_point, int32_t low, int32_t high)
{
    const int32_t h = (int32_t)(((int64_t)acc * multiplier) >> 32);
    return ariel_clamp_s8(((h >> shift33) + 1 + 2 * zero_point) >> 1, low, high);
}

/* add + the high word of acc * multiplier (floor of the product / 2^32): one SMMLA on a
 * core with the DSP extension. */
ARIEL_INLINE int32_t ariel_mulhi_add(int32_t acc, int32_t multiplier, int32_t add)
{
#if defined(__ARM_FEATURE_DSP)
    int32_t result;
    __asm__("smmla %0, %1, %2, %3" : "=r"(result) : "r"(acc), "r"(multiplier), "r"(add));
    return result;
#else
    return (int32_t)(((int64_t)acc * multiplier) >> 32) + add;
#endif
}

/* ariel_requantize_hi with one shift for every channel, the per-channel part of each shift
 * moved into the filters and bias at compile time (codegen/compiler/ops/common_shift.py
 * derives it): (high word of acc * multiplier + add) >> shift, confined to [low, high], where
 * add = 2^(shift - 1) + zp 2^shift is the rounding and the zero point. With `shift` a
 * constant, SMMLA and one SSAT (its ASR built in). */
ARIEL_INLINE int32_t ariel_requantize_common(int32_t acc, int32_t multiplier, int32_t add,
                                             int32_t shift, int32_t low, int32_t high)
{
    return ariel_clamp_s8(ariel_mulhi_add(acc, multiplier, add) >> shift, low, high);
}

/* The int8 Add or Sub of a and b (codegen/compiler/ops/binary.py, halves): the multipliers
 * split at bit 16, their low halves (L_a, L_b) in `low_mults` and high halves in
 * `high_mults` (bottom, top); y = clamp((H_a a + H_b b + high_start + ((L_a a + L_b b +
 * low_start) >> 16)) >> shift), exactly the one rounding of the 64-bit sum. On a DSP core
 * `ab` holds a and b (bottom, top) and each sum is one SMLAD; the add takes the shifted
 * part as its operand, and the shift and the clamp to the int8 range are one SSAT. */
#if ARIEL_DSP
ARIEL_INLINE int32_t ariel_add_pair_s8(int32_t ab, int32_t low_mults, int32_t high_mults,
                                       int32_t low_start, int32_t high_start, int32_t shift,
                                       int32_t low, int32_t high)
{
    const int32_t part = ariel_smlad(ab, low_mults, low_start);
    const int32_t sum = ariel_smlad(ab, high_mults, high_start) + (part >> 16);
    return ariel_clamp_s8(sum >> shift, low, high);
}
#endif

/* ariel_add_pair_s8 of two int8 values (plain C on cores without the DSP extension). */
ARIEL_INLINE int32_t ariel_add_s8(int32_t a, int32_t b, int32_t low_mults, int32_t high_mults,
                                  int32_t low_start, int32_t high_start, int32_t shift,
                                  int32_t low, int32_t high)
{
#if ARIEL_DSP
    return ariel_add_pair_s8(ariel_pack_bottoms(a, b), low_mults, high_mults, low_start,
                             high_start, shift, low, high);
#else
    const int32_t part = ariel_bottom16(low_mults) * a + ariel_top16(low_mults) * b
                         + low_start;
    const int32_t sum = ariel_bottom16(high_mults) * a + ariel_top16(high_mults) * b
                        + high_start + (part >> 16);
    return ariel_clamp_s8(sum >> shift, low, high);
#endif
}

#if ARIEL_DSP
/* ariel_add_pair_s8 on four elements: a word of each input loaded once and widened by
 * SXTB16 (elements 0 and 2, then 1 and 3 by its rotation), each element's pair packed by
 * PKHBT or PKHTB, the four results stored as bytes. */
ARIEL_INLINE void ariel_add4_s8(int8_t *y, const int8_t *a, const int8_t *b,
                                int32_t low_mults, int32_t high_mults, int32_t low_start,
                                int32_t high_start, int32_t shift, int32_t low, int32_t high)
{
    const int32_t wa = ariel_load_s8x4(a), wb = ariel_load_s8x4(b);
    const int32_t even_a = ariel_sxtb16(wa), even_b = ariel_sxtb16(wb);
    const int32_t odd_a = ariel_sxtb16_ror8(wa), odd_b = ariel_sxtb16_ror8(wb);
    y[0] = (int8_t)ariel_add_pair_s8(ariel_pack_bottoms(even_a, even_b), low_mults,
                                     high_mults, low_start, high_start, shift, low, high);
    y[1] = (int8_t)ariel_add_pair_s8(ariel_pack_bottoms(odd_a, odd_b), low_mults,
                                     high_mults, low_start, high_start, shift, low, high);
    y[2] = (int8_t)ariel_add_pair_s8(ariel_pack_tops(even_a, even_b), low_mults,
                                     high_mults, low_start, high_start, shift, low, high);
    y[3] = (int8_t)ariel_add_pair_s8(ariel_pack_tops(odd_a, odd_b), low_mults,
                                     high_mults, low_start, high_start, shift, low, high);
}
#endif

#if ARIEL_DSP
/* -- int8 on the DSP extension ------------------------------------------------------------
 * A column is a vector of int16 values stored as pairs in 32-bit words, each group of four
 * values x0..x3 as (x0, x2), (x1, x3): the order in which SXTB16 widens a word of four int8
 * values, and so the order in which a packed filter's four int8 weights w0..w3 widen too
 * ((w0, w2) by SXTB16, (w1, w3) by SXTB16 of the word rotated by 8). One SMLAD then adds
 * x0 w0 + x2 w2, the next x1 w1 + x3 w3. Two columns (two output pixels, or two rows of a
 * matrix) are stored interleaved, group by group: column 0's two words, then column 1's,
 * so that one pointer walks both; `stride` is the words from one group to the next (4 in
 * such a pair, 2 in a column alone).
 *
 * No overflow: SMLAD adds its two products to the accumulator exactly and keeps 32 bits.
 * Every value an accumulator holds, here or in the plain path, is its start (the bias)
 * plus the products of some of its taps, in whatever order, and codegen/compiler/ops/gemm.py checks
 * at compile time that |start| + the sum of every |product| fits in int32: with the zero
 * point subtracted, |b| + max|x - zp| sum |w| (accumulator_bound); with it folded into the
 * bias, |b - zp sum w| + 128 sum |w| (fold_zero_point). Padded taps read zp (their product
 * is 0, or zp w, which the folded start cancels) and padding weights are 0. */

ARIEL_INLINE int32_t ariel_ror8(int32_t x)
{
    return (int32_t)(((uint32_t)x >> 8) | ((uint32_t)x << 24));
}

/* col = x + offset for n4 groups of four int8 values (offset: minus x's zero point, or 0
 * when the zero point is folded into the bias). */
ARIEL_INLINE void ariel_widen_s8(int32_t *col, const int8_t *x, int32_t n4, int32_t offset,
                                 int32_t stride)
{
    const int32_t offset2 = (int32_t)(((uint32_t)offset & 0xFFFFu) * 0x10001u);
    /* Two groups per step: both words loaded back to back (the second load pipelined) and
     * half the loop's count and branch. */
    for (int32_t i = 0; i < n4 >> 1; ++i) {
        const int32_t word0 = ariel_load_s8x4(x), word1 = ariel_load_s8x4(x + 4);
        if (offset == 0) {
            col[0] = ariel_sxtb16(word0);
            col[1] = ariel_sxtb16_ror8(word0);
            col[stride] = ariel_sxtb16(word1);
            col[stride + 1] = ariel_sxtb16_ror8(word1);
        } else {
            col[0] = ariel_sxtab16(offset2, word0);
            col[1] = ariel_sxtab16_ror8(offset2, word0);
            col[stride] = ariel_sxtab16(offset2, word1);
            col[stride + 1] = ariel_sxtab16_ror8(offset2, word1);
        }
        col += 2 * stride;
        x += 8;
    }
    if (n4 & 1) {
        const int32_t word = ariel_load_s8x4(x);
        col[0] = offset == 0 ? ariel_sxtb16(word) : ariel_sxtab16(offset2, word);
        col[1] = offset == 0 ? ariel_sxtb16_ror8(word) : ariel_sxtab16_ror8(offset2, word);
    }
}

/* n4 groups of four copies of `value` (what a padded tap reads). */
ARIEL_INLINE void ariel_fill_s16(int32_t *col, int32_t value, int32_t n4, int32_t stride)
{
    const int32_t pair = (int32_t)(((uint32_t)value & 0xFFFFu) * 0x10001u);
    for (int32_t i = 0; i < n4; ++i) {
        col[0] = pair;
        col[1] = pair;
        col += stride;
    }
}

/* One group of four of ariel_dot_2x2_s8's loop in assembly (operands named as there): the
 * four column words and filter 0's word loaded in a row, the pointers advanced by the
 * post-indexed loads placed last in the run (so no load waits on an address), each weight
 * word widened by SXTB16 (its own rotation for the odd halves) and used at once by two
 * SMLAD, filter 1's word loaded in between: 20 cycles per 16 MACs on a Cortex-M4. */
#define ARIEL_DOT_2X2_S8_GROUP \
    "ldr %[x0o], [%[col], #4]\n\t" \
    "ldr %[x1e], [%[col], #8]\n\t" \
    "ldr %[x1o], [%[col], #12]\n\t" \
    "ldr %[word], [%[w]], #4\n\t" \
    "ldr %[x0e], [%[col]], #16\n\t" \
    "sxtb16 %[wide], %[word]\n\t" \
    "smlad %[a00], %[x0e], %[wide], %[a00]\n\t" \
    "smlad %[a10], %[x1e], %[wide], %[a10]\n\t" \
    "sxtb16 %[wide], %[word], ror #8\n\t" \
    "smlad %[a00], %[x0o], %[wide], %[a00]\n\t" \
    "smlad %[a10], %[x1o], %[wide], %[a10]\n\t" \
    "ldr %[word], [%[w]], #4\n\t" \
    "sxtb16 %[wide], %[word]\n\t" \
    "smlad %[a01], %[x0e], %[wide], %[a01]\n\t" \
    "smlad %[a11], %[x1e], %[wide], %[a11]\n\t" \
    "sxtb16 %[wide], %[word], ror #8\n\t" \
    "smlad %[a01], %[x0o], %[wide], %[a01]\n\t" \
    "smlad %[a11], %[x1o], %[wide], %[a11]\n\t"

/* acc[2 r + c] += column r . filter c over k4 groups of four, for a pair of columns and two
 * filters interleaved four weights at a time (w0..w3 of filter 0, then of filter 1). Each
 * weight word is widened once for both columns and each column word loaded once for both
 * filters: 16 MACs in 8 SMLAD, 6 loads, 4 widenings. On a DSP core the loop is assembly,
 * four groups per pass (ARIEL_DOT_2X2_S8_GROUP; 3 cycles per pass for the count), because
 * GCC 12 interleaves the loads with the multiplies (each such load then costs 2 cycles
 * instead of 1, TRM 3.3.2) and pairs some into LDRD (3 cycles, never pipelined). */
ARIEL_INLINE void ariel_dot_2x2_s8(int32_t acc[4], const int32_t *col, const int8_t *w,
                                   int32_t k4)
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
#if defined(__ARM_FEATURE_DSP) && !defined(ARIEL_NO_DSP)
    int32_t passes = k4 >> 2;
    if (passes > 0) {
        int32_t x0e, x0o, x1e, x1o, word, wide;
        __asm__("1:\n\t"
                "subs %[passes], %[passes], #1\n\t"
                ARIEL_DOT_2X2_S8_GROUP ARIEL_DOT_2X2_S8_GROUP
                ARIEL_DOT_2X2_S8_GROUP ARIEL_DOT_2X2_S8_GROUP
                "bne 1b"
                : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
                  [col] "+r"(col), [w] "+r"(w), [passes] "+r"(passes),
                  [x0e] "=&r"(x0e), [x0o] "=&r"(x0o), [x1e] "=&r"(x1e), [x1o] "=&r"(x1o),
                  [word] "=&r"(word), [wide] "=&r"(wide)
                :
                : "cc", "memory");
    }
    for (int32_t i = 0; i < (k4 & 3); ++i) {
#else
    for (int32_t i = 0; i < k4; ++i) {
#endif
        const int32_t w0 = ariel_load_s8x4(w), w1 = ariel_load_s8x4(w + 4);
        const int32_t x0e = col[0], x0o = col[1], x1e = col[2], x1o = col[3];
        const int32_t w0e = ariel_sxtb16(w0), w0o = ariel_sxtb16_ror8(w0);
        a00 = ariel_smlad(x0e, w0e, a00);
        a00 = ariel_smlad(x0o, w0o, a00);
        a10 = ariel_smlad(x1e, w0e, a10);
        a10 = ariel_smlad(x1o, w0o, a10);
        const int32_t w1e = ariel_sxtb16(w1), w1o = ariel_sxtb16_ror8(w1);
        a01 = ariel_smlad(x0e, w1e, a01);
        a01 = ariel_smlad(x0o, w1o, a01);
        a11 = ariel_smlad(x1e, w1e, a11);
        a11 = ariel_smlad(x1o, w1o, a11);
        col += 4;
        w += 8;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* acc[r] += column r . filter, for a pair of columns and one filter. */
ARIEL_INLINE void ariel_dot_2x1_s8(int32_t acc[2], const int32_t *col, const int8_t *w,
                                   int32_t k4)
{
    int32_t a0 = acc[0], a1 = acc[1];
    for (int32_t i = 0; i < k4; ++i) {
        const int32_t w0 = ariel_load_s8x4(w);
        const int32_t we = ariel_sxtb16(w0), wo = ariel_sxtb16_ror8(w0);
        a0 = ariel_smlad(col[0], we, a0);
        a0 = ariel_smlad(col[1], wo, a0);
        a1 = ariel_smlad(col[2], we, a1);
        a1 = ariel_smlad(col[3], wo, a1);
        col += 4;
        w += 4;
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* acc[c] += column . filter c, for one column (`stride` words per group) and two
 * interleaved filters. */
ARIEL_INLINE void ariel_dot_1x2_s8(int32_t acc[2], const int32_t *col, const int8_t *w,
                                   int32_t k4, int32_t stride)
{
    int32_t a0 = acc[0], a1 = acc[1];
    for (int32_t i = 0; i < k4; ++i) {
        const int32_t w0 = ariel_load_s8x4(w), w1 = ariel_load_s8x4(w + 4);
        const int32_t xe = col[0], xo = col[1];
        a0 = ariel_smlad(xe, ariel_sxtb16(w0), a0);
        a0 = ariel_smlad(xo, ariel_sxtb16_ror8(w0), a0);
        a1 = ariel_smlad(xe, ariel_sxtb16(w1), a1);
        a1 = ariel_smlad(xo, ariel_sxtb16_ror8(w1), a1);
        col += stride;
        w += 8;
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* acc[c] += column . filter c for one column (`stride` words per group) and four filters:
 * two interleaved pairs, the second `pair_stride` bytes after the first. Each column word
 * is loaded once for four filters: 16 MACs in 8 SMLAD, 6 loads. */
ARIEL_INLINE void ariel_dot_1x4_s8(int32_t acc[4], const int32_t *col, const int8_t *w,
                                   int32_t pair_stride, int32_t k4, int32_t stride)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *v = w + pair_stride;
    for (int32_t i = 0; i < k4; ++i) {
        const int32_t xe = col[0], xo = col[1];
        const int32_t w0 = ariel_load_s8x4(w), w1 = ariel_load_s8x4(w + 4);
        a0 = ariel_smlad(xe, ariel_sxtb16(w0), a0);
        a0 = ariel_smlad(xo, ariel_sxtb16_ror8(w0), a0);
        a1 = ariel_smlad(xe, ariel_sxtb16(w1), a1);
        a1 = ariel_smlad(xo, ariel_sxtb16_ror8(w1), a1);
        const int32_t v0 = ariel_load_s8x4(v), v1 = ariel_load_s8x4(v + 4);
        a2 = ariel_smlad(xe, ariel_sxtb16(v0), a2);
        a2 = ariel_smlad(xo, ariel_sxtb16_ror8(v0), a2);
        a3 = ariel_smlad(xe, ariel_sxtb16(v1), a3);
        a3 = ariel_smlad(xo, ariel_sxtb16_ror8(v1), a3);
        col += stride;
        w += 8;
        v += 8;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* acc + column . filter, for one column and one filter. */
ARIEL_INLINE int32_t ariel_dot_1x1_s8(int32_t acc, const int32_t *col, const int8_t *w,
                                      int32_t k4, int32_t stride)
{
    for (int32_t i = 0; i < k4; ++i) {
        const int32_t w0 = ariel_load_s8x4(w);
        acc = ariel_smlad(col[0], ariel_sxtb16(w0), acc);
        acc = ariel_smlad(col[1], ariel_sxtb16_ror8(w0), acc);
        col += stride;
        w += 4;
    }
    return acc;
}
/* -- int8 against filters widened in RAM -------------------------------------------------
 * The same products as the helpers above, with the filters widened once (ariel_widen_s8 at
 * stride 2, when a kernel copies them from flash to RAM) instead of at every step: each
 * group of four weights w0..w3 is then two words, (w0, w2) and (w1, w3), and a pair of
 * filters interleaves them group by group (filter 0's two words, then filter 1's). No
 * SXTB16 is left in the loops: every multiply's operands come straight from a load. */

/* ariel_widen_s8 at stride 2 of `count` filters packed as codegen's pack_pairs lays them
 * (pairs interleaved four weights at a time, an odd last filter alone, k4 weights each), each
 * filter f's weights times 2^shifts[f]: the filters of a kernel whose channels share one
 * output-stage shift (codegen/compiler/ops/common_shift.py, which checks that every scaled
 * weight is an int16). Once per inference, so plain C. */
ARIEL_INLINE void ariel_widen_scaled_s8(int32_t *dst, const int8_t *w, const int8_t *shifts,
                                        int32_t count, int32_t k4)
{
    for (int32_t g = 0; g < count * (k4 >> 2); ++g) {
        const int32_t pair = g / (k4 >> 1);
        const int32_t f = 2 * pair + (2 * pair + 1 < count ? g % 2 : 0);
        const int32_t scale = 1 << shifts[f];
        const int8_t *v = &w[4 * g];
        dst[2 * g] = ariel_pair_s16(v[0] * scale, v[2] * scale);
        dst[2 * g + 1] = ariel_pair_s16(v[1] * scale, v[3] * scale);
    }
}

/* One group of four of ariel_dot_2x2_s16's loop in assembly (operands named as there): six
 * loads in a row (7 cycles), four SMLAD, two loads, four SMLAD, the pointers advanced by
 * post-indexed loads placed last in each run so that no load waits on an address: 18
 * cycles per 16 MACs on a Cortex-M4. */
#define ARIEL_DOT_2X2_S16_GROUP \
    "ldr %[x0o], [%[col], #4]\n\t" \
    "ldr %[x1e], [%[col], #8]\n\t" \
    "ldr %[x1o], [%[col], #12]\n\t" \
    "ldr %[wo], [%[w], #4]\n\t" \
    "ldr %[we], [%[w]], #8\n\t" \
    "ldr %[x0e], [%[col]], #16\n\t" \
    "smlad %[a00], %[x0e], %[we], %[a00]\n\t" \
    "smlad %[a10], %[x1e], %[we], %[a10]\n\t" \
    "smlad %[a00], %[x0o], %[wo], %[a00]\n\t" \
    "smlad %[a10], %[x1o], %[wo], %[a10]\n\t" \
    "ldr %[wo], [%[w], #4]\n\t" \
    "ldr %[we], [%[w]], #8\n\t" \
    "smlad %[a01], %[x0e], %[we], %[a01]\n\t" \
    "smlad %[a11], %[x1e], %[we], %[a11]\n\t" \
    "smlad %[a01], %[x0o], %[wo], %[a01]\n\t" \
    "smlad %[a11], %[x1o], %[wo], %[a11]\n\t"

/* acc[2 r + c] += column r . filter c over k4 groups of four, for `pixels` columns interleaved
 * group by group (2 * pixels words per group) and a pair of widened filters (4 words per
 * group): the plain path of ariel_dot_2x2_s16, ariel_dot_3x2_s16 and ariel_dot_4x2_s16
 * (ARIEL_EMULATE_DSP on the host, and -O0 on a DSP core for the 4x2 and 3x2). `pixels` (2 to
 * 4) is a constant where it is inlined; the pragmas unroll the pixel loops (without them
 * -O2 keeps the loop and the accumulators on the stack), so the accumulators stay in
 * registers and each count gets the code of the loop it replaced, written out for it.
 * Returns w past the groups. */
ARIEL_INLINE const int32_t *ariel_dot_nx2_s16_c(int32_t *acc, const int32_t *col,
                                                const int32_t *w, int32_t k4, int32_t pixels)
{
    int32_t a[8];
#pragma GCC unroll 8
    for (int32_t j = 0; j < 2 * pixels; ++j) {
        a[j] = acc[j];
    }
    for (int32_t i = 0; i < k4; ++i) {
#pragma GCC unroll 4
        for (int32_t r = 0; r < pixels; ++r) {
            a[2 * r] = ariel_smlad(col[2 * r], w[0], a[2 * r]);
            a[2 * r] = ariel_smlad(col[2 * r + 1], w[1], a[2 * r]);
            a[2 * r + 1] = ariel_smlad(col[2 * r], w[2], a[2 * r + 1]);
            a[2 * r + 1] = ariel_smlad(col[2 * r + 1], w[3], a[2 * r + 1]);
        }
        col += 2 * pixels;
        w += 4;
    }
#pragma GCC unroll 8
    for (int32_t j = 0; j < 2 * pixels; ++j) {
        acc[j] = a[j];
    }
    return w;
}

/* acc[2 r + c] += column r . filter c over k4 groups of four, for a pair of columns and a
 * pair of widened filters: 16 MACs in 8 SMLAD and 8 loads per group, no SXTB16. On a DSP
 * core the loop is assembly, four groups per pass (ARIEL_DOT_2X2_S16_GROUP; 3 cycles per
 * pass for the count), for the reasons ariel_dot_2x2_s8 gives. */
ARIEL_INLINE void ariel_dot_2x2_s16(int32_t acc[4], const int32_t *col, const int32_t *w,
                                    int32_t k4)
{
#if defined(__ARM_FEATURE_DSP) && !defined(ARIEL_NO_DSP)
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t passes = k4 >> 2;
    if (passes > 0) {
        int32_t x0e, x0o, x1e, x1o, we, wo;
        __asm__("1:\n\t"
                "subs %[passes], %[passes], #1\n\t"
                ARIEL_DOT_2X2_S16_GROUP ARIEL_DOT_2X2_S16_GROUP
                ARIEL_DOT_2X2_S16_GROUP ARIEL_DOT_2X2_S16_GROUP
                "bne 1b"
                : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
                  [col] "+r"(col), [w] "+r"(w), [passes] "+r"(passes),
                  [x0e] "=&r"(x0e), [x0o] "=&r"(x0o), [x1e] "=&r"(x1e), [x1o] "=&r"(x1o),
                  [we] "=&r"(we), [wo] "=&r"(wo)
                :
                : "cc", "memory");
    }
    /* The k4 % 4 groups left: this loop, not ariel_dot_nx2_s16_c, whose copies through acc
     * cost GCC a register move and wider loads around the assembly. */
    for (int32_t i = 0; i < (k4 & 3); ++i) {
        a00 = ariel_smlad(col[0], w[0], a00);
        a10 = ariel_smlad(col[2], w[0], a10);
        a00 = ariel_smlad(col[1], w[1], a00);
        a10 = ariel_smlad(col[3], w[1], a10);
        a01 = ariel_smlad(col[0], w[2], a01);
        a11 = ariel_smlad(col[2], w[2], a11);
        a01 = ariel_smlad(col[1], w[3], a01);
        a11 = ariel_smlad(col[3], w[3], a11);
        col += 4;
        w += 4;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
#else
    ariel_dot_nx2_s16_c(acc, col, w, k4, 2);
#endif
}

/* acc[r] += column r . filter, for a pair of columns and one widened filter. */
ARIEL_INLINE void ariel_dot_2x1_s16(int32_t acc[2], const int32_t *col, const int32_t *w,
                                    int32_t k4)
{
    int32_t a0 = acc[0], a1 = acc[1];
    for (int32_t i = 0; i < k4; ++i) {
        a0 = ariel_smlad(col[0], w[0], a0);
        a0 = ariel_smlad(col[1], w[1], a0);
        a1 = ariel_smlad(col[2], w[0], a1);
        a1 = ariel_smlad(col[3], w[1], a1);
        col += 4;
        w += 2;
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* acc[c] += column . filter c, for one column (`stride` words per group) and a pair of
 * widened filters. */
ARIEL_INLINE void ariel_dot_1x2_s16(int32_t acc[2], const int32_t *col, const int32_t *w,
                                    int32_t k4, int32_t stride)
{
    int32_t a0 = acc[0], a1 = acc[1];
    for (int32_t i = 0; i < k4; ++i) {
        a0 = ariel_smlad(col[0], w[0], a0);
        a0 = ariel_smlad(col[1], w[1], a0);
        a1 = ariel_smlad(col[0], w[2], a1);
        a1 = ariel_smlad(col[1], w[3], a1);
        col += stride;
        w += 4;
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* acc + column . widened filter, for one column. */
ARIEL_INLINE int32_t ariel_dot_1x1_s16(int32_t acc, const int32_t *col, const int32_t *w,
                                       int32_t k4, int32_t stride)
{
    for (int32_t i = 0; i < k4; ++i) {
        acc = ariel_smlad(col[0], w[0], acc);
        acc = ariel_smlad(col[1], w[1], acc);
        col += stride;
        w += 2;
    }
    return acc;
}

/* The second half of a group of ARIEL_DOT_4X2_S16_GROUP (and ..._FIRST): the filters' second
 * words, loaded with negative offsets from the pointers the first half advanced, against
 * the four columns' second words, in two runs of loads each followed by four SMLAD. */
#define ARIEL_DOT_4X2_S16_SECOND_HALF \
    "ldr %[wa], [%[w], #-12]\n\t" \
    "ldr %[wb], [%[w], #-4]\n\t" \
    "ldr %[xa], [%[col], #-28]\n\t" \
    "ldr %[xb], [%[col], #-20]\n\t" \
    "smlad %[a00], %[xa], %[wa], %[a00]\n\t" \
    "smlad %[a01], %[xa], %[wb], %[a01]\n\t" \
    "smlad %[a10], %[xb], %[wa], %[a10]\n\t" \
    "smlad %[a11], %[xb], %[wb], %[a11]\n\t" \
    "ldr %[xa], [%[col], #-12]\n\t" \
    "ldr %[xb], [%[col], #-4]\n\t" \
    "smlad %[a20], %[xa], %[wa], %[a20]\n\t" \
    "smlad %[a21], %[xa], %[wb], %[a21]\n\t" \
    "smlad %[a30], %[xb], %[wa], %[a30]\n\t" \
    "smlad %[a31], %[xb], %[wb], %[a31]\n\t"

/* One group of four of ariel_dot_4x2_s16's loop in assembly (operands named as there): four
 * columns (their words interleaved group by group: column 0's two, column 1's, ...) against
 * one pair of widened filters, in four runs of loads, each followed by four SMLAD that use
 * every value loaded: 12 loads (16 cycles with the runs) and 16 SMLAD per 32 MACs, 32 cycles
 * on a Cortex-M4, where ariel_dot_2x2_s16 takes 36. The first run advances both pointers by
 * post-indexed loads placed last for each base (no later load in the run uses that base), so
 * the other loads take negative offsets. Four registers hold data: the eight accumulators,
 * the two pointers and these take 14, every register but SP and PC. */
#define ARIEL_DOT_4X2_S16_GROUP \
    "ldr %[xb], [%[col], #8]\n\t" \
    "ldr %[xa], [%[col]], #32\n\t" \
    "ldr %[wb], [%[w], #8]\n\t" \
    "ldr %[wa], [%[w]], #16\n\t" \
    "smlad %[a00], %[xa], %[wa], %[a00]\n\t" \
    "smlad %[a01], %[xa], %[wb], %[a01]\n\t" \
    "smlad %[a10], %[xb], %[wa], %[a10]\n\t" \
    "smlad %[a11], %[xb], %[wb], %[a11]\n\t" \
    "ldr %[xa], [%[col], #-16]\n\t" \
    "ldr %[xb], [%[col], #-8]\n\t" \
    "smlad %[a20], %[xa], %[wa], %[a20]\n\t" \
    "smlad %[a21], %[xa], %[wb], %[a21]\n\t" \
    "smlad %[a30], %[xb], %[wa], %[a30]\n\t" \
    "smlad %[a31], %[xb], %[wb], %[a31]\n\t" \
    ARIEL_DOT_4X2_S16_SECOND_HALF

/* The operands of ARIEL_DOT_4X2_S16_GROUP's asm statements. */
#define ARIEL_DOT_4X2_S16_OPERANDS \
    [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), \
    [a20] "+r"(a20), [a21] "+r"(a21), [a30] "+r"(a30), [a31] "+r"(a31), \
    [col] "+r"(col), [w] "+r"(w), \
    [xa] "=&r"(xa), [xb] "=&r"(xb), [wa] "=&r"(wa), [wb] "=&r"(wb)

/* acc[2 r + c] += column r . filter c over k4 groups of four, for four columns interleaved
 * group by group (8 words per group) and a pair of widened filters: each filter word is
 * loaded once for four columns, each column word once for two filters. On a DSP core
 * assembly: the k4 % 4 groups first (two, then one, unrolled), then four groups per pass of
 * a loop that ends when the column pointer reaches its end, read from the stack (no register
 * is left for a count): 5 cycles per 128 MACs. Returns w past the pair's filters, where the
 * asm left it: a caller that steps on from there keeps no copy of w across the asm. */
ARIEL_INLINE const int32_t *ariel_dot_4x2_s16(int32_t acc[8], const int32_t *col,
                                              const int32_t *w, int32_t k4)
{
    /* Unoptimized (-O0), GCC keeps R7 for the frame pointer and 13 registers are not the
     * asm's 14: the C loop there. */
#if defined(__ARM_FEATURE_DSP) && !defined(ARIEL_NO_DSP) && defined(__OPTIMIZE__)
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t a20 = acc[4], a21 = acc[5], a30 = acc[6], a31 = acc[7];
    int32_t xa, xb, wa, wb;
    if (k4 & 2) {
        __asm__(ARIEL_DOT_4X2_S16_GROUP ARIEL_DOT_4X2_S16_GROUP
                : ARIEL_DOT_4X2_S16_OPERANDS : : "memory");
    }
    if (k4 & 1) {
        __asm__(ARIEL_DOT_4X2_S16_GROUP : ARIEL_DOT_4X2_S16_OPERANDS : : "memory");
    }
    /* The passes in one asm statement (between separate statements, one per pass, GCC moved
     * accumulators and pointers from register to register: two or three MOVs a pass). No
     * register is left for the end pointer: it comes in xa, waits pushed on the stack (SP
     * moved by 8, keeping its alignment, and restored: no operand is addressed from SP) and
     * is loaded into xa, which the pass no longer needs, to compare: 5 cycles a pass. */
    const int32_t *const end = col + 8 * (k4 & ~3);
    if (col != end) {
        xa = (int32_t)(intptr_t)end;
        __asm__("str %[xa], [sp, #-8]!\n\t"
                "1:\n\t"
                ARIEL_DOT_4X2_S16_GROUP ARIEL_DOT_4X2_S16_GROUP
                ARIEL_DOT_4X2_S16_GROUP ARIEL_DOT_4X2_S16_GROUP
                "ldr %[xa], [sp]\n\t"
                "cmp %[col], %[xa]\n\t"
                "bne 1b\n\t"
                "add sp, sp, #8"
                : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
                  [a20] "+r"(a20), [a21] "+r"(a21), [a30] "+r"(a30), [a31] "+r"(a31),
                  [col] "+r"(col), [w] "+r"(w),
                  [xa] "+r"(xa), [xb] "=&r"(xb), [wa] "=&r"(wa), [wb] "=&r"(wb)
                : : "cc", "memory");
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
    acc[4] = a20;
    acc[5] = a21;
    acc[6] = a30;
    acc[7] = a31;
    return w;
#else
    return ariel_dot_nx2_s16_c(acc, col, w, k4, 4);
#endif
}

/* One group of four of ariel_dot_3x2_s16's loop in assembly (operands named as there): three
 * columns (interleaved group by group, 6 words a group) against one pair of widened filters,
 * in two runs of five loads (6 cycles each on a Cortex-M4: the post-indexed load placed last
 * for each base, the later loads at negative offsets), each followed by six SMLAD that use
 * every value loaded: 24 cycles per 24 MACs, as ariel_dot_4x2_s16's 32 per 32. Thirteen
 * registers: the six accumulators, both pointers and five data. */
#define ARIEL_DOT_3X2_S16_GROUP \
    "ldr %[wb], [%[w], #8]\n\t" \
    "ldr %[xb], [%[col], #8]\n\t" \
    "ldr %[xc], [%[col], #16]\n\t" \
    "ldr %[wa], [%[w]], #16\n\t" \
    "ldr %[xa], [%[col]], #24\n\t" \
    "smlad %[a00], %[xa], %[wa], %[a00]\n\t" \
    "smlad %[a01], %[xa], %[wb], %[a01]\n\t" \
    "smlad %[a10], %[xb], %[wa], %[a10]\n\t" \
    "smlad %[a11], %[xb], %[wb], %[a11]\n\t" \
    "smlad %[a20], %[xc], %[wa], %[a20]\n\t" \
    "smlad %[a21], %[xc], %[wb], %[a21]\n\t" \
    "ldr %[wa], [%[w], #-12]\n\t" \
    "ldr %[wb], [%[w], #-4]\n\t" \
    "ldr %[xa], [%[col], #-20]\n\t" \
    "ldr %[xb], [%[col], #-12]\n\t" \
    "ldr %[xc], [%[col], #-4]\n\t" \
    "smlad %[a00], %[xa], %[wa], %[a00]\n\t" \
    "smlad %[a01], %[xa], %[wb], %[a01]\n\t" \
    "smlad %[a10], %[xb], %[wa], %[a10]\n\t" \
    "smlad %[a11], %[xb], %[wb], %[a11]\n\t" \
    "smlad %[a20], %[xc], %[wa], %[a20]\n\t" \
    "smlad %[a21], %[xc], %[wb], %[a21]\n\t"

/* The operands of ARIEL_DOT_3X2_S16_GROUP's asm statements. */
#define ARIEL_DOT_3X2_S16_OPERANDS \
    [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), \
    [a20] "+r"(a20), [a21] "+r"(a21), [col] "+r"(col), [w] "+r"(w), \
    [xa] "=&r"(xa), [xb] "=&r"(xb), [xc] "=&r"(xc), [wa] "=&r"(wa), [wb] "=&r"(wb)

/* acc[2 r + c] += column r . filter c over k4 groups of four, for three columns interleaved
 * group by group (6 words per group) and a pair of widened filters: ariel_dot_4x2_s16 for the
 * pixels a kernel's fours leave (three, or nine as three threes), each filter word loaded
 * once for the three where a lone pixel would load it for one. The same structure: the
 * k4 % 4 groups unrolled first, then passes of four. Returns w past the pair's filters. */
ARIEL_INLINE const int32_t *ariel_dot_3x2_s16(int32_t acc[6], const int32_t *col,
                                              const int32_t *w, int32_t k4)
{
#if defined(__ARM_FEATURE_DSP) && !defined(ARIEL_NO_DSP) && defined(__OPTIMIZE__)
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t a20 = acc[4], a21 = acc[5];
    int32_t xa, xb, xc, wa, wb;
    if (k4 & 2) {
        __asm__(ARIEL_DOT_3X2_S16_GROUP ARIEL_DOT_3X2_S16_GROUP
                : ARIEL_DOT_3X2_S16_OPERANDS : : "memory");
    }
    if (k4 & 1) {
        __asm__(ARIEL_DOT_3X2_S16_GROUP : ARIEL_DOT_3X2_S16_OPERANDS : : "memory");
    }
    const int32_t *const end = col + 6 * (k4 & ~3);
    while (col != end) {
        __asm__(ARIEL_DOT_3X2_S16_GROUP ARIEL_DOT_3X2_S16_GROUP
                ARIEL_DOT_3X2_S16_GROUP ARIEL_DOT_3X2_S16_GROUP
                : ARIEL_DOT_3X2_S16_OPERANDS : : "memory");
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
    acc[4] = a20;
    acc[5] = a21;
    return w;
#else
    return ariel_dot_nx2_s16_c(acc, col, w, k4, 3);
#endif
}

/* ARIEL_DOT_4X2_S16_GROUP's first group with the accumulators' starts read first: the pair's
 * two starts (filter 0's, filter 1's) loaded by one LDRD into a00 and a01, then every other
 * accumulator made by its first SMLAD, which adds to a00 or a01 before those take their own
 * (pixel 0 last): no copies of the starts, no accumulator an input. */
#define ARIEL_DOT_4X2_S16_FIRST \
    "ldrd %[a00], %[a01], [%[w]], #8\n\t" \
    "ldr %[xb], [%[col], #8]\n\t" \
    "ldr %[xa], [%[col], #16]\n\t" \
    "ldr %[wb], [%[w], #8]\n\t" \
    "ldr %[wa], [%[w]], #16\n\t" \
    "smlad %[a10], %[xb], %[wa], %[a00]\n\t" \
    "smlad %[a11], %[xb], %[wb], %[a01]\n\t" \
    "smlad %[a20], %[xa], %[wa], %[a00]\n\t" \
    "smlad %[a21], %[xa], %[wb], %[a01]\n\t" \
    "ldr %[xa], [%[col], #24]\n\t" \
    "ldr %[xb], [%[col]], #32\n\t" \
    "smlad %[a30], %[xa], %[wa], %[a00]\n\t" \
    "smlad %[a31], %[xa], %[wb], %[a01]\n\t" \
    "smlad %[a00], %[xb], %[wa], %[a00]\n\t" \
    "smlad %[a01], %[xb], %[wb], %[a01]\n\t" \
    ARIEL_DOT_4X2_S16_SECOND_HALF

/* ariel_dot_4x2_s16 for a pair laid as codegen/compiler/ops/filter_steps.py lays it in RAM:
 * the two filters' starts (w[0], w[1]) then their widened words; acc[2 r + c] is set to
 * filter c's start plus column r . filter c (k4 >= 1). Returns w past the filters. On a DSP
 * core the first group is ARIEL_DOT_4X2_S16_FIRST, which reads the starts itself: a caller
 * that set acc from w would spend an LDRD and six copies on it (every register is the
 * asm's, so the starts cannot wait in registers of their own). */
ARIEL_INLINE const int32_t *ariel_dot_4x2_s16_from(int32_t acc[8], const int32_t *col,
                                                   const int32_t *w, int32_t k4)
{
#if defined(__ARM_FEATURE_DSP) && !defined(ARIEL_NO_DSP) && defined(__OPTIMIZE__)
    int32_t a00, a01, a10, a11, a20, a21, a30, a31, xa, xb, wa, wb;
    __asm__(ARIEL_DOT_4X2_S16_FIRST
            : [a00] "=&r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10), [a11] "=&r"(a11),
              [a20] "=&r"(a20), [a21] "=&r"(a21), [a30] "=&r"(a30), [a31] "=&r"(a31),
              [col] "+r"(col), [w] "+r"(w),
              [xa] "=&r"(xa), [xb] "=&r"(xb), [wa] "=&r"(wa), [wb] "=&r"(wb)
            : : "memory");
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
    acc[4] = a20;
    acc[5] = a21;
    acc[6] = a30;
    acc[7] = a31;
    return ariel_dot_4x2_s16(acc, col, w, k4 - 1);
#else
    for (int32_t r = 0; r < 4; ++r) {
        acc[2 * r] = w[0];
        acc[2 * r + 1] = w[1];
    }
    return ariel_dot_4x2_s16(acc, col, w + 2, k4);
#endif
}

/* One output of ariel_requantize_common in assembly (operands named as in the functions below):
 * SMMLA adds the rounding and zero point to the high word of the product, SSAT shifts and
 * clamps to [-128, 127], STRB stores at out + offset (text: a number or an operand). */
#define ARIEL_STORE_COMMON(acc, mult, offset) \
    "smmla %[" #acc "], %[" #acc "], %[" #mult "], %[add]\n\t" \
    "ssat %[" #acc "], #8, %[" #acc "], asr #%c[shift]\n\t" \
    "strb %[" #acc "], [%[out], #" offset "]\n\t"

/* Whether ariel_store_4x2_common and ariel_store_3x2_common take their assembly: a DSP core,
 * optimized (the offsets and shift must be constants once inlined), the full int8 range
 * (SSAT's alone) and every offset within STRB's immediate (`last`: the last pixel's index). */
#define ARIEL_STORE_COMMON_ASM(shift, low, high, oc, last) \
    (__builtin_constant_p(shift) && __builtin_constant_p(oc) && (low) == -128 && (high) == 127 \
     && (shift) >= 1 && (shift) <= 31 && (last) * (oc) < 4095)

/* out[r * oc + c] = ariel_requantize_common(acc[2 r + c], c ? m1 : m0, add, shift, low,
 * high) for four pixels r by two filters c: the output stage of a step of
 * ariel_dot_4x2_s16's. On a DSP core one asm statement (volatile: its work is the stores, its
 * outputs go unused) of eight SMMLA, SSAT and STRB, the multipliers and out in registers for
 * all eight (left to it, GCC loaded add from the literal pool twice and copied accumulators
 * between registers: 36 instructions where these are 24). */
ARIEL_INLINE void ariel_store_4x2_common(int8_t *out, const int32_t acc[8], int32_t m0,
                                         int32_t m1, int32_t add, int32_t shift, int32_t low,
                                         int32_t high, int32_t oc)
{
#if defined(__ARM_FEATURE_DSP) && !defined(ARIEL_NO_DSP) && defined(__OPTIMIZE__)
    if (ARIEL_STORE_COMMON_ASM(shift, low, high, oc, 3)) {
        int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
        int32_t a20 = acc[4], a21 = acc[5], a30 = acc[6], a31 = acc[7];
        __asm__ volatile(ARIEL_STORE_COMMON(a00, m0, "0") ARIEL_STORE_COMMON(a01, m1, "1")
                ARIEL_STORE_COMMON(a10, m0, "%c[o10]") ARIEL_STORE_COMMON(a11, m1, "%c[o11]")
                ARIEL_STORE_COMMON(a20, m0, "%c[o20]") ARIEL_STORE_COMMON(a21, m1, "%c[o21]")
                ARIEL_STORE_COMMON(a30, m0, "%c[o30]") ARIEL_STORE_COMMON(a31, m1, "%c[o31]")
                : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
                  [a20] "+r"(a20), [a21] "+r"(a21), [a30] "+r"(a30), [a31] "+r"(a31)
                : [out] "r"(out), [m0] "r"(m0), [m1] "r"(m1), [add] "r"(add),
                  [shift] "n"(shift), [o10] "n"(oc),
                  [o11] "n"(oc + 1), [o20] "n"(2 * oc), [o21] "n"(2 * oc + 1),
                  [o30] "n"(3 * oc), [o31] "n"(3 * oc + 1)
                : "memory");
        return;
    }
#endif
    for (int32_t r = 0; r < 4; ++r) {
        out[r * oc] = (int8_t)ariel_requantize_common(acc[2 * r], m0, add, shift, low, high);
        out[r * oc + 1] = (int8_t)ariel_requantize_common(acc[2 * r + 1], m1, add, shift, low,
                                                          high);
    }
}

/* ariel_store_4x2_common for three pixels: the output stage of a step of ariel_dot_3x2_s16's. */
ARIEL_INLINE void ariel_store_3x2_common(int8_t *out, const int32_t acc[6], int32_t m0,
                                         int32_t m1, int32_t add, int32_t shift, int32_t low,
                                         int32_t high, int32_t oc)
{
#if defined(__ARM_FEATURE_DSP) && !defined(ARIEL_NO_DSP) && defined(__OPTIMIZE__)
    if (ARIEL_STORE_COMMON_ASM(shift, low, high, oc, 2)) {
        int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
        int32_t a20 = acc[4], a21 = acc[5];
        __asm__ volatile(ARIEL_STORE_COMMON(a00, m0, "0") ARIEL_STORE_COMMON(a01, m1, "1")
                ARIEL_STORE_COMMON(a10, m0, "%c[o10]") ARIEL_STORE_COMMON(a11, m1, "%c[o11]")
                ARIEL_STORE_COMMON(a20, m0, "%c[o20]") ARIEL_STORE_COMMON(a21, m1, "%c[o21]")
                : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
                  [a20] "+r"(a20), [a21] "+r"(a21)
                : [out] "r"(out), [m0] "r"(m0), [m1] "r"(m1), [add] "r"(add),
                  [shift] "n"(shift), [o10] "n"(oc),
                  [o11] "n"(oc + 1), [o20] "n"(2 * oc), [o21] "n"(2 * oc + 1)
                : "memory");
        return;
    }
#endif
    for (int32_t r = 0; r < 3; ++r) {
        out[r * oc] = (int8_t)ariel_requantize_common(acc[2 * r], m0, add, shift, low, high);
        out[r * oc + 1] = (int8_t)ariel_requantize_common(acc[2 * r + 1], m1, add, shift, low,
                                                          high);
    }
}

/* -- int8 outputs in pairs that share a halfword ------------------------------------------
 * One row of A against constant filters read once each (a dense layer's weights, streamed
 * from flash): two filters a and b share each int16 halfword of the packed stream, which
 * holds h = 256 w_b + w_a exactly (codegen/compiler/ops/output_pairs.py stores w_a's byte,
 * then w_b's less one where w_a < 0, and checks that this fits a byte). A word holds the
 * halfwords of the two inputs of one widened column word, so one SMLAD of the column word
 * and the raw weight word adds 256 (x . w_b) + x . w_a, and one SMLAD of the column word and
 * SXTB16 of the weight word (its low bytes, w_a at both inputs) adds x . w_a: 4 MACs in one
 * load, one SXTB16 and two SMLAD, where filters stored apart take two SXTB16. The first sum
 * may wrap around 32 bits; the difference of the two is 256 (x . w_b) modulo 2^32, exact
 * because output_pairs.py checks that |256 (x . w_b)| < 2^31 for every x the column can
 * hold, and so x . w_b is that difference shifted right by 8. */

/* One column word against three pairs' weight words (in the asm of ariel_dot_3pairs_s8;
 * operands named there): the column word and the three weight words loaded in a row (5
 * cycles, the pointers advanced by post-indexed loads that no later load's address in the
 * run depends on), then per pair SMLAD on the raw word and SXTB16 in place, then the three
 * SMLAD on the extended words: 14 cycles per 12 MACs on a Cortex-M4, where the order of
 * the arithmetic does not matter. On a Cortex-M7 it does: each SXTB16 (which cannot issue
 * second) is followed by a multiply that does not read it, so the two issue together. */
#define ARIEL_DOT_3PAIRS_WORD \
    "ldr %[x], [%[col]], #4\n\t" \
    "ldr %[w2], [%[w], #8]\n\t" \
    "ldr %[w1], [%[w], #4]\n\t" \
    "ldr %[w0], [%[w]], #12\n\t" \
    ARIEL_DOT_3PAIRS_MACS

/* The arithmetic of ARIEL_DOT_3PAIRS_WORD, once its column word x and weight words w0..w2
 * are in registers. */
#define ARIEL_DOT_3PAIRS_MACS \
    "smlad %[b0], %[x], %[w0], %[b0]\n\t" \
    "sxtb16 %[w0], %[w0]\n\t" \
    "smlad %[b1], %[x], %[w1], %[b1]\n\t" \
    "sxtb16 %[w1], %[w1]\n\t" \
    "smlad %[b2], %[x], %[w2], %[b2]\n\t" \
    "sxtb16 %[w2], %[w2]\n\t" \
    "smlad %[a0], %[x], %[w0], %[a0]\n\t" \
    "smlad %[a1], %[x], %[w1], %[a1]\n\t" \
    "smlad %[a2], %[x], %[w2], %[a2]\n\t"

/* acc[2 p] and acc[2 p + 1] += column . filters a and b of pair p, for `pairs` (1 to 3)
 * pairs over `words` column words (a row widened at stride 2), their weight words
 * interleaved word by word (pair 0's, pair 1's, pair 2's for column word 0, then for word
 * 1, ...), read once in that order. In plain C: the twin of the assembly below and of
 * ariel_dot_3pairs_s8's. */
ARIEL_INLINE void ariel_dot_pairs_s8_twin(int32_t *acc, const int32_t *col, const int8_t *w,
                                          int32_t words, int32_t pairs)
{
    int32_t low[3] = {0, 0, 0}, both[3] = {0, 0, 0};
    for (int32_t p = 0; p < pairs; ++p) {
        low[p] = acc[2 * p];
        both[p] = acc[2 * p];
    }
    for (int32_t i = 0; i < words; ++i) {
        const int32_t x = col[i];
        for (int32_t p = 0; p < pairs; ++p) {
            const int32_t word = ariel_load_s8x4(w + 4 * p);
            both[p] = ariel_smlad(x, word, both[p]);
            low[p] = ariel_smlad(x, ariel_sxtb16(word), low[p]);
        }
        w += 4 * pairs;
    }
    for (int32_t p = 0; p < pairs; ++p) {
        acc[2 * p] = low[p];
        acc[2 * p + 1] += (int32_t)((uint32_t)both[p] - (uint32_t)low[p]) >> 8;
    }
}

/* Two column words against one pair's weight words (in the asm of ariel_dot_pairs_s8's
 * one-pair loop): both column words and both weight words loaded in a row (5 cycles), then
 * per word SMLAD on the raw word, SXTB16 in place, SMLAD: 11 cycles per 8 MACs on a
 * Cortex-M4, where GCC's loop of the C twin takes 18. Each SXTB16 is followed by a multiply
 * that does not read it, so that a Cortex-M7 issues the two together. */
#define ARIEL_DOT_1PAIR_2WORDS \
    "ldr %[x1], [%[col], #4]\n\t" \
    "ldr %[w1], [%[w], #4]\n\t" \
    "ldr %[x0], [%[col]], #8\n\t" \
    "ldr %[w0], [%[w]], #8\n\t" \
    "smlad %[b0], %[x0], %[w0], %[b0]\n\t" \
    "sxtb16 %[w0], %[w0]\n\t" \
    "smlad %[b0], %[x1], %[w1], %[b0]\n\t" \
    "sxtb16 %[w1], %[w1]\n\t" \
    "smlad %[a0], %[x0], %[w0], %[a0]\n\t" \
    "smlad %[a0], %[x1], %[w1], %[a0]\n\t"

/* One column word against two pairs' weight words (the asm of ariel_dot_pairs_s8's two-pair
 * loop): 4 cycles of loads and 6 of arithmetic per 8 MACs on a Cortex-M4; ordered as above
 * for a Cortex-M7's dual issue. */
#define ARIEL_DOT_2PAIRS_WORD \
    "ldr %[x0], [%[col]], #4\n\t" \
    "ldr %[w1], [%[w], #4]\n\t" \
    "ldr %[w0], [%[w]], #8\n\t" \
    "smlad %[b0], %[x0], %[w0], %[b0]\n\t" \
    "sxtb16 %[w0], %[w0]\n\t" \
    "smlad %[b1], %[x0], %[w1], %[b1]\n\t" \
    "sxtb16 %[w1], %[w1]\n\t" \
    "smlad %[a0], %[x0], %[w0], %[a0]\n\t" \
    "smlad %[a1], %[x0], %[w1], %[a1]\n\t"

/* ariel_dot_pairs_s8_twin for the one or two pairs a kernel has left after its steps of
 * three (ariel_dot_3pairs_s8), in assembly on a DSP core: two column words per pass (words
 * is even: rows are padded to groups of four). */
ARIEL_INLINE void ariel_dot_pairs_s8(int32_t *acc, const int32_t *col, const int8_t *w,
                                     int32_t words, int32_t pairs)
{
#if defined(__ARM_FEATURE_DSP) && !defined(ARIEL_NO_DSP) && defined(__OPTIMIZE__)
    if (pairs <= 2 && words > 0) {
        int32_t a0 = acc[0], a1 = pairs == 2 ? acc[2] : 0;
        int32_t b0 = a0, b1 = a1;
        int32_t count = words, x0, w0, w1;
        if (pairs == 1) {
            int32_t x1;
            __asm__(".p2align 2\n"
                    "1:\n\t"
                    ARIEL_DOT_1PAIR_2WORDS
                    "subs %[count], %[count], #2\n\t"
                    "bne 1b"
                    : [a0] "+r"(a0), [b0] "+r"(b0), [col] "+r"(col), [w] "+r"(w),
                      [count] "+r"(count), [x0] "=&r"(x0), [x1] "=&r"(x1), [w0] "=&r"(w0),
                      [w1] "=&r"(w1)
                    :
                    : "cc", "memory");
        } else {
            __asm__(".p2align 2\n"
                    "1:\n\t"
                    ARIEL_DOT_2PAIRS_WORD ARIEL_DOT_2PAIRS_WORD
                    "subs %[count], %[count], #2\n\t"
                    "bne 1b"
                    : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1),
                      [col] "+r"(col), [w] "+r"(w), [count] "+r"(count), [x0] "=&r"(x0),
                      [w0] "=&r"(w0), [w1] "=&r"(w1)
                    :
                    : "cc", "memory");
            acc[3] += (int32_t)((uint32_t)b1 - (uint32_t)a1) >> 8;
            acc[2] = a1;
        }
        acc[1] += (int32_t)((uint32_t)b0 - (uint32_t)a0) >> 8;
        acc[0] = a0;
        return;
    }
#endif
    ariel_dot_pairs_s8_twin(acc, col, w, words, pairs);
}

/* Three pairs' sums back into acc: filter a's (a0..a2, SXTB16's) as they are, filter b's
 * the difference of the two sums shifted right by 8, added to what acc held. */
ARIEL_INLINE void ariel_settle_3pairs(int32_t acc[6], int32_t a0, int32_t a1, int32_t a2,
                                      int32_t b0, int32_t b1, int32_t b2)
{
    acc[1] += (int32_t)((uint32_t)b0 - (uint32_t)a0) >> 8;
    acc[3] += (int32_t)((uint32_t)b1 - (uint32_t)a1) >> 8;
    acc[5] += (int32_t)((uint32_t)b2 - (uint32_t)a2) >> 8;
    acc[0] = a0;
    acc[2] = a1;
    acc[4] = a2;
}

/* ariel_dot_pairs_s8 for three pairs (six outputs), the kernels' main step. On a DSP core
 * the loop is assembly, eight column words per pass (ARIEL_DOT_3PAIRS_WORD; 3 cycles per
 * pass for the count and the branch back, the loop's first instruction word-aligned so that
 * the branch costs no extra refill cycle, TRM 3.3.1), then two words per pass for the rest
 * (words is even: rows are padded to groups of four). */
ARIEL_INLINE void ariel_dot_3pairs_s8(int32_t acc[6], const int32_t *col, const int8_t *w,
                                      int32_t words)
{
    /* 13 registers: unoptimized (-O0, a user's debug build), GCC keeps R7 for the frame
     * pointer and has too few left for the asm, so the C loop there. */
#if defined(__ARM_FEATURE_DSP) && !defined(ARIEL_NO_DSP) && defined(__OPTIMIZE__)
    int32_t a0 = acc[0], a1 = acc[2], a2 = acc[4];
    int32_t b0 = a0, b1 = a1, b2 = a2;
    int32_t count = words, x, w0, w1, w2;
    __asm__("subs %[count], %[count], #8\n\t"
            "blt 2f\n\t"
            ".p2align 2\n"
            "1:\n\t"
            ARIEL_DOT_3PAIRS_WORD ARIEL_DOT_3PAIRS_WORD ARIEL_DOT_3PAIRS_WORD
            ARIEL_DOT_3PAIRS_WORD ARIEL_DOT_3PAIRS_WORD ARIEL_DOT_3PAIRS_WORD
            ARIEL_DOT_3PAIRS_WORD ARIEL_DOT_3PAIRS_WORD
            "subs %[count], %[count], #8\n\t"
            "bge 1b\n"
            "2:\n\t"
            "adds %[count], %[count], #8\n\t"
            "beq 4f\n\t"
            ".p2align 2\n"
            "3:\n\t"
            ARIEL_DOT_3PAIRS_WORD ARIEL_DOT_3PAIRS_WORD
            "subs %[count], %[count], #2\n\t"
            "bne 3b\n"
            "4:"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [b0] "+r"(b0), [b1] "+r"(b1),
              [b2] "+r"(b2), [col] "+r"(col), [w] "+r"(w), [count] "+r"(count),
              [x] "=&r"(x), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2)
            :
            : "cc", "memory");
    ariel_settle_3pairs(acc, a0, a1, a2, b0, b1, b2);
#else
    ariel_dot_pairs_s8_twin(acc, col, w, words, 3);
#endif
}

/* -- The same six outputs over a list of the row's nonzero column words --------------------
 * A row of ReLU outputs is often half zeros, and a zero column word (both its inputs at
 * their zero point, with the zero point subtracted as they are widened) adds nothing:
 * codegen/compiler/ops/zero_words.py orders a layer's inputs so that the words most often
 * zero come last, and the kernel lists the nonzero words of each row once, as entries of
 * two int32: the distance in bytes from the previous listed word's weight words to this
 * one's (three pairs' words per column word: 12 bytes apart), then the column word. The
 * words left out are neither multiplied nor read from flash. */

/* ariel_dot_pairs_s8_twin for three pairs over `entries` listed column words, one word at
 * a time (each word's filter-b difference is exact on its own, so their sum is the same):
 * the twin of the assembly below. */
ARIEL_INLINE void ariel_dot_3pairs_listed_s8_twin(int32_t acc[6], const int32_t *list,
                                                  const int8_t *w, int32_t entries)
{
    for (int32_t i = 0; i < entries; ++i) {
        w += list[2 * i];
        ariel_dot_pairs_s8_twin(acc, &list[2 * i + 1], w, 1, 3);
    }
}

/* How ariel_dot_3pairs_listed_s8 walks a list of `entries`: eight entries a pass, the first
 * pass entered `jump` bytes into the loop (past the entries that make the passes come out
 * even; plus one, the Thumb bit), computed once per row rather than per step. */
typedef struct {
    int32_t entries;
    int32_t passes;
    int32_t jump;
} ariel_listed_t;

/* The bytes of one entry of the loop below: 15 instructions, each forced to its 32-bit
 * encoding (.w) so that a jump can count them. */
#define ARIEL_LISTED_ENTRY_BYTES 60

ARIEL_INLINE ariel_listed_t ariel_listed(int32_t entries)
{
    const ariel_listed_t listed = {entries, (entries + 7) >> 3,
                                   ARIEL_LISTED_ENTRY_BYTES * ((8 - (entries & 7)) & 7) + 1};
    return listed;
}

/* One entry of ariel_dot_3pairs_listed_s8's loop in assembly: the column word and the
 * distance loaded in a row (3 cycles), the weight pointer moved on by the distance (1), the
 * three weight words loaded in a row (4), then ARIEL_DOT_3PAIRS_MACS (9): 17 cycles per 12
 * MACs on a Cortex-M4 where the dense loop takes 14 (zero_words.py weighs the two). */
#define ARIEL_DOT_3PAIRS_LISTED_ENTRY \
    "ldr.w %[x], [%[list], #4]\n\t" \
    "ldr.w %[w0], [%[list]], #8\n\t" \
    "add.w %[w], %[w], %[w0]\n\t" \
    "ldr.w %[w2], [%[w], #8]\n\t" \
    "ldr.w %[w1], [%[w], #4]\n\t" \
    "ldr.w %[w0], [%[w]]\n\t" \
    ARIEL_DOT_3PAIRS_MACS

/* ariel_dot_3pairs_s8 over the listed column words of `list` (the layout above), `w` at the
 * step's first weight word. On a DSP core the loop is assembly, eight entries a pass, the
 * first entered by a jump part-way in (Duff's device): 3 cycles a step to enter and 4 a
 * pass for the count and the branch back. */
ARIEL_INLINE void ariel_dot_3pairs_listed_s8(int32_t acc[6], const int32_t *list,
                                             const int8_t *w, ariel_listed_t listed)
{
#if defined(__ARM_FEATURE_DSP) && !defined(ARIEL_NO_DSP) && defined(__OPTIMIZE__)
    if (listed.passes == 0) {
        return;
    }
    int32_t a0 = acc[0], a1 = acc[2], a2 = acc[4];
    int32_t b0 = a0, b1 = a1, b2 = a2;
    int32_t count = listed.passes, x = listed.jump, w0, w1, w2;
    __asm__("adr.w %[w0], 1f\n\t"
            "add %[w0], %[w0], %[x]\n\t"
            "bx %[w0]\n\t"
            ".p2align 2\n"
            "1:\n\t"
            ARIEL_DOT_3PAIRS_LISTED_ENTRY ARIEL_DOT_3PAIRS_LISTED_ENTRY
            ARIEL_DOT_3PAIRS_LISTED_ENTRY ARIEL_DOT_3PAIRS_LISTED_ENTRY
            ARIEL_DOT_3PAIRS_LISTED_ENTRY ARIEL_DOT_3PAIRS_LISTED_ENTRY
            ARIEL_DOT_3PAIRS_LISTED_ENTRY ARIEL_DOT_3PAIRS_LISTED_ENTRY
            "subs %[count], %[count], #1\n\t"
            "bne 1b"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [b0] "+r"(b0), [b1] "+r"(b1),
              [b2] "+r"(b2), [list] "+r"(list), [w] "+r"(w), [count] "+r"(count),
              [x] "+&r"(x), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2)
            :
            : "cc", "memory");
    ariel_settle_3pairs(acc, a0, a1, a2, b0, b1, b2);
#else
    ariel_dot_3pairs_listed_s8_twin(acc, list, w, listed.entries);
#endif
}

/* The nonzero words of a row widened in its pairing's order (its producer wrote it so),
 * listed as ariel_list_words_s8 lists them; returns the entries. */
ARIEL_INLINE int32_t ariel_list_nonzero(int32_t *list, const int32_t *col, int32_t words,
                                        int32_t stride)
{
    int32_t *entry = list;
    int32_t place = 0, last = 0;
    for (int32_t j = 0; j < words; ++j) {
        const int32_t x = col[j];
        if (x != 0) {
            entry[0] = place - last;
            entry[1] = x;
            entry += 2;
            last = place;
        }
        place += stride;
    }
    return (int32_t)(entry - list) / 2;
}

/* A row's column words in zero_words.py's order, word j the inputs of `a` at the bottom
 * and top halves of sources[j], each plus `offset` (minus the zero point, so that a word of
 * two zeros is 0), all written to col (for the dense loops) and the nonzero ones listed (the
 * layout above, weight words `stride` bytes per column word); returns the entries. */
ARIEL_INLINE int32_t ariel_list_words_s8(int32_t *col, int32_t *list, const int8_t *a,
                                         const uint32_t *sources, int32_t words,
                                         int32_t offset, int32_t stride)
{
    int32_t *entry = list;
    int32_t place = 0, last = 0;  /* bytes into the step's weights: this word's, the last listed */
    for (int32_t j = 0; j < words; ++j) {
        const uint32_t pair = sources[j];
        const int32_t x = ariel_pack_bottoms((int32_t)a[pair & 0xFFFFu] + offset,
                                             (int32_t)a[pair >> 16] + offset);
        col[j] = x;
        if (x != 0) {
            entry[0] = place - last;
            entry[1] = x;
            entry += 2;
            last = place;
        }
        place += stride;
    }
    return (int32_t)(entry - list) / 2;
}
#endif /* ARIEL_DSP */

/* 2 * n4 words of int16 pairs from n4 groups of four int8 values b0..b3: (b0, b2) then
 * (b1, b3) (ariel_widen_s8's order at stride 2; codegen/compiler/ops/conv_pairs.py lays the
 * weights out for it). */
ARIEL_INLINE void ariel_widen_pairs_s8(int32_t *pairs, const int8_t *w, int32_t n4)
{
#if ARIEL_DSP
    ariel_widen_s8(pairs, w, n4, 0, 2);
#else
    for (int32_t i = 0; i < n4; ++i) {
        pairs[2 * i] = ariel_pair_s16(w[4 * i], w[4 * i + 2]);
        pairs[2 * i + 1] = ariel_pair_s16(w[4 * i + 1], w[4 * i + 3]);
    }
#endif
}

/* Word `odd` (0 or 1) of the group of four int8 weights at `group` as ariel_widen_pairs_s8
 * lays it (bytes odd and 2 + odd, SXTB16 of the word rotated by 8 * odd), times `scale`. */
ARIEL_INLINE int32_t ariel_widen_pair_scaled(const int8_t *group, int32_t odd, int32_t scale)
{
#if ARIEL_DSP
    const int32_t word = ariel_load_s8x4(group);
    const int32_t pair = odd ? ariel_sxtb16_ror8(word) : ariel_sxtb16(word);
    return ariel_pair_s16(ariel_bottom16(pair) * scale, ariel_top16(pair) * scale);
#else
    return ariel_pair_s16(group[odd] * scale, group[odd + 2] * scale);
#endif
}

/* ariel_widen_pairs_s8 of `count` filters of `words` words each, filter f's weights times
 * 2^shifts[f]: the paired-taps kernel's filters where its channels share one output-stage
 * shift (codegen/compiler/ops/common_shift.py checks that every scaled weight is an int16).
 * A filter that starts a group takes its whole groups two words at a time; a group split
 * between two filters (an odd count of words) is taken word by word. Once per inference. */
ARIEL_INLINE void ariel_widen_pairs_scaled_s8(int32_t *pairs, const int8_t *w,
                                              const int8_t *shifts, int32_t count,
                                              int32_t words)
{
    int32_t odd = 0; /* whether the next word is the second of w's group */
    for (int32_t f = 0; f < count; ++f) {
        const int32_t scale = 1 << shifts[f];
        int32_t i = 0;
        if (!odd) {
            for (; i + 2 <= words; i += 2) {
                pairs[0] = ariel_widen_pair_scaled(w, 0, scale);
                pairs[1] = ariel_widen_pair_scaled(w, 1, scale);
                pairs += 2;
                w += 4;
            }
        }
        for (; i < words; ++i) {
            *pairs++ = ariel_widen_pair_scaled(w, odd, scale);
            w += 4 * odd;
            odd ^= 1;
        }
    }
}

/* -- int8 in plain C: the same packed weights, one multiply-accumulate at a time ----------
 * x is int8 (a row of the input, or a receptive field gathered into a buffer); the sums are
 * those of the DSP helpers, term for term. */

/* acc[c] += (x + offset) . filter c, two filters interleaved four weights at a time. */
ARIEL_INLINE void ariel_dot_1x2_s8_c(int32_t acc[2], const int8_t *x, const int8_t *w,
                                     int32_t k4, int32_t offset)
{
    int32_t a0 = acc[0], a1 = acc[1];
    for (int32_t i = 0; i < k4; ++i) {
        for (int32_t j = 0; j < 4; ++j) {
            const int32_t value = (int32_t)x[j] + offset;
            a0 += value * (int32_t)w[j];
            a1 += value * (int32_t)w[4 + j];
        }
        x += 4;
        w += 8;
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* acc += (x + offset) . filter. */
ARIEL_INLINE int32_t ariel_dot_1x1_s8_c(int32_t acc, const int8_t *x, const int8_t *w,
                                        int32_t k4, int32_t offset)
{
    for (int32_t k = 0; k < 4 * k4; ++k) {
        acc += ((int32_t)x[k] + offset) * (int32_t)w[k];
    }
    return acc;
}

/* acc[2 p] and acc[2 p + 1] += (x + offset) . filters a and b of pair p, for `pairs` pairs
 * of k weights stored as ariel_dot_pairs_s8 reads them, one product at a time: x read in
 * place (k values; the stream's padding to groups of four is skipped), each w_b recovered
 * from its stored byte (plus one where w_a < 0). */
ARIEL_INLINE void ariel_dot_pairs_s8_c(int32_t *acc, const int8_t *x, const int8_t *w,
                                       int32_t k, int32_t offset, int32_t pairs)
{
    const int32_t words = 2 * ((k + 3) / 4);
    for (int32_t p = 0; p < pairs; ++p) {
        int32_t a = acc[2 * p], b = acc[2 * p + 1];
        const int8_t *v = w + 4 * p;
        for (int32_t i = 0; i < words; ++i) {
            const int32_t first = 4 * (i >> 1) + (i & 1);
            for (int32_t h = 0; h < 2 && first + 2 * h < k; ++h) {
                const int32_t value = (int32_t)x[first + 2 * h] + offset;
                const int32_t wa = v[2 * h];
                a += value * wa;
                b += value * ((int32_t)v[2 * h + 1] + (wa < 0));
            }
            v += 4 * pairs;
        }
        acc[2 * p] = a;
        acc[2 * p + 1] = b;
    }
}

/* -- a float vector against packed int8 rows --------------------------------------------
 * The recurrent kernels keep their state in float and store their weights as int8: at each
 * step the vector is quantized to int16 by its largest |value|, which becomes `limit`, and
 * written as a column of int16 pairs in the layout the DSP helpers above read (stride 2),
 * padded with zeros to `groups` groups of four. Returns the scale (real = scale * q; 0 for
 * a vector of zeros). */
ARIEL_INLINE float ariel_column_s16(int32_t *col, const float *v, int32_t k, int32_t groups,
                                    int32_t limit)
{
    float peak = 0.0f;
    for (int32_t i = 0; i < k; ++i) {
        const float size = v[i] < 0.0f ? -v[i] : v[i];
        peak = size > peak ? size : peak;
    }
    const float inverse = peak > 0.0f ? (float)limit / peak : 0.0f;
    for (int32_t g = 0; g < groups; ++g) {
        int32_t q[4];
        for (int32_t j = 0; j < 4; ++j) {
            q[j] = 4 * g + j < k ? ariel_rint_clamp(v[4 * g + j] * inverse, -limit, limit) : 0;
        }
        col[2 * g] = (int32_t)(((uint32_t)q[0] & 0xFFFFu) | ((uint32_t)q[2] << 16));
        col[2 * g + 1] = (int32_t)(((uint32_t)q[1] & 0xFFFFu) | ((uint32_t)q[3] << 16));
    }
    return peak / (float)limit;
}

/* acc[c] += column . filter c, for such a column (stride 2) and `filters` (1 or 2) filters
 * interleaved four weights at a time, one product at a time: the sums of ariel_dot_1x2_s8
 * and ariel_dot_1x1_s8, on cores without SMLAD. */
ARIEL_INLINE void ariel_dot_column_s8_c(int32_t *acc, int32_t filters, const int32_t *col,
                                        const int8_t *w, int32_t groups)
{
    for (int32_t g = 0; g < groups; ++g) {
        const int32_t x[4] = {(int16_t)(uint16_t)((uint32_t)col[0] & 0xFFFFu),
                              (int16_t)(uint16_t)((uint32_t)col[1] & 0xFFFFu),
                              (int16_t)(uint16_t)((uint32_t)col[0] >> 16),
                              (int16_t)(uint16_t)((uint32_t)col[1] >> 16)};
        for (int32_t c = 0; c < filters; ++c) {
            for (int32_t j = 0; j < 4; ++j) {
                acc[c] += x[j] * (int32_t)w[4 * c + j];
            }
        }
        col += 2;
        w += 4 * filters;
    }
}

/* -- float32 ------------------------------------------------------------------------------
 * The float kernels' inner products, written once in ariel_products_f32.inc for each type
 * the weights may be stored in: float, and (where the compiler has it) IEEE half precision,
 * widened to float as each weight is loaded (`ariel build --float-weights fp16`). */
#define ARIEL_WEIGHT float
#define ARIEL_PRODUCT(name) name
#include "ariel_products_f32.inc"
#undef ARIEL_WEIGHT
#undef ARIEL_PRODUCT

/* Four output pixels by four filters with float weights and an ungrouped convolution's taps:
 * ariel_dot_f32(acc, 4, 4, tap, taps, 0, w, k), faster. On a single-precision FPU (FPv4-SP,
 * FPv5) the loops over taps and channels are assembly, with the accumulators in s0-s15 all
 * along: each step loads two channels of each pixel with one VLDM (3 cycles for two values,
 * where a VLDR costs 2 for one) and each channel's four weights with one VLDM (5 cycles),
 * then takes every product with VMUL and adds it with VADD (1 cycle each on a Cortex-M4,
 * where VMLA and VFMA take 3), the next product's VMUL placed before the previous sum's
 * VADD so that no VADD waits on its VMUL: 32 MACs in 86 cycles (2.69 per MAC), where GCC's
 * loop loads every value with a VLDR (3.25). Four channels per pass of the loop (3 cycles
 * for the count); a tap's last two channels and its last odd one after it. Both paths add
 * each output's products one by one in k order, each product rounded to float first (the
 * build has no contraction), so they give the same bits. s16-s23 hold the pixels' two
 * channels, s24-s27 the weights, s28 and s29 the products. Every core register the loop
 * writes is early-clobber ("+&r"): else GCC may give an input of the same value (k = taps,
 * nine channels under a 3x3 filter) the register of one the loop counts down. */
#if defined(__ARM_FP) && (__ARM_FP & 4) && defined(__thumb2__) && !defined(ARIEL_NO_FPU_ASM)
#define ARIEL_F32_PRODUCT(mul, sum, acc) \
    "vmul.f32 " mul "\n\t" \
    "vadd.f32 " acc ", " acc ", " sum "\n\t"
/* The 16 products of four pixels' inputs u0..u3 by four filters' weights w0..w3, added to
 * s0-s15 (pixel-major), with t0 and t1 the products in turn: each VADD's product comes from
 * the VMUL two instructions before it, not the one just before (the TRM: an FP arithmetic
 * result consumed by the next instruction costs one cycle more). */
#define ARIEL_F32_PRODUCTS(u0, u1, u2, u3, w0, w1, w2, w3, t0, t1) \
    "vmul.f32 " t0 ", " u0 ", " w0 "\n\t" \
    ARIEL_F32_PRODUCT(t1 ", " u0 ", " w1, t0, "s0") \
    ARIEL_F32_PRODUCT(t0 ", " u0 ", " w2, t1, "s1") \
    ARIEL_F32_PRODUCT(t1 ", " u0 ", " w3, t0, "s2") \
    ARIEL_F32_PRODUCT(t0 ", " u1 ", " w0, t1, "s3") \
    ARIEL_F32_PRODUCT(t1 ", " u1 ", " w1, t0, "s4") \
    ARIEL_F32_PRODUCT(t0 ", " u1 ", " w2, t1, "s5") \
    ARIEL_F32_PRODUCT(t1 ", " u1 ", " w3, t0, "s6") \
    ARIEL_F32_PRODUCT(t0 ", " u2 ", " w0, t1, "s7") \
    ARIEL_F32_PRODUCT(t1 ", " u2 ", " w1, t0, "s8") \
    ARIEL_F32_PRODUCT(t0 ", " u2 ", " w2, t1, "s9") \
    ARIEL_F32_PRODUCT(t1 ", " u2 ", " w3, t0, "s10") \
    ARIEL_F32_PRODUCT(t0 ", " u3 ", " w0, t1, "s11") \
    ARIEL_F32_PRODUCT(t1 ", " u3 ", " w1, t0, "s12") \
    ARIEL_F32_PRODUCT(t0 ", " u3 ", " w2, t1, "s13") \
    ARIEL_F32_PRODUCT(t1 ", " u3 ", " w3, t0, "s14") \
    "vadd.f32 s15, s15, " t1 "\n\t"
/* The 16 products of one channel: u0..u3 the four pixels' inputs, s24..s27 the filters'. */
#define ARIEL_F32_CHANNEL(u0, u1, u2, u3) \
    ARIEL_F32_PRODUCTS(u0, u1, u2, u3, "s24", "s25", "s26", "s27", "s28", "s29")
#define ARIEL_F32_TWO_CHANNELS \
    "vldmia %[x0]!, {s16-s17}\n\t" \
    "vldmia %[x1]!, {s18-s19}\n\t" \
    "vldmia %[x2]!, {s20-s21}\n\t" \
    "vldmia %[x3]!, {s22-s23}\n\t" \
    "vldmia %[w]!, {s24-s27}\n\t" \
    ARIEL_F32_CHANNEL("s16", "s18", "s20", "s22") \
    "vldmia %[w]!, {s24-s27}\n\t" \
    ARIEL_F32_CHANNEL("s17", "s19", "s21", "s23")
#define ARIEL_F32_ASM 1
#else
#define ARIEL_F32_ASM 0
#endif

ARIEL_INLINE void ariel_dot_4x4_f32(float *acc, const float *const *tap, int32_t taps,
                                    const float *w, int32_t k)
{
#if ARIEL_F32_ASM
    /* stride: bytes from one pixel's tap pointers to the next's. */
    const float *x0, *x1, *x2, *x3;
    int32_t count, stride = 4 * taps;
    __asm__ volatile(
        "vldmia %[acc], {s0-s15}\n\t"
        "2:\n\t"
        /* The tap's four pointers: tap[t], tap[taps + t], tap[2 taps + t], tap[3 taps + t]. */
        "add %[x3], %[stride], %[stride], lsl #1\n\t"
        "ldr %[x0], [%[tap]]\n\t"
        "ldr %[x1], [%[tap], %[stride]]\n\t"
        "ldr %[x2], [%[tap], %[stride], lsl #1]\n\t"
        "ldr %[x3], [%[tap], %[x3]]\n\t"
        "adds %[tap], %[tap], #4\n\t"
        "lsrs %[count], %[k], #2\n\t"
        "beq 4f\n\t"
        "3:\n\t"
        ARIEL_F32_TWO_CHANNELS ARIEL_F32_TWO_CHANNELS
        "subs %[count], %[count], #1\n\t"
        "bne 3b\n\t"
        "4:\n\t"
        /* k mod 4: bit 1 into the carry, bit 0 into the sign. */
        "lsls %[count], %[k], #31\n\t"
        "bcc 5f\n\t"
        ARIEL_F32_TWO_CHANNELS
        "5:\n\t"
        "bpl 6f\n\t"
        "vldmia %[x0]!, {s16}\n\t"
        "vldmia %[x1]!, {s18}\n\t"
        "vldmia %[x2]!, {s20}\n\t"
        "vldmia %[x3]!, {s22}\n\t"
        "vldmia %[w]!, {s24-s27}\n\t"
        ARIEL_F32_CHANNEL("s16", "s18", "s20", "s22")
        "6:\n\t"
        "subs %[taps], %[taps], #1\n\t"
        "bne 2b\n\t"
        "vstmia %[acc], {s0-s15}"
        : [tap] "+&r"(tap), [taps] "+&r"(taps), [w] "+&r"(w), [x0] "=&r"(x0), [x1] "=&r"(x1),
          [x2] "=&r"(x2), [x3] "=&r"(x3), [count] "=&r"(count)
        : [acc] "r"(acc), [stride] "r"(stride), [k] "r"(k)
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12",
          "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24",
          "s25", "s26", "s27", "s28", "s29", "cc", "memory");
#else
    ariel_dot_f32(acc, 4, 4, tap, taps, 0, w, k);
#endif
}

/* Four neighbouring output pixels of a stride-1 three-wide filter by four filters:
 * ariel_row3_f32(acc, 4, 4, col, rows, w, k), faster. Four pixels' three taps read six input
 * columns, not twelve: per channel of a filter row, six VLDMs of one input (2 cycles each)
 * and the twelve weights (three taps by four filters) in two VLDMs (9 and 5 cycles) feed 48
 * products, 122 cycles plus 3 for the loop's count per 48 MACs (2.60 per MAC), where
 * ariel_dot_4x4_f32 loads each pixel's taps apart (2.69). The products are VMUL and VADD, as
 * there, not VMLA or VFMA: the Cortex-M4 TRM (Arm DDI 0439B, Table 7-1) gives VMLA.F32 and
 * VFMA.F32 3 cycles, VMUL.F32 and VADD.F32 1 each (the cycle model follows it). One channel
 * per pass of the loop: its 420 bytes of code, with the step's C around them, stay within a
 * 1 KiB instruction cache (NUCLEO-L4R5ZI's ART), which two channels per pass did not. Same
 * order and roundings as the C: each output adds its products in (row, channel, kx) order.
 * s16-s21 hold the six columns' inputs, s22-s29 the weights of taps 0 and 1 (then s22-s25
 * those of tap 2), s30 and s31 the products. */
#if ARIEL_F32_ASM
#define ARIEL_F32_ROW3_CHANNEL \
    "vldmia %[x0]!, {s16}\n\t" \
    "vldmia %[x1]!, {s17}\n\t" \
    "vldmia %[x2]!, {s18}\n\t" \
    "vldmia %[x3]!, {s19}\n\t" \
    "vldmia %[x4]!, {s20}\n\t" \
    "vldmia %[x5]!, {s21}\n\t" \
    "vldmia %[w]!, {s22-s29}\n\t" \
    ARIEL_F32_PRODUCTS("s16", "s17", "s18", "s19", "s22", "s23", "s24", "s25", "s30", "s31") \
    ARIEL_F32_PRODUCTS("s17", "s18", "s19", "s20", "s26", "s27", "s28", "s29", "s30", "s31") \
    "vldmia %[w]!, {s22-s25}\n\t" \
    ARIEL_F32_PRODUCTS("s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s30", "s31")
#endif

ARIEL_INLINE void ariel_row3_4x4_f32(float *acc, const float *const *col, int32_t rows,
                                     const float *w, int32_t k)
{
#if ARIEL_F32_ASM
    const float *x0, *x1, *x2, *x3, *x4, *x5;
    int32_t count;
    __asm__ volatile(
        "vldmia %[acc], {s0-s15}\n\t"
        "cmp %[rows], #0\n\t"
        "beq 5f\n\t"
        "2:\n\t"
        "ldr %[x0], [%[col]]\n\t"
        "ldr %[x1], [%[col], #4]\n\t"
        "ldr %[x2], [%[col], #8]\n\t"
        "ldr %[x3], [%[col], #12]\n\t"
        "ldr %[x4], [%[col], #16]\n\t"
        "ldr %[x5], [%[col], #20]\n\t"
        "adds %[col], %[col], #24\n\t"
        "mov %[count], %[k]\n\t"
        "3:\n\t"
        ARIEL_F32_ROW3_CHANNEL
        "subs %[count], %[count], #1\n\t"
        "bne 3b\n\t"
        "subs %[rows], %[rows], #1\n\t"
        "bne 2b\n\t"
        "5:\n\t"
        "vstmia %[acc], {s0-s15}"
        : [col] "+&r"(col), [rows] "+&r"(rows), [w] "+&r"(w), [x0] "=&r"(x0), [x1] "=&r"(x1),
          [x2] "=&r"(x2), [x3] "=&r"(x3), [x4] "=&r"(x4), [x5] "=&r"(x5), [count] "=&r"(count)
        : [acc] "r"(acc), [k] "r"(k)
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12",
          "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24",
          "s25", "s26", "s27", "s28", "s29", "s30", "s31", "cc", "memory");
#else
    ariel_row3_f32(acc, 4, 4, col, rows, w, k);
#endif
}

/* Where ariel_dw3_3x4_f32 starts its sums and puts its outputs. */
typedef struct {
    float *y;            /* the first pixel's first channel */
    int32_t pixel_bytes; /* from one output pixel to the next */
    const float *bias;   /* the four channels' biases: every sum starts there */
    const float *bounds; /* low, high */
    int32_t clamp;       /* bit 0: raise to low, bit 1: then cut to high */
} ariel_dw3_out;

/* Depthwise, a stride-1 three-wide filter: four channels of three neighbouring output pixels
 * of a row, from their biases to their clamped outputs; ariel_dw3_f32(acc, 3, col, rows,
 * bytes / 4, w) between. Per filter row, the twelve weights (three taps by four channels) in
 * one VLDM (13 cycles) and each of the five columns' four channels in one (5 cycles), each
 * column then multiplied into the pixels whose taps read it: 36 MACs for 72 cycles of VMUL
 * and VADD (VMLA/VFMA: 3 cycles, the Cortex-M4 TRM, Arm DDI 0439B, Table 7-1) and about 50 of
 * loads and pointers, where ariel_dw_f32 loads every tap of every pixel. The biases and the
 * clamps stay in the FPU too (a clamp: VCMPE, VMRS, a conditional VMOV; "mi", not "lt", so
 * that a NaN passes as it does C's v < low), the outputs leave by one VSTM per pixel. Same
 * order and roundings as the C: each output adds its products in (row, kx) order. s0-s11 the
 * sums (pixel by pixel), s12-s23 the weights, s24-s27 a column, s28 and s29 the products,
 * s30 and s31 the bounds. `bytes`: the first channel's offset in bytes. */
#if ARIEL_F32_ASM
/* A column's four channels (s24-s27) times a tap's four weights into a pixel's sums; each
 * VADD's product comes from the VMUL two instructions before it. */
#define ARIEL_F32_DW_TAP(a0, a1, a2, a3, w0, w1, w2, w3) \
    "vmul.f32 s28, s24, " w0 "\n\t" \
    "vmul.f32 s29, s25, " w1 "\n\t" \
    "vadd.f32 " a0 ", " a0 ", s28\n\t" \
    "vmul.f32 s28, s26, " w2 "\n\t" \
    "vadd.f32 " a1 ", " a1 ", s29\n\t" \
    "vmul.f32 s29, s27, " w3 "\n\t" \
    "vadd.f32 " a2 ", " a2 ", s28\n\t" \
    "vadd.f32 " a3 ", " a3 ", s29\n\t"
#define ARIEL_F32_DW_PIXEL0 "s0", "s1", "s2", "s3"
#define ARIEL_F32_DW_PIXEL1 "s4", "s5", "s6", "s7"
#define ARIEL_F32_DW_PIXEL2 "s8", "s9", "s10", "s11"
#define ARIEL_F32_DW_TAP0 "s12", "s13", "s14", "s15"
#define ARIEL_F32_DW_TAP1 "s16", "s17", "s18", "s19"
#define ARIEL_F32_DW_TAP2 "s20", "s21", "s22", "s23"
/* The arguments expand before the body is rescanned: ARIEL_F32_DW_TAP gets eight. */
#define ARIEL_F32_DW(pixel, tap) ARIEL_F32_DW_TAP(pixel, tap)
/* v = v < bound ? bound : v (cond "mi") or v > bound ? bound : v (cond "gt"). */
#define ARIEL_F32_LIMIT(v, bound, cond) \
    "vcmpe.f32 " v ", " bound "\n\t" \
    "vmrs APSR_nzcv, fpscr\n\t" \
    "it " cond "\n\t" \
    "vmov" cond ".f32 " v ", " bound "\n\t"
#define ARIEL_F32_LIMIT12(bound, cond) \
    ARIEL_F32_LIMIT("s0", bound, cond) ARIEL_F32_LIMIT("s1", bound, cond) \
    ARIEL_F32_LIMIT("s2", bound, cond) ARIEL_F32_LIMIT("s3", bound, cond) \
    ARIEL_F32_LIMIT("s4", bound, cond) ARIEL_F32_LIMIT("s5", bound, cond) \
    ARIEL_F32_LIMIT("s6", bound, cond) ARIEL_F32_LIMIT("s7", bound, cond) \
    ARIEL_F32_LIMIT("s8", bound, cond) ARIEL_F32_LIMIT("s9", bound, cond) \
    ARIEL_F32_LIMIT("s10", bound, cond) ARIEL_F32_LIMIT("s11", bound, cond)
/* The steps' shared parts: the sums from the biases; then the clamps and the stores. */
#define ARIEL_F32_DW3_START \
    "ldr %[x0], [%[out], #8]\n\t" \
    "vldmia %[x0], {s0-s3}\n\t" \
    "vmov.f32 s4, s0\n\t" \
    "vmov.f32 s5, s1\n\t" \
    "vmov.f32 s6, s2\n\t" \
    "vmov.f32 s7, s3\n\t" \
    "vmov.f32 s8, s0\n\t" \
    "vmov.f32 s9, s1\n\t" \
    "vmov.f32 s10, s2\n\t" \
    "vmov.f32 s11, s3\n\t" \
    "cmp %[rows], #0\n\t" \
    "beq 3f\n\t"
#define ARIEL_F32_DW3_FINISH \
    "3:\n\t" \
    "ldr %[x0], [%[out], #16]\n\t" \
    "ldr %[x1], [%[out], #12]\n\t" \
    "tst %[x0], #1\n\t" \
    "beq 4f\n\t" \
    "vldr s30, [%[x1]]\n\t" \
    ARIEL_F32_LIMIT12("s30", "mi") \
    "4:\n\t" \
    "tst %[x0], #2\n\t" \
    "beq 5f\n\t" \
    "vldr s31, [%[x1], #4]\n\t" \
    ARIEL_F32_LIMIT12("s31", "gt") \
    "5:\n\t" \
    "ldr %[x0], [%[out]]\n\t" \
    "ldr %[x1], [%[out], #4]\n\t" \
    "vstmia %[x0], {s0-s3}\n\t" \
    "add %[x0], %[x0], %[x1]\n\t" \
    "vstmia %[x0], {s4-s7}\n\t" \
    "add %[x0], %[x0], %[x1]\n\t" \
    "vstmia %[x0], {s8-s11}"
#define ARIEL_F32_DW3_CLOBBERS \
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", \
    "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", \
    "s27", "s28", "s29", "s30", "s31", "cc", "memory"
#else
/* What the assembly does, in C: the sums from the biases, the products, the clamps. */
ARIEL_INLINE void ariel_dw3_3x4_c(const ariel_dw3_out *out, int32_t slots, int32_t stride,
                                  const float *const *col, int32_t rows, int32_t bytes,
                                  const float *w)
{
    float acc[12];
    for (int32_t j = 0; j < 12; ++j) {
        acc[j] = out->bias[j % 4];
    }
    ariel_dw3_f32(acc, slots, stride, col, rows, bytes / 4, w);
    for (int32_t p = 0; p < 3; ++p) {
        for (int32_t j = 0; j < 4; ++j) {
            float v = acc[4 * p + j];
            if (out->clamp & 1) {
                v = v < out->bounds[0] ? out->bounds[0] : v;
            }
            if (out->clamp & 2) {
                v = v > out->bounds[1] ? out->bounds[1] : v;
            }
            out->y[p * (out->pixel_bytes / 4) + j] = v;
        }
    }
}
#endif

/* Stride 1: pixel p's tap kx reads column p + kx (five columns, five pointers per row). */
ARIEL_INLINE void ariel_dw3_3x4_f32(const ariel_dw3_out *out, const float *const *col,
                                    int32_t rows, int32_t bytes, const float *w)
{
#if ARIEL_F32_ASM
    const float *x0, *x1, *x2, *x3, *x4;
    __asm__ volatile(
        ARIEL_F32_DW3_START
        "2:\n\t"
        "ldr %[x0], [%[col]]\n\t"
        "ldr %[x1], [%[col], #4]\n\t"
        "ldr %[x2], [%[col], #8]\n\t"
        "ldr %[x3], [%[col], #12]\n\t"
        "ldr %[x4], [%[col], #16]\n\t"
        "adds %[col], %[col], #20\n\t"
        "add %[x0], %[x0], %[bytes]\n\t"
        "add %[x1], %[x1], %[bytes]\n\t"
        "add %[x2], %[x2], %[bytes]\n\t"
        "add %[x3], %[x3], %[bytes]\n\t"
        "add %[x4], %[x4], %[bytes]\n\t"
        "vldmia %[w]!, {s12-s23}\n\t"
        "vldmia %[x0], {s24-s27}\n\t"
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL0, ARIEL_F32_DW_TAP0)
        "vldmia %[x1], {s24-s27}\n\t"
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL0, ARIEL_F32_DW_TAP1)
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL1, ARIEL_F32_DW_TAP0)
        "vldmia %[x2], {s24-s27}\n\t"
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL0, ARIEL_F32_DW_TAP2)
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL1, ARIEL_F32_DW_TAP1)
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL2, ARIEL_F32_DW_TAP0)
        "vldmia %[x3], {s24-s27}\n\t"
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL1, ARIEL_F32_DW_TAP2)
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL2, ARIEL_F32_DW_TAP1)
        "vldmia %[x4], {s24-s27}\n\t"
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL2, ARIEL_F32_DW_TAP2)
        "subs %[rows], %[rows], #1\n\t"
        "bne 2b\n\t"
        ARIEL_F32_DW3_FINISH
        : [col] "+&r"(col), [rows] "+&r"(rows), [w] "+&r"(w), [x0] "=&r"(x0), [x1] "=&r"(x1),
          [x2] "=&r"(x2), [x3] "=&r"(x3), [x4] "=&r"(x4)
        : [out] "r"(out), [bytes] "r"(bytes)
        : ARIEL_F32_DW3_CLOBBERS);
#else
    ariel_dw3_3x4_c(out, 5, 1, col, rows, bytes, w);
#endif
}

/* Stride 2: pixel p's tap kx reads column 2 p + kx (seven columns, seven pointers per row);
 * 36 MACs for 72 cycles of products and about 64 of loads and pointers per filter row. */
ARIEL_INLINE void ariel_dw3s2_3x4_f32(const ariel_dw3_out *out, const float *const *col,
                                      int32_t rows, int32_t bytes, const float *w)
{
#if ARIEL_F32_ASM
    const float *x0, *x1, *x2, *x3, *x4, *x5, *x6;
    __asm__ volatile(
        ARIEL_F32_DW3_START
        "2:\n\t"
        "ldr %[x0], [%[col]]\n\t"
        "ldr %[x1], [%[col], #4]\n\t"
        "ldr %[x2], [%[col], #8]\n\t"
        "ldr %[x3], [%[col], #12]\n\t"
        "ldr %[x4], [%[col], #16]\n\t"
        "ldr %[x5], [%[col], #20]\n\t"
        "ldr %[x6], [%[col], #24]\n\t"
        "adds %[col], %[col], #28\n\t"
        "add %[x0], %[x0], %[bytes]\n\t"
        "add %[x1], %[x1], %[bytes]\n\t"
        "add %[x2], %[x2], %[bytes]\n\t"
        "add %[x3], %[x3], %[bytes]\n\t"
        "add %[x4], %[x4], %[bytes]\n\t"
        "add %[x5], %[x5], %[bytes]\n\t"
        "add %[x6], %[x6], %[bytes]\n\t"
        "vldmia %[w]!, {s12-s23}\n\t"
        "vldmia %[x0], {s24-s27}\n\t"
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL0, ARIEL_F32_DW_TAP0)
        "vldmia %[x1], {s24-s27}\n\t"
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL0, ARIEL_F32_DW_TAP1)
        "vldmia %[x2], {s24-s27}\n\t"
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL0, ARIEL_F32_DW_TAP2)
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL1, ARIEL_F32_DW_TAP0)
        "vldmia %[x3], {s24-s27}\n\t"
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL1, ARIEL_F32_DW_TAP1)
        "vldmia %[x4], {s24-s27}\n\t"
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL1, ARIEL_F32_DW_TAP2)
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL2, ARIEL_F32_DW_TAP0)
        "vldmia %[x5], {s24-s27}\n\t"
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL2, ARIEL_F32_DW_TAP1)
        "vldmia %[x6], {s24-s27}\n\t"
        ARIEL_F32_DW(ARIEL_F32_DW_PIXEL2, ARIEL_F32_DW_TAP2)
        "subs %[rows], %[rows], #1\n\t"
        "bne 2b\n\t"
        ARIEL_F32_DW3_FINISH
        : [col] "+&r"(col), [rows] "+&r"(rows), [w] "+&r"(w), [x0] "=&r"(x0), [x1] "=&r"(x1),
          [x2] "=&r"(x2), [x3] "=&r"(x3), [x4] "=&r"(x4), [x5] "=&r"(x5), [x6] "=&r"(x6)
        : [out] "r"(out), [bytes] "r"(bytes)
        : ARIEL_F32_DW3_CLOBBERS);
#else
    ariel_dw3_3x4_c(out, 7, 2, col, rows, bytes, w);
#endif
}

/* -- float activations of the recurrent kernels --------------------------------------------
 * e^x, the logistic function and tanh in single precision without libm: newlib's expf and
 * tanhf take about 90 and 190 instructions on a Cortex-M4, and a recurrent layer calls them
 * thousands of times per inference. e^x = 2^n e^r, n = x / ln 2 rounded to nearest (adding
 * and subtracting 1.5 * 2^23 rounds it) and r = x - n ln 2 with ln 2 in two parts, the first
 * of 15 significant bits, so n times it is exact and |r| <= ln 2 / 2; e^r by its Taylor
 * polynomial of degree 7 (remainder below 1e-8 of it), 2^n written into the exponent bits.
 * x is confined to [-87, 88], where e^x and 2^n stay normal floats. Within a few units in
 * the last place of e^x (tests/compiler/ops/test_recurrent.py measures all three). */
ARIEL_INLINE float ariel_expf(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float n = (x * 1.44269502f + 12582912.0f) - 12582912.0f;
    const float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
    const float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f
                    + r * (0.00833333377f + r * (0.00138888892f + r * 0.000198412701f))))));
    const int32_t bits = ((int32_t)n + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

ARIEL_INLINE float ariel_sigmoidf(float x)
{
    return 1.0f / (1.0f + ariel_expf(-x));
}

/* tanh x = 1 - 2 / (e^2x + 1); near 0, where that subtraction would lose x's relative
 * precision, its Taylor polynomial x - x^3 / 3 + 2 x^5 / 15 (remainder below 2e-9 of it
 * for |x| < 1/16). */
ARIEL_INLINE float ariel_tanhf(float x)
{
    if (x > -0.0625f && x < 0.0625f) {
        const float x2 = x * x;
        return x * (1.0f + x2 * (-0.333333343f + x2 * 0.13333334f));
    }
    return 1.0f - 2.0f / (ariel_expf(2.0f * x) + 1.0f);
}

#ifdef __FLT16_MAX__
#define ARIEL_WEIGHT _Float16
#define ARIEL_PRODUCT(name) name##h
#include "ariel_products_f32.inc"
#undef ARIEL_WEIGHT
#undef ARIEL_PRODUCT
#endif

/* The score transforms of the ai.onnx.ml classifiers (ops/ml_scores.py). */
#include "ariel_ml.h"

#endif
