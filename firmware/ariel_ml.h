/* ariel runtime: the score transforms of the ai.onnx.ml classifiers and regressors
 * (post_transform LOGISTIC, SOFTMAX, SOFTMAX_ZERO) and the Normalizer's three norms, written
 * as ONNX Runtime computes them so that a generated model gives the numbers it gives.
 * codegen/compiler/ops/ml_scores.py and ml_preprocess.py are their numpy twins and decide
 * which one a kernel calls. */
#ifndef ARIEL_ML_H
#define ARIEL_ML_H

#include <math.h>
#include <stdint.h>

/* 1 / (1 + e^-v), from e^-|v| so that it cannot overflow. */
static inline float ariel_ml_logistic(float v)
{
    const float p = 1.0f / (1.0f + expf(-fabsf(v)));
    return v < 0.0f ? 1.0f - p : p;
}

static inline void ariel_ml_logistic_all(float *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i) {
        v[i] = ariel_ml_logistic(v[i]);
    }
}

static inline float ariel_ml_largest(const float *v, uint32_t n)
{
    float largest = -3.40282347e+38f;
    for (uint32_t i = 0; i < n; ++i) {
        largest = v[i] > largest ? v[i] : largest;
    }
    return largest;
}

/* e^(v - max) / sum, each value divided by the sum. */
static inline void ariel_ml_softmax(float *v, uint32_t n)
{
    const float largest = ariel_ml_largest(v, n);
    float sum = 0.0f;
    for (uint32_t i = 0; i < n; ++i) {
        v[i] = expf(v[i] - largest);
        sum += v[i];
    }
    for (uint32_t i = 0; i < n; ++i) {
        v[i] /= sum;
    }
}

/* SOFTMAX_ZERO: as softmax, but a score within 1e-7 of zero stands for "no score" and stays
 * (almost) zero: it is scaled by e^-max instead of exponentiated, and left out of the sum. */
static inline void ariel_ml_softmax_zero(float *v, uint32_t n)
{
    const float largest = ariel_ml_largest(v, n);
    const float scale = expf(-largest);
    float sum = 0.0f;
    for (uint32_t i = 0; i < n; ++i) {
        if (v[i] > 0.0000001f || v[i] < -0.0000001f) {
            v[i] = expf(v[i] - largest);
            sum += v[i];
        } else {
            v[i] *= scale;
        }
    }
    for (uint32_t i = 0; i < n; ++i) {
        v[i] /= sum;
    }
}

/* Normalizer, on one row of n values, as ONNX Runtime computes it: divided by the largest
 * value (MAX, not the largest magnitude), by the sum of magnitudes (L1), or each value
 * x -> sign(x) sqrt(x^2 / sum of squares) (L2); a row whose divisor is 0 is copied. */
static inline void ariel_ml_normalize_max(const float *x, float *y, uint32_t n)
{
    const float largest = ariel_ml_largest(x, n);
    for (uint32_t i = 0; i < n; ++i) {
        y[i] = largest != 0.0f ? x[i] / largest : x[i];
    }
}

static inline void ariel_ml_normalize_l1(const float *x, float *y, uint32_t n)
{
    float sum = 0.0f;
    for (uint32_t i = 0; i < n; ++i) {
        sum += fabsf(x[i]);
    }
    for (uint32_t i = 0; i < n; ++i) {
        y[i] = sum != 0.0f ? x[i] / sum : x[i];
    }
}

static inline void ariel_ml_normalize_l2(const float *x, float *y, uint32_t n)
{
    float sum = 0.0f;
    for (uint32_t i = 0; i < n; ++i) {
        sum += x[i] * x[i];
    }
    for (uint32_t i = 0; i < n; ++i) {
        const float magnitude = sqrtf(x[i] * x[i] / sum);
        y[i] = sum != 0.0f ? (x[i] < 0.0f ? -magnitude : magnitude) : x[i];
    }
}

#endif
