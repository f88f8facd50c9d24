/* The fused loss and gradient of the one-hidden-layer erf network, all chains in one call.

   For every chain c (threads split the chains; each chain is computed by one thread, in a
   fixed order, so the result does not depend on the thread count):

       h_{mu i} = w_i . x_mu,   f_mu = sum_i a_i erf(h_{mu i}),   r_mu = f_mu - y_mu,
       L = 1/2 sum_mu r_mu^2,
       dL/da_i = sum_mu r_mu erf(h_{mu i}),
       dL/dw_i = sum_mu r_mu a_i (2/sqrt(pi)) exp(-h_{mu i}^2) x_mu.

   The rows of X are processed in groups of RG: their pre-activations are computed by a
   register-blocked product (RB rows x JB units per block), erf, the readout and
   exp(-h^2) in one pass over the group, and the group's contribution to dL/dw by a second
   register-blocked product, so no (n, N) temporary ever leaves the caches. Padding: n to a
   multiple of RG (zero rows, zero labels: r = 0 there), d to a multiple of KB (zero
   columns), N to a multiple of JB (zero weights and readout): padded entries contribute
   exact zeros. erf is the rational approximation x P(x^2)/Q(x^2) on [-4, 4] with the
   published coefficients of Eigen's generic_fast_erf_float (a few ulp), exp the Cephes
   expf reduction (exp(u) = 2^n e^r, degree-6 polynomial in r; 0 below u = -87).
   Vectors are GCC/Clang vector extensions (8 floats), compiled for the host CPU. */
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#define LANES 8
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8f splat(float v) { return (v8f){v, v, v, v, v, v, v, v}; }
static inline v8f vload(const float *p) { v8f r; memcpy(&r, p, sizeof r); return r; }
static inline void vstore(float *p, v8f v) { memcpy(p, &v, sizeof v); }
static inline v8f select8(v8i mask, v8f a, v8f b) {
    v8i ai, bi; memcpy(&ai, &a, sizeof ai); memcpy(&bi, &b, sizeof bi);
    v8i r = (ai & mask) | (bi & ~mask); v8f out; memcpy(&out, &r, sizeof out); return out;
}
static inline v8f vmin(v8f a, v8f b) { return select8(a < b, a, b); }
static inline v8f vmax(v8f a, v8f b) { return select8(a > b, a, b); }

/* erf: the rational approximation x P(x^2) / Q(x^2) on [-4, 4] (the coefficients of Eigen's
   generic_fast_erf_float), +-1 outside. */
static inline v8f erf8(v8f a) {
    v8f x = vmax(vmin(a, splat(4.f)), splat(-4.f));
    v8f x2 = x * x;
    v8f p = x2 * splat(-2.72614225801306e-10f) + splat(2.77068142495902e-08f);
    p = x2 * p + splat(-2.10102402082508e-06f);
    p = x2 * p + splat(-5.69250639462346e-05f);
    p = x2 * p + splat(-7.34990630326855e-04f);
    p = x2 * p + splat(-2.95459980854025e-03f);
    p = x2 * p + splat(-1.60960333262415e-02f);
    p = x * p;
    v8f q = x2 * splat(-1.45660718464996e-05f) + splat(-2.13374055278905e-04f);
    q = x2 * q + splat(-1.68282697438203e-03f);
    q = x2 * q + splat(-7.37332916720468e-03f);
    q = x2 * q + splat(-1.42647390514189e-02f);
    return p / q;
}

/* exp(u) for u <= 0: Cephes expf (u = n ln2 + r, |r| <= ln2/2, degree-6 polynomial), 0 below -87. */
static inline v8f expneg8(v8f u) {
    v8i keep = u > splat(-87.f);
    u = vmax(u, splat(-87.f));
    v8f fn = u * splat(1.44269504088896341f);
    /* round to nearest */
    fn = (fn + splat(12582912.f)) - splat(12582912.f);
    v8f r = u - fn * splat(0.693359375f) - fn * splat(-2.12194440e-4f);
    v8f r2 = r * r;
    v8f p = splat(1.9875691500E-4f);
    p = p * r + splat(1.3981999507E-3f);
    p = p * r + splat(8.3334519073E-3f);
    p = p * r + splat(4.1665795894E-2f);
    p = p * r + splat(1.6666665459E-1f);
    p = p * r + splat(5.0000001201E-1f);
    p = p * r2 + r + splat(1.f);
    v8i n = __builtin_convertvector(fn, v8i);
    v8i bits = (n + 127) << 23;
    v8f scale; memcpy(&scale, &bits, sizeof scale);
    return select8(keep, p * scale, splat(0.f));
}

/* Elementwise entry points (for the tests of the approximations): out[i] = erf(x[i]) and
   out[i] = exp(x[i]) for x[i] <= 0, any count. */
static void map8(v8f (*fn)(v8f), const float *x, float *out, int64_t count) {
    int64_t i = 0;
    for (; i + LANES <= count; i += LANES) vstore(out + i, fn(vload(x + i)));
    if (i < count) {
        float in[LANES] = {0}, res[LANES];
        memcpy(in, x + i, sizeof(float) * (count - i));
        vstore(res, fn(vload(in)));
        memcpy(out + i, res, sizeof(float) * (count - i));
    }
}
void erf_values(const float *x, float *out, int64_t count) { map8(erf8, x, out, count); }
void exp_nonpositive_values(const float *x, float *out, int64_t count) { map8(expneg8, x, out, count); }

#define RG 16   /* rows of X per group: the backward accumulates RG rows before touching gwt */
#define RB 4    /* rows per forward micro-block */
#define KB 4    /* input dimensions per backward micro-block (d is padded to a multiple) */
#define JB 16   /* hidden units per micro-block: two vectors (N is padded to a multiple) */

