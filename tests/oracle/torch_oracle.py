#!/usr/bin/env python3
"""PyTorch oracle for `asymbp probe`.

Usage: torch_oracle.py [-q] [--rtol R] [--rtol-scaled R] [--rtol-step R] DIR [DIR...]

DIR is the output of `asymbp probe CONFIG --batch N --steps K --out DIR`:
manifest.json plus .npy files. The script builds the same network in
torch.nn (float32) from the manifest's "layers", loads the probe's initial
parameter values in order, and repeats the probe in PyTorch: one forward
pass in training mode on the same batch, the loss, one backward pass; then,
from the initial values again, K steps of torch.optim.SGD or Adam with the
manifest's settings (each step: zero grad, forward in train mode, backward,
update). It compares, tensor by tensor:

  loss, logits, dlogits (d loss / d logits), dx (d loss / d input),
  every parameter gradient, every batch-norm running statistic after the
  first forward pass, every parameter after the K steps, and the update
  itself (after - before).

A tensor agrees when max|a - b| <= rtol * max(1, max|b|) (b from PyTorch,
rtol 1e-4 by default). As gradients and updates are usually far smaller
than 1, they must also agree relative to their own scale:
max|a - b| <= rtol_scaled * max|b| for dlogits, dx and every gradient
(rtol_scaled 1e-4 by default; float32 rounding gives a few 1e-6), and
max|a - b| <= rtol_step * max|b| for every update (after - before;
rtol_step 1e-3 by default, as Adam divides by small second moments and the
difference of two float32 values carries their rounding), so that a wrong
gradient or optimizer step is caught even when it is far smaller than the
weights. Tensors whose PyTorch scale is below noise (1e-6: gradients that
are zero in exact arithmetic, such as a bias followed by batch norm) are
exempt from the scaled check and marked "~zero". A gradient that is
exactly zero everywhere in PyTorch fails: such a test would not test
anything.

One line per tensor: name, max |a - b|, max |b|, the difference relative to
max(1, max|b|) and to max|b|, OK or FAIL. Exit status 0 when everything
agrees, 1 when something does not, 2 on a usage or manifest error; with
several DIRs, each gets its own report and summary line (ending in
MISMATCH when it disagrees) and the exit status is the worst of them.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class ManifestError(Exception):
    pass


# ---- the network ---------------------------------------------------------

class OptionA(nn.Module):
    """He et al.'s option-A shortcut: subsample by the stride, zero-pad the
    channels, (out - in) // 2 in front and the rest behind."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.front = (cout - cin) // 2
        self.back = cout - cin - self.front
        self.stride = stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.front, self.back))


class ResBlock(nn.Module):
    """Basic or bottleneck residual block; output relu(main(x) + shortcut(x))."""

    def __init__(self, main, shortcut):
        super().__init__()
        self.main = main
        self.shortcut = shortcut  # nn.Identity, OptionA or conv1x1 + BN

    def forward(self, x):
        return F.relu(self.main(x) + self.shortcut(x))


