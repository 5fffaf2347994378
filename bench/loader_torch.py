#!/usr/bin/env python3
"""loader_torch.py: torchvision's side of the loader benchmark
(bench/loader.c): images/s of an ImageFolder DataLoader over ROOT/train
with the training transforms of torchvision's ImageNet recipe.

  loader_torch.py ROOT --workers W [--cpus C] [--epochs E] [--batch 64]

RandomResizedCrop(224), RandomHorizontalFlip, ToTensor, Normalize (ImageNet
mean and std); DataLoader(batch_size, shuffle=True, num_workers=W,
persistent_workers=True), one intra-op thread per process. The process and
its workers run on the first C cores it may use (C = W unless given), as
asymbp's side does. One warm-up epoch (the workers start, the files come
into the page cache), then E epochs timed whole, every batch taken from the
loader. Prints one JSON line."""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cpus", type=int, default=0, help="cores to run on (0: as many as workers)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    try:
        import torch
        import torchvision
        from torchvision import datasets, transforms
    except ImportError as e:
        sys.exit("loader_torch.py: %s (install python3-torch, python3-torchvision and python3-pil)" % e)
    cpus = sorted(os.sched_getaffinity(0))[: a.cpus or a.workers]
    os.sched_setaffinity(0, cpus)
    torch.set_num_threads(1)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    ds = datasets.ImageFolder(os.path.join(a.root, "train"), transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers, persistent_workers=a.workers > 0)
    for x, y in loader:  # warm-up
        pass
    n, t0 = 0, time.perf_counter()
    for _ in range(a.epochs):
        for x, y in loader:
            n += x.shape[0]
    dt = time.perf_counter() - t0
    print(json.dumps({"images_per_s": n / dt, "images": n, "seconds": dt, "workers": a.workers, "cpus": len(cpus),
                      "torch": torch.__version__, "torchvision": torchvision.__version__}))


if __name__ == "__main__":
    main()
