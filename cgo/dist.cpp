// dist.cpp: the distributed runtime over c10d: a rendezvous store (TCPStore across machines, a
// FileStore on one machine, a PrefixStore under torchrun's agent), Gloo (CPU) and NCCL (CUDA) process
// groups, bucketed collectives, and an all-gather with gradient.
//
// Builds against libtorch 1.13 (collectives on c10d::ProcessGroup) and 2.x (on c10d::Backend).
// USE_C10D_GLOO / USE_C10D_NCCL come from libtorch's CMake targets (torch_cpu / torch_cuda export
// them); CMakeLists.txt defines SPREADTORCH_NO_GLOO / SPREADTORCH_NO_NCCL when the gloo or nccl
// headers are missing, so the shim still builds and reports the backend as unavailable.
#include "spreadtorch_internal.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
// the collectives' base class, included here so that the shim builds with neither backend's headers
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif

#if defined(USE_C10D_GLOO) && !defined(SPREADTORCH_NO_GLOO)
#define ST_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(USE_C10D_NCCL) && !defined(SPREADTORCH_NO_NCCL)
#define ST_HAVE_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace {

#if TORCH_VERSION_MAJOR >= 2
using Backend = c10d::Backend;  // 2.x: ProcessGroupGloo/NCCL derive from Backend
#else
using Backend = c10d::ProcessGroup;  // 1.13: they derive from ProcessGroup
#endif

struct Group {
  c10::intrusive_ptr<Backend> backend;
  std::string name;  // "gloo" or "nccl"
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{0};
  at::Device device{at::kCPU};  // where barrier/size exchanges put their small tensors
};

// The autograd all-gather keeps a group id, not a pointer, in its context: a graph that outlives
// the group then fails with a message instead of touching freed memory.
std::mutex g_groups_mu;
std::unordered_map<int64_t, std::shared_ptr<Group>> g_groups;
std::atomic<int64_t> g_next_group{1};
std::atomic<int64_t> g_pg_count{0};

std::shared_ptr<Group> lookup(int64_t id) {
  std::lock_guard<std::mutex> lock(g_groups_mu);
  auto it = g_groups.find(id);
  if (it == g_groups.end()) throw std::runtime_error("process group was destroyed while a graph still used it");
  return it->second;
}

// Waits for a collective; a dead peer or a timeout becomes an exception naming the op. Gloo waits on
// the host with the group's timeout. NCCL's wait() only makes the current CUDA stream wait for the
// collective (no host poll, no sync); a dead or stalled peer is caught by ProcessGroupNCCL's watchdog
// thread at the group's timeout (Options::timeout), which aborts the communicator and the process.
void wait(const Group& g, const c10::intrusive_ptr<c10d::Work>& work, const char* op) {
  try {
    if (g.name == "nccl")
      work->wait();
    else
      work->wait(g.timeout);
  } catch (const c10::Error& e) {
    throw std::runtime_error(std::string(op) + " on rank " + std::to_string(g.rank) + "/" +
                             std::to_string(g.size) + " failed: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(op) + " on rank " + std::to_string(g.rank) + "/" +
                             std::to_string(g.size) + " failed: " + e.what());
  }
}

void allreduce_sum(const Group& g, at::Tensor& t, const char* op) {
  std::vector<at::Tensor> v{t};
  wait(g, g.backend->allreduce(v), op);
}

// Consecutive tensors of one dtype and device, up to bucket_bytes (a larger tensor is a bucket alone).
std::vector<std::vector<at::Tensor>> buckets(const std::vector<at::Tensor>& ts, int64_t bucket_bytes) {
  std::vector<std::vector<at::Tensor>> out;
  int64_t fill = 0;
  for (const auto& t : ts) {
    int64_t nb = t.numel() * static_cast<int64_t>(t.element_size());
    bool fresh = out.empty() || out.back().front().scalar_type() != t.scalar_type() ||
                 out.back().front().device() != t.device() || (bucket_bytes > 0 && fill + nb > bucket_bytes);
    if (fresh) {
      out.emplace_back();
      fill = 0;
    }
    out.back().push_back(t);
    fill += nb;
  }
  return out;
}