/* One chain: loss and gradient of L = 1/2 sum_mu (sum_i a_i erf(w_i.x_mu) - y_mu)^2.
   xp: (n_pad, dp) zero padded; yp: (n_pad); w: (N, d), a: (N). gw: (N, d), ga: (N). */
static void chain(int64_t n_pad, int64_t d, int64_t dp, int64_t N, int64_t Np, const float *xp,
                  const float *yp, const float *w, const float *a, float *loss, float *gw, float *ga,
                  float *scratch) {
    float *wt = scratch, *gwt = wt + dp * Np, *hb = gwt + dp * Np, *pb = hb + RG * Np;
    float *ap = pb + RG * Np, *gap = ap + Np;
    memset(wt, 0, sizeof(float) * dp * Np);
    memset(gwt, 0, sizeof(float) * dp * Np);
    memset(ap, 0, sizeof(float) * 2 * Np);
    for (int64_t i = 0; i < N; ++i) {
        for (int64_t k = 0; k < d; ++k) wt[k * Np + i] = w[i * d + k];
        ap[i] = a[i];
    }
    double total = 0.0;
    const v8f c = splat(1.12837916709551257f); /* 2/sqrt(pi) */
    for (int64_t mu = 0; mu < n_pad; mu += RG) {
        const float *xg = xp + mu * dp;
        /* forward: hb[r, :] = sum_k x[mu + r, k] wt[k, :] */
        for (int64_t r0 = 0; r0 < RG; r0 += RB) {
            for (int64_t j = 0; j < Np; j += JB) {
                v8f acc[RB][2];
                for (int r = 0; r < RB; ++r) acc[r][0] = acc[r][1] = splat(0.f);
                for (int64_t k = 0; k < dp; ++k) {
                    v8f w0 = vload(wt + k * Np + j), w1 = vload(wt + k * Np + j + 8);
                    for (int r = 0; r < RB; ++r) {
                        v8f xv = splat(xg[(r0 + r) * dp + k]);
                        acc[r][0] += xv * w0;
                        acc[r][1] += xv * w1;
                    }
                }
                for (int r = 0; r < RB; ++r) {
                    vstore(hb + (r0 + r) * Np + j, acc[r][0]);
                    vstore(hb + (r0 + r) * Np + j + 8, acc[r][1]);
                }
            }
        }
        /* readout, residual; then hb <- r a phi'(h), gap += r phi(h) */
        for (int64_t r = 0; r < RG; ++r) {
            float *h = hb + r * Np, *p = pb + r * Np;
            v8f f = splat(0.f);
            for (int64_t j = 0; j < Np; j += LANES) {
                v8f phi = erf8(vload(h + j));
                vstore(p + j, phi);
                f += phi * vload(ap + j);
            }
            float fs = 0.f;
            for (int l = 0; l < LANES; ++l) fs += f[l];
            float res = fs - yp[mu + r];
            total += 0.5 * (double)res * (double)res;
            v8f rv = splat(res);
            for (int64_t j = 0; j < Np; j += LANES) {
                v8f hv = vload(h + j);
                vstore(gap + j, vload(gap + j) + rv * vload(p + j));
                vstore(h + j, rv * vload(ap + j) * c * expneg8(-(hv * hv)));
            }
        }
        /* backward: gwt[k, :] += sum_r x[mu + r, k] G[r, :] */
        for (int64_t k0 = 0; k0 < dp; k0 += KB) {
            for (int64_t j = 0; j < Np; j += JB) {
                v8f acc[KB][2];
                for (int q = 0; q < KB; ++q) {
                    acc[q][0] = vload(gwt + (k0 + q) * Np + j);
                    acc[q][1] = vload(gwt + (k0 + q) * Np + j + 8);
                }
                for (int64_t r = 0; r < RG; ++r) {
                    v8f g0 = vload(hb + r * Np + j), g1 = vload(hb + r * Np + j + 8);
                    for (int q = 0; q < KB; ++q) {
                        v8f xv = splat(xg[r * dp + k0 + q]);
                        acc[q][0] += xv * g0;
                        acc[q][1] += xv * g1;
                    }
                }
                for (int q = 0; q < KB; ++q) {
                    vstore(gwt + (k0 + q) * Np + j, acc[q][0]);
                    vstore(gwt + (k0 + q) * Np + j + 8, acc[q][1]);
                }
            }
        }
    }
    *loss = (float)total;
    for (int64_t i = 0; i < N; ++i) {
        for (int64_t k = 0; k < d; ++k) gw[i * d + k] = gwt[k * Np + i];
        ga[i] = gap[i];
    }
}

/* xp: (n_pad, dp) with n_pad a multiple of RG and dp of KB, zero padded; yp: (n_pad). */
void two_layer_erf(int64_t chains, int64_t n_pad, int64_t d, int64_t dp, int64_t N, const float *xp,
                   const float *yp, const float *w, const float *a, float *loss, float *gw, float *ga,
                   int threads) {
    int64_t Np = (N + JB - 1) / JB * JB;
    int64_t per = 2 * dp * Np + 2 * RG * Np + 2 * Np;
    #pragma omp parallel num_threads(threads)
    {
        float *scratch = aligned_alloc(64, ((sizeof(float) * per + 63) / 64) * 64);
        #pragma omp for schedule(static)
        for (int64_t ch = 0; ch < chains; ++ch)
            chain(n_pad, d, dp, N, Np, xp, yp, w + ch * N * d, a + ch * N, loss + ch,
                  gw + ch * N * d, ga + ch * N, scratch);
        free(scratch);
    }
}
