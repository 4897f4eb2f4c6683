// models.cpp: the model definitions (torch::nn), exposed as opaque modules with one forward call.
// Parameter names follow torchvision so that exported weights load into torchvision.models.resnet*.
#include "spreadtorch_internal.h"

#include <functional>
#include <memory>

using namespace st;
namespace nn = torch::nn;

namespace {

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(false));
}

// torchvision.models.resnet.BasicBlock
struct BasicBlockImpl : nn::Module {
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::Sequential downsample{nullptr};
  static constexpr int64_t expansion = 1;

  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride) {
    conv1 = register_module("conv1", conv(in, planes, 3, stride, 1));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    if (stride != 1 || in != planes)
      downsample = register_module("downsample", nn::Sequential(conv(in, planes, 1, stride, 0), nn::BatchNorm2d(planes)));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor out = at::relu(bn1(conv1(x)));
    out = bn2(conv2(out));
    out = out + (downsample ? downsample->forward(x) : x);
    return at::relu(out);
  }
};
TORCH_MODULE(BasicBlock);

// torchvision.models.resnet.Bottleneck (stride on the 3x3 conv, "ResNet v1.5")
struct BottleneckImpl : nn::Module {
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  nn::Sequential downsample{nullptr};
  static constexpr int64_t expansion = 4;

  BottleneckImpl(int64_t in, int64_t planes, int64_t stride) {
    conv1 = register_module("conv1", conv(in, planes, 1, 1, 0));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", conv(planes, planes, 3, stride, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    conv3 = register_module("conv3", conv(planes, planes * expansion, 1, 1, 0));
    bn3 = register_module("bn3", nn::BatchNorm2d(planes * expansion));
    if (stride != 1 || in != planes * expansion)
      downsample = register_module(
          "downsample", nn::Sequential(conv(in, planes * expansion, 1, stride, 0), nn::BatchNorm2d(planes * expansion)));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor out = at::relu(bn1(conv1(x)));
    out = at::relu(bn2(conv2(out)));
    out = bn3(conv3(out));
    out = out + (downsample ? downsample->forward(x) : x);
    return at::relu(out);
  }
};
TORCH_MODULE(Bottleneck);

// torchvision.models.resnet.ResNet without fc: the encoder returns the pooled features.
struct ResNetImpl : nn::Module {
  nn::Conv2d conv1{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  bool maxpool;
  int64_t out_dim;

  ResNetImpl(bool bottleneck, const int64_t* layers, bool cifar_stem, int64_t width, int64_t in_channels)
      : maxpool(!cifar_stem) {
    conv1 = register_module("conv1", cifar_stem ? conv(in_channels, width, 3, 1, 1) : conv(in_channels, width, 7, 2, 3));
    bn1 = register_module("bn1", nn::BatchNorm2d(width));
    int64_t expansion = bottleneck ? BottleneckImpl::expansion : BasicBlockImpl::expansion;
    int64_t in = width;
    nn::Sequential* stages[4] = {&layer1, &layer2, &layer3, &layer4};
    for (int s = 0; s < 4; s++) {
      int64_t planes = width << s;
      nn::Sequential seq;
      for (int64_t b = 0; b < layers[s]; b++) {
        int64_t stride = (b == 0 && s > 0) ? 2 : 1;
        if (bottleneck) seq->push_back(Bottleneck(in, planes, stride));
        else seq->push_back(BasicBlock(in, planes, stride));
        in = planes * expansion;
      }
      *stages[s] = register_module("layer" + std::to_string(s + 1), seq);
    }
    out_dim = in;
    // torchvision's initialisation
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* c = m->as<nn::Conv2d>()) {
        nn::init::kaiming_normal_(c->weight, 0, torch::kFanOut, torch::kReLU);
      } else if (auto* b = m->as<nn::BatchNorm2d>()) {
        nn::init::ones_(b->weight);
        nn::init::zeros_(b->bias);
      }
    }
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = at::relu(bn1(conv1(x)));
    if (maxpool) h = at::max_pool2d(h, {3, 3}, {2, 2}, {1, 1});
    h = layer4->forward(layer3->forward(layer2->forward(layer1->forward(h))));
    return at::flatten(at::adaptive_avg_pool2d(h, {1, 1}), 1);
  }
};
TORCH_MODULE(ResNet);

// A residual decoder block: 3x3 conv keeping channels, then (nearest x2 upsampling and) a 3x3 conv to
// the new width; the shortcut is upsampling + 1x1 conv + BN when shape changes.
struct DecoderBlockImpl : nn::Module {
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::Sequential upsample{nullptr};
  bool up;

  DecoderBlockImpl(int64_t in, int64_t out, bool up) : up(up) {
    conv1 = register_module("conv1", conv(in, in, 3, 1, 1));
    bn1 = register_module("bn1", nn::BatchNorm2d(in));
    conv2 = register_module("conv2", conv(in, out, 3, 1, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(out));
    if (up || in != out)
      upsample = register_module("upsample", nn::Sequential(conv(in, out, 1, 1, 0), nn::BatchNorm2d(out)));
  }
  static at::Tensor up2(const at::Tensor& x) {
    return at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2});
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = at::relu(bn1(conv1(x)));
    if (up) h = up2(h);
    h = bn2(conv2(h));
    at::Tensor id = x;
    if (upsample) id = upsample->forward(up ? up2(x) : x);
    return at::relu(h + id);
  }
};
TORCH_MODULE(DecoderBlock);

