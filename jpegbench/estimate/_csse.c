/*
 * Recompression squared errors of every grid-shift crop of a gray image at many QFs:
 * the CPU kernel of jpegbench's "fast" MSE-curve backend (jpegbench/estimate/_fast.py).
 *
 * For each 8x8 block of each crop it computes what libjpeg would: the integer forward
 * DCT (jfdctint.c), the quantizer sign(t) * ((|t| + 4q) / 8q) (jcdctmgr.c), the
 * dequantization and the integer inverse DCT with its range-limit table (jidctint.c,
 * JDCT_ISLOW) -- bit for bit, so the sums equal those of a real encode + decode with
 * libjpeg / libjpeg-turbo (islow, 8-bit, baseline), only without entropy coding.
 *
 * Speed comes from doing the work once per block and QF and nothing else: blocks are
 * processed LANES at a time in struct-of-arrays layout, so every 1-D DCT butterfly
 * below is one loop over lanes that the compiler turns into SIMD; the forward DCT is
 * computed once per block for all QFs; a column whose coefficients are all zero in
 * every lane skips its 1-D IDCT (its output is zero), and a group whose AC
 * coefficients all quantize to zero is closed form (every pixel decodes to one value).
 *
 * Exactness notes.
 * - Quantizer: with a = |t| + 4q (an integer below 2**14), floor((a + 0.25) / 8q) in
 *   float32 equals libjpeg's integer a / 8q: the exact quotient is at least 1/32q away
 *   from the next integer above and at least 1/32q above the one below, while the
 *   float32 error is below a * 2**-22 / 8q < 1/32q.
 * - Arithmetic is 32-bit, like libjpeg-turbo's SIMD IDCT (the C version uses 64-bit
 *   longs); every intermediate of a block quantized from 8-bit samples fits.
 *
 * No Python API: the module init below only makes this a loadable extension; the
 * functions jb_sse_curves and jb_model_matrix (the robust estimator's codec model, at the end)
 * are called through ctypes.
 */
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__)
/* one build runs the widest SIMD the CPU has (resolved once at load time) */
#define JB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define JB_CLONES
#endif
#if defined(_MSC_VER)
#define restrict __restrict
#define JB_INLINE static __forceinline
#else
#define JB_INLINE static inline __attribute__((always_inline))
#endif

/* Blocks per group, set by setup.py from the building CPU (JB_LANES): wider groups share the per-QF
 * bookkeeping, but a group's vectors must fit the registers. With AVX-512, 32 (two zmm per vector) ran
 * 2-4 % faster than 16, 8 and 64 slower; with AVX2 only (emulated: a build without the avx512f clone,
 * BENCHMARKS.md), 8 (one ymm) took 0.85 s for a 768 x 512 image's curves on one thread where 32 took
 * 1.79 s, 16 1.94 s and 4 1.52 s. Every width gives the same sums. */
#ifdef JB_LANES
#define LANES JB_LANES
#else
#define LANES 32
#endif
#define SLAB 1024 /* blocks sorted together: bounded memory (0.5 MB, within a core's L2) for any image size */
#define CONST_BITS 13
#define PASS1_BITS 2
#define F0298 2446
#define F0390 3196
#define F0541 4433
#define F0765 6270
#define F0899 7373
#define F1175 9633
#define F1501 12299
#define F1847 15137
#define F1961 16069
#define F2053 16819
#define F2562 20995
#define F3072 25172
#define DESCALE(x, n) (((x) + (1 << ((n)-1))) >> (n))

typedef int32_t lane_t[LANES];

/* Forward DCT (jfdctint.c) of LANES blocks: samples minus 128 in src[64][LANES], t*8 out in dst;
 * tmp is scratch. */
