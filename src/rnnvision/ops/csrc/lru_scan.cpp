// The LRU's recurrence x_t = lam * x_{t-1} + drive_t on (re, im) planes, one sequential pass over
// time per batch row (rnnvision.ops.lru_kernel builds this file; rnnvision.ops.lru.PairScan calls it).
// Layouts: drive, out, low, grad, x, g (B, T, 2, S) with the last dimension contiguous (the real plane at
// [:, :, 0], the imaginary at [:, :, 1]); lam (2, S), h0 (B, 2, S) or an empty tensor, grad_lam (B, 2, S),
// each with its last dimension contiguous.
// `reverse` is the direction of the units' recurrence: right to left in time when true.
// Also the readout's skip term, y = Re(C x) + D * u, forward and backward each in one pass over (M, I)
// rows (rnnvision.ops.lru.SkipReadout calls them).
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

// Each worker below is compiled three times, for AVX-512, for AVX2 with FMA and for the baseline x86-64
// (SSE2), and the loader picks the one this CPU runs (GCC's target_clones); the build has no -march
// flag, so the same file serves any x86-64 CPU. Elsewhere (GCC before 11, other compilers, other CPUs) one
// plain build.
#if defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__)
#define RNNV_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RNNV_CLONES
#endif

// A (B, T, 2, S) tensor seen as raw memory: element (b, t, p, s) at at(b, t) + p * plane + s.
template <typename V>
struct Planes {
  V* data;
  int64_t batch, time, plane;
  V* at(int64_t b, int64_t t) const { return data + b * batch + t * time; }
};

template <typename V>
Planes<V> planes(const at::Tensor& t) {  // (B, T, 2, S), or (B, 2, S) with no time, or empty: null
  if (t.numel() == 0) return {nullptr, 0, 0, 0};
  const bool timed = t.dim() == 4;
  return {static_cast<V*>(t.data_ptr()), t.stride(0), timed ? t.stride(1) : 0, t.stride(timed ? 2 : 1)};
}

// out (T) = the recurrence over drive (In) for batch rows [begin, end); low (In), when not null, the
// same rounded to In. h0 (B, 2, S) or null: zeros.
template <typename T, typename In>
RNNV_CLONES void forward_range(int64_t begin, int64_t end, int64_t steps, int64_t states, const T* lr, const T* li,
                               Planes<const In> drive, Planes<const T> h0, bool reverse, Planes<T> out,
                               Planes<In> low) {
  std::vector<T> sr(states), si(states);
  for (int64_t b = begin; b < end; ++b) {
    for (int64_t s = 0; s < states; ++s) {
      sr[s] = h0.data ? h0.at(b, 0)[s] : T(0);
      si[s] = h0.data ? h0.at(b, 0)[h0.plane + s] : T(0);
    }
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = reverse ? steps - 1 - k : k;
      const In* d = drive.at(b, t);
      T* o = out.at(b, t);
      if (k + kAhead < steps) {
        const int64_t ahead = reverse ? -kAhead : kAhead;
        prefetch(d + ahead * drive.time, drive.plane + states);
        prefetch(o + ahead * out.time, out.plane + states);
      }
      step<T, In, T>(lr, li, sr.data(), si.data(), d, d + drive.plane, o, o + out.plane, states);
      if (low.data) {
        In* l = low.at(b, t);
        store<T, In>(sr.data(), si.data(), l, l + low.plane, states);
      }
    }
  }
}

template <typename T, typename In>
void forward_rows(const at::Tensor& drive, const at::Tensor& lam, const at::Tensor& h0, bool reverse, at::Tensor& out,
                  at::Tensor& low) {
  const T* lr = lam.data_ptr<T>();
  at::parallel_for(0, drive.size(0), 1, [&](int64_t begin, int64_t end) {
    forward_range<T, In>(begin, end, drive.size(1), drive.size(3), lr, lr + lam.stride(0), planes<const In>(drive),
                         planes<const T>(h0), reverse, planes<T>(out), planes<In>(low));
  });
}

