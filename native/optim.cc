// The optimiser's update as one pass over a parameter (src/optim/adam.ts; the ts backend's loop
// is the reference). The arithmetic is float64 with float32 stores, in the reference's order and
// without contracted multiply-adds, so both backends give the same bits.
#include <cmath>

#include "common.h"

namespace arpix {

__attribute__((optimize("fp-contract=off"))) void adamUpdate(const Buf& p, const Buf& g, const Buf& m, const Buf& v, const AdamHyper& h) {
  float* w = p.f32();
  const float* gd = g.f32();
  float* md = m.f32();
  float* vd = v.f32();
  const double b1 = h.beta1, b2 = h.beta2;
#pragma omp parallel for schedule(static) if (worthParallel(p.size))
  for (int64_t i = 0; i < p.size; i++) {
    const double wi = double(w[i]) * h.decay;
    const double gi = double(gd[i]) + h.l2 * wi;
    md[i] = float(b1 * double(md[i]) + (1 - b1) * gi);
    vd[i] = float(b2 * double(vd[i]) + (1 - b2) * gi * gi);
    w[i] = float(wi - (h.stepSize * double(md[i])) / (std::sqrt(double(vd[i])) / h.bc2Sqrt + h.eps));
  }
}

}  // namespace arpix