JB_INLINE void fdct_lanes(const lane_t *restrict src, lane_t *restrict tmp,
                                                             lane_t *restrict dst) {
    for (int pass = 0; pass < 2; pass++) {
        const lane_t *restrict a = pass == 0 ? src : (const lane_t *)tmp;
        lane_t *restrict b = pass == 0 ? tmp : dst;
        for (int r = 0; r < 8; r++) {
            /* pass 0 works on rows (stride 1), pass 1 on columns (stride 8) */
            int base = pass == 0 ? r * 8 : r, st = pass == 0 ? 1 : 8;
            const int32_t *restrict p0 = a[base], *restrict p1 = a[base + st], *restrict p2 = a[base + 2 * st];
            const int32_t *restrict p3 = a[base + 3 * st], *restrict p4 = a[base + 4 * st];
            const int32_t *restrict p5 = a[base + 5 * st], *restrict p6 = a[base + 6 * st];
            const int32_t *restrict p7 = a[base + 7 * st];
            int32_t *restrict q0 = b[base], *restrict q1 = b[base + st], *restrict q2 = b[base + 2 * st];
            int32_t *restrict q3 = b[base + 3 * st], *restrict q4 = b[base + 4 * st];
            int32_t *restrict q5 = b[base + 5 * st], *restrict q6 = b[base + 6 * st];
            int32_t *restrict q7 = b[base + 7 * st];
            for (int l = 0; l < LANES; l++) {
                int32_t tmp0 = p0[l] + p7[l], tmp7 = p0[l] - p7[l];
                int32_t tmp1 = p1[l] + p6[l], tmp6 = p1[l] - p6[l];
                int32_t tmp2 = p2[l] + p5[l], tmp5 = p2[l] - p5[l];
                int32_t tmp3 = p3[l] + p4[l], tmp4 = p3[l] - p4[l];
                int32_t tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3;
                int32_t tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
                int32_t o0, o4, o2, o6;
                int32_t z1 = (tmp12 + tmp13) * F0541;
                if (pass == 0) {
                    o0 = (tmp10 + tmp11) * (1 << PASS1_BITS);
                    o4 = (tmp10 - tmp11) * (1 << PASS1_BITS);
                    o2 = DESCALE(z1 + tmp13 * F0765, CONST_BITS - PASS1_BITS);
                    o6 = DESCALE(z1 - tmp12 * F1847, CONST_BITS - PASS1_BITS);
                } else {
                    o0 = DESCALE(tmp10 + tmp11, PASS1_BITS);
                    o4 = DESCALE(tmp10 - tmp11, PASS1_BITS);
                    o2 = DESCALE(z1 + tmp13 * F0765, CONST_BITS + PASS1_BITS);
                    o6 = DESCALE(z1 - tmp12 * F1847, CONST_BITS + PASS1_BITS);
                }
                int32_t y1 = tmp4 + tmp7, y2 = tmp5 + tmp6, y3 = tmp4 + tmp6, y4 = tmp5 + tmp7;
                int32_t z5 = (y3 + y4) * F1175;
                int32_t u4 = tmp4 * F0298, u5 = tmp5 * F2053, u6 = tmp6 * F3072, u7 = tmp7 * F1501;
                y1 *= -F0899;
                y2 *= -F2562;
                y3 = y3 * -F1961 + z5;
                y4 = y4 * -F0390 + z5;
                int n = pass == 0 ? CONST_BITS - PASS1_BITS : CONST_BITS + PASS1_BITS;
                q0[l] = o0;
                q4[l] = o4;
                q2[l] = o2;
                q6[l] = o6;
                q7[l] = DESCALE(u4 + y1 + y3, n);
                q5[l] = DESCALE(u5 + y2 + y4, n);
                q3[l] = DESCALE(u6 + y2 + y3, n);
                q1[l] = DESCALE(u7 + y1 + y4, n);
            }
        }
    }
}

/* One 1-D IDCT (jidctint.c) of LANES vectors: inputs in[k * st], outputs out[k * st],
 * descaled by n bits after adding bias (the level shift, pre-scaled) to the DC path. */
