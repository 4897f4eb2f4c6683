/*
 * spreadtorch.h: the only interface Go sees of libtorch.
 *
 * Plain C: opaque handles, plain types, and an error string out of every call that can fail.
 * Every function that returns st_err returns NULL on success, or a malloc'd message (free it with
 * st_free_err) when libtorch threw. No C++ exception ever crosses this boundary.
 *
 * Handles are owned by the caller: every st_tensor written to an out-parameter is a new reference
 * that must be released with st_tensor_free exactly once (libtorch tensors are reference counted,
 * so views and parameters stay valid as long as any handle to them lives).
 */
#ifndef SPREADTORCH_H
#define SPREADTORCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_tensor_s* st_tensor;
typedef struct st_module_s* st_module;
typedef char* st_err;

/* dtypes: our own stable numbering, mapped to c10::ScalarType inside the shim. */
enum {
  ST_UINT8 = 0,
  ST_INT8 = 1,
  ST_INT32 = 2,
  ST_INT64 = 3,
  ST_FLOAT16 = 4,
  ST_BFLOAT16 = 5,
  ST_FLOAT32 = 6,
  ST_FLOAT64 = 7,
  ST_BOOL = 8
};

/* device types */
enum { ST_CPU = 0, ST_CUDA = 1 };

void st_free_err(st_err e);

/* ---- library ---- */
const char* st_torch_version(void);     /* libtorch version the shim was built against (static string) */
int st_cuda_available(void);
int st_cuda_device_count(void);
int st_cudnn_available(void);
void st_set_num_threads(int n);         /* applied to every thread that calls into the shim */
int st_get_num_threads(void);
void st_manual_seed(uint64_t seed);     /* seeds CPU and all CUDA generators */
/* The default generator's state of a device, as a uint8 tensor, to save with a checkpoint. */
st_err st_rng_get_state(int dev_type, int dev_index, st_tensor* out);
st_err st_rng_set_state(int dev_type, int dev_index, st_tensor state);
st_err st_cuda_synchronize(int device);
/* Calls so far that moved data between host memory and a tensor (a copy the host waits for on a GPU):
 * st_from_data, st_to_data, st_item_*, st_to across devices, st_nonzero and st_masked_select (their
 * output size is read back), RNG state reads and writes. Counted on every device, so a CPU test sees
 * the calls a CUDA step would block on. */
uint64_t st_host_copies(void);
void st_set_cudnn_benchmark(int on);
/* oneDNN (MKL-DNN) for CPU kernels: on by default where the build has it. */
void st_set_mkldnn(int on);
int st_mkldnn_enabled(void);
/* A check of the CPU convolution kernels in use: a float32 3x3 convolution (batch x 8 channels x size x
 * size, 8 output channels, fixed values, no RNG) and its input gradient against the same in float64;
 * *out is the larger of the two largest errors, relative to the largest float64 value. */
st_err st_conv_check(int64_t batch, int64_t size, double* out);
/* Autocast (automatic mixed precision) on this thread for dev_type's tensors: ops autocast's policy
 * lists run in dtype (ST_BFLOAT16 or ST_FLOAT16). push returns what it replaced; pop restores it and
 * drops autocast's weight-cast cache when the outermost region ends. */
st_err st_autocast_push(int dev_type, int dtype, int* prev_enabled, int* prev_dtype);
st_err st_autocast_pop(int dev_type, int prev_enabled, int prev_dtype);
void st_set_grad_enabled(int on);       /* thread-local, as in libtorch */
int st_is_grad_enabled(void);

/* ---- tensors: creation, data, metadata ---- */
void st_tensor_free(st_tensor t);
/* Copies nbytes from data into a new CPU tensor of the given dtype/shape, then moves it to device. */
st_err st_from_data(const void* data, int dtype, const int64_t* shape, int ndim, int dev_type, int dev_index,
                    st_tensor* out);
