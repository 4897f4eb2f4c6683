// vit.cpp: the small Vision Transformer of the reference code (HazyResearch/thanos-code: a square-patch
// embedding feeding a pre-norm transformer encoder whose CLS token is the feature), as an st_module.
//
// Parameter names follow timm's VisionTransformer (patch_embed.proj, cls_token, pos_embed,
// blocks.<i>.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm), so that the "standard"
// flavour (qkv bias + output projection, no embedding norm) loads into timm with strict=True. The
// reference code's flavour has no qkv bias, no attention output projection, and a LayerNorm after the
// patch projection (patch_embed.norm); the flags below select either.
#include "spreadtorch_internal.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/version.h>

using namespace st;
namespace nn = torch::nn;

namespace {

// Truncated normal N(0, std^2) cut at +-2 std (inverse-CDF sampling, as torch.nn.init.trunc_normal_).
void trunc_normal_(at::Tensor w, double std) {
  at::NoGradGuard no_grad;
  auto cdf = [](double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); };
  double lo = cdf(-2.0), hi = cdf(2.0);
  w.uniform_(2 * lo - 1, 2 * hi - 1).erfinv_().mul_(std * std::sqrt(2.0)).clamp_(-2 * std, 2 * std);
}

void init_linear(nn::Linear& l) {
  trunc_normal_(l->weight, 0.02);
  if (l->bias.defined()) nn::init::zeros_(l->bias);
}

// Non-overlapping patch x patch patches, each projected to dim: a conv with kernel = stride = patch,
// which is a linear map of the flattened (c, py, px) patch. Output [N, patches, dim], row-major over
// the patch grid.
struct PatchEmbedImpl : nn::Module {
  nn::Conv2d proj{nullptr};
  nn::LayerNorm norm{nullptr};

  PatchEmbedImpl(int64_t in_channels, int64_t patch, int64_t dim, bool layer_norm) {
    proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(in_channels, dim, patch).stride(patch)));
    if (layer_norm) norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim})));
    trunc_normal_(proj->weight, 0.02);
    nn::init::zeros_(proj->bias);
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = proj(x).flatten(2).transpose(1, 2);
    return norm ? norm(h) : h;
  }
};
TORCH_MODULE(PatchEmbed);

// Multi-head self-attention with one fused qkv projection laid out as (3, heads, head_dim) along the
// output features (timm's and torch.nn.MultiheadAttention's in_proj layout).
struct AttentionImpl : nn::Module {
  nn::Linear qkv{nullptr}, proj{nullptr};
  int64_t heads;
  double dropout;

  AttentionImpl(int64_t dim, int64_t heads, bool qkv_bias, bool out_proj, double dropout)
      : heads(heads), dropout(dropout) {
    qkv = register_module("qkv", nn::Linear(nn::LinearOptions(dim, 3 * dim).bias(qkv_bias)));
    init_linear(qkv);
    if (out_proj) {
      proj = register_module("proj", nn::Linear(dim, dim));
      init_linear(proj);
    }
  }
  at::Tensor forward(const at::Tensor& x) {
    int64_t b = x.size(0), n = x.size(1), d = x.size(2);
    // [3, B, heads, N, head_dim]
    at::Tensor t = qkv(x).view({b, n, 3, heads, d / heads}).permute({2, 0, 3, 1, 4});
    at::Tensor q = t[0], k = t[1], v = t[2];
    double p = is_training() ? dropout : 0.0;
#if TORCH_VERSION_MAJOR >= 2
    // fused kernels (flash / memory-efficient) where available; scale 1/sqrt(head_dim) by default
    at::Tensor o = at::scaled_dot_product_attention(q, k, v, {}, p, false);
#else
    at::Tensor attn = at::softmax(at::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(d / heads))), -1);
    at::Tensor o = at::matmul(at::dropout(attn, p, is_training()), v);
#endif
    o = o.transpose(1, 2).reshape({b, n, d});
    if (proj) o = proj(o);
    return at::dropout(o, dropout, is_training());
  }
};
TORCH_MODULE(Attention);

// Linear -> GELU (exact, erf) -> dropout -> Linear -> dropout
struct MlpImpl : nn::Module {
  nn::Linear fc1{nullptr}, fc2{nullptr};
  double dropout;

  MlpImpl(int64_t dim, int64_t hidden, double dropout) : dropout(dropout) {
    fc1 = register_module("fc1", nn::Linear(dim, hidden));
    fc2 = register_module("fc2", nn::Linear(hidden, dim));
    init_linear(fc1);
    init_linear(fc2);
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = at::dropout(at::gelu(fc1(x)), dropout, is_training());
    return at::dropout(fc2(h), dropout, is_training());
  }
};
TORCH_MODULE(Mlp);