JB_INLINE void idct_1d(const lane_t *restrict in, lane_t *restrict out, int st, int n, int32_t bias) {
    const int32_t *restrict d0 = in[0], *restrict d1 = in[st], *restrict d2 = in[2 * st];
    const int32_t *restrict d3 = in[3 * st], *restrict d4 = in[4 * st], *restrict d5 = in[5 * st];
    const int32_t *restrict d6 = in[6 * st], *restrict d7 = in[7 * st];
    int32_t *restrict o0 = out[0], *restrict o1 = out[st], *restrict o2 = out[2 * st], *restrict o3 = out[3 * st];
    int32_t *restrict o4 = out[4 * st], *restrict o5 = out[5 * st], *restrict o6 = out[6 * st];
    int32_t *restrict o7 = out[7 * st];
    const int32_t rnd = (1 << (n - 1)) + bias;
    for (int l = 0; l < LANES; l++) {
        int32_t z1 = (d2[l] + d6[l]) * F0541;
        int32_t tmp2 = z1 - d6[l] * F1847;
        int32_t tmp3 = z1 + d2[l] * F0765;
        int32_t tmp0 = (d0[l] + d4[l]) * (1 << CONST_BITS) + rnd;
        int32_t tmp1 = (d0[l] - d4[l]) * (1 << CONST_BITS) + rnd;
        int32_t tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3;
        int32_t tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
        int32_t t0 = d7[l], t1 = d5[l], t2 = d3[l], t3 = d1[l];
        int32_t y1 = t0 + t3, y2 = t1 + t2, y3 = t0 + t2, y4 = t1 + t3;
        int32_t z5 = (y3 + y4) * F1175;
        t0 *= F0298;
        t1 *= F2053;
        t2 *= F3072;
        t3 *= F1501;
        y1 *= -F0899;
        y2 *= -F2562;
        y3 = y3 * -F1961 + z5;
        y4 = y4 * -F0390 + z5;
        t0 += y1 + y3;
        t1 += y2 + y4;
        t2 += y2 + y3;
        t3 += y1 + y4;
        /* the rounding constant is already in tmp10..tmp13, so a plain shift is DESCALE */
        o0[l] = (tmp10 + t3) >> n;
        o7[l] = (tmp10 - t3) >> n;
        o1[l] = (tmp11 + t2) >> n;
        o6[l] = (tmp11 - t2) >> n;
        o2[l] = (tmp12 + t1) >> n;
        o5[l] = (tmp12 - t1) >> n;
        o3[l] = (tmp13 + t0) >> n;
        o4[l] = (tmp13 - t0) >> n;
    }
}

/* libjpeg's range-limit table applied to a level-shifted value v + 128:
 * sample_range_limit[CENTERJSAMPLE + (v & RANGE_MASK)] with v = u - 128. */
JB_INLINE int32_t range_limit(int32_t u) {
    int32_t i = (u - 128) & 1023;
    return i < 128 ? i + 128 : (i < 512 ? 255 : (i < 896 ? 0 : i - 896));
}

#if defined(__GNUC__)
typedef int32_t vlane __attribute__((vector_size(sizeof(lane_t)), aligned(4)));
typedef float vflane __attribute__((vector_size(sizeof(lane_t)), aligned(4)));

/* The same table as arithmetic on a vector: wrap v = u - 128 into -512..511 (the mask), then
 * clip v + 128 to 0..255. */
JB_INLINE vlane range_limit_v(vlane u) {
    /* a loop over lanes, which GCC vectorises into min / max for every clone (written with vector
     * comparisons, it turned them into element-by-element scalar code in the AVX2 clone) */
    int32_t a[LANES];
    memcpy(a, &u, sizeof(a));
    for (int l = 0; l < LANES; l++) {
        int32_t v = ((a[l] + 384) & 1023) - 384;
        v = v < 0 ? 0 : v;
        a[l] = v > 255 ? 255 : v;
    }
    vlane w;
    memcpy(&w, a, sizeof(a));
    return w;
}
#endif

/* e[l] = sum over the 64 pixels of lane l of (range_limit(px) - x)**2, the accumulator kept in
 * registers (a plain array accumulator makes compilers store it back on every pixel). */
JB_INLINE void sq_err(const lane_t *restrict px, const lane_t *restrict x, int32_t *restrict e) {
#if defined(__GNUC__)
    /* squares summed in float32 (cheaper than 32-bit integer multiplies); exact, as every
     * partial sum is an integer below 64 * 255**2 < 2**24 */
    vflane acc = {0};
    for (int i = 0; i < 64; i++) {
        vflane w = __builtin_convertvector(range_limit_v(*(const vlane *)px[i]) - *(const vlane *)x[i], vflane);
        acc += w * w;
    }
    vlane ie = __builtin_convertvector(acc, vlane);
    memcpy(e, &ie, sizeof(lane_t));
#else
    for (int l = 0; l < LANES; l++) e[l] = 0;
    for (int i = 0; i < 64; i++)
        for (int l = 0; l < LANES; l++) {
            int32_t d = range_limit(px[i][l]) - x[i][l];
            e[l] += d * d;
        }
#endif
}

