#!/usr/bin/env python3
"""Mean and standard deviation over seeds of runs laid out as DIR/RULE/seedN
(scripts/repro_biotorch.sh), as a Markdown table: per rule the best test
error (BioTorch's choice: best over epochs), the final epoch's error, the
mean over the last quarter of epochs, and every seed's best error. A run
that diverged is counted and named, never averaged as a number; a run
without summary.json (unfinished) is listed as such. A run that never beat
chance by 5 points (best error 85% or more: ten classes) is averaged with
the others and also named as stuck, and the best error of the runs that
learned is given beside the mean of all.

    scripts/seed_table.py DIR            the table of errors
    scripts/seed_table.py DIR --angles   mean angle per layer over the runs
                                         that finished and learned, at
                                         epochs 1, 10, 50 and the last
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


STUCK = 85.0


def seed_dirs(rd):
    return sorted((s for s in os.listdir(rd) if s.startswith("seed") and os.path.isdir(os.path.join(rd, s))), key=lambda s: int(s[4:]))


def rule_dirs(top):
    rules = sorted(os.listdir(top), key=lambda r: (ORDER.index(r) if r in ORDER else 99, r))
    return [r for r in rules if os.path.isdir(os.path.join(top, r))]


def angles(top):
    """Per rule, the mean over finished runs that learned of each layer's angle at a few epochs."""
    print("| rule | runs | epoch 1 | epoch 10 | epoch 50 | last epoch |")
    print("|---|---|---|---|---|---|")
    for r in rule_dirs(top):
        runs = []
        for s in seed_dirs(os.path.join(top, r)):
            summ, epochs = read_run(os.path.join(top, r, s))
            if summ is not None and not summ.get("diverged") and epochs and 100 * summ["best_test_err"] < STUCK:
                runs.append(epochs)
        if not runs:
            print("| %s | 0 | - | - | - | - |" % r)
            continue
        n = min(len(e) for e in runs)
        cells = []
        for at in (1, 10, 50, n):
            if at > n:
                cells.append("-")
                continue
            # angle of B to W, or where a layer has no such B (dfa) the
            # angle of its error signal to backpropagation's
            per_layer = [[l["angle"] if l["angle"] is not None else l.get("delta_angle") for l in e[at - 1]["layers"]] for e in runs]
            cells.append(", ".join("-" if None in v else "%.1f" % (sum(v) / len(v)) for v in zip(*per_layer)))
        delta = all(l["angle"] is None for l in runs[0][0]["layers"])
        print("| %s | %d | %s |" % (r + (" (delta angle)" if delta else ""), len(runs), " | ".join(cells)))


def main():
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    top = sys.argv[1]
    if "--angles" in sys.argv[2:]:
        angles(top)
        return
    print("| rule | lr | BioTorch | runs | best (mean ± sd) | best of the runs that learned | final | last quarter | per seed: best (epoch) | diverged or stuck at chance |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rule_dirs(top):
        rd = os.path.join(top, r)
        seeds = seed_dirs(rd)
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
            if best[-1] >= STUCK:
                diverged.append("%s stuck" % s)
        learned = [b for b in best if b < STUCK]
        paper = "%.2f" % BIOTORCH[r] if r in BIOTORCH else "-"
        print("| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s |" % (
            r, lr, paper, len(best), fmt(*mean_sd(best)),
            fmt(*mean_sd(learned)) + ("" if len(learned) == len(best) else " (%d)" % len(learned)),
            fmt(*mean_sd(final)), fmt(*mean_sd(quarter)),
            ", ".join(per), ", ".join(diverged) if diverged else "0"))


if __name__ == "__main__":
    main()
