#!/usr/bin/env python3
"""The PyTorch side of bench/gpu_train.sh: the training step that bench/gputrain times in spreadtrain,
written in plain PyTorch, timed in eager mode and under torch.compile, plus the summary (images/s,
spreadtrain/eager and spreadtrain/compile ratios, model FLOP utilisation).

NOT YET RUN ON A GPU IN THIS PROJECT: it has only been run on CPU (PyTorch 1.13, tiny settings), so
no GPU figure exists yet; the first CUDA run is the first measurement.

The step, as in spreadtrain (pkg/train, method thanos, cgo/models.cpp):
  - batch of B uint8 32x32x3 images drawn at random from a synthetic set resident on the device, with
    random coarse labels;
  - V = 2 views each by the reference augmentation, batched on the device (RandomResizedCrop(0.2-1)
    by one grid_sample, flip 0.5, ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8 in a random order per
    image, grayscale 0.2, CIFAR normalisation), as pkg/data.Augmenter does;
  - encoder: torchvision resnet18 with the CIFAR stem (3x3 stride-1 conv, no max-pool, no fc): 512-d;
  - loss: 0.5 * SupCon('all' denominator) + 0.5 * cNCE at tau 0.5 on the L2-normalised encoder outputs
    (no projection head), from one [BV x BV] similarity matrix, plus the autoencoder's MSE between the
    decoder's reconstruction of each view and the view (decoder as cgo/models.cpp's, width 64);
  - AdamW(lr 3e-4, weight decay 0.01), the per-tensor update (foreach=False, as spreadtrain-plain);
  - plain implementations ("eager", "compile"): float32 everywhere; PyTorch's (and libtorch's)
    defaults for TF32: allowed in cuDNN convolutions, not in matmuls; cuDNN's autotuner off;
  - fast implementations ("eager-fast", "compile-fast"), the counterpart of spreadtrain's speed
    section all on: bf16 autocast around the encoder and decoder forward passes with the losses in
    float32, channels-last weights and images, cuDNN's autotuner, AdamW(foreach=True).

    python3 bench/gpu_train.py --device cpu --batch 8 --steps 2 --warmup 1   # a smoke run on CPU
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
ALPHA, BETA, TAU = 0.5, 1.0, 0.5
# H200 SXM dense peaks (no sparsity), from NVIDIA's data sheet
PEAK_TFLOPS = {"fp32": 67.0, "tf32": 494.0, "bf16": 989.0}


# ---------------------------------------------------------------- augmentation (pkg/data.Augmenter)

def sample_crops(n, h, w, dev, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), tries=10):
    """RandomResizedCrop.get_params for n images at once: int64 [n, 4] (top, left, height, width)."""
    area = (torch.rand(n, tries, dtype=torch.float64, device=dev) * (scale[1] - scale[0]) + scale[0]) * (h * w)
    l0, l1 = math.log(ratio[0]), math.log(ratio[1])
    r = torch.exp(torch.rand(n, tries, dtype=torch.float64, device=dev) * (l1 - l0) + l0)
    cw, ch = torch.sqrt(area * r).round(), torch.sqrt(area / r).round()
    ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = ok.float().argmax(1, keepdim=True)
    any_ok = ok.any(1)
    cw = torch.where(any_ok, cw.gather(1, first).squeeze(1), torch.full_like(cw[:, 0], float(w)))
    ch = torch.where(any_ok, ch.gather(1, first).squeeze(1), torch.full_like(ch[:, 0], float(h)))
    top = (torch.rand(n, dtype=torch.float64, device=dev) * (h + 1 - ch)).floor()
    left = (torch.rand(n, dtype=torch.float64, device=dev) * (w + 1 - cw)).floor()
    top = torch.where(any_ok, top, ((h - ch) / 2).floor())
    left = torch.where(any_ok, left, ((w - cw) / 2).floor())
    return torch.stack([top, left, ch, cw], 1).long()


def resized_crop_flip(x, boxes, flip, out_h, out_w):
    n, _, h, w = x.shape
    dev = x.device

    def axis(start, length, out, full):
        l = length.float().unsqueeze(1)
        dst = (torch.arange(out, dtype=torch.float32, device=dev) + 0.5).unsqueeze(0)
        src = torch.minimum((l / out * dst - 0.5).clamp(min=0), l - 1)
        return (src + start.float().unsqueeze(1)) * 2 / full + 1 / full - 1

    gy = axis(boxes[:, 0], boxes[:, 2], out_h, h)
    gx = axis(boxes[:, 1], boxes[:, 3], out_w, w)
    gx = torch.where(flip.unsqueeze(1), gx.flip(1), gx)
    grid = torch.stack([gx.unsqueeze(1).expand(n, out_h, out_w), gy.unsqueeze(2).expand(n, out_h, out_w)], 3)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def gray(x):
    return (0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def blend(a, b, f):
    f = f.float().view(-1, 1, 1, 1)
    return (f * a + (1 - f) * b).clamp(0, 1)


def adjust_brightness(x, f):
    return (f.float().view(-1, 1, 1, 1) * x).clamp(0, 1)


def adjust_contrast(x, f):
    return blend(x, gray(x).mean(dim=(1, 2, 3), keepdim=True), f)


def adjust_saturation(x, f):
    return blend(x, gray(x), f)


def adjust_hue(x, shift):
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(1), x.amin(1)
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    crd = torch.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / crd, (maxc - g) / crd, (maxc - b) / crd
    hr = (maxc == r).float() * (bc - gc)
    hg = ((maxc == g) & (maxc != r)).float() * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)).float() * (4.0 + gc - rc)
    hue = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0) + shift.float().view(-1, 1, 1)
    hue = hue - hue.floor()
    i = torch.floor(hue * 6.0)
    fr = hue * 6.0 - i
    v = maxc
    p = (v * (1.0 - s)).clamp(0, 1)
    q = (v * (1.0 - s * fr)).clamp(0, 1)
    t = (v * (1.0 - s * (1.0 - fr))).clamp(0, 1)
    sector = torch.fmod(i, 6).long()
    lut = torch.tensor([[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]], device=x.device)
    codes = lut[:, sector].permute(1, 0, 2, 3)  # [N, 3, H, W]
    return torch.stack([v, p, q, t], 1).gather(1, codes)


JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


@torch.no_grad()
def augment_views(x_uint8, views):
    """[B, C, H, W] uint8 -> [B, V, C, H, W] float32, normalised."""
    b, c, h, w = x_uint8.shape
    dev = x_uint8.device
    n = b * views
    x = (x_uint8.float() / 255).unsqueeze(1).expand(b, views, c, h, w).reshape(n, c, h, w)
    boxes = sample_crops(n, h, w, dev)
    flip = torch.rand(n, dtype=torch.float64, device=dev) < 0.5
    x = resized_crop_flip(x, boxes, flip, h, w)
    jit = torch.rand(n, dtype=torch.float64, device=dev) < 0.8
    lo = torch.tensor([0.6, 0.6, 0.6, -0.1], dtype=torch.float64, device=dev)
    hi = torch.tensor([1.4, 1.4, 1.4, 0.1], dtype=torch.float64, device=dev)
    factors = torch.rand(n, 4, dtype=torch.float64, device=dev) * (hi - lo) + lo
    order = torch.rand(n, 4, dtype=torch.float64, device=dev).argsort(1)
    gry = torch.rand(n, dtype=torch.float64, device=dev) < 0.2
    # each image's own order of adjustments; the grouping is decided on the host in one copy, as in
    # pkg/data (every adjustment is computed once per image that gets it)
    order_h, jit_h = order.cpu(), jit.cpu()
    for k in range(4):
        for op in range(4):
            idx = ((order_h[:, k] == op) & jit_h).nonzero().squeeze(1)
            if idx.numel() == 0:
                continue
            idx = idx.to(dev, non_blocking=True)
            x[idx] = JITTER_OPS[op](x[idx], factors[idx, op])
    x = torch.where(gry.view(-1, 1, 1, 1), gray(x).expand_as(x), x)
    mean = torch.tensor(MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=dev).view(1, 3, 1, 1)
    return ((x - mean) / std).reshape(b, views, c, h, w)


# ---------------------------------------------------------------- model (cgo/models.cpp)

def conv(cin, cout, k, stride=1, pad=None):
    return nn.Conv2d(cin, cout, k, stride, k // 2 if pad is None else pad, bias=False)


def encoder():
    m = torchvision.models.resnet18()
    m.conv1 = conv(3, 64, 3)
    m.maxpool = nn.Identity()
    m.fc = nn.Identity()
    return m


def up2(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


class DecoderBlock(nn.Module):
    def __init__(self, cin, cout, up):
        super().__init__()
        self.up = up
        self.conv1, self.bn1 = conv(cin, cin, 3), nn.BatchNorm2d(cin)
        self.conv2, self.bn2 = conv(cin, cout, 3), nn.BatchNorm2d(cout)
        self.upsample = nn.Sequential(conv(cin, cout, 1), nn.BatchNorm2d(cout)) if (up or cin != cout) else None

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        if self.up:
            h = up2(h)
        h = self.bn2(self.conv2(h))
        idn = x if self.upsample is None else self.upsample(up2(x) if self.up else x)
        return F.relu(h + idn)


class Decoder(nn.Module):
    """Code [N, D] -> image [N, 3, 32, 32]: linear to 8w x 4 x 4, four stages (three x2 upsamplings)."""

    def __init__(self, d_in, width=64, out_ch=3):
        super().__init__()
        self.c0 = width * 8
        self.linear = nn.Linear(d_in, self.c0 * 16)
        ws = [width * 8, width * 4, width * 2, width, width]
        self.layers = nn.Sequential(*[nn.Sequential(DecoderBlock(ws[s], ws[s + 1], s < 3),
                                                    DecoderBlock(ws[s + 1], ws[s + 1], False)) for s in range(4)])
        self.conv1 = conv(width, out_ch, 3)

    def forward(self, z):
        return self.conv1(self.layers(self.linear(z).view(z.shape[0], self.c0, 4, 4)))


class Thanos(nn.Module):
    def __init__(self, fast=False):
        super().__init__()
        self.encoder = encoder()
        self.decoder = Decoder(512)
        self.fast = fast

    def forward(self, views, y):
        b, v = views.shape[:2]
        flat = views.reshape(b * v, *views.shape[2:])
        if self.fast:
            flat = flat.contiguous(memory_format=torch.channels_last)
        with torch.autocast(flat.device.type, dtype=torch.bfloat16, enabled=self.fast):
            h = self.encoder(flat)
            rec = self.decoder(h)
        supcon, cnce = spread_terms(h.float().view(b, v, -1), y, TAU)
        ae = F.mse_loss(rec.float(), flat)
        return ALPHA * supcon + (1 - ALPHA) * cnce + BETA * ae


# ---------------------------------------------------------------- losses (docs/losses.md)

def spread_terms(z, y, tau):
    """SupCon ('all') and cNCE over every view as an anchor, from one similarity matrix."""
    b, v, d = z.shape
    n = b * v
    zn = F.normalize(z.reshape(n, d), dim=1)
    s = zn @ zn.t() / tau
    lab = y.repeat_interleave(v)
    item = torch.arange(b, device=z.device).repeat_interleave(v)
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    same_class = lab[:, None] == lab[None, :]
    big = -1e9  # masked entries: a large finite negative keeps every gradient finite
    others = ~eye
    pos = same_class & others
    lse_all = torch.logsumexp(s.masked_fill(eye, big), 1)
    n_pos = pos.sum(1)
    per = ((lse_all[:, None] - s) * pos).sum(1) / n_pos.clamp(min=1)
    valid = (n_pos > 0).to(s.dtype)
    supcon = (per * valid).sum() / valid.sum().clamp(min=1)
    lse_cls = torch.logsumexp(s.masked_fill(~pos, big), 1)
    q = (item[:, None] == item[None, :]) & others
    cnce = (((lse_cls[:, None] - s) * q).sum(1) / q.sum(1).clamp(min=1)).mean()
    return supcon, cnce


# ---------------------------------------------------------------- FLOPs, counted analytically

def conv_flops(cin, cout, k, hout, wout):
    return 2 * cin * cout * k * k * hout * wout


def encoder_flops(hw=32, width=64):
    """ResNet-18, CIFAR stem, forward, per image (multiply-adds count 2; BN/ReLU/adds left out)."""
    f = conv_flops(3, width, 3, hw, hw)
    cin, size = width, hw
    for stage, planes in enumerate([width, 2 * width, 4 * width, 8 * width]):
        for block in range(2):
            stride = 2 if (stage > 0 and block == 0) else 1
            size_out = size // stride
            f += conv_flops(cin, planes, 3, size_out, size_out) + conv_flops(planes, planes, 3, size_out, size_out)
            if stride != 1 or cin != planes:
                f += conv_flops(cin, planes, 1, size_out, size_out)
            cin, size = planes, size_out
    return f


def decoder_flops(d_in=512, width=64, hw=32):
    f = 2 * d_in * width * 8 * 16
    ws = [width * 8, width * 4, width * 2, width, width]
    size = 4
    for s in range(4):
        for cin, cout, up in ((ws[s], ws[s + 1], s < 3), (ws[s + 1], ws[s + 1], False)):
            out = size * 2 if up else size
            f += conv_flops(cin, cin, 3, size, size) + conv_flops(cin, cout, 3, out, out)
            if up or cin != cout:
                f += conv_flops(cin, cout, 1, out, out)
            size = out
    return f + conv_flops(width, 3, 3, hw, hw)


def measured_forward_flops(model):
    """Cross-check of the analytic count: conv and linear FLOPs of one forward pass, by hooks."""
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            total[0] += 2 * out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups
        elif isinstance(mod, nn.Linear):
            total[0] += 2 * out.numel() * mod.in_features
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.decoder(model.encoder(torch.zeros(2, 3, 32, 32)))
    for h in hs:
        h.remove()
    return total[0] / 2


def step_flops_per_image(views, batch):
    """Forward + backward ~ 3x forward, per image (all its views), including the similarity matrix."""
    fwd = views * (encoder_flops() + decoder_flops()) + 2 * (batch * views) ** 2 * 512 / batch
    return 3 * fwd


# ---------------------------------------------------------------- timing

def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def bench(impl, args, dev):
    torch.manual_seed(args.seed)
    fast = impl.endswith("-fast")
    torch.backends.cudnn.benchmark = args.cudnn_benchmark or fast
    model = Thanos(fast).to(dev).train()
    if fast:
        model = model.to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    # foreach explicit on both rows: PyTorch's default is the multi-tensor update on CUDA, which would
    # set the plain row (per-tensor in spreadtrain-plain) against a foreach update
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8,
                            foreach=fast)
    fwd = model
    compile_s = 0.0
    if impl.startswith("compile"):
        fwd = torch.compile(model)
    pixels = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, args.coarse, (args.images,), device=dev)

    def step():
        idx = torch.randint(0, args.images, (args.batch,), device=dev)
        v = augment_views(pixels.index_select(0, idx), args.views)
        loss = fwd(v, labels.index_select(0, idx))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    t0 = time.perf_counter()
    for i in range(args.warmup):
        step()
        if i == 0:
            sync(dev)
            compile_s = time.perf_counter() - t0  # the first step carries torch.compile's compilation
    sync(dev)
    start = time.perf_counter()
    for _ in range(args.steps - 1):
        step()
    loss = step().item()
    sync(dev)
    secs = time.perf_counter() - start
    res = {"impl": "pytorch-" + impl, "device": str(dev), "torch": torch.__version__, "batch": args.batch,
           "views": args.views, "steps": args.steps, "warmup": args.warmup,
           "cudnn_benchmark": torch.backends.cudnn.benchmark, "amp_bf16": fast, "channels_last": fast,
           "params": params, "seconds": secs, "ms_per_step": 1000 * secs / args.steps,
           "images_per_s": args.batch * args.steps / secs, "loss": loss}
    if impl.startswith("compile"):
        res["first_step_s"] = compile_s
    return res


def compile_available():
    if not hasattr(torch, "compile"):
        return False, f"torch.compile needs PyTorch 2.x; this is {torch.__version__}"
    return True, ""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--images", type=int, default=50000)
    ap.add_argument("--coarse", type=int, default=2)
    ap.add_argument("--impl", default="eager,eager-fast,compile-fast",
                    help="comma-separated: eager, compile, eager-fast, compile-fast")
    ap.add_argument("--cudnn-benchmark", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spreadtrain", nargs="*", default=[],
                    help="files each holding one bench/gputrain JSON line, for the ratios")
    args = ap.parse_args()
    if args.warmup < 1 or args.steps < 1 or args.images < args.batch:
        ap.error("want --warmup >= 1, --steps >= 1, --images >= --batch")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    # SPREADTRAIN_MKLDNN=0: libtorch's own CPU convolutions, as spreadtrain uses where its start-up
    # check switched a faulty oneDNN off (libtorch 2.6 on AVX-512); bench/thanos_step.sh sets it
    torch.backends.mkldnn.enabled = os.environ.get("SPREADTRAIN_MKLDNN", "1") == "1"
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_train.py: --device cuda but torch.cuda.is_available() is False")

    analytic = encoder_flops() + decoder_flops()
    counted = measured_forward_flops(Thanos())
    if abs(analytic - counted) > 1e-6 * counted:
        sys.exit(f"gpu_train.py: analytic FLOPs {analytic} != hooked count {counted}")
    print(f"# forward FLOPs per view: encoder {encoder_flops() / 1e9:.3f} G (= {encoder_flops() / 2e9:.3f} G "
          f"multiply-adds), decoder {decoder_flops() / 1e9:.3f} G; checked against a hooked count", file=sys.stderr)

    results = []
    for path in args.spreadtrain:
        with open(path) as f:
            results.append(json.loads(f.read().strip().splitlines()[-1]))
    for impl in [s.strip() for s in args.impl.split(",") if s.strip()]:
        if impl.startswith("compile"):
            ok, why = compile_available()
            if not ok:
                print(f"# skipping torch.compile: {why}", file=sys.stderr)
                continue
        elif impl not in ("eager", "eager-fast"):
            ap.error(f"--impl {impl}: want eager, compile, eager-fast or compile-fast")
        r = bench(impl, args, dev)
        print(json.dumps(r), flush=True)
        results.append(r)

    flops = step_flops_per_image(args.views, args.batch)
    print(f"\nNOT YET MEASURED ON A GPU IN THIS PROJECT before this run; plain rows float32 (TF32 allowed in cuDNN\n"
          f"convolutions), fast rows bf16 autocast + channels-last + cuDNN autotuner + foreach AdamW.")
    print(f"step FLOPs per image (fwd+bwd ~ 3x fwd, {args.views} views): {flops / 1e9:.2f} G")
    print(f"{'impl':<28} {'images/s':>10} {'ms/step':>9} {'TFLOP/s':>8} "
          f"{'MFU fp32 67T':>13} {'MFU tf32 494T':>14} {'MFU bf16 989T':>14}")
    by = {}
    for r in results:
        tf = r["images_per_s"] * flops / 1e12
        by[r["impl"]] = r["images_per_s"]
        r["tflops"] = tf
        r["mfu"] = {k: tf / v for k, v in PEAK_TFLOPS.items()}
        print(f"{r['impl']:<28} {r['images_per_s']:>10.1f} {r['ms_per_step']:>9.2f} {tf:>8.2f} "
              f"{100 * tf / PEAK_TFLOPS['fp32']:>12.1f}% {100 * tf / PEAK_TFLOPS['tf32']:>13.1f}% "
              f"{100 * tf / PEAK_TFLOPS['bf16']:>13.1f}%")
    summary = {"flops_per_image": flops, "results": results}
    plain = by.get("spreadtrain-plain")
    for r in results:  # every spreadtrain switch against spreadtrain with none
        if plain and r["impl"].startswith("spreadtrain") and r["impl"] != "spreadtrain-plain":
            key = r["impl"] + "/spreadtrain-plain"
            summary[key] = r["images_per_s"] / plain
            print(f"{key}: {summary[key]:.3f}")
    for mine, other in (("spreadtrain-plain", "pytorch-eager"), ("spreadtrain-plain", "pytorch-compile"),
                        ("spreadtrain-fast", "pytorch-eager-fast"), ("spreadtrain-fast", "pytorch-compile-fast"),
                        ("spreadtrain-fast", "pytorch-eager")):
        if by.get(mine) and by.get(other):
            key = f"{mine}/{other}"
            summary[key] = by[mine] / by[other]
            print(f"{key}: {summary[key]:.3f} (images/s ratio; > 1: spreadtrain is faster)")
    if dev.type == "cpu":
        print("(CPU run: MFU against H200 peaks is meaningless here)")
    print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