/* Copies the tensor (any device, made contiguous) into dst, which holds nbytes. */
st_err st_to_data(st_tensor t, void* dst, int64_t nbytes);
int st_ndim(st_tensor t);
void st_shape(st_tensor t, int64_t* shape); /* shape has room for st_ndim entries */
int st_dtype(st_tensor t);
void st_device(st_tensor t, int* dev_type, int* dev_index);
int st_requires_grad(st_tensor t);
int st_is_contiguous(st_tensor t);
int st_is_channels_last(st_tensor t);   /* a 4-D tensor laid out channels-last */
st_err st_item_double(st_tensor t, double* out);
st_err st_item_int64(st_tensor t, int64_t* out);

/* factories: fill is used by ST_FULL only. */
enum { ST_ZEROS = 0, ST_ONES = 1, ST_FULL = 2, ST_RAND = 3, ST_RANDN = 4, ST_EMPTY = 5 };
st_err st_factory(int kind, const int64_t* shape, int ndim, double fill, int dtype, int dev_type, int dev_index,
                  st_tensor* out);
st_err st_arange(double start, double end, double step, int dtype, int dev_type, int dev_index, st_tensor* out);
st_err st_randint(int64_t low, int64_t high, const int64_t* shape, int ndim, int dtype, int dev_type,
                  int dev_index, st_tensor* out);
st_err st_randperm(int64_t n, int dev_type, int dev_index, st_tensor* out);
st_err st_eye(int64_t n, int dtype, int dev_type, int dev_index, st_tensor* out);

/* ---- element-wise ---- */
enum {
  ST_NEG = 0, ST_EXP, ST_LOG, ST_SQRT, ST_RSQRT, ST_ABS, ST_RELU, ST_SIGMOID, ST_TANH, ST_SQUARE,
  ST_FLOOR, ST_CEIL, ST_ROUND, ST_SIGN, ST_SIN, ST_COS, ST_ISFINITE, ST_LOGICAL_NOT, ST_RECIPROCAL,
  ST_CONTIGUOUS, ST_CLONE, ST_DETACH, ST_T, ST_LOG1P, ST_EXPM1, ST_GELU, ST_ISNAN,
  ST_CHANNELS_LAST /* contiguous in channels-last order (4-D) */
};
st_err st_unary(int op, st_tensor a, st_tensor* out);

enum {
  ST_ADD = 0, ST_SUB, ST_MUL, ST_DIV, ST_POW, ST_MAXIMUM, ST_MINIMUM, ST_EQ, ST_NE, ST_LT, ST_LE, ST_GT,
  ST_GE, ST_LOGICAL_AND, ST_LOGICAL_OR, ST_MATMUL, ST_MM, ST_BMM, ST_FMOD, ST_ATAN2
};
st_err st_binary(int op, st_tensor a, st_tensor b, st_tensor* out);
/* the same ops with a scalar right-hand side (matmul-like ops excluded) */
st_err st_binary_scalar(int op, st_tensor a, double s, st_tensor* out);
/* s op a, for the non-commutative ops (ST_SUB, ST_DIV, ST_POW) */
st_err st_scalar_binary(int op, double s, st_tensor a, st_tensor* out);
st_err st_clamp(st_tensor a, double lo, double hi, int has_lo, int has_hi, st_tensor* out);
st_err st_where(st_tensor cond, st_tensor a, st_tensor b, st_tensor* out);
st_err st_masked_fill(st_tensor a, st_tensor mask, double value, st_tensor* out);
st_err st_to(st_tensor a, int dtype, int dev_type, int dev_index, int non_blocking, st_tensor* out);
st_err st_lerp(st_tensor a, st_tensor b, double w, st_tensor* out);

/* ---- in-place (on data, outside autograd tracking when the caller is in a no-grad region) ---- */
enum { ST_IADD = 0, ST_ISUB, ST_IMUL, ST_IDIV, ST_ICOPY };
st_err st_inplace(int op, st_tensor a, st_tensor b);
st_err st_inplace_scalar(int op, st_tensor a, double s); /* ST_IADD/ISUB/IMUL/IDIV, ST_ICOPY = fill */
st_err st_zero_(st_tensor a);