/* SSE of LANES blocks at every QF; adds lane sums (lanes < live only) to out[0..n_qf). */
JB_CLONES static void group_sse(const lane_t *x, const lane_t *t, int live, const int32_t *qt, const float *inv8q,
                      const float *thr4q,
                      int n_qf, double *out) {
    lane_t c[64], ws[64], px[64];
    float abs_t[64][LANES]; /* |t| as float (exact) */
    int32_t neg[64][LANES]; /* -1 where t < 0, else 0 */
    int32_t s1[LANES], s2[LANES];
    for (int i = 0; i < 64; i++)
        for (int l = 0; l < LANES; l++) {
            abs_t[i][l] = (float)(t[i][l] < 0 ? -t[i][l] : t[i][l]);
            neg[i][l] = t[i][l] < 0 ? -1 : 0;
        }
    for (int l = 0; l < LANES; l++) {
        int32_t a = 0, b = 0;
        for (int i = 0; i < 64; i++) {
            a += x[i][l];
            b += x[i][l] * x[i][l];
        }
        s1[l] = a;
        s2[l] = b;
    }
    /* the largest |t| of each AC position over the group: which coefficients can survive */
    float max_ac[64];
    for (int i = 0; i < 64; i++) {
        float m = 0;
        for (int l = 0; l < LANES; l++) m = abs_t[i][l] > m ? abs_t[i][l] : m;
        max_ac[i] = m;
    }
    for (int j = 0; j < n_qf; j++) {
        const int32_t *q = qt + 64 * j;
        const float *iq = inv8q + 64 * j;
        /* which AC coefficients survive in some lane (|t| < 4q quantizes to zero), ORed down the
         * rows into the columns: compares and ORs over 8-wide rows, which vectorise (a scalar loop
         * building a 64-bit mask cost about a tenth of the kernel) */
        const float *th = thr4q + 64 * j;
        int32_t m[64];
        for (int i = 0; i < 64; i++) m[i] = max_ac[i] >= th[i] ? 1 : 0;
        m[0] = 0;
        int col_nz[8], col_ac[8]; /* some coefficient of the column / below its first row survives */
        int any_row0 = 0;
        for (int k = 0; k < 8; k++) {
            int32_t a = m[8 + k] | m[16 + k] | m[24 + k] | m[32 + k] | m[40 + k] | m[48 + k] | m[56 + k];
            col_ac[k] = a;
            col_nz[k] = a | m[k];
            any_row0 |= m[k];
        }
        int any_ac = any_row0;
        for (int k = 0; k < 8; k++) any_ac |= col_ac[k];
        int64_t acc = 0;
        if (!any_ac) {
            /* DC only: jidctint's zero-AC shortcuts give one value per block */
            for (int l = 0; l < live; l++) {
                int32_t k = (int32_t)((abs_t[0][l] + (float)(4 * q[0]) + 0.25f) * iq[0]);
                int32_t dc = ((k * q[0]) ^ neg[0][l]) - neg[0][l];
                int32_t v = range_limit(DESCALE(dc * (1 << PASS1_BITS), PASS1_BITS + 3) + 128);
                acc += (int64_t)s2[l] - 2 * (int64_t)v * s1[l] + 64 * (int64_t)v * v;
            }
            out[j] += (double)acc;
            continue;
        }
        col_nz[0] = 1;
        for (int i = 0; i < 64; i++) {
            if (!col_nz[i & 7]) continue;
            /* libjpeg's (|t| + 4q) / 8q (see the exactness note at the top), then the sign; also
             * where every lane quantizes to zero (it gives exact zeros): a branch per coefficient
             * mispredicted and cost more than the vector work */
            const int32_t qi = q[i];
            const float bias = (float)(4 * qi) + 0.25f, r = iq[i];
            for (int l = 0; l < LANES; l++) {
                int32_t kq = (int32_t)((abs_t[i][l] + bias) * r) * qi;
                c[i][l] = (kq ^ neg[i][l]) - neg[i][l];
            }
        }
        /* pass 1: columns, descaled by CONST_BITS - PASS1_BITS. jidctint's own shortcut: a column
         * whose AC rows are zero gives its DC << PASS1_BITS everywhere (zeros for an empty column) */
        int cols_beyond_0 = 0;
        for (int col = 0; col < 8; col++) {
            if (col_ac[col]) {
                idct_1d(c + col, ws + col, 8, CONST_BITS - PASS1_BITS, 0);
            } else if (col_nz[col]) {
                for (int l = 0; l < LANES; l++) {
                    int32_t v = c[col][l] * (1 << PASS1_BITS);
                    for (int k = 0; k < 8; k++) ws[k * 8 + col][l] = v;
                }
            } else {
                for (int k = 0; k < 8; k++) memset(ws[k * 8 + col], 0, sizeof(lane_t));
            }
            if (col > 0 && col_nz[col]) cols_beyond_0 = 1;
        }
        /* pass 2: rows, descaled by CONST_BITS + PASS1_BITS + 3, level shift 128 folded in; rows
         * with zero AC (every row, when only column 0 is non-zero) are one value each */
        if (cols_beyond_0) {
            for (int row = 0; row < 8; row++)
                idct_1d(ws + 8 * row, px + 8 * row, 1, CONST_BITS + PASS1_BITS + 3,
                        128 << (CONST_BITS + PASS1_BITS + 3));
        } else {
            for (int row = 0; row < 8; row++)
                for (int l = 0; l < LANES; l++) {
                    int32_t v = (ws[8 * row][l] + (1 << (PASS1_BITS + 2)) + (128 << (PASS1_BITS + 3))) >>
                                (PASS1_BITS + 3);
                    for (int k = 0; k < 8; k++) px[8 * row + k][l] = v;
                }
        }
        int32_t e[LANES];
        sq_err(px, x, e);
        for (int l = 0; l < live; l++) acc += e[l];
        out[j] += (double)acc;
    }
}

