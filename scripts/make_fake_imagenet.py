#!/usr/bin/env python3
"""make_fake_imagenet.py: a small synthetic ImageNet-like data set for the
tests of format imagenet (docs/DATA.md), written under OUT:

  OUT/train/CLASS/CLASS_N.JPEG      class folders (JPEGs of 300-500 px)
  OUT/val/ILSVRC2012_val_N.JPEG     a flat validation folder, and
  OUT/val_labels.txt                one class name per line, files in name order
  OUT/byclass/train -> ../train     the same with class-folder validation:
  OUT/byclass/val/CLASS/*.JPEG
  OUT/shards/train-000{0,1}.tar     tar shards of KEY.jpg + KEY.cls (label)
  OUT/shards/val-0000.tar
  OUT/ref/                          what PIL makes of the CMYK and grayscale
                                    files (RGB, raw bytes; a .txt with H W)

Each class is a colour and a stripe direction, with noise, so a network
tells them apart in a few steps. Among the training images of the first
class: a grayscale JPEG, a CMYK JPEG (Adobe, as PIL writes it), a PNG named
.JPEG and a truncated JPEG (with --hostile, the default).

usage: make_fake_imagenet.py OUT [--classes 4] [--train 8] [--val 3] [--seed 1] [--no-hostile]
"""
import argparse
import io
import os
import tarfile

import numpy as np
from PIL import Image

COLOURS = [(200, 40, 40), (40, 180, 60), (50, 70, 210), (220, 200, 40), (160, 60, 200), (40, 200, 200), (240, 140, 40), (120, 120, 120)]


def picture(rng, k):
    """An RGB image of class k: its colour, stripes in its direction, noise."""
    h, w = rng.integers(300, 501, size=2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = np.pi * k / 7.0
    stripes = 0.5 + 0.5 * np.sin((np.cos(angle) * xx + np.sin(angle) * yy) / 9.0)
    base = np.array(COLOURS[k % len(COLOURS)], np.float32)
    img = base[None, None, :] * (0.55 + 0.45 * stripes[:, :, None]) + rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(img, quality=90):
    b = io.BytesIO()
    img.save(b, "JPEG", quality=quality)
    return b.getvalue()


def truncated(data):
    """The headers and a little of the scan: no image data past that."""
    sos = data.find(b"\xff\xda")
    return data[: sos + 300]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def ref(out, name, img):
    a = np.asarray(img.convert("RGB"))
    write(os.path.join(out, "ref", name + ".rgb"), a.tobytes())
    write(os.path.join(out, "ref", name + ".txt"), b"%d %d\n" % a.shape[:2])


def hostile(out, rng, cls):
    """The grayscale, CMYK, PNG-named-JPEG and truncated training files."""
    d = os.path.join(out, "train", cls)
    gray = picture(rng, 0).convert("L")
    write(os.path.join(d, cls + "_gray.JPEG"), jpeg_bytes(gray))
    cmyk = picture(rng, 0).convert("CMYK")
    data = jpeg_bytes(cmyk)
    write(os.path.join(d, cls + "_cmyk.JPEG"), data)
    ref(out, "cmyk", Image.open(io.BytesIO(data)))
    ref(out, "gray", Image.open(io.BytesIO(jpeg_bytes(gray))))
    b = io.BytesIO()
    picture(rng, 0).save(b, "PNG")
    write(os.path.join(d, cls + "_png.JPEG"), b.getvalue())
    write(os.path.join(d, cls + "_truncated.JPEG"), truncated(jpeg_bytes(picture(rng, 0))))


def shard(path, items):
    """items: (key, JPEG bytes, label) into a tar of KEY.jpg + KEY.cls."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
        for key, data, label in items:
            for name, payload in ((key + ".jpg", data), (key + ".cls", b"%d" % label)):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                info.mtime = 0
                t.addfile(info, io.BytesIO(payload))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--train", type=int, default=8, help="training images per class")
    ap.add_argument("--val", type=int, default=3, help="validation images per class")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-hostile", dest="hostile", action="store_false")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    names = ["n%08d" % (1440764 + 1000 * k) for k in range(a.classes)]
    train, val = [], []
    for k, cls in enumerate(names):
        for i in range(a.train):
            data = jpeg_bytes(picture(rng, k))
            write(os.path.join(a.out, "train", cls, "%s_%d.JPEG" % (cls, i)), data)
            train.append(("%s_%d" % (cls, i), data, k))
        for i in range(a.val):
            data = jpeg_bytes(picture(rng, k))
            write(os.path.join(a.out, "byclass", "val", cls, "%s_val_%d.JPEG" % (cls, i)), data)
            val.append((data, k))
    order = rng.permutation(len(val))
    labels = []
    for n, q in enumerate(order):
        write(os.path.join(a.out, "val", "ILSVRC2012_val_%08d.JPEG" % (n + 1)), val[q][0])
        labels.append(names[val[q][1]])
    write(os.path.join(a.out, "val_labels.txt"), ("\n".join(labels) + "\n").encode())
    link = os.path.join(a.out, "byclass", "train")
    if not os.path.lexists(link):
        os.symlink("../train", link)
    if a.hostile:
        hostile(a.out, rng, names[0])
    half = len(train) // 2
    shard(os.path.join(a.out, "shards", "train-0000.tar"), train[:half])
    shard(os.path.join(a.out, "shards", "train-0001.tar"), train[half:])
    shard(os.path.join(a.out, "shards", "val-0000.tar"), [("val_%d" % i, d, k) for i, (d, k) in enumerate(val)])


if __name__ == "__main__":
    main()