// g (In) = the adjoint recurrence over grad (In) for batch rows [begin, end): g_t = grad_t +
// conj(lam) g_{t+1} (the other way round for reverse units), in T; per batch row grad_lam[b] =
// sum_t g_t conj(x_prev(t)), x_prev the state the forward step t read (h0 or zero first).
template <typename T, typename In>
RNNV_CLONES void backward_range(int64_t begin, int64_t end, int64_t steps, int64_t states, const T* lr, const T* li,
                                Planes<const In> grad, Planes<const T> x, Planes<const T> h0, bool reverse,
                                Planes<In> g, Planes<T> grad_lam) {
  std::vector<T> conj_im(states), sr(states), si(states), zero(states, T(0));
  for (int64_t s = 0; s < states; ++s) conj_im[s] = -li[s];
  for (int64_t b = begin; b < end; ++b) {
    std::fill(sr.begin(), sr.end(), T(0));
    std::fill(si.begin(), si.end(), T(0));
    T* are = grad_lam.at(b, 0);
    T* aim = are + grad_lam.plane;
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = reverse ? k : steps - 1 - k;  // backward runs against the forward direction
      const In* d = grad.at(b, t);
      In* o = g.at(b, t);
      if (k + kAhead < steps) {
        const int64_t ahead = reverse ? kAhead : -kAhead;
        prefetch(d + ahead * grad.time, grad.plane + states);
        prefetch(x.at(b, t + ahead), x.plane + states);
        prefetch(o + ahead * g.time, g.plane + states);
      }
      step<T, In, In>(lr, conj_im.data(), sr.data(), si.data(), d, d + grad.plane, o, o + g.plane, states);
      const int64_t before = reverse ? t + 1 : t - 1;  // the step the forward pass ran before t
      const T *xre = zero.data(), *xim = zero.data();
      if (before >= 0 && before < steps) {
        xre = x.at(b, before);
        xim = xre + x.plane;
      } else if (h0.data) {
        xre = h0.at(b, 0);
        xim = xre + h0.plane;
      }
      add_times_conj<T>(sr.data(), si.data(), xre, xim, are, aim, states);  // g_t in T, before rounding
    }
  }
}

template <typename T, typename In>
void backward_rows(const at::Tensor& grad, const at::Tensor& lam, const at::Tensor& x, const at::Tensor& h0,
                   bool reverse, at::Tensor& g, at::Tensor& grad_lam) {
  const T* lr = lam.data_ptr<T>();
  at::parallel_for(0, grad.size(0), 1, [&](int64_t begin, int64_t end) {
    backward_range<T, In>(begin, end, grad.size(1), grad.size(3), lr, lr + lam.stride(0), planes<const In>(grad),
                          planes<const T>(x), planes<const T>(h0), reverse, planes<In>(g), planes<T>(grad_lam));
  });
}

// y = readout + D * u over rows [begin, end) of `width` values, formed in T (D's type); readout is
// stored as R, u and y as U (each T or, under autocast, bfloat16 with T float).
template <typename T, typename R, typename U>
RNNV_CLONES void skip_forward_range(int64_t begin, int64_t end, int64_t width, const R* readout, int64_t readout_row,
                                    const U* u, int64_t u_row, const T* d, U* y, int64_t y_row) {
  for (int64_t r = begin; r < end; ++r) {
    const R* rr = readout + r * readout_row;
    const U* ur = u + r * u_row;
    U* yr = y + r * y_row;
    for (int64_t i = 0; i < width; ++i) yr[i] = static_cast<U>(static_cast<T>(rr[i]) + d[i] * static_cast<T>(ur[i]));
  }
}

template <typename T, typename R, typename U>
void skip_forward_rows(const at::Tensor& readout, const at::Tensor& u, const at::Tensor& d, at::Tensor& y) {
  at::parallel_for(0, u.size(0), 64, [&](int64_t begin, int64_t end) {
    skip_forward_range<T, R, U>(begin, end, u.size(1), readout.data_ptr<R>(), readout.stride(0), u.data_ptr<U>(),
                                u.stride(0), d.data_ptr<T>(), y.data_ptr<U>(), y.stride(0));
  });
}

// The skip's backward over rows [begin, end), one pass over grad (stored as U): grad_readout = grad
// (stored as R), grad_u = D * grad (as U), and acc += grad * u summed over the rows, in double.
template <typename T, typename R, typename U>
RNNV_CLONES void skip_backward_range(int64_t begin, int64_t end, int64_t width, const U* grad, int64_t grad_row,
                                     const U* u, int64_t u_row, const T* d, R* grad_readout, int64_t readout_row,
                                     U* grad_u, int64_t grad_u_row, double* acc) {
  for (int64_t r = begin; r < end; ++r) {
    const U* gr = grad + r * grad_row;
    const U* ur = u + r * u_row;
    R* rr = grad_readout + r * readout_row;
    U* gu = grad_u + r * grad_u_row;
    for (int64_t i = 0; i < width; ++i) {
      const T g = static_cast<T>(gr[i]);
      rr[i] = static_cast<R>(g);
      gu[i] = static_cast<U>(d[i] * g);
      acc[i] += static_cast<double>(g * static_cast<T>(ur[i]));
    }
  }
}

