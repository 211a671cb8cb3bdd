/* fma_peak.c - one core's peak FMA rate with 256-bit and 512-bit vectors: ten independent FMA
 * chains per loop (enough to cover the latency on two FMA pipes), 2e9 FMAs each. Tells a Xeon
 * with two 512-bit FMA units (512-bit twice the 256-bit rate) from a Zen 4 (the same rate).
 * Not part of the build (docs/PERFORMANCE.md, the Emerald Rapids section):
 *   cc -O2 -mavx512f -mfma scripts/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 *   (/tmp/fma_peak & /tmp/fma_peak; wait)     # two at once: two cores, or one core's two threads?
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+t.tv_nsec*1e-9;}
#define F(T,fm,a) a=fm(a,b,c);
int main(){
  { __m256 b=_mm256_set1_ps(1.0000001f), c=_mm256_set1_ps(1e-7f);
  __m256 a0=b,a1=c,a2=b,a3=c,a4=b,a5=c,a6=b,a7=c,a8=b,a9=c;
  long N=200000000; double t0=now();
  for(long k=0;k<N;k++){ F(,_mm256_fmadd_ps,a0) F(,_mm256_fmadd_ps,a1) F(,_mm256_fmadd_ps,a2) F(,_mm256_fmadd_ps,a3) F(,_mm256_fmadd_ps,a4) F(,_mm256_fmadd_ps,a5) F(,_mm256_fmadd_ps,a6) F(,_mm256_fmadd_ps,a7) F(,_mm256_fmadd_ps,a8) F(,_mm256_fmadd_ps,a9) }
  double t=now()-t0; __m256 s=_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0,a1),_mm256_add_ps(a2,a3)),_mm256_add_ps(_mm256_add_ps(a4,a5),_mm256_add_ps(_mm256_add_ps(a6,a7),_mm256_add_ps(a8,a9)))); float o[8]; _mm256_storeu_ps(o,s);
  printf("avx2 fma: %.2f G fma/s (%.1f GMAC/s) %f\n", N*10/t*1e-9, N*80/t*1e-9, o[0]); }
  { __m512 b=_mm512_set1_ps(1.0000001f), c=_mm512_set1_ps(1e-7f);
  __m512 a0=b,a1=c,a2=b,a3=c,a4=b,a5=c,a6=b,a7=c,a8=b,a9=c;
  long N=200000000; double t0=now();
  for(long k=0;k<N;k++){ F(,_mm512_fmadd_ps,a0) F(,_mm512_fmadd_ps,a1) F(,_mm512_fmadd_ps,a2) F(,_mm512_fmadd_ps,a3) F(,_mm512_fmadd_ps,a4) F(,_mm512_fmadd_ps,a5) F(,_mm512_fmadd_ps,a6) F(,_mm512_fmadd_ps,a7) F(,_mm512_fmadd_ps,a8) F(,_mm512_fmadd_ps,a9) }
  double t=now()-t0; float s=_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0,a1),_mm512_add_ps(a2,a3)),_mm512_add_ps(_mm512_add_ps(a4,a5),_mm512_add_ps(_mm512_add_ps(a6,a7),_mm512_add_ps(a8,a9)))));
  printf("avx512 fma: %.2f G fma/s (%.1f GMAC/s) %f\n", N*10/t*1e-9, N*160/t*1e-9, s); }
}