at::Tensor flatten(const std::vector<at::Tensor>& b) {
  if (b.size() == 1 && b[0].is_contiguous()) return b[0].view({-1});  // reduce in place, no copy
  std::vector<at::Tensor> flat;
  flat.reserve(b.size());
  for (const auto& t : b) flat.push_back(t.reshape({-1}));
  return at::cat(flat);
}

void unflatten(const at::Tensor& flat, std::vector<at::Tensor>& b) {
  if (b.size() == 1 && b[0].is_contiguous() && flat.data_ptr() == b[0].data_ptr()) return;
  int64_t off = 0;
  for (auto& t : b) {
    t.copy_(flat.narrow(0, off, t.numel()).view(t.sizes()));
    off += t.numel();
  }
}

constexpr int kMaxDims = 8;

// all_gather along dim 0; ranks may hold different row counts (they are exchanged first, with dtype
// and trailing shape, so a mismatch is an error rather than garbage). counts gets each rank's rows.
at::Tensor gather_rows(const Group& g, const at::Tensor& x_in, std::vector<int64_t>& counts) {
  at::Tensor x = x_in.contiguous();
  if (x.dim() < 1 || x.dim() > kMaxDims)
    throw std::invalid_argument("all_gather: tensor must have 1 to 8 dimensions, got " + std::to_string(x.dim()));
  // header: dtype, ndim, sizes (padded)
  // h reads hdr_host below: it must stay alive after the copy to the group's device
  at::Tensor hdr_host = at::zeros({2 + kMaxDims}, at::TensorOptions().dtype(at::kLong));
  auto h = hdr_host.accessor<int64_t, 1>();
  h[0] = static_cast<int64_t>(x.scalar_type());
  h[1] = x.dim();
  for (int64_t d = 0; d < x.dim(); d++) h[2 + d] = x.size(d);
  at::Tensor hdr = hdr_host.to(g.device);
  std::vector<std::vector<at::Tensor>> hout(1);
  for (int r = 0; r < g.size; r++) hout[0].push_back(at::empty_like(hdr));
  std::vector<at::Tensor> hin{hdr};
  wait(g, g.backend->allgather(hout, hin), "all_gather (shapes)");

  counts.assign(g.size, 0);
  int64_t maxn = 0;
  at::Tensor all = at::stack(hout[0]).to(at::kCPU);  // one device->host copy for every rank's header
  auto rows = all.accessor<int64_t, 2>();
  for (int r = 0; r < g.size; r++) {
    auto a = rows[r];
    bool same = a[0] == h[0] && a[1] == h[1];
    for (int64_t d = 1; same && d < x.dim(); d++) same = a[2 + d] == h[2 + d];
    if (!same) {
      std::string mine, theirs;
      for (int64_t d = 0; d < h[1]; d++) mine += (d ? "," : "") + std::to_string(h[2 + d]);
      for (int64_t d = 0; d < a[1] && d < kMaxDims; d++) theirs += (d ? "," : "") + std::to_string(a[2 + d]);
      throw std::invalid_argument("all_gather: rank " + std::to_string(r) + " sent shape [" + theirs + "] of dtype " +
                                  std::to_string(a[0]) + ", rank " + std::to_string(g.rank) + " has [" + mine +
                                  "] of dtype " + std::to_string(h[0]) +
                                  " (every dimension but the first and the dtype must match)");
    }
    counts[r] = a[2];
    maxn = std::max(maxn, counts[r]);
  }

  at::Tensor padded = x;
  if (x.size(0) < maxn) {
    std::vector<int64_t> ps(x.sizes().begin(), x.sizes().end());
    ps[0] = maxn - x.size(0);
    padded = at::cat({x, at::zeros(ps, x.options())});
  }
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < g.size; r++) out[0].push_back(at::empty_like(padded));
  std::vector<at::Tensor> in{padded};
  wait(g, g.backend->allgather(out, in), "all_gather");
  std::vector<at::Tensor> parts;
  for (int r = 0; r < g.size; r++) parts.push_back(counts[r] == maxn ? out[0][r] : out[0][r].narrow(0, 0, counts[r]));
  return at::cat(parts);
}

