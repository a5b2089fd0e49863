// Vectorizable math shared by the kernels.
#ifndef BORT_KERNELS_FAST_MATH_H_
#define BORT_KERNELS_FAST_MATH_H_

#include <cmath>
#include <cstdint>
#include <cstring>

namespace bort {

// exp(x) for float, written so that the compiler vectorizes the loops that call it (std::exp is a library
// call that GCC vectorizes only under -ffast-math, which would also switch the whole process to flush-to-zero):
// x = n ln2 + r with |r| <= ln2/2, e^r by its degree-6 Taylor polynomial (error below 2e-7 relative there), and
// 2^n put into the exponent bits. Callers pass arguments of at most 0 (a log-probability, or a value minus its
// row's maximum), so only the lower end is clamped: below -87, where 2^n would leave float's range, x becomes
// -87 (e^-87 = 1.6e-38, nothing next to the row's largest term, which is 1). The clamp is plain arithmetic
// (x is unchanged, bit for bit, above -87): a compare-and-select there made GCC's vector loop 4x slower.
inline float FastExp(float x) {
  const float shifted = x + 87.f;
  x += 0.5f * (std::fabs(shifted) - shifted);
  // Round to nearest by adding and removing 1.5 * 2^23 (plain arithmetic, so the loops vectorize).
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  int32_t bits;
  std::memcpy(&bits, &p, sizeof(bits));
  bits += static_cast<int32_t>(n) * (1 << 23);
  float result;
  std::memcpy(&result, &bits, sizeof(result));
  return result;
}

}  // namespace bort

#endif  // BORT_KERNELS_FAST_MATH_H_