class Net:
    """The torch model with its parameters and buffers in probe order."""

    def __init__(self, manifest):
        n, c, h, w = manifest["input_shape"]
        self.params = []   # (module tensor) in the probe's order
        self.buffers = []
        mods = []
        shape = (c, h, w)
        flat = False       # the tensor in torch is (N, F) rather than (N, C, H, W)
        for i, L in enumerate(manifest["layers"]):
            t = L["type"]
            if t in ("conv", "maxpool", "avgpool", "resblock") and flat:
                mods.append(nn.Unflatten(1, shape))
                flat = False
            if t == "fc":
                if not flat:
                    mods.append(nn.Flatten())
                    flat = True
                fin = shape[0] * shape[1] * shape[2]
                m = nn.Linear(fin, L["out"], bias=L["bias"])
                self._take(m)
                mods.append(m)
                shape = (L["out"], 1, 1)
            elif t == "conv":
                m = nn.Conv2d(shape[0], L["out"], L["k"], stride=L["stride"], padding=L["pad"], bias=L["bias"])
                self._take(m)
                mods.append(m)
                shape = (L["out"], conv_size(shape[1], L["k"], L["stride"], L["pad"]),
                         conv_size(shape[2], L["k"], L["stride"], L["pad"]))
            elif t in ("maxpool", "avgpool"):
                if L["k"] == 0:  # global pooling over the whole map
                    k, s, p = shape[1], 1, 0
                    if shape[1] != shape[2]:
                        raise ManifestError("layer %d: global pooling of a non-square %dx%d map" % (i, shape[1], shape[2]))
                else:
                    k, s, p = L["k"], L["stride"], L["pad"]
                if t == "maxpool":
                    m = nn.MaxPool2d(k, stride=s, padding=p)
                else:
                    m = nn.AvgPool2d(k, stride=s, padding=p, count_include_pad=True)
                mods.append(m)
                shape = (shape[0], conv_size(shape[1], k, s, p), conv_size(shape[2], k, s, p))
            elif t == "batchnorm":
                m = (nn.BatchNorm1d if flat else nn.BatchNorm2d)(shape[0], eps=L["eps"], momentum=L["momentum"])
                self._take_bn(m)
                mods.append(m)
            elif t == "relu":
                mods.append(nn.ReLU())
            elif t == "tanh":
                mods.append(nn.Tanh())
            elif t == "sigmoid":
                mods.append(nn.Sigmoid())
            elif t == "flatten":
                if not flat:
                    mods.append(nn.Flatten())
                    flat = True
                shape = (shape[0] * shape[1] * shape[2], 1, 1)
            elif t == "dropout":
                if L["p"] != 0:
                    raise ManifestError("layer %d: dropout with p = %g draws its own mask; the oracle needs p = 0" % (i, L["p"]))
                mods.append(nn.Identity())
            elif t == "resblock":
                m, shape = self._resblock(L, shape)
                mods.append(m)
            else:
                raise ManifestError("layer %d: unknown type %r" % (i, t))
        if not flat:
            mods.append(nn.Flatten())
        self.shape = shape
        self.model = nn.Sequential(*mods)

    def _take(self, m):
        self.params.append(m.weight)
        if m.bias is not None:
            self.params.append(m.bias)

    def _take_bn(self, m):
        self.params += [m.weight, m.bias]
        self.buffers += [m.running_mean, m.running_var]

    def _resblock(self, L, shape):
        C, H, W = shape
        O, s, mom = L["out"], L["stride"], L["momentum"]
        eps = L.get("eps", 1e-5)

        def conv(cin, cout, k, stride):
            m = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)
            self._take(m)
            return m

        def bn(ch):
            m = nn.BatchNorm2d(ch, eps=eps, momentum=mom)
            self._take_bn(m)
            return m

        if L["bottleneck"]:
            if O % 4:
                raise ManifestError("bottleneck resblock with out %d not a multiple of 4" % O)
            w = O // 4
            main = nn.Sequential(conv(C, w, 1, 1), bn(w), nn.ReLU(),
                                 conv(w, w, 3, s), bn(w), nn.ReLU(),
                                 conv(w, O, 1, 1), bn(O))
        else:
            main = nn.Sequential(conv(C, O, 3, s), bn(O), nn.ReLU(),
                                 conv(O, O, 3, 1), bn(O))
        if s == 1 and C == O:
            sc = nn.Identity()
        elif L["shortcut"] == "A":
            sc = OptionA(C, O, s)
        else:
            sc = nn.Sequential(conv(C, O, 1, s), bn(O))
        oh = conv_size(H, 3, s, 1)
        ow = conv_size(W, 3, s, 1)
        return ResBlock(main, sc), (O, oh, ow)


