// spreadtorch.cpp: the C ABI over libtorch's tensors, autograd and optimizer kernels.
// Thin by design: each entry point converts handles, calls libtorch, and turns any C++ exception
// into an error string. Models live in models.cpp.
#include "spreadtorch_internal.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace st {

std::atomic<uint64_t> g_host_copies{0};

char* make_err(const char* msg) {
  size_t n = std::strlen(msg);
  char* s = static_cast<char*>(std::malloc(n + 1));
  if (s) std::memcpy(s, msg, n + 1);
  return s;
}

// The thread count is process-wide: Go moves goroutines between OS threads, and OpenMP keeps the
// count per thread, so every entry point re-applies it on threads that have not seen the latest value.
static std::atomic<int> g_threads{0};
static std::atomic<int> g_threads_gen{0};
static thread_local int t_threads_gen = 0;

void apply_threads() {
  int gen = g_threads_gen.load(std::memory_order_relaxed);
  if (gen != t_threads_gen) {
    t_threads_gen = gen;
    int n = g_threads.load();
    if (n > 0) at::set_num_threads(n);
  }
}

at::ScalarType to_scalar_type(int dtype) {
  switch (dtype) {
    case ST_UINT8: return at::kByte;
    case ST_INT8: return at::kChar;
    case ST_INT32: return at::kInt;
    case ST_INT64: return at::kLong;
    case ST_FLOAT16: return at::kHalf;
    case ST_BFLOAT16: return at::kBFloat16;
    case ST_FLOAT32: return at::kFloat;
    case ST_FLOAT64: return at::kDouble;
    case ST_BOOL: return at::kBool;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(dtype));
}

int from_scalar_type(at::ScalarType t) {
  switch (t) {
    case at::kByte: return ST_UINT8;
    case at::kChar: return ST_INT8;
    case at::kInt: return ST_INT32;
    case at::kLong: return ST_INT64;
    case at::kHalf: return ST_FLOAT16;
    case at::kBFloat16: return ST_BFLOAT16;
    case at::kFloat: return ST_FLOAT32;
    case at::kDouble: return ST_FLOAT64;
    case at::kBool: return ST_BOOL;
    default: return -1;
  }
}

at::Device to_device(int dev_type, int dev_index) {
  if (dev_type == ST_CPU) return at::Device(at::kCPU);
  if (dev_type == ST_CUDA) return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(dev_index));
  throw std::invalid_argument("unknown device type " + std::to_string(dev_type));
}

st_tensor wrap(at::Tensor t) { return new st_tensor_s{std::move(t)}; }

const at::Tensor& get(st_tensor t) {
  if (t == nullptr) throw std::invalid_argument("null tensor handle");
  return t->t;
}

std::vector<at::Tensor> get_list(const st_tensor* ts, int n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int i = 0; i < n; i++) v.push_back(get(ts[i]));
  return v;
}

}  // namespace st

using namespace st;

extern "C" {

void st_free_err(st_err e) { std::free(e); }

const char* st_torch_version(void) { return TORCH_VERSION; }
int st_cuda_available(void) { return torch::cuda::is_available() ? 1 : 0; }
int st_cuda_device_count(void) { return static_cast<int>(torch::cuda::device_count()); }
int st_cudnn_available(void) { return torch::cuda::cudnn_is_available() ? 1 : 0; }

void st_set_num_threads(int n) {
  g_threads.store(n);
  g_threads_gen.fetch_add(1);
  apply_threads();
}
int st_get_num_threads(void) {
  apply_threads();
  return at::get_num_threads();
}

void st_set_mkldnn(int on) { at::globalContext().setUserEnabledMkldnn(on != 0); }
int st_mkldnn_enabled(void) { return at::globalContext().userEnabledMkldnn() ? 1 : 0; }

st_err st_conv_check(int64_t batch, int64_t size, double* out) {
  ST_TRY
  apply_threads();
  torch::AutoGradMode grad_on(true);
  auto pattern = [](std::vector<int64_t> shape, double f, at::ScalarType t) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return at::sin(at::arange(n, at::TensorOptions().dtype(at::kDouble)) * f).view(shape).to(t);
  };
  double err = 0;
  at::Tensor ref_y, ref_gx;
  for (auto t : {at::kDouble, at::kFloat}) {
    at::Tensor x = pattern({batch, 8, size, size}, 0.37, t).requires_grad_(true);
    at::Tensor w = pattern({8, 8, 3, 3}, 0.71, t);
    at::Tensor y = at::conv2d(x, w, {}, 1, 1);
    at::Tensor gx = torch::autograd::grad({y}, {x}, {pattern({batch, 8, size, size}, 1.3, t)})[0];
    if (t == at::kDouble) {
      ref_y = y.detach(), ref_gx = gx;
      continue;
    }
    double ey = (y.detach().to(at::kDouble) - ref_y).abs().max().item<double>() / ref_y.abs().max().item<double>();
    double eg = (gx.to(at::kDouble) - ref_gx).abs().max().item<double>() / ref_gx.abs().max().item<double>();
    err = std::max(ey, eg);
  }
  *out = err;
  ST_END
}