/* ---- reductions ---- */
enum { ST_SUM = 0, ST_MEAN, ST_AMAX, ST_AMIN, ST_LOGSUMEXP, ST_PROD, ST_ALL, ST_ANY, ST_VAR, ST_STD,
       ST_NORM2 };
/* ndims = 0 reduces over every dimension */
st_err st_reduce(int op, st_tensor a, const int64_t* dims, int ndims, int keepdim, st_tensor* out);
enum { ST_ARGMAX = 0, ST_ARGMIN };
st_err st_argreduce(int op, st_tensor a, int64_t dim, int keepdim, st_tensor* out);
st_err st_sort(st_tensor a, int64_t dim, int descending, st_tensor* values, st_tensor* indices);
st_err st_topk(st_tensor a, int64_t k, int64_t dim, int largest, st_tensor* values, st_tensor* indices);
st_err st_cumsum(st_tensor a, int64_t dim, st_tensor* out);

/* ---- shape and indexing ---- */
st_err st_reshape(st_tensor a, const int64_t* shape, int ndim, st_tensor* out);
st_err st_permute(st_tensor a, const int64_t* dims, int ndim, st_tensor* out);
st_err st_expand(st_tensor a, const int64_t* shape, int ndim, st_tensor* out);
st_err st_repeat(st_tensor a, const int64_t* reps, int ndim, st_tensor* out);
st_err st_flip(st_tensor a, const int64_t* dims, int ndim, st_tensor* out);
st_err st_transpose(st_tensor a, int64_t d0, int64_t d1, st_tensor* out);
st_err st_unsqueeze(st_tensor a, int64_t dim, st_tensor* out);
st_err st_squeeze(st_tensor a, int64_t dim, st_tensor* out);
st_err st_flatten(st_tensor a, int64_t start, int64_t end, st_tensor* out);
st_err st_narrow(st_tensor a, int64_t dim, int64_t start, int64_t length, st_tensor* out);
st_err st_select(st_tensor a, int64_t dim, int64_t index, st_tensor* out);
st_err st_index_select(st_tensor a, int64_t dim, st_tensor index, st_tensor* out);
st_err st_gather(st_tensor a, int64_t dim, st_tensor index, st_tensor* out);
st_err st_scatter(st_tensor a, int64_t dim, st_tensor index, st_tensor src, st_tensor* out);
st_err st_scatter_add(st_tensor a, int64_t dim, st_tensor index, st_tensor src, st_tensor* out);
st_err st_masked_select(st_tensor a, st_tensor mask, st_tensor* out);
st_err st_nonzero(st_tensor a, st_tensor* out);
st_err st_cat(const st_tensor* ts, int n, int64_t dim, st_tensor* out);
st_err st_stack(const st_tensor* ts, int n, int64_t dim, st_tensor* out);
st_err st_tril(st_tensor a, int64_t diagonal, st_tensor* out);
st_err st_triu(st_tensor a, int64_t diagonal, st_tensor* out);
st_err st_diagonal(st_tensor a, int64_t offset, int64_t d0, int64_t d1, st_tensor* out);
st_err st_diag_embed(st_tensor a, st_tensor* out);
st_err st_one_hot(st_tensor a, int64_t num_classes, st_tensor* out);
st_err st_bincount(st_tensor a, int64_t minlength, st_tensor* out);

/* ---- neural-network functions ---- */
st_err st_normalize(st_tensor a, double p, int64_t dim, double eps, st_tensor* out);
st_err st_softmax(st_tensor a, int64_t dim, st_tensor* out);
st_err st_log_softmax(st_tensor a, int64_t dim, st_tensor* out);
/* reduction: 0 none, 1 mean, 2 sum; targets are int64 class indices */
st_err st_cross_entropy(st_tensor logits, st_tensor targets, int reduction, double label_smoothing,
                        st_tensor* out);