def conv_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def loss_fn(manifest, logits, y):
    kind = manifest["loss"]
    if kind == "softmax_ce":
        return F.cross_entropy(logits, y)
    if kind == "sigmoid_bce":
        target = F.one_hot(y, manifest["classes"]).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, target)
    raise ManifestError("unknown loss %r" % kind)


def make_optimizer(manifest, params):
    o = manifest["optimizer"]
    if o["name"] == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], dampening=o["dampening"],
                               nesterov=o["nesterov"], weight_decay=o["weight_decay"])
    if o["name"] == "adam":
        return torch.optim.Adam(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                                weight_decay=o["weight_decay"])
    raise ManifestError("unknown optimizer %r" % o["name"])


# ---- comparison ----------------------------------------------------------

class Report:
    NOISE = 1e-6  # below this scale a gradient is rounding noise

    def __init__(self, rtol, rtol_scaled, rtol_step, verbose):
        self.rtol, self.rtol_scaled, self.rtol_step, self.verbose = rtol, rtol_scaled, rtol_step, verbose
        self.rows = []
        self.failed = 0
        self.worst = None  # (rel, name, diff)
        self.worst_scaled = None

    def compare(self, name, ours, theirs, scaled=None, nontrivial=False):
        """ours from asymbp, theirs from PyTorch; scaled: None, or the
        tolerance relative to the tensor's own scale ("grad" rtol_scaled,
        "step" rtol_step); nontrivial: all zeros in PyTorch fail."""
        a = np.asarray(ours, dtype=np.float64)
        b = np.asarray(theirs, dtype=np.float64)
        note = ""
        if a.shape != b.shape:
            ok, diff, scale = False, float("inf"), 0.0
            note = " shape %s vs torch %s" % (a.shape, b.shape)
        else:
            diff = float(np.max(np.abs(a - b))) if a.size else 0.0
            scale = float(np.max(np.abs(b))) if b.size else 0.0
            if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
                ok, note = False, " non-finite values"
            else:
                ok = diff <= self.rtol * max(1.0, scale)
                if scaled and scale >= self.NOISE:
                    ok = ok and diff <= (self.rtol_step if scaled == "step" else self.rtol_scaled) * scale
                elif scaled and scale > 0:
                    note = " ~zero"
            if nontrivial and scale == 0.0:
                ok, note = False, " all zero in torch: the test exercises nothing"
        rel1 = diff / max(1.0, scale)
        rels = diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))
        if self.worst is None or rel1 > self.worst[0]:
            self.worst = (rel1, name, diff)
        if scaled and scale >= self.NOISE and (self.worst_scaled is None or rels > self.worst_scaled[0]):
            self.worst_scaled = (rels, name, diff)
        if not ok:
            self.failed += 1
        self.rows.append((ok, "%-34s maxdiff %.3e  max|torch| %.3e  rel %.2e  rel/scale %.2e  %s%s" %
                         (name, diff, scale, rel1, rels, "OK" if ok else "FAIL", note)))
        return ok


def load(dirname, fname):
    return np.load(os.path.join(dirname, fname))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", metavar="DIR")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--rtol-scaled", type=float, default=1e-4)
    ap.add_argument("--rtol-step", type=float, default=1e-3)
    ap.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)  # the networks are tiny; threads only contend
    status = 0
    for d in args.dirs:
        if len(args.dirs) > 1:
            print("== %s" % d)
        status = max(status, check_dir(d, args))
    return status


def check_dir(d, args):
    try:
        with open(os.path.join(d, "manifest.json")) as f:
            man = json.load(f)
    except (OSError, ValueError) as e:
        print("torch_oracle: %s: %s" % (d, e))
        return 2
    try:
        return run(man, d, args)
    except (ManifestError, KeyError, OSError, ValueError) as e:
        print("torch_oracle: %s: %s: %s" % (d, type(e).__name__, e))
        return 2