struct DecoderImpl : nn::Module {
  nn::Linear linear{nullptr};
  nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  nn::Conv2d conv1{nullptr};
  int64_t c0, start, out_h, out_w;

  DecoderImpl(int64_t in, int64_t width, int64_t out_channels, int64_t out_h, int64_t out_w)
      : c0(width * 8), out_h(out_h), out_w(out_w) {
    // three x2 upsamplings: start from ceil(max(H, W) / 8) squares
    start = std::max<int64_t>(1, (std::max(out_h, out_w) + 7) / 8);
    linear = register_module("linear", nn::Linear(in, c0 * 4 * 4));
    int64_t widths[5] = {width * 8, width * 4, width * 2, width, width};
    nn::Sequential* stages[4] = {&layer1, &layer2, &layer3, &layer4};
    for (int s = 0; s < 4; s++) {
      nn::Sequential seq;
      seq->push_back(DecoderBlock(widths[s], widths[s + 1], s < 3));
      seq->push_back(DecoderBlock(widths[s + 1], widths[s + 1], false));
      *stages[s] = register_module("layer" + std::to_string(s + 1), seq);
    }
    conv1 = register_module("conv1", conv(width, out_channels, 3, 1, 1));
  }
  at::Tensor forward(const at::Tensor& z) {
    at::Tensor h = linear(z).view({z.size(0), c0, 4, 4});
    if (start != 4) h = at::upsample_nearest2d(h, {start, start});
    h = layer4->forward(layer3->forward(layer2->forward(layer1->forward(h))));
    h = conv1(h);
    if (h.size(2) != out_h || h.size(3) != out_w)
      h = at::upsample_bilinear2d(h, {out_h, out_w}, /*align_corners=*/false);
    return h;
  }
};
TORCH_MODULE(Decoder);

template <typename M>
st_module make_module(M m) {
  auto impl = m.ptr();
  return new st_module_s{impl, [impl](const at::Tensor& x) { return impl->forward(x); }};
}

}  // namespace

extern "C" {

void st_module_free(st_module m) { delete m; }

st_err st_resnet_new(int bottleneck, const int64_t* layers, int cifar_stem, int64_t base_width, int64_t in_channels,
                     st_module* out, int64_t* out_dim) {
  ST_TRY
  if (base_width < 1) throw std::invalid_argument("resnet: base width must be >= 1");
  if (in_channels < 1) throw std::invalid_argument("resnet: input channels must be >= 1");
  ResNet r(bottleneck != 0, layers, cifar_stem != 0, base_width, in_channels);
  *out_dim = r->out_dim;
  *out = make_module(r);
  ST_END
}

st_err st_linear_new(int64_t in, int64_t out, int bias, st_module* m) {
  ST_TRY
  *m = make_module(nn::Linear(nn::LinearOptions(in, out).bias(bias != 0)));
  ST_END
}

st_err st_mlp_new(int64_t in, int64_t hidden, int64_t out, int batchnorm, st_module* m) {
  ST_TRY
  nn::Sequential seq;
  seq->push_back(nn::Linear(in, hidden));
  if (batchnorm) seq->push_back(nn::BatchNorm1d(hidden));
  seq->push_back(nn::ReLU());
  seq->push_back(nn::Linear(hidden, out));
  auto impl = seq.ptr();
  *m = new st_module_s{impl, [impl](const at::Tensor& x) { return impl->forward(x); }};
  ST_END
}

st_err st_decoder_new(int64_t in, int64_t base_width, int64_t out_channels, int64_t out_h, int64_t out_w,
                      st_module* m) {
  ST_TRY
  if (out_h < 1 || out_w < 1) throw std::invalid_argument("decoder: output size must be positive");
  *m = make_module(Decoder(in, base_width, out_channels, out_h, out_w));
  ST_END
}

st_err st_embedding_new(int64_t num, int64_t dim, st_module* m) {
  ST_TRY
  *m = make_module(nn::Embedding(num, dim));
  ST_END
}

st_err st_module_forward(st_module m, st_tensor x, st_tensor* out) {
  ST_TRY
  *out = wrap(m->forward(get(x)));
  ST_END
}

st_err st_module_train(st_module m, int on) {
  ST_TRY
  m->mod->train(on != 0);
  ST_END
}

st_err st_module_to(st_module m, int dtype, int dev_type, int dev_index) {
  ST_TRY
  at::Device dev = to_device(dev_type, dev_index);
  if (dtype >= 0) m->mod->to(dev, to_scalar_type(dtype));
  else m->mod->to(dev);
  ST_END
}

st_err st_module_channels_last(st_module m) {
  ST_TRY
  at::NoGradGuard no_grad;
  for (auto& p : m->mod->parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  ST_END
}

int st_module_count(st_module m, int kind) {
  return static_cast<int>(kind == 0 ? m->mod->named_parameters().size() : m->mod->named_buffers().size());
}

st_err st_module_get(st_module m, int kind, int index, char** name, st_tensor* out) {
  ST_TRY
  auto items = kind == 0 ? m->mod->named_parameters() : m->mod->named_buffers();
  if (index < 0 || static_cast<size_t>(index) >= items.size())
    throw std::out_of_range("module entry " + std::to_string(index) + " out of range");
  auto& item = items[index];
  *name = make_err(item.key().c_str());
  *out = wrap(item.value());
  ST_END
}

}  // extern "C"