// grad_d = the sum over rows, added up per thread in double and then across threads.
template <typename T, typename R, typename U>
void skip_backward_rows(const at::Tensor& grad, const at::Tensor& u, const at::Tensor& d, at::Tensor& grad_readout,
                        at::Tensor& grad_u, at::Tensor& grad_d) {
  const int64_t width = u.size(1);
  std::vector<std::vector<double>> partial(at::get_num_threads(), std::vector<double>(width, 0.0));
  at::parallel_for(0, u.size(0), 64, [&](int64_t begin, int64_t end) {
    skip_backward_range<T, R, U>(begin, end, width, grad.data_ptr<U>(), grad.stride(0), u.data_ptr<U>(), u.stride(0),
                                 d.data_ptr<T>(), grad_readout.data_ptr<R>(), grad_readout.stride(0),
                                 grad_u.data_ptr<U>(), grad_u.stride(0), partial[at::get_thread_num()].data());
  });
  T* out = grad_d.data_ptr<T>();
  for (int64_t i = 0; i < width; ++i) {
    double total = 0.0;
    for (const auto& p : partial) total += p[i];
    out[i] = static_cast<T>(total);
  }
}

void check(const at::Tensor& t, const char* name, int64_t dims) {
  TORCH_CHECK(t.device().is_cpu() && t.dim() == dims && t.stride(-1) == 1, name, " must be a CPU tensor of ", dims,
              " dimensions whose last one is contiguous");
}

// As check, and of like's shape: every tensor the loops read or write beside `like`, index for index.
void check_like(const at::Tensor& t, const char* name, const at::Tensor& like) {
  check(t, name, like.dim());
  TORCH_CHECK(t.sizes() == like.sizes(), name, " must have the shape ", like.sizes(), ", got ", t.sizes());
}

// lam (2, S), and per_row (h0, or grad_lam) (B, 2, S) in lam's dtype, for planes (B, T, 2, S); an empty
// per_row means "none" unless it is required.
void check_units(const at::Tensor& planes, const at::Tensor& lam, const at::Tensor& per_row, const char* name,
                 bool required) {
  check(lam, "lam", 2);
  TORCH_CHECK(lam.size(0) == 2 && lam.size(1) == planes.size(3), "lam must be (2, S) with S = ", planes.size(3));
  if (per_row.numel() == 0 && !required) return;
  check(per_row, name, 3);
  TORCH_CHECK(per_row.size(0) == planes.size(0) && per_row.size(1) == 2 && per_row.size(2) == planes.size(3) &&
                  per_row.scalar_type() == lam.scalar_type(),
              name, " must be (B, 2, S) = (", planes.size(0), ", 2, ", planes.size(3), ") in lam's dtype");
}

// Whether a tensor stored as `io` may feed work done in `compute`: the same type, or bfloat16 beside float32.
bool stored_as(const at::Tensor& io, at::ScalarType compute) {
  return io.scalar_type() == compute || (io.scalar_type() == at::kBFloat16 && compute == at::kFloat);
}

void check_types(const at::Tensor& io, const at::Tensor& state) {
  TORCH_CHECK(stored_as(io, state.scalar_type()),
              "the recurrence runs in float32 or float64, its inputs and outputs in that type or bfloat16");
}

void check_skip_types(const at::Tensor& readout, const at::Tensor& u, const at::Tensor& d, const at::Tensor& y) {
  const auto type = d.scalar_type();
  TORCH_CHECK(type == at::kFloat || type == at::kDouble, "the skip runs in float32 or float64 (D's dtype)");
  TORCH_CHECK(stored_as(readout, type) && stored_as(u, type) && y.scalar_type() == u.scalar_type(),
              "readout and u must have D's dtype, or be bfloat16 with D float32; y (grad) u's dtype");
  TORCH_CHECK(d.size(0) == u.size(1), "D must be (I,) for u (M, I)");
}

// Calls fn(T{}, R{}, U{}) for the skip: T D's type, R the readout's storage, U u's (and y's).
template <typename F>
void dispatch_skip(const at::Tensor& readout, const at::Tensor& u, const at::Tensor& d, F&& fn) {
  const bool low_r = readout.scalar_type() == at::kBFloat16, low_u = u.scalar_type() == at::kBFloat16;
  if (d.scalar_type() == at::kDouble) {
    fn(double{}, double{}, double{});
  } else if (low_r && low_u) {
    fn(float{}, at::BFloat16{}, at::BFloat16{});
  } else if (low_r) {
    fn(float{}, at::BFloat16{}, float{});
  } else if (low_u) {
    fn(float{}, float{}, at::BFloat16{});
  } else {
    fn(float{}, float{}, float{});
  }
}