def build(man, d):
    net = Net(man)
    ps = man["params"]
    if len(ps) != len(net.params):
        raise ManifestError("manifest has %d parameters, the torch model %d" % (len(ps), len(net.params)))
    if len(man["buffers"]) != len(net.buffers):
        raise ManifestError("manifest has %d buffers, the torch model %d" % (len(man["buffers"]), len(net.buffers)))
    with torch.no_grad():
        for p, t in zip(ps, net.params):
            v = load(d, p["value"])
            if list(v.shape) != list(t.shape) or list(p["shape"]) != list(t.shape):
                raise ManifestError("parameter %s: shape %s (file %s), torch expects %s" %
                                    (p["name"], p["shape"], list(v.shape), list(t.shape)))
            t.copy_(torch.from_numpy(v.astype(np.float32)))
    for p, t in zip(man["buffers"], net.buffers):
        if list(p["shape"]) != list(t.shape):
            raise ManifestError("buffer %s: shape %s, torch expects %s" % (p["name"], p["shape"], list(t.shape)))
    net.model.train()
    return net


def run(man, d, args):
    rep = Report(args.rtol, args.rtol_scaled, args.rtol_step, not args.quiet)
    x = torch.from_numpy(load(d, man["x"]).astype(np.float32))
    y = torch.from_numpy(load(d, man["y"]).astype(np.int64))
    if list(x.shape) != list(man["input_shape"]):
        raise ManifestError("x has shape %s, manifest says %s" % (list(x.shape), man["input_shape"]))

    # one forward and backward pass
    net = build(man, d)
    xg = x.clone().requires_grad_(True)
    logits = net.model(xg)
    if list(logits.shape) != [x.shape[0], man["classes"]]:
        raise ManifestError("torch logits have shape %s, expected [%d, %d]" % (list(logits.shape), x.shape[0], man["classes"]))
    logits.retain_grad()
    loss = loss_fn(man, logits, y)
    loss.backward()
    rep.compare("loss", np.float32(man["loss_value"]), loss.item())
    rep.compare("logits", load(d, man["logits"]), logits.detach().numpy())
    rep.compare("dlogits", load(d, man["dlogits"]), logits.grad.numpy(), scaled="grad", nontrivial=True)
    rep.compare("dx", load(d, man["dx"]), xg.grad.numpy(), scaled="grad", nontrivial=True)
    for p, t in zip(man["params"], net.params):
        g = t.grad if t.grad is not None else torch.zeros_like(t)
        rep.compare("grad " + p["name"], load(d, p["grad"]), g.numpy(), scaled="grad", nontrivial=True)
    for p, t in zip(man["buffers"], net.buffers):
        rep.compare("buffer " + p["name"], load(d, p["value"]), t.numpy())

    # K optimizer steps from the initial values
    steps = int(man.get("steps", 0))
    if steps > 0:
        net = build(man, d)
        opt = make_optimizer(man, net.params)
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(man, net.model(x), y).backward()
            opt.step()
        for p, t in zip(man["params"], net.params):
            before = load(d, p["value"]).astype(np.float64)
            after = load(d, p["after"])
            theirs = t.detach().numpy()
            rep.compare("after " + p["name"], after, theirs)
            rep.compare("step " + p["name"], after - before, theirs.astype(np.float64) - before, scaled="step")

    for ok, r in rep.rows:
        if rep.verbose or not ok:
            print(r)
    n = len(rep.rows)
    ws = rep.worst_scaled or (0.0, "-", 0.0)
    print("torch_oracle: %d tensors, %d failed; worst rel %.2e (%s, maxdiff %.3e); worst rel/scale %.2e (%s, maxdiff %.3e)%s" %
          (n, rep.failed, rep.worst[0], rep.worst[1], rep.worst[2], ws[0], ws[1], ws[2],
           "" if rep.failed == 0 else "  MISMATCH"))
    return 0 if rep.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