// Pre-norm block: x + attn(norm1(x)), then + mlp(norm2(x)).
struct BlockImpl : nn::Module {
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};

  BlockImpl(int64_t dim, int64_t heads, int64_t mlp_dim, bool qkv_bias, bool out_proj, double dropout) {
    norm1 = register_module("norm1", nn::LayerNorm(nn::LayerNormOptions({dim})));
    attn = register_module("attn", Attention(dim, heads, qkv_bias, out_proj, dropout));
    norm2 = register_module("norm2", nn::LayerNorm(nn::LayerNormOptions({dim})));
    mlp = register_module("mlp", Mlp(dim, mlp_dim, dropout));
  }
  at::Tensor forward(at::Tensor x) {
    x = x + attn(norm1(x));
    return x + mlp(norm2(x));
  }
};
TORCH_MODULE(Block);

struct ViTImpl : nn::Module {
  PatchEmbed patch_embed{nullptr};
  at::Tensor cls_token, pos_embed;
  std::vector<Block> blocks;
  nn::LayerNorm norm{nullptr};
  int64_t image_h, image_w, in_channels;
  double dropout;

  ViTImpl(int64_t image_h, int64_t image_w, int64_t in_channels, int64_t patch, int64_t dim, int64_t depth,
          int64_t heads, int64_t mlp_dim, double dropout, int flags)
      : image_h(image_h), image_w(image_w), in_channels(in_channels), dropout(dropout) {
    int64_t tokens = (image_h / patch) * (image_w / patch) + 1;
    patch_embed = register_module("patch_embed", PatchEmbed(in_channels, patch, dim, flags & ST_VIT_EMBED_NORM));
    // the reference code's initialisation of both: 0.1 * N(0, 1) clamped to [-1, 1]
    cls_token = register_parameter("cls_token", (0.1 * torch::randn({1, 1, dim})).clamp(-1, 1));
    pos_embed = register_parameter("pos_embed", (0.1 * torch::randn({1, tokens, dim})).clamp(-1, 1));
    nn::ModuleList list;
    for (int64_t i = 0; i < depth; i++) {
      Block blk(dim, heads, mlp_dim, flags & ST_VIT_QKV_BIAS, flags & ST_VIT_ATTN_PROJ, dropout);
      list->push_back(blk);
      blocks.push_back(blk);
    }
    register_module("blocks", list);
    norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim})));
  }
  at::Tensor forward(const at::Tensor& x) {
    if (x.dim() != 4 || x.size(1) != in_channels || x.size(2) != image_h || x.size(3) != image_w)
      throw std::invalid_argument("vit: input " + c10::str(x.sizes()) + ", want [N, " + std::to_string(in_channels) +
                                  ", " + std::to_string(image_h) + ", " + std::to_string(image_w) +
                                  "] (the size the position embeddings were built for)");
    at::Tensor h = patch_embed(x);
    h = at::cat({cls_token.expand({h.size(0), 1, h.size(2)}), h}, 1) + pos_embed;
    h = at::dropout(h, dropout, is_training());
    for (auto& blk : blocks) h = blk(h);
    return norm(h.select(1, 0));  // LayerNorm is per token: normalising the CLS token alone is the same
  }
};
TORCH_MODULE(ViT);

}  // namespace

extern "C" {

st_err st_vit_new(int64_t image_h, int64_t image_w, int64_t in_channels, int64_t patch, int64_t dim, int64_t depth,
                  int64_t heads, int64_t mlp_dim, double dropout, int flags, st_module* out, int64_t* out_dim) {
  ST_TRY
  if (patch < 1) throw std::invalid_argument("vit: patch size must be >= 1");
  if (image_h < patch || image_w < patch || image_h % patch != 0 || image_w % patch != 0)
    throw std::invalid_argument("vit: image size " + std::to_string(image_h) + "x" + std::to_string(image_w) +
                                " is not a positive multiple of the patch size " + std::to_string(patch));
  if (in_channels < 1) throw std::invalid_argument("vit: input channels must be >= 1");
  if (heads < 1 || dim < 1 || dim % heads != 0)
    throw std::invalid_argument("vit: dim " + std::to_string(dim) + " is not a positive multiple of heads " +
                                std::to_string(heads));
  if (depth < 0 || mlp_dim < 1) throw std::invalid_argument("vit: depth must be >= 0 and mlp_dim >= 1");
  if (!(dropout >= 0 && dropout < 1)) throw std::invalid_argument("vit: dropout must be in [0, 1)");
  if (flags & ~(ST_VIT_QKV_BIAS | ST_VIT_ATTN_PROJ | ST_VIT_EMBED_NORM))
    throw std::invalid_argument("vit: unknown flags " + std::to_string(flags));
  ViT v(image_h, image_w, in_channels, patch, dim, depth, heads, mlp_dim, dropout, flags);
  auto impl = v.ptr();
  *out_dim = dim;
  *out = new st_module_s{impl, [impl](const at::Tensor& x) { return impl->forward(x); }};
  ST_END
}

}  // extern "C"
