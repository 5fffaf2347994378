#!/usr/bin/python3
"""The PyTorch peer for the ImageNet networks of bench/bench.c: torchvision's
ResNet-18 and ResNet-50 (1000 classes, 224x224 input) trained with plain
backpropagation on random Gaussian images held in memory, as asymbp-bench
--one resnet18 bp trains its own. The same command line and JSON line as
the shared peer (peer_torch.py), so the benchmark driver runs either:

    peer_imagenet.py --model resnet18|resnet50 --rule bp --batch B --limit N --epochs E --threads T

One epoch is N / B steps of SGD (momentum 0.9, weight decay 1e-4, batch
norm in training mode); the first is a warm-up and images/s is the
fastest of the others. Only bp: the feedback rules of the ImageNet networks
are compared with this peer's bp.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18", choices=["resnet18", "resnet50"])
    ap.add_argument("--rule", default="bp")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--limit", type=int, default=64, help="images per epoch")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="random", help="ignored: always random 3x224x224 images")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.rule != "bp":
        raise SystemExit(f"peer_imagenet.py: only bp (got {a.rule})")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    n = max(a.limit, a.batch)
    g = torch.Generator().manual_seed(a.seed)
    x, y = torch.randn(n, 3, 224, 224, generator=g), torch.randint(0, 1000, (n,), generator=g)
    net = getattr(torchvision.models, a.model)(num_classes=1000)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    times = []
    for _ in range(max(a.epochs, 2)):
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        for i in range(0, n - a.batch + 1, a.batch):
            j = perm[i: i + a.batch]
            opt.zero_grad()
            F.cross_entropy(net(x[j]), y[j]).backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    steps = n // a.batch
    sec = min(times[1:])
    print(json.dumps({"peer": "pytorch-" + torch.__version__, "torchvision": torchvision.__version__, "model": a.model, "rule": a.rule,
                      "batch": a.batch, "steps": steps, "sec_per_epoch": round(sec, 3), "images_per_s": round(steps * a.batch / sec, 2),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
