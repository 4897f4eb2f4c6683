"""Regenerates pkg/nn/testdata: torch.optim reference trajectories and torchvision ResNet state names.

Needs Debian's python3-torch and python3-torchvision (CPU PyTorch 1.13); the Go tests only read
the committed JSON.  Run: /usr/bin/python3 tools/reference/gen_nn_fixtures.py
"""
import json
import os

import torch
import torchvision

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "pkg", "nn", "testdata")
torch.manual_seed(0)


def trajectory(make_opt, steps=6):
    p0 = torch.randn(7, dtype=torch.float64)
    grads = [torch.randn(7, dtype=torch.float64) for _ in range(steps)]
    lrs = [0.1 * (0.8 ** i) for i in range(steps)]
    p = p0.clone().requires_grad_(True)
    opt = make_opt([p])
    for g, lr in zip(grads, lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = g.clone()
        opt.step()
    return {"p0": p0.tolist(), "grads": [g.tolist() for g in grads], "lrs": lrs, "final": p.detach().tolist()}


cases = {
    "adamw": trajectory(lambda ps: torch.optim.AdamW(ps, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
    "adamw_b": trajectory(lambda ps: torch.optim.AdamW(ps, lr=0.1, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.3)),
    "sgd_momentum_wd": trajectory(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=5e-4)),
    "sgd_nesterov": trajectory(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "sgd_plain": trajectory(lambda ps: torch.optim.SGD(ps, lr=0.1)),
}
with open(os.path.join(OUT, "optim.json"), "w") as f:
    json.dump(cases, f, indent=1)


def state_names(model):
    sd = model.state_dict()
    return {k: list(v.shape) for k, v in sd.items() if not k.startswith("fc.")}


names = {}
for arch in ["resnet18", "resnet34", "resnet50"]:
    m = getattr(torchvision.models, arch)()
    names[arch + "_imagenet"] = state_names(m)
    m.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = torch.nn.Identity()
    names[arch + "_cifar"] = state_names(m)
with open(os.path.join(OUT, "torchvision_resnet_state.json"), "w") as f:
    json.dump(names, f, indent=0, sort_keys=True)
print("wrote", OUT)
