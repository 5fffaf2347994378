#!/usr/bin/env python3
"""Mean and standard deviation over seeds of runs laid out as DIR/RULE/seedN
(scripts/repro_biotorch.sh), as a Markdown table: per rule the best test
error (BioTorch's choice: best over epochs), the final epoch's error, the
mean over the last quarter of epochs, and every seed's best error. A run
that diverged is counted and named, never averaged as a number; a run
without summary.json (unfinished) is listed as such.

    scripts/seed_table.py DIR [--paper biotorch]
"""
import json
import math
import os
import sys

# BioTorch's Fashion-MNIST LeNet-5 top-1 errors (Sanfiz & Akrout 2021)
BIOTORCH = {"bp": 9.20, "fa": 13.06, "dfa": 12.81, "usf": 9.69, "brsf": 10.02, "frsf": 9.61}
ORDER = ["bp", "fa", "dfa", "usf", "brsf", "frsf", "kp", "wm"]


def mean_sd(v):
    if not v:
        return None, None
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else float("nan")
    return m, sd


def fmt(m, sd):
    if m is None:
        return "-"
    return "%.2f" % m if math.isnan(sd) else "%.2f ± %.2f" % (m, sd)


def read_run(d):
    """(summary, epochs) of a run folder, or (None, None) when unfinished."""
    path = os.path.join(d, "summary.json")
    if not os.path.exists(path):
        return None, None
    with open(path) as f:
        s = json.load(f)
    epochs = []
    with open(os.path.join(d, "log.jsonl")) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    epochs.append(json.loads(line))
                except ValueError as e:
                    sys.exit("%s/log.jsonl:%d: %s" % (d, n, e))
    return s, epochs


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    top = sys.argv[1]
    rules = sorted(os.listdir(top), key=lambda r: (ORDER.index(r) if r in ORDER else 99, r))
    print("| rule | lr | BioTorch | seeds | best (mean ± sd) | final | last quarter | per seed: best (epoch) | diverged |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rules:
        rd = os.path.join(top, r)
        if not os.path.isdir(rd):
            continue
        seeds = sorted((s for s in os.listdir(rd) if s.startswith("seed") and os.path.isdir(os.path.join(rd, s))), key=lambda s: int(s[4:]))
        best, final, quarter, per, diverged, lr = [], [], [], [], [], "-"
        for s in seeds:
            summ, epochs = read_run(os.path.join(rd, s))
            if summ is None:
                per.append("%s unfinished" % s)
                continue
            if epochs:
                lr = "%g" % epochs[0]["lr"]
            if summ.get("diverged"):
                at = len(epochs)
                diverged.append("%s (epoch %d)" % (s, at + 1))
                per.append("%s diverged" % s)
                continue
            best.append(100 * summ["best_test_err"])
            final.append(100 * summ["final_test_err"])
            q = [100 * e["test_err"] for e in epochs[len(epochs) * 3 // 4:]]
            quarter.append(sum(q) / len(q))
            per.append("%s %.2f (%d)" % (s, 100 * summ["best_test_err"], summ["best_epoch"]))
        paper = "%.2f" % BIOTORCH[r] if r in BIOTORCH else "-"
        print("| %s | %s | %s | %d | %s | %s | %s | %s | %s |" % (
            r, lr, paper, len(best), fmt(*mean_sd(best)), fmt(*mean_sd(final)), fmt(*mean_sd(quarter)),
            ", ".join(per), ", ".join(diverged) if diverged else "0"))


if __name__ == "__main__":
    main()