/*
 * img: uint8 gray, H x W, row stride `stride` bytes.
 * crops: n_crops (cy, cx) pairs; every crop has h = 8 * ((H - 7) / 8) rows, w = 8 * ((W - 7) / 8) columns.
 * qt: n_qf quantization tables, 64 int32 each, natural order, entries 1..255.
 * out: n_crops x n_qf doubles, overwritten with the summed squared errors.
 * Returns 0, -1 on bad arguments, -2 when memory runs out.
 */
int jb_sse_curves(const uint8_t *img, int64_t H, int64_t W, int64_t stride, const int32_t *crops, int64_t n_crops,
                  const int32_t *qt, int64_t n_qf, double *out) {
    if (H < 16 || W < 16 || stride < W || n_qf < 1 || n_crops < 1) return -1;
    for (int64_t j = 0; j < 64 * n_qf; j++)
        if (qt[j] < 1 || qt[j] > 255) return -1;
    for (int64_t c = 0; c < n_crops; c++)
        if (crops[2 * c] < 0 || crops[2 * c] > 7 || crops[2 * c + 1] < 0 || crops[2 * c + 1] > 7) return -1;
    const int64_t nby = (H - 7) / 8, nbx = (W - 7) / 8, nblk = nby * nbx;
    const int64_t slab_max = nblk < SLAB ? nblk : SLAB;
    float *inv8q = (float *)PyMem_RawMalloc(sizeof(float) * 64 * n_qf);
    float *thr4q = (float *)PyMem_RawMalloc(sizeof(float) * 64 * n_qf);
    lane_t *lanes = (lane_t *)PyMem_RawMalloc(sizeof(lane_t) * 64 * 4);
    int32_t *xb = (int32_t *)PyMem_RawMalloc(sizeof(int32_t) * 64 * slab_max);
    int32_t *tb = (int32_t *)PyMem_RawMalloc(sizeof(int32_t) * 64 * slab_max);
    int32_t *order = (int32_t *)PyMem_RawMalloc(sizeof(int32_t) * slab_max);
    int32_t *key = (int32_t *)PyMem_RawMalloc(sizeof(int32_t) * slab_max);
    int rc = -2;
    if (!inv8q || !thr4q || !lanes || !xb || !tb || !order || !key) goto done;
    for (int64_t j = 0; j < 64 * n_qf; j++) {
        inv8q[j] = 1.0f / (float)(8 * qt[j]);
        thr4q[j] = (float)(4 * qt[j]);
    }
    /* three tables whose survivor counts order the blocks of a slab */
    const int32_t *kq[3] = {qt + 64 * (n_qf / 4), qt + 64 * (n_qf / 2), qt + 64 * ((3 * n_qf) / 4)};
    lane_t *x = lanes, *t = lanes + 64, *s0 = lanes + 128, *s1 = lanes + 192;
    memset(out, 0, sizeof(double) * n_crops * n_qf);
    for (int64_t c = 0; c < n_crops; c++) {
        const int64_t cy = crops[2 * c], cx = crops[2 * c + 1];
        for (int64_t a0 = 0; a0 < nblk; a0 += slab_max) {
            const int64_t nb = nblk - a0 < slab_max ? nblk - a0 : slab_max;
            /* forward DCT of the slab, LANES blocks at a time (raster order) */
            for (int64_t b0 = 0; b0 < nb; b0 += LANES) {
                int live = nb - b0 < LANES ? (int)(nb - b0) : LANES;
                for (int l = 0; l < LANES; l++) {
                    int64_t b = a0 + b0 + (l < live ? l : 0);
                    const uint8_t *p = img + (cy + 8 * (b / nbx)) * stride + cx + 8 * (b % nbx);
                    for (int r = 0; r < 8; r++)
                        for (int k = 0; k < 8; k++) x[r * 8 + k][l] = p[r * stride + k];
                }
                for (int i = 0; i < 64; i++)
                    for (int l = 0; l < LANES; l++) s0[i][l] = x[i][l] - 128;
                fdct_lanes(s0, s1, t);
                for (int l = 0; l < live; l++)
                    for (int i = 0; i < 64; i++) {
                        xb[(b0 + l) * 64 + i] = x[i][l];
                        tb[(b0 + l) * 64 + i] = t[i][l];
                    }
            }
            /* order by how many AC coefficients survive (counting sort, stable): similar blocks
             * share groups, so whole groups take the zero-column and DC-only shortcuts */
            int64_t count[3 * 63 + 2];
            memset(count, 0, sizeof(count));
            for (int64_t b = 0; b < nb; b++) {
                int32_t k = 0;
                for (int m = 0; m < 3; m++)
                    for (int i = 1; i < 64; i++) {
                        int32_t v = tb[b * 64 + i];
                        k += (v < 0 ? -v : v) >= 4 * kq[m][i];
                    }
                key[b] = k;
                count[k + 1]++;
            }
            for (int k = 1; k < 3 * 63 + 2; k++) count[k] += count[k - 1];
            for (int64_t b = 0; b < nb; b++) order[count[key[b]]++] = (int32_t)b;
            for (int64_t g0 = 0; g0 < nb; g0 += LANES) {
                int live = nb - g0 < LANES ? (int)(nb - g0) : LANES;
                for (int l = 0; l < LANES; l++) {
                    int64_t b = order[g0 + (l < live ? l : 0)]; /* padding lanes repeat a live block */
                    for (int i = 0; i < 64; i++) {
                        x[i][l] = xb[b * 64 + i];
                        t[i][l] = tb[b * 64 + i];
                    }
                }
                group_sse((const lane_t *)x, (const lane_t *)t, live, qt, inv8q, thr4q, n_qf, out + c * n_qf);
            }
        }
    }
    rc = 0;
done: /* PyMem_RawFree(NULL) does nothing */
    PyMem_RawFree(inv8q);
    PyMem_RawFree(thr4q);
    PyMem_RawFree(lanes);
    PyMem_RawFree(xb);
    PyMem_RawFree(tb);
    PyMem_RawFree(order);
    PyMem_RawFree(key);
    return rc;
}

