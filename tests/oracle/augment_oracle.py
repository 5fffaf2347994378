"""torchvision as the oracle of asymbp's augmentation (tests/test_augment.c).

  augment_oracle.py geometry DIR   each case of DIR/cases.txt through
      torchvision's functional transforms on a tensor; the largest difference
      from asymbp's output (DIR/case_K_ours.npy) printed, exit 1 above 1e-5.
  augment_oracle.py rrc DIR        RandomResizedCrop.get_params drawn as
      often as asymbp drew its boxes (DIR/rrc_K.npy); the distributions of
      area, aspect ratio, offsets and centre-crop fallbacks compared
      (two-sample Kolmogorov-Smirnov), exit 1 when they differ.

Case lines (DIR/cases.txt), one per case K:
  K padcrop PAD I J OH OW FILL FLIP   pad by PAD (fill FILL), crop at (I, J), hflip
  K rcrop I J BH BW OH OW FLIP        resized_crop, bilinear, antialias=False, hflip
  K eval R CH CW                      resize shorter side to R (0: none),
                                      then center_crop CH x CW (0: none)
  K rrc H W S0 S1 R0 R1               boxes of an H x W image, scale, ratio
"""
import math
import sys

import numpy as np
import torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode, RandomResizedCrop


def geometry_case(d, k, kind, a):
    x = torch.from_numpy(np.load(f"{d}/case_{k}_x.npy"))
    if kind == "padcrop":
        pad, i, j, oh, ow = (int(v) for v in a[:5])
        fill, flip = float(a[5]), int(a[6])
        y = F.crop(F.pad(x, [pad], fill=fill), i, j, oh, ow)
    elif kind == "rcrop":
        i, j, bh, bw, oh, ow, flip = (int(v) for v in a[:7])
        y = F.resized_crop(x, i, j, bh, bw, [oh, ow], InterpolationMode.BILINEAR, antialias=False)
    elif kind == "eval":
        r, ch, cw = (int(v) for v in a[:3])
        flip = 0
        y = F.resize(x, [r], InterpolationMode.BILINEAR, antialias=False) if r else x
        y = F.center_crop(y, [ch, cw]) if ch else y
    else:
        raise SystemExit(f"unknown case kind {kind}")
    if flip:
        y = F.hflip(y)
    return y.numpy()


def geometry(d):
    worst = 0.0
    for line in open(f"{d}/cases.txt"):
        f = line.split()
        if not f:
            continue
        k, kind = f[0], f[1]
        want = geometry_case(d, k, kind, f[2:])
        ours = np.load(f"{d}/case_{k}_ours.npy")
        if ours.shape != want.shape:
            print(f"case {k} {kind}: shape {ours.shape}, torchvision {want.shape}")
            return 1
        diff = float(np.max(np.abs(ours - want) / np.maximum(1.0, np.abs(want))))
        worst = max(worst, diff)
        print(f"case {k} {' '.join(f[1:])}: {want.shape}, max difference {diff:.3g}")
    print(f"largest difference {worst:.3g}")
    return 0 if worst <= 1e-5 else 1


def ks(a, b):
    """Two-sample Kolmogorov-Smirnov statistic (ties handled by value)."""
    a, b = np.sort(a), np.sort(b)
    v = np.union1d(a, b)
    fa = np.searchsorted(a, v, side="right") / len(a)
    fb = np.searchsorted(b, v, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def fallback_box(h, w, ratio):
    in_ratio = w / h
    if in_ratio < min(ratio):
        bw, bh = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        bh, bw = h, int(round(h * max(ratio)))
    else:
        bh, bw = h, w
    return (h - bh) // 2, (w - bw) // 2, bh, bw


def features(boxes, h, w):
    i, j, bh, bw = (boxes[:, q].astype(np.float64) for q in range(4))
    free_h, free_w = np.maximum(h - bh, 1), np.maximum(w - bw, 1)
    return {"area": bh * bw / (h * w), "log_ratio": np.log(bw / bh), "top": i / free_h, "left": j / free_w}


def rrc(d):
    bad = 0
    for line in open(f"{d}/cases.txt"):
        f = line.split()
        if not f:
            continue
        k, h, w = f[0], int(f[2]), int(f[3])
        scale, ratio = [float(f[4]), float(f[5])], [float(f[6]), float(f[7])]
        ours = np.load(f"{d}/rrc_{k}.npy")
        n = len(ours)
        torch.manual_seed(int(k))
        img = torch.empty(1, h, w)
        theirs = np.array([RandomResizedCrop.get_params(img, scale, ratio) for _ in range(n)], dtype=np.int64)
        crit = 1.95 * math.sqrt(2.0 / n)  # alpha = 0.001
        fo, ft = features(ours, h, w), features(theirs, h, w)
        stats = {name: ks(fo[name], ft[name]) for name in fo}
        fb = np.array(fallback_box(h, w, ratio))
        po, pt = np.mean(np.all(ours == fb, axis=1)), np.mean(np.all(theirs == fb, axis=1))
        sigma = math.sqrt(max(pt * (1 - pt), 1.0 / n) * 2.0 / n)
        inside = bool(np.all((ours[:, 0] >= 0) & (ours[:, 1] >= 0) & (ours[:, 2] >= 1) & (ours[:, 3] >= 1)
                             & (ours[:, 0] + ours[:, 2] <= h) & (ours[:, 1] + ours[:, 3] <= w)))
        ok = inside and all(s <= crit for s in stats.values()) and abs(po - pt) <= 5 * sigma
        bad += not ok
        print(f"rrc {k}: {h}x{w} scale {scale} ratio {ratio}, {n} boxes: KS " +
              ", ".join(f"{name} {s:.4f}" for name, s in stats.items()) +
              f" (critical {crit:.4f}); centre-crop fallback {po:.4f} vs torchvision {pt:.4f}" +
              ("" if inside else "; a box outside the image") + ("" if ok else "  <- differs"))
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("geometry", "rrc"):
        raise SystemExit("usage: augment_oracle.py geometry|rrc DIR")
    sys.exit(geometry(sys.argv[2]) if sys.argv[1] == "geometry" else rrc(sys.argv[2]))