uint64_t st_host_copies(void) { return st::g_host_copies.load(std::memory_order_relaxed); }

void st_manual_seed(uint64_t seed) { torch::manual_seed(seed); }

st_err st_rng_get_state(int dev_type, int dev_index, st_tensor* out) {
  ST_TRY
  count_host_copy();
  at::Generator gen = at::globalContext().defaultGenerator(to_device(dev_type, dev_index));
  std::lock_guard<std::mutex> lock(gen.mutex());
  *out = wrap(gen.get_state());
  ST_END
}

st_err st_rng_set_state(int dev_type, int dev_index, st_tensor state) {
  ST_TRY
  count_host_copy();
  at::Generator gen = at::globalContext().defaultGenerator(to_device(dev_type, dev_index));
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(get(state));
  ST_END
}

st_err st_cuda_synchronize(int device) {
  ST_TRY
  if (torch::cuda::is_available()) torch::cuda::synchronize(device);
  ST_END
}

void st_set_cudnn_benchmark(int on) { at::globalContext().setBenchmarkCuDNN(on != 0); }

// libtorch 2.4 made autocast's state per device type; 1.13 has one pair of calls per backend.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
static bool autocast_enabled(int dev_type) { return at::autocast::is_autocast_enabled(to_device(dev_type, 0).type()); }
static at::ScalarType autocast_dtype(int dev_type) { return at::autocast::get_autocast_dtype(to_device(dev_type, 0).type()); }
static void autocast_set(int dev_type, bool on, at::ScalarType dt) {
  at::DeviceType d = to_device(dev_type, 0).type();
  at::autocast::set_autocast_dtype(d, dt);
  at::autocast::set_autocast_enabled(d, on);
}
#else
static bool autocast_enabled(int dev_type) {
  return dev_type == ST_CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
static at::ScalarType autocast_dtype(int dev_type) {
  return dev_type == ST_CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
static void autocast_set(int dev_type, bool on, at::ScalarType dt) {
  if (dev_type == ST_CUDA) {
    at::autocast::set_autocast_gpu_dtype(dt);
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_autocast_cpu_dtype(dt);
    at::autocast::set_cpu_enabled(on);
  }
}
#endif

st_err st_autocast_push(int dev_type, int dtype, int* prev_enabled, int* prev_dtype) {
  ST_TRY
  at::ScalarType dt = to_scalar_type(dtype);
  if (dt != at::kBFloat16 && dt != at::kHalf) throw std::invalid_argument("autocast runs in bfloat16 or float16");
  to_device(dev_type, 0);  // rejects unknown device types before anything changes
  *prev_enabled = autocast_enabled(dev_type) ? 1 : 0;
  *prev_dtype = from_scalar_type(autocast_dtype(dev_type));
  autocast_set(dev_type, true, dt);
  at::autocast::increment_nesting();
  ST_END
}

st_err st_autocast_pop(int dev_type, int prev_enabled, int prev_dtype) {
  ST_TRY
  // as torch.autocast's __exit__: the cache of casted weights lives as long as the outermost region
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  autocast_set(dev_type, prev_enabled != 0, to_scalar_type(prev_dtype));
  ST_END
}
void st_set_grad_enabled(int on) { at::GradMode::set_enabled(on != 0); }
int st_is_grad_enabled(void) { return at::GradMode::is_enabled() ? 1 : 0; }

// ---- tensors ----

void st_tensor_free(st_tensor t) { delete t; }

st_err st_from_data(const void* data, int dtype, const int64_t* shape, int ndim, int dev_type, int dev_index,
                    st_tensor* out) {
  ST_TRY
  count_host_copy();
  auto opts = at::TensorOptions().dtype(to_scalar_type(dtype));
  at::Tensor t = at::empty(at::IntArrayRef(shape, ndim), opts);
  std::memcpy(t.data_ptr(), data, t.numel() * t.element_size());
  at::Device dev = to_device(dev_type, dev_index);
  if (!dev.is_cpu()) t = t.to(dev);
  *out = wrap(std::move(t));
  ST_END
}

st_err st_to_data(st_tensor h, void* dst, int64_t nbytes) {
  ST_TRY
  count_host_copy();
  at::Tensor t = get(h).detach().to(at::kCPU).contiguous();
  int64_t have = t.numel() * static_cast<int64_t>(t.element_size());
  if (have != nbytes)
    throw std::invalid_argument("to_data: tensor holds " + std::to_string(have) + " bytes, buffer " +
                                std::to_string(nbytes));
  std::memcpy(dst, t.data_ptr(), have);
  ST_END
}

int st_ndim(st_tensor t) { return static_cast<int>(t->t.dim()); }
void st_shape(st_tensor t, int64_t* shape) {
  auto s = t->t.sizes();
  for (size_t i = 0; i < s.size(); i++) shape[i] = s[i];
}
int st_dtype(st_tensor t) { return from_scalar_type(t->t.scalar_type()); }
void st_device(st_tensor t, int* dev_type, int* dev_index) {
  auto d = t->t.device();
  *dev_type = d.is_cuda() ? ST_CUDA : ST_CPU;
  *dev_index = d.has_index() ? d.index() : 0;
}
int st_requires_grad(st_tensor t) { return t->t.requires_grad() ? 1 : 0; }
int st_is_contiguous(st_tensor t) { return t->t.is_contiguous() ? 1 : 0; }
int st_is_channels_last(st_tensor t) {
  return t->t.dim() == 4 && t->t.is_contiguous(at::MemoryFormat::ChannelsLast) ? 1 : 0;
}

st_err st_item_double(st_tensor t, double* out) {
  ST_TRY
  count_host_copy();
  *out = get(t).item<double>();
  ST_END
}
st_err st_item_int64(st_tensor t, int64_t* out) {
  ST_TRY
  count_host_copy();
  *out = get(t).item<int64_t>();
  ST_END
}

st_err st_factory(int kind, const int64_t* shape, int ndim, double fill, int dtype, int dev_type, int dev_index,
                  st_tensor* out) {
  ST_TRY
  auto opts = at::TensorOptions().dtype(to_scalar_type(dtype)).device(to_device(dev_type, dev_index));
  at::IntArrayRef size(shape, ndim);
  at::Tensor t;
  switch (kind) {
    case ST_ZEROS: t = at::zeros(size, opts); break;
    case ST_ONES: t = at::ones(size, opts); break;
    case ST_FULL: t = at::full(size, fill, opts); break;
    case ST_RAND: t = at::rand(size, opts); break;
    case ST_RANDN: t = at::randn(size, opts); break;
    case ST_EMPTY: t = at::empty(size, opts); break;
    default: throw std::invalid_argument("unknown factory " + std::to_string(kind));
  }
  *out = wrap(std::move(t));
  ST_END
}

st_err st_arange(double start, double end, double step, int dtype, int dev_type, int dev_index, st_tensor* out) {
  ST_TRY
  auto opts = at::TensorOptions().dtype(to_scalar_type(dtype)).device(to_device(dev_type, dev_index));
  *out = wrap(at::arange(start, end, step, opts));
  ST_END
}

st_err st_randint(int64_t low, int64_t high, const int64_t* shape, int ndim, int dtype, int dev_type,
                  int dev_index, st_tensor* out) {
  ST_TRY
  auto opts = at::TensorOptions().dtype(to_scalar_type(dtype)).device(to_device(dev_type, dev_index));
  *out = wrap(at::randint(low, high, at::IntArrayRef(shape, ndim), opts));
  ST_END
}

st_err st_randperm(int64_t n, int dev_type, int dev_index, st_tensor* out) {
  ST_TRY
  auto opts = at::TensorOptions().dtype(at::kLong).device(to_device(dev_type, dev_index));
  *out = wrap(at::randperm(n, opts));
  ST_END
}

st_err st_eye(int64_t n, int dtype, int dev_type, int dev_index, st_tensor* out) {
  ST_TRY
  auto opts = at::TensorOptions().dtype(to_scalar_type(dtype)).device(to_device(dev_type, dev_index));
  *out = wrap(at::eye(n, opts));
  ST_END
}

// ---- element-wise ----

st_err st_unary(int op, st_tensor ha, st_tensor* out) {
  ST_TRY
  const at::Tensor& a = get(ha);
  at::Tensor r;
  switch (op) {
    case ST_NEG: r = at::neg(a); break;
    case ST_EXP: r = at::exp(a); break;
    case ST_LOG: r = at::log(a); break;
    case ST_SQRT: r = at::sqrt(a); break;
    case ST_RSQRT: r = at::rsqrt(a); break;
    case ST_ABS: r = at::abs(a); break;
    case ST_RELU: r = at::relu(a); break;
    case ST_SIGMOID: r = at::sigmoid(a); break;
    case ST_TANH: r = at::tanh(a); break;
    case ST_SQUARE: r = at::square(a); break;
    case ST_FLOOR: r = at::floor(a); break;
    case ST_CEIL: r = at::ceil(a); break;
    case ST_ROUND: r = at::round(a); break;
    case ST_SIGN: r = at::sign(a); break;
    case ST_SIN: r = at::sin(a); break;
    case ST_COS: r = at::cos(a); break;
    case ST_ISFINITE: r = at::isfinite(a); break;
    case ST_LOGICAL_NOT: r = at::logical_not(a); break;
    case ST_RECIPROCAL: r = at::reciprocal(a); break;
    case ST_CONTIGUOUS: r = a.contiguous(); break;
    case ST_CHANNELS_LAST: r = a.contiguous(at::MemoryFormat::ChannelsLast); break;
    case ST_CLONE: r = a.clone(); break;
    case ST_DETACH: r = a.detach(); break;
    case ST_T: r = a.t(); break;
    case ST_LOG1P: r = at::log1p(a); break;
    case ST_EXPM1: r = at::expm1(a); break;
    case ST_GELU: r = at::gelu(a); break;
    case ST_ISNAN: r = at::isnan(a); break;
    default: throw std::invalid_argument("unknown unary op " + std::to_string(op));
  }
  *out = wrap(std::move(r));
  ST_END
}

static at::Tensor binary_op(int op, const at::Tensor& a, const at::Tensor& b) {
  switch (op) {
    case ST_ADD: return at::add(a, b);
    case ST_SUB: return at::sub(a, b);
    case ST_MUL: return at::mul(a, b);
    case ST_DIV: return at::div(a, b);
    case ST_POW: return at::pow(a, b);
    case ST_MAXIMUM: return at::maximum(a, b);
    case ST_MINIMUM: return at::minimum(a, b);
    case ST_EQ: return at::eq(a, b);
    case ST_NE: return at::ne(a, b);
    case ST_LT: return at::lt(a, b);
    case ST_LE: return at::le(a, b);
    case ST_GT: return at::gt(a, b);
    case ST_GE: return at::ge(a, b);
    case ST_LOGICAL_AND: return at::logical_and(a, b);
    case ST_LOGICAL_OR: return at::logical_or(a, b);
    case ST_MATMUL: return at::matmul(a, b);
    case ST_MM: return at::mm(a, b);
    case ST_BMM: return at::bmm(a, b);
    case ST_FMOD: return at::fmod(a, b);
    case ST_ATAN2: return at::atan2(a, b);
  }
  throw std::invalid_argument("unknown binary op " + std::to_string(op));
}

st_err st_binary(int op, st_tensor a, st_tensor b, st_tensor* out) {
  ST_TRY
  *out = wrap(binary_op(op, get(a), get(b)));
  ST_END
}

st_err st_binary_scalar(int op, st_tensor ha, double s, st_tensor* out) {
  ST_TRY
  const at::Tensor& a = get(ha);
  at::Scalar sc(s);
  at::Tensor r;
  switch (op) {
    case ST_ADD: r = at::add(a, sc); break;
    case ST_SUB: r = at::sub(a, sc); break;
    case ST_MUL: r = at::mul(a, sc); break;
    case ST_DIV: r = at::div(a, sc); break;
    case ST_POW: r = at::pow(a, sc); break;
    case ST_EQ: r = at::eq(a, sc); break;
    case ST_NE: r = at::ne(a, sc); break;
    case ST_LT: r = at::lt(a, sc); break;
    case ST_LE: r = at::le(a, sc); break;
    case ST_GT: r = at::gt(a, sc); break;
    case ST_GE: r = at::ge(a, sc); break;
    case ST_FMOD: r = at::fmod(a, sc); break;
    case ST_MAXIMUM: r = at::clamp_min(a, sc); break;
    case ST_MINIMUM: r = at::clamp_max(a, sc); break;
    default: throw std::invalid_argument("op " + std::to_string(op) + " takes no scalar");
  }
  *out = wrap(std::move(r));
  ST_END
}

st_err st_scalar_binary(int op, double s, st_tensor ha, st_tensor* out) {
  ST_TRY
  const at::Tensor& a = get(ha);
  at::Scalar sc(s);
  at::Tensor r;
  switch (op) {
    case ST_SUB: r = at::rsub(a, sc); break;
    case ST_DIV: r = at::mul(at::reciprocal(a), sc); break;
    case ST_POW: r = at::pow(sc, a); break;
    default: throw std::invalid_argument("op " + std::to_string(op) + " has no scalar-first form");
  }
  *out = wrap(std::move(r));
  ST_END
}

st_err st_clamp(st_tensor a, double lo, double hi, int has_lo, int has_hi, st_tensor* out) {
  ST_TRY
  c10::optional<at::Scalar> l, h;
  if (has_lo) l = lo;
  if (has_hi) h = hi;
  *out = wrap(at::clamp(get(a), l, h));
  ST_END
}

st_err st_where(st_tensor c, st_tensor a, st_tensor b, st_tensor* out) {
  ST_TRY
  *out = wrap(at::where(get(c), get(a), get(b)));
  ST_END
}

st_err st_masked_fill(st_tensor a, st_tensor mask, double value, st_tensor* out) {
  ST_TRY
  *out = wrap(get(a).masked_fill(get(mask), value));
  ST_END
}

st_err st_to(st_tensor a, int dtype, int dev_type, int dev_index, int non_blocking, st_tensor* out) {
  ST_TRY
  if (get(a).device() != to_device(dev_type, dev_index)) count_host_copy();
  *out = wrap(get(a).to(to_device(dev_type, dev_index), to_scalar_type(dtype), non_blocking != 0));
  ST_END
}

st_err st_lerp(st_tensor a, st_tensor b, double w, st_tensor* out) {
  ST_TRY
  *out = wrap(at::lerp(get(a), get(b), w));
  ST_END
}

// ---- in-place ----

st_err st_inplace(int op, st_tensor ha, st_tensor hb) {
  ST_TRY
  at::Tensor a = get(ha);
  const at::Tensor& b = get(hb);
  switch (op) {
    case ST_IADD: a.add_(b); break;
    case ST_ISUB: a.sub_(b); break;
    case ST_IMUL: a.mul_(b); break;
    case ST_IDIV: a.div_(b); break;
    case ST_ICOPY: a.copy_(b); break;
    default: throw std::invalid_argument("unknown in-place op " + std::to_string(op));
  }
  ST_END
}

st_err st_inplace_scalar(int op, st_tensor ha, double s) {
  ST_TRY
  at::Tensor a = get(ha);
  switch (op) {
    case ST_IADD: a.add_(s); break;
    case ST_ISUB: a.sub_(s); break;
    case ST_IMUL: a.mul_(s); break;
    case ST_IDIV: a.div_(s); break;
    case ST_ICOPY: a.fill_(s); break;
    default: throw std::invalid_argument("unknown in-place op " + std::to_string(op));
  }
  ST_END
}

st_err st_zero_(st_tensor a) {
  ST_TRY
  at::Tensor t = get(a);
  t.zero_();
  ST_END
}

// ---- reductions ----

st_err st_reduce(int op, st_tensor ha, const int64_t* dims, int ndims, int keepdim, st_tensor* out) {
  ST_TRY
  const at::Tensor& a = get(ha);
  std::vector<int64_t> d(dims, dims + ndims);
  if (ndims == 0)
    for (int64_t i = 0; i < a.dim(); i++) d.push_back(i);
  bool k = keepdim != 0;
  at::Tensor r;
  switch (op) {
    case ST_SUM: r = a.dim() == 0 ? a.clone() : at::sum(a, d, k); break;
    case ST_MEAN: r = a.dim() == 0 ? a.clone() : at::mean(a, d, k); break;
    case ST_AMAX: r = at::amax(a, d, k); break;
    case ST_AMIN: r = at::amin(a, d, k); break;
    case ST_LOGSUMEXP: r = at::logsumexp(a, d, k); break;
    case ST_VAR: r = at::var(a, d, /*unbiased=*/true, k); break;
    case ST_STD: r = at::std(a, d, /*unbiased=*/true, k); break;
    case ST_NORM2: r = at::norm(a, 2, d, k); break;
    case ST_PROD:
    case ST_ALL:
    case ST_ANY: {
      // these take one dimension at a time in libtorch
      r = a;
      std::vector<int64_t> sorted = d;
      std::sort(sorted.begin(), sorted.end(), std::greater<int64_t>());
      for (int64_t dim : sorted) {
        if (op == ST_PROD) r = at::prod(r, dim, k);
        else if (op == ST_ALL) r = at::all(r, dim, k);
        else r = at::any(r, dim, k);
      }
      if (a.dim() == 0) r = r.clone();
      break;
    }
    default: throw std::invalid_argument("unknown reduction " + std::to_string(op));
  }
  *out = wrap(std::move(r));
  ST_END
}

st_err st_argreduce(int op, st_tensor a, int64_t dim, int keepdim, st_tensor* out) {
  ST_TRY
  if (op == ST_ARGMAX) *out = wrap(at::argmax(get(a), dim, keepdim != 0));
  else if (op == ST_ARGMIN) *out = wrap(at::argmin(get(a), dim, keepdim != 0));
  else throw std::invalid_argument("unknown arg-reduction " + std::to_string(op));
  ST_END
}

st_err st_sort(st_tensor a, int64_t dim, int descending, st_tensor* values, st_tensor* indices) {
  ST_TRY
  auto r = at::sort(get(a), dim, descending != 0);
  *values = wrap(std::get<0>(r));
  *indices = wrap(std::get<1>(r));
  ST_END
}

st_err st_topk(st_tensor a, int64_t k, int64_t dim, int largest, st_tensor* values, st_tensor* indices) {
  ST_TRY
  auto r = at::topk(get(a), k, dim, largest != 0, true);
  *values = wrap(std::get<0>(r));
  *indices = wrap(std::get<1>(r));
  ST_END
}

st_err st_cumsum(st_tensor a, int64_t dim, st_tensor* out) {
  ST_TRY
  *out = wrap(at::cumsum(get(a), dim));
  ST_END
}

// ---- shape and indexing ----

st_err st_reshape(st_tensor a, const int64_t* shape, int ndim, st_tensor* out) {
  ST_TRY
  *out = wrap(get(a).reshape(at::IntArrayRef(shape, ndim)));
  ST_END
}
st_err st_permute(st_tensor a, const int64_t* dims, int ndim, st_tensor* out) {
  ST_TRY
  *out = wrap(get(a).permute(at::IntArrayRef(dims, ndim)));
  ST_END
}
st_err st_expand(st_tensor a, const int64_t* shape, int ndim, st_tensor* out) {
  ST_TRY
  *out = wrap(get(a).expand(at::IntArrayRef(shape, ndim)));
  ST_END
}
st_err st_repeat(st_tensor a, const int64_t* reps, int ndim, st_tensor* out) {
  ST_TRY
  *out = wrap(get(a).repeat(at::IntArrayRef(reps, ndim)));
  ST_END
}
st_err st_flip(st_tensor a, const int64_t* dims, int ndim, st_tensor* out) {
  ST_TRY
  *out = wrap(at::flip(get(a), at::IntArrayRef(dims, ndim)));
  ST_END
}
st_err st_transpose(st_tensor a, int64_t d0, int64_t d1, st_tensor* out) {
  ST_TRY
  *out = wrap(get(a).transpose(d0, d1));
  ST_END
}
st_err st_unsqueeze(st_tensor a, int64_t dim, st_tensor* out) {
  ST_TRY
  *out = wrap(get(a).unsqueeze(dim));
  ST_END
}
st_err st_squeeze(st_tensor a, int64_t dim, st_tensor* out) {
  ST_TRY
  *out = wrap(get(a).squeeze(dim));
  ST_END
}
st_err st_flatten(st_tensor a, int64_t start, int64_t end, st_tensor* out) {
  ST_TRY
  *out = wrap(get(a).flatten(start, end));
  ST_END
}
st_err st_narrow(st_tensor a, int64_t dim, int64_t start, int64_t length, st_tensor* out) {
  ST_TRY
  *out = wrap(get(a).narrow(dim, start, length));
  ST_END
}
st_err st_select(st_tensor a, int64_t dim, int64_t index, st_tensor* out) {
  ST_TRY
  *out = wrap(get(a).select(dim, index));
  ST_END
}
st_err st_index_select(st_tensor a, int64_t dim, st_tensor index, st_tensor* out) {
  ST_TRY
  *out = wrap(at::index_select(get(a), dim, get(index)));
  ST_END
}
st_err st_gather(st_tensor a, int64_t dim, st_tensor index, st_tensor* out) {
  ST_TRY
  *out = wrap(at::gather(get(a), dim, get(index)));
  ST_END
}
st_err st_scatter(st_tensor a, int64_t dim, st_tensor index, st_tensor src, st_tensor* out) {
  ST_TRY
  *out = wrap(at::scatter(get(a), dim, get(index), get(src)));
  ST_END
}
st_err st_scatter_add(st_tensor a, int64_t dim, st_tensor index, st_tensor src, st_tensor* out) {
  ST_TRY
  *out = wrap(at::scatter_add(get(a), dim, get(index), get(src)));
  ST_END
}
st_err st_masked_select(st_tensor a, st_tensor mask, st_tensor* out) {
  ST_TRY
  count_host_copy();
  *out = wrap(at::masked_select(get(a), get(mask)));
  ST_END
}
st_err st_nonzero(st_tensor a, st_tensor* out) {
  ST_TRY
  count_host_copy();
  *out = wrap(at::nonzero(get(a)));
  ST_END
}
st_err st_cat(const st_tensor* ts, int n, int64_t dim, st_tensor* out) {
  ST_TRY
  *out = wrap(at::cat(get_list(ts, n), dim));
  ST_END
}
st_err st_stack(const st_tensor* ts, int n, int64_t dim, st_tensor* out) {
  ST_TRY
  *out = wrap(at::stack(get_list(ts, n), dim));
  ST_END
}
st_err st_tril(st_tensor a, int64_t diagonal, st_tensor* out) {
  ST_TRY
  *out = wrap(at::tril(get(a), diagonal));
  ST_END
}
st_err st_triu(st_tensor a, int64_t diagonal, st_tensor* out) {
  ST_TRY
  *out = wrap(at::triu(get(a), diagonal));
  ST_END
}
st_err st_diagonal(st_tensor a, int64_t offset, int64_t d0, int64_t d1, st_tensor* out) {
  ST_TRY
  *out = wrap(at::diagonal(get(a), offset, d0, d1));
  ST_END
}
st_err st_diag_embed(st_tensor a, st_tensor* out) {
  ST_TRY
  *out = wrap(at::diag_embed(get(a)));
  ST_END
}
st_err st_one_hot(st_tensor a, int64_t num_classes, st_tensor* out) {
  ST_TRY
  *out = wrap(at::one_hot(get(a), num_classes));
  ST_END
}
st_err st_bincount(st_tensor a, int64_t minlength, st_tensor* out) {
  ST_TRY
  *out = wrap(at::bincount(get(a), {}, minlength));
  ST_END
}

// ---- neural-network functions ----

namespace F = torch::nn::functional;

st_err st_normalize(st_tensor a, double p, int64_t dim, double eps, st_tensor* out) {
  ST_TRY
  *out = wrap(F::normalize(get(a), F::NormalizeFuncOptions().p(p).dim(dim).eps(eps)));
  ST_END
}
st_err st_softmax(st_tensor a, int64_t dim, st_tensor* out) {
  ST_TRY
  *out = wrap(at::softmax(get(a), dim));
  ST_END
}
st_err st_log_softmax(st_tensor a, int64_t dim, st_tensor* out) {
  ST_TRY
  *out = wrap(at::log_softmax(get(a), dim));
  ST_END
}

static at::Reduction::Reduction to_reduction(int r) {
  switch (r) {
    case 0: return at::Reduction::None;
    case 1: return at::Reduction::Mean;
    case 2: return at::Reduction::Sum;
  }
  throw std::invalid_argument("unknown reduction mode " + std::to_string(r));
}

st_err st_cross_entropy(st_tensor logits, st_tensor targets, int reduction, double label_smoothing,
                        st_tensor* out) {
  ST_TRY
  *out = wrap(at::cross_entropy_loss(get(logits), get(targets), {}, to_reduction(reduction), -100,
                                     label_smoothing));
  ST_END
}
st_err st_mse_loss(st_tensor a, st_tensor b, int reduction, st_tensor* out) {
  ST_TRY
  *out = wrap(at::mse_loss(get(a), get(b), to_reduction(reduction)));
  ST_END
}
st_err st_linear(st_tensor x, st_tensor w, st_tensor b, st_tensor* out) {
  ST_TRY
  c10::optional<at::Tensor> bias;
  if (b) bias = get(b);
  *out = wrap(at::linear(get(x), get(w), bias));
  ST_END
}

st_err st_interpolate(st_tensor x, int64_t out_h, int64_t out_w, int mode, int align_corners, int antialias,
                      st_tensor* out) {
  ST_TRY
  auto opts = F::InterpolateFuncOptions().size(std::vector<int64_t>{out_h, out_w});
  switch (mode) {
    case 0: opts = opts.mode(torch::kNearest); break;
    case 1: opts = opts.mode(torch::kBilinear).align_corners(align_corners != 0); break;
    case 2: opts = opts.mode(torch::kBicubic).align_corners(align_corners != 0); break;
    case 3: opts = opts.mode(torch::kArea); break;
    default: throw std::invalid_argument("unknown interpolation mode " + std::to_string(mode));
  }
  if (antialias) opts = opts.antialias(true);
  *out = wrap(F::interpolate(get(x), opts));
  ST_END
}

st_err st_grid_sample(st_tensor x, st_tensor grid, int mode, int padding, int align_corners, st_tensor* out) {
  ST_TRY
  if (mode < 0 || mode > 1) throw std::invalid_argument("unknown grid_sample mode " + std::to_string(mode));
  if (padding < 0 || padding > 2) throw std::invalid_argument("unknown grid_sample padding " + std::to_string(padding));
  // libtorch's integer codes: interpolation 0 bilinear, 1 nearest; padding 0 zeros, 1 border, 2 reflection
  *out = wrap(at::grid_sampler(get(x), get(grid), mode, padding, align_corners != 0));
  ST_END
}
st_err st_affine_grid(st_tensor theta, const int64_t* size, int ndim, int align_corners, st_tensor* out) {
  ST_TRY
  *out = wrap(at::affine_grid_generator(get(theta), at::IntArrayRef(size, ndim), align_corners != 0));
  ST_END
}
st_err st_embedding(st_tensor weight, st_tensor indices, st_tensor* out) {
  ST_TRY
  *out = wrap(at::embedding(get(weight), get(indices)));
  ST_END
}
st_err st_dropout(st_tensor a, double p, int train, st_tensor* out) {
  ST_TRY
  *out = wrap(at::dropout(get(a), p, train != 0));
  ST_END
}
st_err st_cdist(st_tensor a, st_tensor b, st_tensor* out) {
  ST_TRY
  *out = wrap(at::cdist(get(a), get(b)));
  ST_END
}

// ---- autograd ----

st_err st_set_requires_grad(st_tensor t, int on) {
  ST_TRY
  at::Tensor x = get(t);
  x.set_requires_grad(on != 0);
  ST_END
}

st_err st_backward(st_tensor t, st_tensor grad, int retain_graph) {
  ST_TRY
  at::Tensor g;
  if (grad) g = get(grad);
  get(t).backward(g, retain_graph != 0);
  ST_END
}

st_err st_grad(st_tensor t, st_tensor* out) {
  ST_TRY
  const at::Tensor& g = get(t).grad();
  *out = g.defined() ? wrap(g) : nullptr;
  ST_END
}

st_err st_zero_grad(st_tensor t) {
  ST_TRY
  at::Tensor x = get(t);
  x.mutable_grad() = at::Tensor();
  ST_END
}

st_err st_autograd_grad(const st_tensor* outputs, const st_tensor* grad_outputs, int nout, const st_tensor* inputs,
                        int nin, int create_graph, st_tensor* out_grads) {
  ST_TRY
  std::vector<at::Tensor> gouts;
  if (grad_outputs) gouts = get_list(grad_outputs, nout);
  auto grads = torch::autograd::grad(get_list(outputs, nout), get_list(inputs, nin), gouts,
                                     /*retain_graph=*/c10::nullopt, create_graph != 0, /*allow_unused=*/true);
  for (int i = 0; i < nin; i++) out_grads[i] = grads[i].defined() ? wrap(grads[i]) : nullptr;
  ST_END
}

// ---- optimizer kernels ----

st_err st_adamw_update(st_tensor hp, st_tensor hg, st_tensor hm, st_tensor hv, double lr, double beta1,
                       double beta2, double eps, double weight_decay, int64_t step) {
  ST_TRY
  at::NoGradGuard no_grad;
  at::Tensor p = get(hp), m = get(hm), v = get(hv);
  const at::Tensor& g = get(hg);
  // the order of operations follows torch.optim.AdamW (single-tensor path) so results match it
  p.mul_(1.0 - lr * weight_decay);
  m.lerp_(g, 1.0 - beta1);
  v.mul_(beta2).addcmul_(g, g, 1.0 - beta2);
  double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  at::Tensor denom = (v.sqrt() / std::sqrt(bc2)).add_(eps);
  p.addcdiv_(m, denom, -lr / bc1);
  ST_END
}

st_err st_adamw_foreach(const st_tensor* hp, const st_tensor* hg, const st_tensor* hm, const st_tensor* hv, int n,
                        double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step) {
  ST_TRY
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> p = get_list(hp, n), g = get_list(hg, n), m = get_list(hm, n), v = get_list(hv, n);
  // the order of operations follows torch.optim.AdamW's multi-tensor path
  at::_foreach_mul_(p, 1.0 - lr * weight_decay);
  at::_foreach_mul_(m, beta1);
  at::_foreach_add_(m, g, 1.0 - beta1);
  at::_foreach_mul_(v, beta2);
  at::_foreach_addcmul_(v, g, g, 1.0 - beta2);
  double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  std::vector<at::Tensor> denom = at::_foreach_sqrt(v);
  at::_foreach_div_(denom, std::sqrt(bc2));
  at::_foreach_add_(denom, eps);
  at::_foreach_addcdiv_(p, m, denom, -lr / bc1);
  ST_END
}

st_err st_sgd_update(st_tensor hp, st_tensor hg, st_tensor hbuf, double lr, double momentum, double dampening,
                     double weight_decay, int nesterov, int first) {
  ST_TRY
  at::NoGradGuard no_grad;
  at::Tensor p = get(hp);
  at::Tensor d = get(hg);
  if (weight_decay != 0) d = d.add(p, weight_decay);
  if (momentum != 0) {
    at::Tensor buf = get(hbuf);
    if (first) buf.copy_(d);
    else buf.mul_(momentum).add_(d, 1.0 - dampening);
    d = nesterov ? d.add(buf, momentum) : buf;
  }
  p.add_(d, -lr);
  ST_END
}

st_err st_total_norm(const st_tensor* ts, int n, st_tensor* out) {
  ST_TRY
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> norms;
  norms.reserve(n);
  for (int i = 0; i < n; i++) norms.push_back(at::norm(get(ts[i]), 2));
  *out = wrap(n == 0 ? at::zeros({}) : at::norm(at::stack(norms), 2));
  ST_END
}

}  // extern "C"