/*
 * Step 3b of the robust estimator (jpegbench/estimate/_lattice.py, _cached_matrix): the codec
 * model's mean squared requantization errors, mean over nodes of (t * rint(y / t) - y)**2.
 * The same IEEE operations as the numpy expression, in the same order, and the
 * mean summed as numpy sums a contiguous row (its pairwise sum: eight accumulators, then
 * ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then the rest), so that the result
 * equals numpy's bit for bit; no contraction into fused multiply-adds (it would round once
 * less). rint is the round-half-even of np.round, done as (x + 1.5 * 2**52) - 1.5 * 2**52
 * below 2**51 in magnitude (above, every double is an integer already).
 */
#if defined(__GNUC__) && !defined(__clang__)
#define JB_EXACT __attribute__((optimize("fp-contract=off")))
#else
#define JB_EXACT
#endif

JB_EXACT static double jb_pairwise8(const double *a, int64_t n)
{
    if (n < 8) {
        double res = 0.;
        for (int64_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    double r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3], r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7];
    int64_t i;
    for (i = 8; i < n - (n % 8); i += 8) {
        r0 += a[i + 0];
        r1 += a[i + 1];
        r2 += a[i + 2];
        r3 += a[i + 3];
        r4 += a[i + 4];
        r5 += a[i + 5];
        r6 += a[i + 6];
        r7 += a[i + 7];
    }
    double res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; i < n; i++) res += a[i];
    return res;
}