st_err st_mse_loss(st_tensor a, st_tensor b, int reduction, st_tensor* out);
st_err st_linear(st_tensor x, st_tensor w, st_tensor b /* may be NULL */, st_tensor* out);
/* mode: 0 nearest, 1 bilinear, 2 bicubic, 3 area; align_corners applies to (bi)linear/cubic; antialias
 * is torchvision's antialiased resize for downsampling (bilinear/bicubic). */
st_err st_interpolate(st_tensor x, int64_t out_h, int64_t out_w, int mode, int align_corners, int antialias,
                      st_tensor* out);
/* mode: 0 bilinear, 1 nearest; padding: 0 zeros, 1 border, 2 reflection */
st_err st_grid_sample(st_tensor x, st_tensor grid, int mode, int padding, int align_corners, st_tensor* out);
st_err st_affine_grid(st_tensor theta, const int64_t* size, int ndim, int align_corners, st_tensor* out);
st_err st_embedding(st_tensor weight, st_tensor indices, st_tensor* out);
st_err st_dropout(st_tensor a, double p, int train, st_tensor* out);
st_err st_cdist(st_tensor a, st_tensor b, st_tensor* out);

/* ---- autograd ---- */
st_err st_set_requires_grad(st_tensor t, int on);
/* grad may be NULL for a scalar; retain_graph keeps the graph for a second backward */
st_err st_backward(st_tensor t, st_tensor grad, int retain_graph);
/* *out is NULL when the tensor has no gradient */
st_err st_grad(st_tensor t, st_tensor* out);
st_err st_zero_grad(st_tensor t); /* drops the gradient (sets it undefined), as set_to_none */
/* d(outputs)/d(inputs) without touching .grad; create_graph for higher order */
st_err st_autograd_grad(const st_tensor* outputs, const st_tensor* grad_outputs, int nout, const st_tensor* inputs,
                        int nin, int create_graph, st_tensor* out_grads);

/* ---- optimizer kernels (the decisions: lr, schedule, clipping, state, live in Go) ---- */
/* torch.optim.AdamW's update for one parameter; step is 1-based. */
st_err st_adamw_update(st_tensor param, st_tensor grad, st_tensor exp_avg, st_tensor exp_avg_sq, double lr,
                       double beta1, double beta2, double eps, double weight_decay, int64_t step);
/* torch.optim.SGD's update; buf is the momentum buffer (ignored when momentum = 0); first = 1 on the
 * buffer's first use. */
st_err st_sgd_update(st_tensor param, st_tensor grad, st_tensor buf, double lr, double momentum, double dampening,
                     double weight_decay, int nesterov, int first);
/* torch.optim.AdamW(foreach=True)'s update for n parameters that share one step count: a handful of
 * multi-tensor kernels instead of several per parameter. */
st_err st_adamw_foreach(const st_tensor* params, const st_tensor* grads, const st_tensor* exp_avgs,
                        const st_tensor* exp_avg_sqs, int n, double lr, double beta1, double beta2, double eps,
                        double weight_decay, int64_t step);
/* total 2-norm over a list of tensors */
st_err st_total_norm(const st_tensor* ts, int n, st_tensor* out);

/* ---- modules (model definitions live here; every forward is one call) ---- */
void st_module_free(st_module m);
/* ResNet encoder with torchvision parameter names and no fc. block: 0 basic, 1 bottleneck.
 * layers: blocks per stage (4 entries). cifar_stem: 3x3/1 conv and no max-pool. */
st_err st_resnet_new(int bottleneck, const int64_t* layers, int cifar_stem, int64_t base_width,
                     int64_t in_channels, st_module* out, int64_t* out_dim);