// AllGatherGrad: forward gathers every rank's rows [n_r, ...] into [sum n_r, ...]; backward
// all-reduces (SUM) the gradient of the gathered tensor and returns this rank's rows.
//
// Why SUM. Rank r's loss L_r is the mean over its own anchors but depends on every rank's embeddings
// Z_s through the gathered tensor; the objective is L = (1/W) sum_r L_r (the global-batch mean when
// ranks hold equal anchor counts). Rank s owns Z_s, and dL/dZ_s = (1/W) sum_r dL_r/dZ_s. Backward
// here gives rank s: sum_r dL_r/dZ_s = W * dL/dZ_s; the trainer then averages parameter gradients over
// ranks (DDP-style all-reduce mean), dividing by W: (1/W) sum_s W dL/dZ_s dZ_s/dtheta = dL/dtheta.
// Averaging here as well would make every gradient W times too small.
struct AllGatherGrad : public torch::autograd::Function<AllGatherGrad> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor x, int64_t group_id) {
    auto g = lookup(group_id);
    std::vector<int64_t> counts;
    at::Tensor out = gather_rows(*g, x, counts);
    int64_t start = 0;
    for (int r = 0; r < g->rank; r++) start += counts[r];
    ctx->saved_data["group"] = group_id;
    ctx->saved_data["start"] = start;
    ctx->saved_data["count"] = counts[g->rank];
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto g = lookup(ctx->saved_data["group"].toInt());
    // the incoming gradient may be shared with other nodes: reduce a private copy
    at::Tensor sum = grads[0].contiguous().clone();
    allreduce_sum(*g, sum, "all_gather backward (all_reduce)");
    at::Tensor mine = sum.narrow(0, ctx->saved_data["start"].toInt(), ctx->saved_data["count"].toInt());
    return {mine, at::Tensor()};
  }
};

}  // namespace

struct st_store_s {
  c10::intrusive_ptr<c10d::Store> store;
  int port = -1;  // a TCPStore's port; -1 for the other kinds
};

namespace {
std::vector<uint8_t> bytes_of(const char* s) {
  std::string v = s ? s : "";
  return std::vector<uint8_t>(v.begin(), v.end());
}
}  // namespace

struct st_pg_s {
  int64_t id;
  std::shared_ptr<Group> g;
};

using namespace st;

extern "C" {

int st_dist_backends(void) {
  int m = 0;
#ifdef ST_HAVE_GLOO
  m |= ST_DIST_GLOO;
#endif
#ifdef ST_HAVE_NCCL
  m |= ST_DIST_NCCL;
#endif
  return m;
}

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define SPREADTORCH_STORE_FD 1
#endif

namespace {
c10d::TCPStoreOptions store_options(int port, bool master, int world_size, int64_t timeout_ms) {
  if (port < 0 || port > 65535) throw std::invalid_argument("store port " + std::to_string(port) + " out of range");
  if (world_size < 1) throw std::invalid_argument("store world size must be >= 1");
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(port);
  o.isServer = master;
  o.numWorkers = static_cast<std::size_t>(world_size);
  o.waitWorkers = true;  // the master returns once every rank has connected, or fails at the timeout
  o.timeout = std::chrono::milliseconds(timeout_ms);
  return o;
}

c10::intrusive_ptr<c10d::TCPStore> tcp_store(const std::string& host, c10d::TCPStoreOptions o) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
  // libtorch >= 2.4 asks for the libuv store by default, and a build without libuv (Debian's 2.6)
  // refuses it: fall back to the classic store there, keep libuv where the build has it.
  try {
    return c10::make_intrusive<c10d::TCPStore>(host, o);
  } catch (const c10::Error& e) {
    if (!o.useLibUV || std::string(e.what()).find("libuv") == std::string::npos) throw;
    o.useLibUV = false;
    return c10::make_intrusive<c10d::TCPStore>(host, o);
  }
#else
  return c10::make_intrusive<c10d::TCPStore>(host, o);
#endif
}
}  // namespace