/* mean over the `nodes` values y[0..nodes) of (t * rint(y / t) - y)**2, as described above */
JB_EXACT static double jb_requant_mean(const double *yy, int64_t nodes, double t, double *e)
{
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
    const double magic = 6755399441055744.0; /* 1.5 * 2**52 */
    for (int64_t i = 0; i < nodes; i++) {
        double x = yy[i] / t;
        double q = x; /* (no -ffast-math: the two additions are not folded) */
        if (x < 2251799813685248.0 && x > -2251799813685248.0) q = (x + magic) - magic;
        double d = t * q - yy[i];
        e[i] = d * d;
    }
    return jb_pairwise8(e, nodes) / (double)nodes;
}

/*
 * The whole model matrix of _lattice._cached_matrix from the requantization inputs, equal bit
 * for bit to its numpy computation:
 *   y: 64 x n_scales x nodes content nodes after the chain; y2, amax: 64 x n_scales, the mean
 *   of y**2 and the largest |y| over the nodes (computed by numpy); tables: n_qf x 64 table
 *   values (integers 1..255 held as doubles); group: 64 radial-frequency groups (< n_groups).
 *   out: (n_groups * n_scales + 1) x n_qf: out[g, k, j] = sum over AC frequencies f of group g,
 *   in ascending f, of E[f, k, j] (starting from 0.0), last row E[0, 0, j], where E is the mean
 *   squared requantization error (y2 where every node rounds to zero, |amax / t| <= 0.5).
 * Returns 0, -1 on bad arguments, -2 when memory runs out.
 */
JB_EXACT int jb_model_matrix(const double *y, const double *y2, const double *amax, int64_t n_scales, int64_t nodes,
                             const double *tables, int64_t n_qf, const int64_t *group, int64_t n_groups, double *out)
{
    double e[128];
    if (nodes < 1 || nodes > 128 || n_scales < 1 || n_qf < 1 || n_groups < 1) return -1;
    for (int64_t j = 0; j < 64 * n_qf; j++)
        if (!(tables[j] >= 1.0 && tables[j] <= 255.0) || tables[j] != (double)(int)tables[j]) return -1;
    for (int f = 0; f < 64; f++)
        if (group[f] < 0 || group[f] >= n_groups) return -1;
    double *rows = PyMem_RawMalloc(256 * n_scales * sizeof(double)); /* E[f, :, t] per table value t */
    if (rows == NULL) return -2;
    const int64_t n_rows = n_groups * n_scales + 1;
    for (int64_t i = 0; i < n_rows * n_qf; i++) out[i] = 0.0;
    for (int f = 0; f < 64; f++) {
        char done[256] = {0};
        for (int64_t j = 0; j < n_qf; j++) {
            const int ti = (int)tables[j * 64 + f];
            double *row = rows + ti * n_scales;
            if (!done[ti]) {
                const double t = (double)ti;
                for (int64_t k = 0; k < n_scales; k++) {
                    const int64_t fk = f * n_scales + k;
                    row[k] = amax[fk] / t > 0.5 ? jb_requant_mean(y + fk * nodes, nodes, t, e) : y2[fk];
                }
                done[ti] = 1;
            }
            if (f == 0) {
                out[(n_rows - 1) * n_qf + j] = row[0]; /* the DC frequency weighs its first node only */
            } else {
                double *o = out + group[f] * n_scales * n_qf + j;
                for (int64_t k = 0; k < n_scales; k++) o[k * n_qf] += row[k];
            }
        }
    }
    PyMem_RawFree(rows);
    return 0;
}

/* The group width this build was compiled with (setup.py's choice; reported by jpegbench.estimate._ckernel). */
int jb_lanes(void) { return LANES; }

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_csse",
                                    "C kernel of the fast MSE-curve backend (called through ctypes).", -1, NULL};

PyMODINIT_FUNC PyInit__csse(void) { return PyModule_Create(&module); }