st_err st_linear_new(int64_t in, int64_t out, int bias, st_module* m);
/* Sequential(Linear(in, hidden), BatchNorm1d?(hidden), ReLU, Linear(hidden, out)) */
st_err st_mlp_new(int64_t in, int64_t hidden, int64_t out, int batchnorm, st_module* m);
/* ResNet-18-shaped decoder: Linear(in -> c0*s*s), 4 stages x 2 residual blocks, x2 nearest upsampling in
 * stages 1-3, 3x3 conv to out_channels; output resized to out_h x out_w when s*8 differs. */
st_err st_decoder_new(int64_t in, int64_t base_width, int64_t out_channels, int64_t out_h, int64_t out_w,
                      st_module* m);
st_err st_embedding_new(int64_t num, int64_t dim, st_module* m);
st_err st_module_forward(st_module m, st_tensor x, st_tensor* out);
st_err st_module_train(st_module m, int on);
st_err st_module_to(st_module m, int dtype /* -1 keeps */, int dev_type, int dev_index);
/* channels_last memory format for 4-D parameters (CUDA speed) */
st_err st_module_channels_last(st_module m);
/* named parameters (kind 0) or buffers (kind 1), in registration order */
int st_module_count(st_module m, int kind);
/* name is malloc'd; free it with st_free_err */
st_err st_module_get(st_module m, int kind, int index, char** name, st_tensor* out);


/* ==== distributed (cgo/dist.cpp): c10d rendezvous stores, Gloo/NCCL process groups ==== */
/* Collectives are blocking for Gloo: each waits at most the group's timeout and returns an error
 * (dead peer, timeout, mismatched shapes) instead of hanging. NCCL collectives are ordered on the
 * current CUDA stream without a host wait; a dead peer is caught by NCCL's watchdog at the timeout,
 * which aborts the process. Every rank must call the same collectives in the same order with tensors
 * of matching dtype and shape. After a failed collective the group is unusable; free it and exit. */
typedef struct st_store_s* st_store;
typedef struct st_pg_s* st_pg;
enum { ST_DIST_GLOO = 1, ST_DIST_NCCL = 2 };
int st_dist_backends(void); /* bitmask of the backends this shim was compiled with */
/* TCPStore. The master (is_master) listens on every interface at port (0 picks a free one, see
 * st_dist_store_port) and waits until world_size ranks have connected; clients connect to host:port.
 * Both fail after timeout_ms. */
st_err st_dist_store_new(const char* host, int port, int is_master, int world_size, int64_t timeout_ms,
                         st_store* out);
/* Whether the master TCPStore can serve on a socket the caller bound (libtorch >= 2.4:
 * TCPStoreOptions::masterListenFd); 1.13's listens on every interface. */
int st_dist_store_takes_socket(void);
/* The master TCPStore on listen_fd, a socket already bound to host:port and listening (it takes the
 * fd over; the master's own client connects to host); waits until world_size ranks have connected,
 * or fails after timeout_ms. */
st_err st_dist_store_new_on(const char* host, int listen_fd, int port, int world_size, int64_t timeout_ms,
                            st_store* out);
/* FileStore: a store in a file shared by the ranks of one machine (no socket); gets wait up to
 * timeout_ms. The last of world_size ranks to free it deletes the file. */
st_err st_dist_file_store_new(const char* path, int world_size, int64_t timeout_ms, st_store* out);
/* A view of s whose keys are all prefixed by prefix (s must outlive it). */
st_err st_dist_store_prefix(st_store s, const char* prefix, st_store* out);
int st_dist_store_port(st_store s); /* a TCPStore's port; -1 for the other kinds */
void st_dist_store_free(st_store s);
/* *present = whether key is set (no wait). */
st_err st_dist_store_check(st_store s, const char* key, int* present);
/* Atomically sets key to desired if its value is expected ("" = unset); *actual (malloc'd, free with
 * st_free_err) is the value the key holds afterwards. */
st_err st_dist_store_compare_set(st_store s, const char* key, const char* expected, const char* desired,
                                 char** actual);