st_err st_dist_store_new(const char* host, int port, int is_master, int world_size, int64_t timeout_ms,
                         st_store* out) {
  ST_TRY
  auto tcp = tcp_store(std::string(host), store_options(port, is_master != 0, world_size, timeout_ms));
  *out = new st_store_s{tcp, static_cast<int>(tcp->getPort())};
  ST_END
}

int st_dist_store_takes_socket(void) {
#ifdef SPREADTORCH_STORE_FD
  return 1;
#else
  return 0;
#endif
}

st_err st_dist_store_new_on(const char* host, int listen_fd, int port, int world_size, int64_t timeout_ms,
                            st_store* out) {
  ST_TRY
#ifdef SPREADTORCH_STORE_FD
  c10d::TCPStoreOptions o = store_options(port, true, world_size, timeout_ms);
  o.masterListenFd = listen_fd;
  auto tcp = tcp_store(std::string(host), o);
  *out = new st_store_s{tcp, static_cast<int>(tcp->getPort())};
#else
  (void)host, (void)listen_fd, (void)port, (void)world_size, (void)timeout_ms, (void)out;
  throw std::invalid_argument("a TCPStore on a bound socket needs libtorch >= 2.4, this is " TORCH_VERSION);
#endif
  ST_END
}

st_err st_dist_file_store_new(const char* path, int world_size, int64_t timeout_ms, st_store* out) {
  ST_TRY
  if (path == nullptr || *path == '\0') throw std::invalid_argument("file store: empty path");
  if (world_size < 1) throw std::invalid_argument("store world size must be >= 1");
  auto fs = c10::make_intrusive<c10d::FileStore>(std::string(path), world_size);
  fs->setTimeout(std::chrono::milliseconds(timeout_ms));
  *out = new st_store_s{fs};
  ST_END
}

st_err st_dist_store_prefix(st_store s, const char* prefix, st_store* out) {
  ST_TRY
  if (s == nullptr) throw std::invalid_argument("null store");
  *out = new st_store_s{c10::make_intrusive<c10d::PrefixStore>(std::string(prefix ? prefix : ""), s->store)};
  ST_END
}

int st_dist_store_port(st_store s) { return s->port; }

st_err st_dist_store_check(st_store s, const char* key, int* present) {
  ST_TRY
  *present = s->store->check({std::string(key)}) ? 1 : 0;
  ST_END
}

st_err st_dist_store_compare_set(st_store s, const char* key, const char* expected, const char* desired,
                                 char** actual) {
  ST_TRY
  std::vector<uint8_t> got = s->store->compareSet(std::string(key), bytes_of(expected), bytes_of(desired));
  *actual = make_err(std::string(got.begin(), got.end()).c_str());
  ST_END
}

st_err st_dist_cuda_set_device(int index) {
  ST_TRY
  // through the device-guard registry, so that CPU-only builds compile (and fail here at run time)
  c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index)));
  ST_END
}

void st_dist_store_free(st_store s) { delete s; }

st_err st_dist_pg_new(st_store store, const char* backend, int rank, int world_size, int64_t timeout_ms,
                      const char* gloo_host, int device_index, st_pg* out) {
  ST_TRY
  if (store == nullptr) throw std::invalid_argument("null store");
  if (world_size < 1 || rank < 0 || rank >= world_size)
    throw std::invalid_argument("rank " + std::to_string(rank) + " outside world size " + std::to_string(world_size));
  auto g = std::make_shared<Group>();
  g->name = backend;
  g->rank = rank;
  g->size = world_size;
  g->timeout = std::chrono::milliseconds(timeout_ms);
  // a prefix per group, so that several groups (created in the same order on every rank) share a store
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("spreadtorch_pg" + std::to_string(g_pg_count.fetch_add(1)),
                                                        store->store);
  if (g->name == "gloo") {
#ifdef ST_HAVE_GLOO
    auto opts = c10d::ProcessGroupGloo::Options::create(g->timeout);
    std::string host = gloo_host ? gloo_host : "";
    const char* iface = std::getenv("GLOO_SOCKET_IFNAME");
    if (!host.empty())
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
    else if (iface && *iface)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    g->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, world_size, opts);
#else
    throw std::runtime_error("this shim was built without Gloo (libtorch " TORCH_VERSION
                             "; install the gloo headers, e.g. Debian's libgloo-dev, and rebuild with make shim)");
#endif
  } else if (g->name == "nccl") {
#ifdef ST_HAVE_NCCL
#if TORCH_VERSION_MAJOR < 2
    // 1.13's watchdog only aborts a timed-out collective with async error handling on (2.x: default)
    setenv("NCCL_ASYNC_ERROR_HANDLING", "1", 0);
#endif
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = g->timeout;
    g->device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_index));
    g->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, rank, world_size, opts);
