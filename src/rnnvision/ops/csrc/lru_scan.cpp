// The LRU's recurrence x_t = lam * x_{t-1} + drive_t on (re, im) planes, one sequential pass over
// time per batch row (rnnvision.ops.lru_kernel builds this file; rnnvision.ops.lru.PairScan calls it).
// Layouts: drive, out, low, grad, x, g (B, T, 2, S) with the last dimension contiguous (the real plane at
// [:, :, 0], the imaginary at [:, :, 1]); lam (2, S), h0 (B, 2, S) or an empty tensor, grad_lam (B, 2, S),
// each with its last dimension contiguous.
// `reverse` is the direction of the units' recurrence: right to left in time when true.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <vector>

namespace {

// One step over the S units: state = lam * state + drive, in T; out = state, stored as Out. The drive
// may be stored in a narrower type In (bfloat16 under autocast); out must not overlap it.
template <typename T, typename In, typename Out>
inline void step(const T* __restrict__ lr, const T* __restrict__ li, T* __restrict__ sr, T* __restrict__ si,
                 const In* __restrict__ dre, const In* __restrict__ dim, Out* __restrict__ ore,
                 Out* __restrict__ oim, int64_t states) {
  for (int64_t s = 0; s < states; ++s) {
    const T re = lr[s] * sr[s] - li[s] * si[s] + static_cast<T>(dre[s]);
    const T im = lr[s] * si[s] + li[s] * sr[s] + static_cast<T>(dim[s]);
    sr[s] = re;
    si[s] = im;
    ore[s] = static_cast<Out>(re);
    oim[s] = static_cast<Out>(im);
  }
}

// low = state, rounded to the narrower type (the copy the readout reads under autocast).
template <typename T, typename In>
inline void store(const T* __restrict__ sr, const T* __restrict__ si, In* __restrict__ lre, In* __restrict__ lim,
                  int64_t states) {
  for (int64_t s = 0; s < states; ++s) {
    lre[s] = static_cast<In>(sr[s]);
    lim[s] = static_cast<In>(si[s]);
  }
}

// acc += g * conj(x) over the S units (the gradient of lam).
template <typename T>
inline void add_times_conj(const T* __restrict__ gre, const T* __restrict__ gim, const T* __restrict__ xre,
                           const T* __restrict__ xim, T* __restrict__ are, T* __restrict__ aim, int64_t states) {
  for (int64_t s = 0; s < states; ++s) {
    are[s] += gre[s] * xre[s] + gim[s] * xim[s];
    aim[s] += gim[s] * xre[s] - gre[s] * xim[s];
  }
}

// Ask for the cache lines of one step's planes (n values from p) ahead of time: the hardware
// prefetchers follow a stream that runs backwards in memory less well (the descending passes ran
// 2-3x slower than the ascending ones without this).
template <typename V>
inline void prefetch(const V* p, int64_t n) {
  for (int64_t i = 0; i < n; i += 64 / static_cast<int64_t>(sizeof(V))) __builtin_prefetch(p + i);
}
constexpr int64_t kAhead = 8;  // steps

// out (T) = the recurrence over drive (In); low (In), when not empty, the same rounded to In.
template <typename T, typename In>
void forward_rows(const at::Tensor& drive, const at::Tensor& lam, const at::Tensor& h0, bool reverse, at::Tensor& out,
                  at::Tensor& low) {
  const int64_t batch = drive.size(0), steps = drive.size(1), states = drive.size(3);
  const T* lr = lam.data_ptr<T>();
  const T* li = lr + lam.stride(0);
  const bool has_h0 = h0.numel() > 0, has_low = low.numel() > 0;
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> sr(states), si(states);
    for (int64_t b = begin; b < end; ++b) {
      for (int64_t s = 0; s < states; ++s) {
        sr[s] = has_h0 ? h0.data_ptr<T>()[b * h0.stride(0) + s] : T(0);
        si[s] = has_h0 ? h0.data_ptr<T>()[b * h0.stride(0) + h0.stride(1) + s] : T(0);
      }
      for (int64_t k = 0; k < steps; ++k) {
        const int64_t t = reverse ? steps - 1 - k : k;
        const In* d = drive.data_ptr<In>() + b * drive.stride(0) + t * drive.stride(1);
        T* o = out.data_ptr<T>() + b * out.stride(0) + t * out.stride(1);
        if (k + kAhead < steps) {
          const int64_t ahead = reverse ? -kAhead : kAhead;
          prefetch(d + ahead * drive.stride(1), drive.stride(2) + states);
          prefetch(o + ahead * out.stride(1), out.stride(2) + states);
        }
        step<T, In, T>(lr, li, sr.data(), si.data(), d, d + drive.stride(2), o, o + out.stride(2), states);
        if (has_low) {
          In* l = low.data_ptr<In>() + b * low.stride(0) + t * low.stride(1);
          store<T, In>(sr.data(), si.data(), l, l + low.stride(2), states);
        }
      }
    }
  });
}