/* Makes CUDA device index the calling thread's current device (fails in a CPU-only libtorch). */
st_err st_dist_cuda_set_device(int index);
/* backend: "gloo" (CPU tensors) or "nccl" (CUDA tensors on device_index; only when compiled in).
 * gloo_host: the address Gloo binds (e.g. "127.0.0.1"); NULL or "" uses $GLOO_SOCKET_IFNAME, else
 * the address this machine's hostname resolves to. Groups over one store must be created in the same
 * order on every rank. */
st_err st_dist_pg_new(st_store store, const char* backend, int rank, int world_size, int64_t timeout_ms,
                      const char* gloo_host, int device_index, st_pg* out);
void st_dist_pg_free(st_pg pg);
/* In-place sum (divided by the world size when average) over a list of tensors, packed into contiguous
 * buckets of at most bucket_bytes (<= 0: one bucket per dtype/device run). *bytes (may be NULL) gets
 * the bytes all-reduced by this rank. */
st_err st_dist_all_reduce(st_pg pg, const st_tensor* ts, int n, int average, int64_t bucket_bytes,
                          int64_t* bytes);
/* In-place broadcast of a list of tensors from root (outside autograd: works on parameters). */
st_err st_dist_broadcast(st_pg pg, const st_tensor* ts, int n, int root, int64_t bucket_bytes);
/* Concatenation along dim 0 of every rank's t (row counts may differ; the rest of the shape and the
 * dtype must match). No gradient. */
st_err st_dist_all_gather(st_pg pg, st_tensor t, st_tensor* out);
/* The same with gradient: backward all-reduces (sums) the gathered gradient and returns this rank's
 * rows. Backward is itself a collective: every rank must run it. */
st_err st_dist_all_gather_grad(st_pg pg, st_tensor t, st_tensor* out);
st_err st_dist_barrier(st_pg pg);
/* ==== end distributed ==== */

/* ==== vision transformer (cgo/vit.cpp) ==== */
/* The small ViT of the reference code: non-overlapping patch x patch patches projected to dim (a conv
 * with kernel = stride = patch), a learned CLS token and learned position embeddings (one per patch
 * plus CLS, so the input must be exactly image_h x image_w), depth pre-norm blocks (x + attn(LN(x)),
 * x + fc2(GELU(fc1(LN(x))))), a final LayerNorm; the output is the CLS token, [N, dim].
 * dropout (training mode only) acts after the position embeddings, on the attention probabilities,
 * after the attention and after both MLP layers. flags: ST_VIT_REFERENCE (HazyResearch/thanos-code:
 * no qkv bias, no attention output projection, LayerNorm after the patch projection) or
 * ST_VIT_STANDARD (timm / torch.nn.MultiheadAttention style), or any combination of the bits.
 * Parameter names: patch_embed.proj.{weight,bias}, patch_embed.norm.* (EMBED_NORM), cls_token [1,1,dim],
 * pos_embed [1,tokens,dim], blocks.<i>.norm1.*, blocks.<i>.attn.qkv.weight [3*dim, dim] (rows: q, k, v,
 * each heads x head_dim), blocks.<i>.attn.qkv.bias (QKV_BIAS), blocks.<i>.attn.proj.* (ATTN_PROJ),
 * blocks.<i>.norm2.*, blocks.<i>.mlp.fc1.*, blocks.<i>.mlp.fc2.*, norm.*. *out_dim = dim. */
enum { ST_VIT_QKV_BIAS = 1, ST_VIT_ATTN_PROJ = 2, ST_VIT_EMBED_NORM = 4 };
#define ST_VIT_REFERENCE (ST_VIT_EMBED_NORM)
#define ST_VIT_STANDARD (ST_VIT_QKV_BIAS | ST_VIT_ATTN_PROJ)
st_err st_vit_new(int64_t image_h, int64_t image_w, int64_t in_channels, int64_t patch, int64_t dim, int64_t depth,
                  int64_t heads, int64_t mlp_dim, double dropout, int flags, st_module* out, int64_t* out_dim);
/* ==== end vision transformer ==== */

#ifdef __cplusplus
}
#endif
#endif
