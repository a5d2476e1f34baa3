// KL divergence between two softmax distributions per row, and the softmax Fisher (the Hessian of
// that KL in the second argument's logits) applied to a vector: TRPO's trust region
// (src/rl/algorithms/trpo.ts) and its Fisher-vector products (src/rl/update.ts).
// Legend: N rows (tokens), V vocabulary. Logits are divided by the temperature τ first:
//   p = softmax(p_logits / τ), q = softmax(q_logits / τ)
//   kl_forward  out[n] = KL(p ‖ q) = Σ_v p_v (log p_v − log q_v)                     ("=")
//   kl_hvp      out[n, :] = (diag(p) − p pᵀ) u[n, :],  p = softmax(logits / τ)        ("=")
// kl_hvp is ∂²/∂z² KL(p_old ‖ softmax(z)) at z = z_old (the Fisher of a softmax in logit space),
// so for logits z = f(θ)/τ the Fisher of the mean token KL is Jᵀ (diag(p) − p pᵀ) J (Gauss–Newton).
// Nothing is saved; no backward (both are used without gradient). Reductions in double, one
// thread per row, so results do not depend on the thread count.
#include <cmath>

#include "kernels.h"

namespace gpg {

namespace {
// log Σ exp(x_v / τ) of one row, in double
// (max over the floats, then scaled: τ > 0 so the order is kept; a double fmax reduction of
// widened floats is an internal compiler error of Debian 12's aarch64 GCC 12 at -O3)
double row_lse(const float* x, int64_t V, double inv_t) {
  float mx = -INFINITY;
  for (int64_t v = 0; v < V; v++) mx = std::fmax(mx, x[v]);
  const double m = mx * inv_t;
  double s = 0;
  for (int64_t v = 0; v < V; v++) s += std::exp(x[v] * inv_t - m);
  return m + std::log(s);
}
}  // namespace

// out [N]; p_logits, q_logits [N, V]
void kl_forward(float* out, const float* p_logits, const float* q_logits, int64_t N, int64_t V, float temperature) {
  const double inv_t = 1.0 / temperature;
#pragma omp parallel for schedule(static) if (N * V > 32768)
  for (int64_t n = 0; n < N; n++) {
    const float* a = p_logits + n * V;
    const float* b = q_logits + n * V;
    const double la = row_lse(a, V, inv_t), lb = row_lse(b, V, inv_t);
    double s = 0;
    for (int64_t v = 0; v < V; v++) {
      const double lpa = a[v] * inv_t - la, lpb = b[v] * inv_t - lb;
      s += std::exp(lpa) * (lpa - lpb);
    }
    out[n] = static_cast<float>(s > 0 ? s : 0);  // KL ≥ 0; rounding can give −1e-17
  }
}

// out [N, V] (may be u); logits, u [N, V]
void kl_hvp(float* out, const float* logits, const float* u, int64_t N, int64_t V, float temperature) {
  const double inv_t = 1.0 / temperature;
#pragma omp parallel for schedule(static) if (N * V > 32768)
  for (int64_t n = 0; n < N; n++) {
    const float* x = logits + n * V;
    const float* un = u + n * V;
    float* o = out + n * V;
    const double l = row_lse(x, V, inv_t);
    double pu = 0;  // pᵀu
    for (int64_t v = 0; v < V; v++) pu += std::exp(x[v] * inv_t - l) * un[v];
    for (int64_t v = 0; v < V; v++) {
      const double p = std::exp(x[v] * inv_t - l);
      o[v] = static_cast<float>(p * (un[v] - pu));
    }
  }
}

}  // namespace gpg