#else
    throw std::runtime_error("this shim was built without NCCL (libtorch " TORCH_VERSION
                             "); use the gloo backend, or rebuild the shim against a CUDA libtorch with NCCL");
#endif
  } else {
    throw std::invalid_argument("unknown backend \"" + g->name + "\": want gloo or nccl");
  }
  int64_t id = g_next_group.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(g_groups_mu);
    g_groups[id] = g;
  }
  *out = new st_pg_s{id, g};
  ST_END
}

void st_dist_pg_free(st_pg pg) {
  if (pg == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(g_groups_mu);
    g_groups.erase(pg->id);
  }
  delete pg;
}

st_err st_dist_all_reduce(st_pg pg, const st_tensor* ts, int n, int average, int64_t bucket_bytes,
                          int64_t* bytes) {
  ST_TRY
  at::NoGradGuard no_grad;
  const Group& g = *pg->g;
  auto bs = buckets(get_list(ts, n), bucket_bytes);
  // launch every bucket, then wait: Gloo's worker threads overlap them
  std::vector<at::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  int64_t moved = 0;
  for (auto& b : bs) {
    flats.push_back(flatten(b));
    moved += flats.back().numel() * static_cast<int64_t>(flats.back().element_size());
    std::vector<at::Tensor> v{flats.back()};
    works.push_back(g.backend->allreduce(v));
  }
  for (size_t i = 0; i < bs.size(); i++) {
    wait(g, works[i], "all_reduce");
    if (average) flats[i].div_(g.size);
    unflatten(flats[i], bs[i]);
  }
  if (bytes) *bytes = moved;
  ST_END
}

st_err st_dist_broadcast(st_pg pg, const st_tensor* ts, int n, int root, int64_t bucket_bytes) {
  ST_TRY
  at::NoGradGuard no_grad;  // parameters are leaves that require grad; copying into them is not a graph op
  const Group& g = *pg->g;
  if (root < 0 || root >= g.size)
    throw std::invalid_argument("broadcast root " + std::to_string(root) + " outside world size " +
                                std::to_string(g.size));
  auto bs = buckets(get_list(ts, n), bucket_bytes);
  for (auto& b : bs) {
    at::Tensor flat = flatten(b);
    std::vector<at::Tensor> v{flat};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    wait(g, g.backend->broadcast(v, o), "broadcast");
    if (g.rank != root) unflatten(flat, b);
  }
  ST_END
}

st_err st_dist_all_gather(st_pg pg, st_tensor t, st_tensor* out) {
  ST_TRY
  at::NoGradGuard no_grad;
  std::vector<int64_t> counts;
  *out = wrap(gather_rows(*pg->g, get(t), counts));
  ST_END
}

st_err st_dist_all_gather_grad(st_pg pg, st_tensor t, st_tensor* out) {
  ST_TRY
  *out = wrap(AllGatherGrad::apply(get(t), pg->id));
  ST_END
}

st_err st_dist_barrier(st_pg pg) {
  ST_TRY
  const Group& g = *pg->g;
  if (g.name == "gloo") {
    wait(g, g.backend->barrier(), "barrier");
  } else {
    // NCCL's barrier guesses a device; a one-element all-reduce on ours is explicit
    at::Tensor one = at::ones({1}, at::TensorOptions().device(g.device));
    allreduce_sum(g, one, "barrier");
    one.to(at::kCPU);  // NCCL's wait only orders the stream; a barrier must hold the host too
  }
  ST_END
}

}  // extern "C"
