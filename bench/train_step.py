"""One CPU training step of a CIFAR ResNet-18 in PyTorch eager, the reference for bench/trainstep.

torchvision.models.resnet18(num_classes=10) with conv1 = 3x3/1 (no bias) and maxpool = Identity; a fixed
random batch; cross-entropy; backward; torch.optim.SGD(momentum 0.9, weight decay 5e-4) step; loss.item().
Prints one JSON line: per-step times and their median. Run through bench/train_step.sh.
"""
import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--round", type=int, default=0, help="round number, echoed in the output")
    args = ap.parse_args()
    # SPREADTRAIN_MKLDNN=0: libtorch's own convolutions, as spreadtrain uses where its start-up check
    # switched a faulty oneDNN off (libtorch 2.6 on AVX-512); the same kernels on both sides
    torch.backends.mkldnn.enabled = os.environ.get("SPREADTRAIN_MKLDNN", "1") == "1"
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = torch.nn.Identity()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times, cpu = [], []
    for _ in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    print(json.dumps({"impl": "pytorch", "threads": args.threads, "round": args.round, "batch": args.batch,
                      "ms": sorted(times)[len(times) // 2], "cpu_ms": sorted(cpu)[len(cpu) // 2], "steps_ms": [round(t, 2) for t in times],
                      "loss": loss, "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
