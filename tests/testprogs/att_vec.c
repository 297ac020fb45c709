/* att_vec - functions whose arguments travel in xmm/ymm/zmm registers; an entry probe must
 * hand them over intact.  Prints the results so a traced run can be compared with an
 * untraced one. */
#include <immintrin.h>
#include <stdio.h>

__attribute__((noinline)) double dsum(double a, double b, double c, double d, double e,
                                      double f, double g, double h)
{
    return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h;
}

#ifdef __AVX__
__attribute__((noinline)) double ysum(__m256d a, __m256d b, __m256d h)
{
    __m256d s = _mm256_add_pd(_mm256_mul_pd(a, b), h);
    double o[4];
    _mm256_storeu_pd(o, s);
    return o[0] + 10 * o[1] + 100 * o[2] + 1000 * o[3];
}
#endif

#ifdef __AVX512F__
__attribute__((noinline)) double zsum(__m512d a, __m512d b)
{
    double o[8];
    _mm512_storeu_pd(o, _mm512_add_pd(a, b));
    double r = 0;
    for (int i = 0; i < 8; i++)
        r = r * 3 + o[i];
    return r;
}
#endif

int main(void)
{
    double total = 0;
    for (int i = 0; i < 1000; i++) {
        double x = i * 0.25;
        total += dsum(x, x + 1, x + 2, x + 3, x + 4, x + 5, x + 6, x + 7);
#ifdef __AVX__
        total += ysum(_mm256_set_pd(x, 2 * x, 3 * x, 4 * x), _mm256_set1_pd(x + 0.5),
                      _mm256_set_pd(1, 2, 3, 4));
#endif
#ifdef __AVX512F__
        total += zsum(_mm512_set_pd(x, 1, 2, 3, 4, 5, 6, 7), _mm512_set1_pd(x * 0.5));
#endif
    }
    printf("total %.6f\n", total);
    return 0;
}