// Calls fn(T{}, In{}) with the compute type T and the storage type In of tensors stored as `io`:
// (float, bfloat16) for bfloat16, else (io's type, io's type) for float32 or float64.
template <typename F>
void dispatch(at::ScalarType io, F&& fn) {
  if (io == at::kBFloat16) {
    fn(float{}, at::BFloat16{});
  } else {
    AT_DISPATCH_FLOATING_TYPES(io, "rnnvision_lru", [&] { fn(scalar_t{}, scalar_t{}); });
  }
}

}  // namespace

// out = the recurrence over drive; drive may be bfloat16 with lam, h0 and out float32, and then
// low (bfloat16, or an empty tensor) gets the same states rounded.
void forward(const at::Tensor& drive, const at::Tensor& lam, const at::Tensor& h0, bool reverse, at::Tensor out,
             at::Tensor low) {
  check(drive, "drive", 4);
  check_like(out, "out", drive);
  if (low.numel() > 0) check_like(low, "low", drive);
  check_units(drive, lam, h0, "h0", false);
  check_types(drive, lam);
  TORCH_CHECK(out.scalar_type() == lam.scalar_type(), "out must have lam's dtype");
  dispatch(drive.scalar_type(), [&](auto t, auto in) {
    forward_rows<decltype(t), decltype(in)>(drive, lam, h0, reverse, out, low);
  });
}

// g = the adjoint recurrence over grad, in grad's dtype (bfloat16 allowed, with lam, x, h0 and
// grad_lam float32); grad_lam (B, 2, S) gets each batch row's dL/dlam.
void backward(const at::Tensor& grad, const at::Tensor& lam, const at::Tensor& x, const at::Tensor& h0, bool reverse,
              at::Tensor g, at::Tensor grad_lam) {
  check(grad, "grad", 4);
  check_like(x, "x", grad);
  check_like(g, "g", grad);
  check_units(grad, lam, h0, "h0", false);
  check_units(grad, lam, grad_lam, "grad_lam", true);
  check_types(grad, lam);
  TORCH_CHECK(g.scalar_type() == grad.scalar_type() && x.scalar_type() == lam.scalar_type(),
              "g must have grad's dtype and x lam's");
  dispatch(grad.scalar_type(), [&](auto t, auto in) {
    backward_rows<decltype(t), decltype(in)>(grad, lam, x, h0, reverse, g, grad_lam);
  });
}

// y = readout + D * u: readout, u, y (M, I) with the last dimension contiguous, D (I,) float32 or
// float64; readout and u in D's dtype or bfloat16 (with D float32), y in u's.
void skip_forward(const at::Tensor& readout, const at::Tensor& u, const at::Tensor& d, at::Tensor y) {
  check(u, "u", 2);
  check_like(readout, "readout", u);
  check_like(y, "y", u);
  check(d, "D", 1);
  check_skip_types(readout, u, d, y);
  dispatch_skip(readout, u, d, [&](auto t, auto r, auto v) {
    skip_forward_rows<decltype(t), decltype(r), decltype(v)>(readout, u, d, y);
  });
}

// The gradients of skip_forward given grad (M, I) in u's dtype: grad_readout (readout's dtype) = grad,
// grad_u (u's dtype) = D * grad, grad_d (I,, D's dtype) = the sum over rows of grad * u.
void skip_backward(const at::Tensor& grad, const at::Tensor& u, const at::Tensor& d, at::Tensor grad_readout,
                   at::Tensor grad_u, at::Tensor grad_d) {
  check(u, "u", 2);
  for (const auto& [t, name] : {std::pair{grad, "grad"}, {grad_readout, "grad_readout"}, {grad_u, "grad_u"}}) {
    check_like(t, name, u);
  }
  check(d, "D", 1);
  check_like(grad_d, "grad_d", d);
  check_skip_types(grad_readout, u, d, grad);
  TORCH_CHECK(grad_u.scalar_type() == u.scalar_type() && grad_d.scalar_type() == d.scalar_type(),
              "grad_u must have u's dtype and grad_d D's");
  dispatch_skip(grad_readout, u, d, [&](auto t, auto r, auto v) {
    skip_backward_rows<decltype(t), decltype(r), decltype(v)>(grad, u, d, grad_readout, grad_u, grad_d);
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "x = the recurrence over drive, written into out (and rounded into low)");
  m.def("backward", &backward, "g = the adjoint recurrence over grad; grad_lam (B, 2, S) per batch row");
  m.def("skip_forward", &skip_forward, "y = readout + D * u, written into y");
  m.def("skip_backward", &skip_backward, "the skip's gradients: grad_readout, grad_u, and grad_d summed over rows");
}