// g (In) = the adjoint recurrence over grad (In): g_t = grad_t + conj(lam) g_{t+1} (the other way
// round for reverse units), in T; per batch row grad_lam[b] = sum_t g_t conj(x_prev(t)), x_prev the
// state the forward step t read (h0 or zero first).
template <typename T, typename In>
void backward_rows(const at::Tensor& grad, const at::Tensor& lam, const at::Tensor& x, const at::Tensor& h0,
                   bool reverse, at::Tensor& g, at::Tensor& grad_lam) {
  const int64_t batch = grad.size(0), steps = grad.size(1), states = grad.size(3);
  const T* lr = lam.data_ptr<T>();
  const T* li = lr + lam.stride(0);
  const bool has_h0 = h0.numel() > 0;
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> conj_im(states), sr(states), si(states), zero(states, T(0));
    for (int64_t s = 0; s < states; ++s) conj_im[s] = -li[s];
    for (int64_t b = begin; b < end; ++b) {
      std::fill(sr.begin(), sr.end(), T(0));
      std::fill(si.begin(), si.end(), T(0));
      T* are = grad_lam.data_ptr<T>() + b * grad_lam.stride(0);
      T* aim = are + grad_lam.stride(1);
      for (int64_t k = 0; k < steps; ++k) {
        const int64_t t = reverse ? k : steps - 1 - k;  // backward runs against the forward direction
        const In* d = grad.data_ptr<In>() + b * grad.stride(0) + t * grad.stride(1);
        In* o = g.data_ptr<In>() + b * g.stride(0) + t * g.stride(1);
        if (k + kAhead < steps) {
          const int64_t ahead = reverse ? kAhead : -kAhead;
          prefetch(d + ahead * grad.stride(1), grad.stride(2) + states);
          prefetch(x.data_ptr<T>() + b * x.stride(0) + (t + ahead) * x.stride(1), x.stride(2) + states);
          prefetch(o + ahead * g.stride(1), g.stride(2) + states);
        }
        step<T, In, In>(lr, conj_im.data(), sr.data(), si.data(), d, d + grad.stride(2), o, o + g.stride(2), states);
        const int64_t before = reverse ? t + 1 : t - 1;  // the step the forward pass ran before t
        const T *xre = zero.data(), *xim = zero.data();
        if (before >= 0 && before < steps) {
          xre = x.data_ptr<T>() + b * x.stride(0) + before * x.stride(1);
          xim = xre + x.stride(2);
        } else if (has_h0) {
          xre = h0.data_ptr<T>() + b * h0.stride(0);
          xim = xre + h0.stride(1);
        }
        add_times_conj<T>(sr.data(), si.data(), xre, xim, are, aim, states);  // g_t in T, before rounding
      }
    }
  });
}

void check(const at::Tensor& t, const char* name, int64_t dims) {
  TORCH_CHECK(t.device().is_cpu() && t.dim() == dims && t.stride(-1) == 1, name, " must be a CPU tensor of ", dims,
              " dimensions whose last one is contiguous");
}

void check_types(const at::Tensor& io, const at::Tensor& state) {
  const bool same = io.scalar_type() == state.scalar_type();
  const bool low = io.scalar_type() == at::kBFloat16 && state.scalar_type() == at::kFloat;
  TORCH_CHECK(same || low, "the recurrence runs in float32 or float64, its inputs and outputs in that type or bfloat16");
}

}  // namespace

// out = the recurrence over drive; drive may be bfloat16 with lam, h0 and out float32, and then
// low (bfloat16, or an empty tensor) gets the same states rounded.
void forward(const at::Tensor& drive, const at::Tensor& lam, const at::Tensor& h0, bool reverse, at::Tensor out,
             at::Tensor low) {
  check(drive, "drive", 4);
  check(out, "out", 4);
  check(lam, "lam", 2);
  if (h0.numel() > 0) check(h0, "h0", 3);
  if (low.numel() > 0) check(low, "low", 4);
  check_types(drive, lam);
  TORCH_CHECK(out.scalar_type() == lam.scalar_type(), "out must have lam's dtype");
  if (drive.scalar_type() == at::kBFloat16) {
    forward_rows<float, at::BFloat16>(drive, lam, h0, reverse, out, low);
  } else {
    AT_DISPATCH_FLOATING_TYPES(drive.scalar_type(), "lru_forward",
                               [&] { forward_rows<scalar_t, scalar_t>(drive, lam, h0, reverse, out, low); });
  }
}

// g = the adjoint recurrence over grad, in grad's dtype (bfloat16 allowed, with lam, x, h0 and
// grad_lam float32); grad_lam (B, 2, S) gets each batch row's dL/dlam.
void backward(const at::Tensor& grad, const at::Tensor& lam, const at::Tensor& x, const at::Tensor& h0, bool reverse,
              at::Tensor g, at::Tensor grad_lam) {
  check(grad, "grad", 4);
  check(x, "x", 4);
  check(g, "g", 4);
  check(grad_lam, "grad_lam", 3);
  check(lam, "lam", 2);
  if (h0.numel() > 0) check(h0, "h0", 3);
  check_types(grad, lam);
  TORCH_CHECK(g.scalar_type() == grad.scalar_type() && x.scalar_type() == lam.scalar_type(),
              "g must have grad's dtype and x lam's");
  if (grad.scalar_type() == at::kBFloat16) {
    backward_rows<float, at::BFloat16>(grad, lam, x, h0, reverse, g, grad_lam);
  } else {
    AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "lru_backward",
                               [&] { backward_rows<scalar_t, scalar_t>(grad, lam, x, h0, reverse, g, grad_lam); });
  }
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "x = the recurrence over drive, written into out (and rounded into low)");
  m.def("backward", &backward, "g = the adjoint recurrence over grad; grad_lam (B, 2, S) per batch row");
}
