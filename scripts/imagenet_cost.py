#!/usr/bin/env python3
"""imagenet_cost.py: the projected wall time of an ImageNet protocol on N
MPI ranks, from rates measured on one node (docs/RESULTS.md, "What it
costs"). A markdown table on stdout.

  imagenet_cost.py --train-ips X --eval-ips Y [--params 11689512] [--epochs 90]
                   [--batch 256] [--ranks 1,8,32,64,256] [--hidden 0]

The model, stated so it can be argued with:
- each rank trains on its share of every global batch at the measured
  single-node rate (ideal compute scaling: the per-rank batch shrinks as N
  grows, which in practice lowers the per-node rate below N = 16 or so);
- after every step the gradients (4 bytes per parameter) are summed by a
  ring allreduce: 2 (N - 1) / N times the buffer through each rank's link
  plus 2 (N - 1) message latencies, on InfiniBand EDR (10 GB/s, 5 us) or
  10 Gb Ethernet (1.25 GB/s, 50 us); --hidden H of that time overlaps the
  backward pass (dist.overlap; default 0: none hidden);
- evaluation of the 50,000 validation images after every epoch, split over
  the ranks at the measured evaluation rate;
- reading and decoding keep up with training (the measured data wait).
"""
import argparse

LINKS = [("InfiniBand 10 GB/s", 10e9, 5e-6), ("10 GbE 1.25 GB/s", 1.25e9, 50e-6)]


def allreduce_s(nbytes, n, bw, lat):
    """One ring allreduce of nbytes over n ranks."""
    if n == 1:
        return 0.0
    return 2.0 * (n - 1) / n * nbytes / bw + 2 * (n - 1) * lat


def human(s):
    """Seconds as minutes, hours or days, whichever reads better."""
    if s < 3600:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h" if s < 72 * 3600 else f"{s / 86400:.1f} days"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-ips", type=float, required=True, help="training images/s of one node")
    ap.add_argument("--eval-ips", type=float, required=True, help="evaluation images/s of one node")
    ap.add_argument("--params", type=int, default=11689512, help="ResNet-18 with 1000 classes; ResNet-50: 25557032")
    ap.add_argument("--epochs", type=int, default=90)
    ap.add_argument("--batch", type=int, default=256, help="the global batch")
    ap.add_argument("--train-images", type=int, default=1281167)
    ap.add_argument("--val-images", type=int, default=50000)
    ap.add_argument("--ranks", default="1,8,32,64,128")
    ap.add_argument("--hidden", type=float, default=0.0, help="fraction of the allreduce time hidden behind the backward pass")
    a = ap.parse_args()
    if not 0.0 <= a.hidden <= 1.0:
        raise SystemExit("imagenet_cost.py: --hidden is a fraction, from 0 to 1")
    if any(int(r) > a.batch for r in a.ranks.split(",")):
        raise SystemExit(f"imagenet_cost.py: more ranks than images in a global batch of {a.batch}")
    steps = -(-a.train_images // a.batch)
    nbytes = 4.0 * a.params
    print(f"| ranks | compute per epoch | {' | '.join('allreduce per epoch, ' + l[0] for l in LINKS)} | "
          f"{' | '.join(f'{a.epochs} epochs, ' + l[0] for l in LINKS)} |")
    print("|---" * (2 + 2 * len(LINKS)) + "|")
    for n in [int(r) for r in a.ranks.split(",")]:
        compute = a.train_images / (n * a.train_ips) + a.val_images / (n * a.eval_ips)
        comm = [(1.0 - a.hidden) * steps * allreduce_s(nbytes, n, bw, lat) for _, bw, lat in LINKS]
        total = [a.epochs * (compute + c) for c in comm]
        print(f"| {n} | {human(compute)} | {' | '.join(f'{c:.0f} s' for c in comm)} | {' | '.join(human(t) for t in total)} |")


if __name__ == "__main__":
    main()
