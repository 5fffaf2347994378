#!/usr/bin/env python3
"""PyTorch oracle for `asymbp probe`.

Usage: torch_oracle.py [-q] [--rtol R] [--rtol-scaled R] [--rtol-step R]
                       [--config YAML] [--set KEY=VALUE ...] [--expect-rules R,R,...] DIR [DIR...]

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

Feedback rules (the manifest's "weight_layers" and "feedback"): every
weight layer takes the rule it resolved to. A layer with a feedback matrix
B (fa, usf, brsf, frsf, kp, wm) is a custom autograd function, as BioTorch
builds them: forward F.linear / F.conv2d with W, backward dx = dy B
(fc) or conv2d_input(B) (conv), exact dW and db. feedback.clip_dx scales
each weight layer's dx to that L2 norm over the batch when it is larger.
DFA: e = d loss / d logits is computed first (torch.autograd.grad), and
the gradient at the end of each DFA block (the weight layer and the
non-weight layers after it, up to the next fc, conv or resblock) is
replaced by e D; the last weight layer gets e as in BP. Besides the
tensors above it compares every top-level layer's output ("activations")
and the gradient at every weight layer's output ("error") in the first
backward pass, and checks the feedback matrices:
  sign rules: sign(B) agrees with sign(W) on exactly
    round(concordance n) entries; usf: |B| = s everywhere;
    frsf, brsf: |B| within the bound of feedback.init (uniform inits);
  dfa: D is (classes, block output), and does not change;
and, for the K steps, repeats asymbp's feedback update after each
optimizer step: feedback.fixed_weight_norm, usf / frsf B = |B0| sign(W)
times the initial sign pattern, feedback.norm_feedback; kp's B is trained
by the same optimizer with W's gradient (its own weight decay and
momentum). B after the steps is compared for fa (unchanged), usf and frsf
(from asymbp's W after the steps) and kp (from the torch run), together
with W - B. brsf draws random numbers in the update, so with brsf the
parameters are compared after one step only (--steps 1); after more, the
oracle checks brsf's sign pattern, bound and fresh magnitudes. wm's mirror
steps are repeated exactly from what the probe records (feedback_options
"wm": noise, std, lr, decay, steps; per wm layer "mirror": the mirror batch
n and the noise seed of every mirror step, in order): the noise is
regenerated from its seed in numpy (asymbp's counter-based hash in uint32
arithmetic, its floating point in float32: uniform, normal by Box-Muller,
orthogonal by Cholesky QR of blocks of rows in float64), y = W x without
bias (F.linear, F.conv2d with the layer's stride and padding), the sum of
y x^T over the n inputs (and a conv's output positions) as torch's weight
gradient (conv2d_weight), and each conv kernel tap divided by its own
count of output positions where it meets the image rather than the
padding, counted by torch (conv2d_weight of an all-ones image and output
gradient), not by asymbp's formula: B <- (1 - decay) B + lr / (n std^2)
sum y x^T / count, wm.steps times after each optimizer step. After one
step the expected B comes from asymbp's own W after it; after more, from
the torch run, which repeats the mirror steps after each of its own
optimizer steps (so with wm the parameters are compared after any number
of steps). B is compared whole, and the part the mirror steps added,
B - (1 - decay)^s B0 after s mirror steps, relative to its own scale
(rtol_step): a mirror update off by 0.1% fails. An older probe without the
"mirror" record leaves wm's B unchecked, with a note; seeds null (the probe
could not follow them) fail. optimizer.manhattan (Batch Manhattan):
every gradient (kp's B included) is replaced by its sign before
torch.optim.SGD adds weight decay and momentum.

The probe's options the manifest does not record (optimizer.manhattan,
feedback.clip_dx, concordance, norm_feedback, fixed_weight_norm, init,
gain, scale, wm.noise, wm.std, wm.lr, wm.decay, wm.steps) come from --config (the probe's YAML file) and --set (the
probe's own --set arguments: give the oracle the same ones; keys it does
not use are ignored). A manifest that records them ("manhattan" in
"optimizer", a "feedback_options" object) wins; a different --config or
--set value is then an error. --expect-rules checks the resolved rule of
each weight layer. A probe without "weight_layers" (before the feedback
rules) is checked as exact backpropagation, as before.

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
        self.inject = {}  # ("main" or "shortcut", module index) -> DFA projection at its output

    def _path(self, name, seq, x):
        if not isinstance(seq, nn.Sequential):
            return seq(x)
        for j, m in enumerate(seq):
            x = m(x)
            if (name, j) in self.inject:
                x = DFAInject.apply(x, self.inject[(name, j)])
        return x

    def forward(self, x):
        return F.relu(self._path("main", self.main, x) + self._path("shortcut", self.shortcut, x))


# ---- feedback rules ------------------------------------------------------
#
# As BioTorch does it: a weight layer whose input gradient does not use W is
# a custom autograd function that takes the feedback matrix B as an input.
# Its forward pass is F.linear / F.conv2d with W; its backward pass returns
# the input gradient computed with B (dy B, conv2d_input(B)), optionally
# clipped to an L2 norm over the whole batch, and the exact weight and bias
# gradients. Exact layers (B is None, no clipping) are the plain modules.

def clip_grad(gx, clip, counter):
    """Scales gx to L2 norm clip (over the whole batch) when it is larger;
    counter: [clipped, seen]."""
    if clip and clip > 0:
        norm = float(torch.linalg.vector_norm(gx.double()))
        if counter is not None:
            counter[1] += 1
        if norm > clip:
            gx = gx * np.float32(clip / norm)
            if counter is not None:
                counter[0] += 1
    return gx


class LinearFB(torch.autograd.Function):
    """y = x W^T + b; backward: dx = dy B (clipped), dW = dy^T x, db = sum dy."""

    @staticmethod
    def forward(ctx, x, W, b, B, clip, counter):
        ctx.save_for_backward(x, B)
        ctx.clip, ctx.counter = clip, counter
        return F.linear(x, W, b)

    @staticmethod
    def backward(ctx, g):
        x, B = ctx.saved_tensors
        gx = clip_grad(g @ B, ctx.clip, ctx.counter) if ctx.needs_input_grad[0] else None
        gW = g.t() @ x if ctx.needs_input_grad[1] else None
        gb = g.sum(0) if ctx.needs_input_grad[2] else None
        return gx, gW, gb, None, None, None


class Conv2dFB(torch.autograd.Function):
    """y = conv2d(x, W) + b; backward: dx = conv2d_input(B) (clipped), exact dW, db."""

    @staticmethod
    def forward(ctx, x, W, b, B, stride, pad, clip, counter):
        ctx.save_for_backward(x, B)
        ctx.wshape, ctx.stride, ctx.pad, ctx.clip, ctx.counter = W.shape, stride, pad, clip, counter
        return F.conv2d(x, W, b, stride, pad)

    @staticmethod
    def backward(ctx, g):
        x, B = ctx.saved_tensors
        gx = gW = gb = None
        if ctx.needs_input_grad[0]:
            gx = clip_grad(torch.nn.grad.conv2d_input(x.shape, B, g, ctx.stride, ctx.pad), ctx.clip, ctx.counter)
        if ctx.needs_input_grad[1]:
            gW = torch.nn.grad.conv2d_weight(x, ctx.wshape, g, ctx.stride, ctx.pad)
        if ctx.needs_input_grad[2]:
            gb = g.sum((0, 2, 3))
        return gx, gW, gb, None, None, None, None, None


class FBMixin:
    """fb: the feedback matrix (None: W); clip: clip_dx (0: none);
    counter: [input gradients clipped, seen]; tap: a dict that receives
    the gradient at the layer's output under key tap_key; in_shape: the
    shape of one input of the latest forward pass (what mirror noise takes)."""
    fb = None
    clip = 0.0
    counter = None
    tap = None
    tap_key = None
    in_shape = None

    def _tap(self, y):
        if self.tap is not None and y.requires_grad:
            tap, key = self.tap, self.tap_key
            y.register_hook(lambda g: tap.__setitem__(key, g.detach().clone()))
        return y


class FBLinear(FBMixin, nn.Linear):
    def forward(self, x):
        self.in_shape = tuple(x.shape[1:])
        if self.fb is None and not self.clip:
            return self._tap(F.linear(x, self.weight, self.bias))
        B = self.weight.detach() if self.fb is None else self.fb
        return self._tap(LinearFB.apply(x, self.weight, self.bias, B, self.clip, self.counter))


class FBConv2d(FBMixin, nn.Conv2d):
    def forward(self, x):
        self.in_shape = tuple(x.shape[1:])
        if self.fb is None and not self.clip:
            return self._tap(F.conv2d(x, self.weight, self.bias, self.stride, self.padding))
        B = self.weight.detach() if self.fb is None else self.fb
        return self._tap(Conv2dFB.apply(x, self.weight, self.bias, B, self.stride, self.padding, self.clip, self.counter))


class DFAProjection:
    """The end of a DFA block: in the backward pass the gradient there is
    e D, e = d loss / d logits (N, classes), set in .e before backward."""

    def __init__(self, D, rule="dfa"):
        self.D = D
        self.rule = rule
        self.e = None
        self.y = None
        self.h = None  # dkp: the block's output, kept by the forward pass


class DFAInject(torch.autograd.Function):
    """Identity forward; backward replaces the incoming gradient by e D."""

    @staticmethod
    def forward(ctx, h, proj):
        ctx.proj, ctx.shape = proj, h.shape
        proj.h = h.detach().reshape(h.shape[0], -1)
        return h.clone()

    @staticmethod
    def backward(ctx, g):
        p = ctx.proj
        if p.e is None:
            raise RuntimeError("DFA projection used before the output error was set")
        return (direct_signal(p) @ p.D).reshape(ctx.shape), None


class Net:
    """The torch model with its parameters and buffers in probe order."""

    def __init__(self, manifest):
        n, c, h, w = manifest["input_shape"]
        self.resblocks = {}  # manifest layer index -> ResBlock
        self.params = []   # (module tensor) in the probe's order
        self.buffers = []
        self.ends = []        # per manifest layer: the last module of its output
        self.out_shapes = []  # per manifest layer: its output (C, H, W)
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
                m = FBLinear(fin, L["out"], bias=L["bias"])
                self._take(m)
                mods.append(m)
                shape = (L["out"], 1, 1)
            elif t == "conv":
                m = FBConv2d(shape[0], L["out"], L["k"], stride=L["stride"], padding=L["pad"], bias=L["bias"])
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
                self.resblocks[i] = m
            else:
                raise ManifestError("layer %d: unknown type %r" % (i, t))
            self.ends.append(len(mods) - 1)
            self.out_shapes.append(shape)
        if not flat:
            mods.append(nn.Flatten())
        self.shape = shape
        self.mods = mods
        self.model = nn.Sequential(*mods)
        self.inject = {}  # manifest layer index -> DFA projection applied to its output

    def forward(self, x, outs=None):
        """self.model(x), keeping every manifest layer's output in outs (a
        list, when given) and replacing the gradient at the end of each DFA
        block by its projection (self.inject)."""
        at = {}
        for i, j in enumerate(self.ends):
            at.setdefault(j, []).append(i)
        h = x
        for j, m in enumerate(self.mods):
            h = m(h)
            for i in at.get(j, ()):
                if outs is not None:
                    outs.append(h)
                if i in self.inject:
                    h = DFAInject.apply(h, self.inject[i])
        return h

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
            m = FBConv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)
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
        self.notes = []  # indices of rows that are notes
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

    def check(self, name, ok, what):
        """A property rather than a comparison (a sign pattern, a bound)."""
        if not ok:
            self.failed += 1
        self.rows.append((ok, "%-34s %s  %s" % (name, what, "OK" if ok else "FAIL")))
        return ok

    def note(self, text):
        """Printed with the rows (verbose), not counted."""
        self.notes.append(len(self.rows))
        self.rows.append((True, "%-34s %s" % ("note", text)))


def load(dirname, fname):
    return np.load(os.path.join(dirname, fname))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", metavar="DIR")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--rtol-scaled", type=float, default=1e-4)
    ap.add_argument("--rtol-step", type=float, default=1e-3)
    ap.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    ap.add_argument("--config", metavar="YAML", help="the probe's configuration: its optimizer.manhattan and feedback options")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="the probe's --set overrides (those of optimizer.manhattan and feedback.*; others are ignored)")
    ap.add_argument("--expect-rules", metavar="R,R,...", help="the rule every weight layer must have resolved to (manifest weight_layers)")
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


# ---- the probe's options -------------------------------------------------
#
# The manifest names every tensor and the optimizer, but (in format
# asymbp-probe-1) not the feedback options or Batch Manhattan. They come
# from the manifest when it has them ("optimizer": {"manhattan": ...},
# "feedback_options": {...}); otherwise from --config (the probe's YAML) and
# --set (the probe's overrides), which the oracle reads the same way.

OPTION_DEFAULTS = {
    "optimizer.manhattan": False,
    "feedback.clip_dx": 0.0,
    "feedback.concordance": 1.0,
    "feedback.norm_feedback": False,
    "feedback.fixed_weight_norm": False,
    "feedback.init": "xavier_uniform",
    "feedback.gain": 1.0,
    "feedback.scale": "xavier",
    "feedback.wm.noise": "uniform",
    "feedback.wm.std": float(np.float32(0.05) / np.sqrt(np.float32(3))),
    "feedback.wm.lr": 1e-3,
    "feedback.wm.decay": 1e-3,
    "feedback.wm.steps": 1,
}


def _flatten(prefix, v, out):
    if isinstance(v, dict):
        for k, w in v.items():
            _flatten(prefix + "." + str(k) if prefix else str(k), w, out)
    else:
        out[prefix] = v


def _parse_value(s):
    try:
        import yaml
        return yaml.safe_load(s)
    except ImportError:
        low = s.strip().lower()
        if low in ("true", "yes", "on"):
            return True
        if low in ("false", "no", "off"):
            return False
        try:
            return float(s)
        except ValueError:
            return s.strip()


def _typed(key, v):
    want = OPTION_DEFAULTS[key]
    try:
        if isinstance(want, bool):
            if isinstance(v, str):
                v = _parse_value(v)
            if not isinstance(v, bool):
                raise ValueError
            return v
        if isinstance(want, float):
            return float(v)
        if isinstance(want, int):
            if float(v) != int(float(v)):
                raise ValueError
            return int(float(v))
        return str(v)
    except (TypeError, ValueError):
        raise ManifestError("option %s: bad value %r" % (key, v))


def probe_options(man, args):
    given = {}
    if args.config:
        import yaml
        with open(args.config) as f:
            root = yaml.safe_load(f) or {}
        flat = {}
        _flatten("", {k: root.get(k) for k in ("optimizer", "feedback") if isinstance(root.get(k), dict)}, flat)
        given.update(flat)
    for s in args.set:
        if "=" not in s:
            raise ManifestError("--set %r: expected KEY=VALUE" % s)
        k, v = s.split("=", 1)
        flat = {}
        _flatten(k.strip(), _parse_value(v), flat)
        given.update(flat)
    opts = dict(OPTION_DEFAULTS)
    for k, v in given.items():
        if k in opts:
            opts[k] = _typed(k, v)
    if opts["feedback.wm.noise"] == "orthogonal":
        # the exact estimator's own defaults (as the config reader gives them)
        for k in ("feedback.wm.lr", "feedback.wm.decay"):
            if k not in given:
                opts[k] = 1.0
    # what the manifest says wins; a different --config/--set value is an error
    inman = {}
    if "manhattan" in man.get("optimizer", {}):
        inman["optimizer.manhattan"] = man["optimizer"]["manhattan"]
    flat = {}
    _flatten("feedback", man.get("feedback_options", {}), flat)
    for k, v in flat.items():
        if k in opts:
            inman[k] = v
    for k, v in inman.items():
        v = _typed(k, v)
        g = _typed(k, given[k]) if k in given else None
        if isinstance(v, float) and g is not None:
            g, v = float(np.float32(g)), float(np.float32(v))  # the library stores options as float32
        if k in given and g != v:
            raise ManifestError("option %s: the manifest says %r, --config/--set %r" % (k, v, given[k]))
        opts[k] = v
    if opts["optimizer.manhattan"] and man["optimizer"]["name"] != "sgd":
        raise ManifestError("Batch Manhattan is an SGD option")
    return opts


# ---- the rules of one probe ------------------------------------------------

RULES = ("bp", "fa", "dfa", "usf", "brsf", "frsf", "kp", "wm", "sa", "aa", "ia") + ("sdfa", "drtp", "dkp")
B_RULES = ("fa", "usf", "brsf", "frsf", "kp", "wm", "sa", "aa", "ia")  # rules with a matrix B
SIGN_RULES = ("usf", "brsf", "frsf")


def sgn(a):
    return np.sign(np.asarray(a, dtype=np.float64))


def fans(shape):
    """fan_in, fan_out of an fc (O, I) or conv (O, C, k, k) weight, as asymbp."""
    if len(shape) == 2:
        return shape[1], shape[0]
    k = int(np.prod(shape[2:]))
    return shape[1] * k, shape[0] * k


def uniform_bound(opts, shape):
    """The bound of feedback.init's uniform distribution, None for a normal one."""
    fi, fo = fans(shape)
    g = opts["feedback.gain"]
    init = opts["feedback.init"]
    if init == "xavier_uniform":
        return g * np.sqrt(6.0 / (fi + fo))
    if init == "he_uniform":
        return g * np.sqrt(6.0 / fi)
    if init == "torch":
        return g / np.sqrt(fi)
    return None


def usf_scale(opts, shape):
    fi, fo = fans(shape)
    s = opts["feedback.scale"]
    if s == "xavier":
        return np.sqrt(2.0 / (fi + fo))
    if s == "he":
        return np.sqrt(2.0 / fi)
    return float(s)


def round_half_away(v):
    return int(np.floor(v + 0.5)) if v >= 0 else -int(np.floor(-v + 0.5))


# ---- weight mirrors ------------------------------------------------------
#
# asymbp's mirror step, repeated from the probe's record (the options in
# feedback_options.wm, per layer the mirror batch n and the noise seed of
# every mirror step): the noise regenerated from its seed (a counter-based
# hash, here in numpy uint32 arithmetic, its floating point in float32 as
# asymbp's), y = W x without bias in torch, the Hebbian sum y x^T as the
# layer's weight gradient with x as input and y as output gradient, and
# per kernel tap the count of output positions where it meets the image,
# counted by torch (the weight gradient of an all-ones image and output
# gradient) rather than by asymbp's formula.

U24 = np.float32(2.0 ** -24)
GOLDEN = np.uint32(0x9e3779b9)


def hash32(x):
    """Wellons' lowbias32 on a uint32 array (arithmetic modulo 2^32)."""
    x = x.astype(np.uint32)
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7feb352d)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846ca68b)
    x = x ^ (x >> np.uint32(16))
    return x


def mirror_noise(count, uniform, std, seed):
    """count values of zero mean and standard deviation std from seed, as
    feedback_mirror_noise: uniform, or normal by Box-Muller on pairs."""
    seed = np.uint32(seed)
    std = np.float32(std)
    if uniform:
        c = np.arange(count, dtype=np.uint64).astype(np.uint32) * GOLDEN + seed
        u = (hash32(c) >> np.uint32(8)).astype(np.float32)
        a = std * np.sqrt(np.float32(3))
        return a * (np.float32(2) * U24 * (u + np.float32(0.5)) - np.float32(1))
    pairs = (count + 1) // 2
    c = (np.arange(pairs, dtype=np.uint64) * 2).astype(np.uint32) * GOLDEN + seed
    u1 = U24 * ((hash32(c) >> np.uint32(8)).astype(np.float32) + np.float32(0.5))
    u2 = U24 * (hash32(c + GOLDEN) >> np.uint32(8)).astype(np.float32)
    r = std * np.sqrt(np.float32(-2) * np.log(u1))
    t = np.float32(6.28318530717958648) * u2
    x = np.empty(2 * pairs, dtype=np.float32)
    x[0::2] = r * np.cos(t)
    x[1::2] = r * np.sin(t)
    return x[:count]


def orthogonalize(x, std):
    """Rows of x (n, d) made orthonormal in blocks of at most d rows and
    scaled to length std sqrt(d), in float64 (Cholesky QR: G = X X^T = L
    L^T, X <- L^-1 X): the Gram-Schmidt orthonormalization of the rows,
    which is unique. A block whose G does not factor, or has a row
    (nearly) dependent on the rows before it, keeps its values. Returns
    the float32 result and the number of blocks kept."""
    n, d = x.shape
    out = x.copy()
    length = float(np.float32(std)) * np.sqrt(float(d))
    kept = 0
    for b in range(0, n, d):
        X = x[b:b + d].astype(np.float64)
        G = X @ X.T
        try:
            L = np.linalg.cholesky(G)
        except np.linalg.LinAlgError:
            kept += 1
            continue
        if not np.all(np.diag(L) > 1e-6 * np.sqrt(np.diag(G))):
            kept += 1
            continue
        out[b:b + d] = (length * np.linalg.solve(L, X)).astype(np.float32)
    return out, kept


def tap_counts(m):
    """Per kernel tap of conv module m: the output positions where it falls
    inside the input (a weight gradient of ones over ones); 1 for fc."""
    if not isinstance(m, nn.Conv2d):
        return np.ones(1)
    _, h, w = m.in_shape
    k = m.kernel_size
    ones = torch.ones((1, 1, h, w), dtype=torch.float64)
    y = F.conv2d(ones, torch.ones((1, 1) + tuple(k), dtype=torch.float64), None, m.stride, m.padding)
    cnt = torch.nn.grad.conv2d_weight(ones, (1, 1) + tuple(k), torch.ones_like(y), m.stride, m.padding)
    return cnt[0, 0].numpy()


def mirror_estimate(m, W, n, seed, opts):
    """One mirror step's addition to B for module m (fc or conv) with weights
    W: lr / (n std^2) * sum y x^T / count, float64 in W's shape; and the
    number of orthogonal noise blocks that kept plain normal noise."""
    if m.in_shape is None:
        raise ManifestError("mirror step on a layer that has seen no input")
    noise, std, lr = opts["feedback.wm.noise"], opts["feedback.wm.std"], opts["feedback.wm.lr"]
    d = int(np.prod(m.in_shape))
    x = mirror_noise(n * d, noise == "uniform", std, seed)
    kept = 0
    if noise == "orthogonal":
        x, kept = orthogonalize(x.reshape(n, d), std)
    xt = torch.from_numpy(x.reshape((n,) + tuple(m.in_shape)).astype(np.float64))
    Wt = torch.as_tensor(np.asarray(W, dtype=np.float64))
    if isinstance(m, nn.Conv2d):
        y = F.conv2d(xt, Wt, None, m.stride, m.padding)
        acc = torch.nn.grad.conv2d_weight(xt, Wt.shape, y, m.stride, m.padding).numpy()
        cnt = tap_counts(m)
        per = np.where(cnt > 0, 1.0 / np.maximum(cnt, 1), 0.0)
        acc = acc * per
    else:
        y = F.linear(xt, Wt)
        acc = (y.t() @ xt).numpy()
    s = float(np.float32(std))
    return float(np.float32(lr)) / (n * s * s) * acc, kept


def mirror_keep(opts):
    """B's factor per mirror step, 1 - decay in float32 as asymbp."""
    return float(np.float32(1) - np.float32(opts["feedback.wm.decay"]))


def mirror_seeds(w, steps, opts):
    """The noise seeds of the mirror steps after each of the K optimizer
    steps (a list of K lists), or None when the probe did not record them."""
    mr = w.get("mirror")
    ws = opts["feedback.wm.steps"]
    if mr is None or mr.get("seeds") is None or len(mr["seeds"]) != steps * ws:
        return None
    return [mr["seeds"][s * ws:(s + 1) * ws] for s in range(steps)]


class Rules:
    """The manifest's weight layers, feedback matrices and DFA blocks."""

    def __init__(self, man, d, opts):
        self.opts = opts
        self.wl = man["weight_layers"]
        self.fbs = man.get("feedback", [])
        self.F0 = [load(d, f["value"]) for f in self.fbs]
        self.Fa = [load(d, f["after"]) for f in self.fbs]
        for f, v in zip(self.fbs, self.F0):
            if list(v.shape) != list(f["shape"]):
                raise ManifestError("feedback %s: shape %s, file %s" % (f["name"], f["shape"], list(v.shape)))
        ps = man["params"]
        self.W0 = []
        for i, w in enumerate(self.wl):
            r = w["rule"]
            if r not in RULES:
                raise ManifestError("weight layer %s: unknown rule %r" % (w["name"], r))
            if not 0 <= w["weight"] < len(ps):
                raise ManifestError("weight layer %s: no parameter %d" % (w["name"], w["weight"]))
            fi, di = w["feedback"], w["dfa"]
            if (fi >= 0) != (r in B_RULES) or fi >= len(self.fbs):
                raise ManifestError("weight layer %s (rule %s): feedback index %d" % (w["name"], r, fi))
            if fi >= 0 and list(self.fbs[fi]["shape"]) != list(ps[w["weight"]]["shape"]):
                raise ManifestError("weight layer %s: B has shape %s, W %s" % (w["name"], self.fbs[fi]["shape"], ps[w["weight"]]["shape"]))
            if di >= len(self.fbs) or (di >= 0 and r not in DIRECT_RULES):
                raise ManifestError("weight layer %s (rule %s): dfa index %d" % (w["name"], r, di))
            self.W0.append(load(d, ps[w["weight"]]["value"]))
        lp_init(self, man, d)
        # DFA blocks from the layer list: a top-level fc or conv with rule dfa,
        # other than the last one, through the layers up to (not including)
        # the next fc, conv or resblock; inside a residual block ("T.main.I",
        # "T.shortcut.I"), through the path's layers up to the next conv or
        # the path's end
        layers = man["layers"]
        weighted = [i for i, L in enumerate(layers) if L["type"] in ("fc", "conv")]
        last = weighted[-1] if weighted else -1
        self.blocks = {}  # weight-layer index -> (top-level start, end)
        self.nested = {}  # weight-layer index -> (top-level resblock, path, end module index)
        for k, w in enumerate(self.wl):
            if w["rule"] not in DIRECT_RULES:
                continue
            parts = w["name"].split(".")
            if len(parts) == 3 and parts[1] in ("main", "shortcut"):
                L = layers[int(parts[0])]
                kinds = (["conv", "bn", "relu"] * 2 + ["conv", "bn"] if L["bottleneck"] else ["conv", "bn", "relu", "conv", "bn"]) \
                    if parts[1] == "main" else ["conv", "bn"]
                end = int(parts[2]) + 1
                while end < len(kinds) and kinds[end] != "conv":
                    end += 1
                self.nested[k] = (int(parts[0]), parts[1], end - 1)
                continue
            top = int(parts[0])
            if top == last:
                continue
            end = top + 1
            while end < len(layers) and layers[end]["type"] not in ("fc", "conv", "resblock"):
                end += 1
            self.blocks[k] = (top, end - 1)
        # wm repeats when the probe recorded the seed of every mirror step
        steps = int(man.get("steps", 0))
        self.seeds = [mirror_seeds(w, steps, opts) if w["rule"] == "wm" else None for w in self.wl]
        self.steps_reproducible = not any(w["rule"] == "brsf" or (w["rule"] == "wm" and s is None) for w, s in zip(self.wl, self.seeds))
        self.fallbacks = 0  # orthogonal noise blocks left plain, in the torch run

    def any_dfa(self):
        return bool(self.blocks or self.nested)

    def attach(self, net, counter=None, taps=None):
        """Gives net's weight layers their feedback matrices (fresh float32
        copies, returned per weight layer; None for bp and dfa), clipping and
        output-gradient taps, and its DFA block ends their projections."""
        owner = {}
        for m in net.model.modules():
            if isinstance(m, (FBLinear, FBConv2d)):
                owner[id(m.weight)] = m
        self.mods, Bs, projs = [], [], []
        clip = self.opts["feedback.clip_dx"]
        for k, w in enumerate(self.wl):
            m = owner.get(id(net.params[w["weight"]]))
            if m is None:
                raise ManifestError("weight layer %s: parameter %d is not the weight of an fc or conv layer" % (w["name"], w["weight"]))
            B = torch.from_numpy(self.F0[w["feedback"]].astype(np.float32)).clone() if w["feedback"] >= 0 else None
            m.fb, m.clip, m.counter, m.tap, m.tap_key = B, clip, counter, taps, k
            self.mods.append(m)
            Bs.append(B)
        net.inject = {}
        for rb in net.resblocks.values():
            rb.inject = {}
        for k in list(self.blocks) + list(self.nested):
            di = self.wl[k]["dfa"]
            if di < 0:
                raise ManifestError("weight layer %s: rule dfa without a D matrix" % self.wl[k]["name"])
            p = DFAProjection(torch.from_numpy(self.F0[di].astype(np.float32)), self.wl[k]["rule"])
            p.k = k
            if k in self.blocks:
                net.inject[self.blocks[k][1]] = p
            else:
                top, path, end = self.nested[k]
                net.resblocks[top].inject[(path, end)] = p
            projs.append(p)
        return Bs, projs

    def init_state(self):
        """What the sign rules keep: magnitudes |B0| and the sign pattern
        sign(B0) sign(W0) (entries of W0 at zero count as agreeing)."""
        st = []
        for k, w in enumerate(self.wl):
            if w["rule"] in SIGN_RULES:
                B0 = self.F0[w["feedback"]]
                pat = sgn(B0) * sgn(self.W0[k])
                pat[pat == 0] = 1
                st.append((np.abs(B0).astype(np.float32), pat.astype(np.float32)))
            else:
                st.append(None)
        self.updates = 0
        return st

    def after_step(self, net, Bs, state):
        """asymbp's feedback update after an optimizer step, where it is
        deterministic: fixed weight norm, sign rules follow W, weight
        mirrors with the recorded seeds, feedback norm."""
        o = self.opts
        t = self.updates
        self.updates += 1
        with torch.no_grad():
            for k, (w, m, B) in enumerate(zip(self.wl, self.mods, Bs)):
                W = m.weight
                if o["feedback.fixed_weight_norm"]:
                    n0 = float(np.linalg.norm(self.W0[k].astype(np.float64)))
                    n = float(torch.linalg.vector_norm(W.double()))
                    if n > 0:
                        W.mul_(np.float32(n0 / n))
                if w["rule"] in ("usf", "frsf"):
                    mag, pat = state[k]
                    B.copy_(torch.from_numpy(mag) * torch.sign(W) * torch.from_numpy(pat))
                if w["rule"] == "wm" and self.seeds[k] is not None:
                    b = B.double().numpy()
                    for seed in self.seeds[k][t]:
                        est, kept = mirror_estimate(m, W.detach().numpy(), w["mirror"]["n"], seed, o)
                        b = mirror_keep(o) * b + est
                        self.fallbacks += kept
                    B.copy_(torch.from_numpy(b.astype(np.float32)))
                lp_after_step(self, k, w, B)
                if o["feedback.norm_feedback"] and B is not None:
                    nb = float(torch.linalg.vector_norm(B.double()))
                    if nb > 0:
                        B.mul_(np.float32(float(torch.linalg.vector_norm(W.double())) / nb))


# ---- Kunin et al. 2020's alignment rules: sa, aa, ia -----------------------
# B is trained by the task's optimizer (no weight decay) on the gradient of
# a layer-local loss R(W, B, x), written here from the primitives of
# neuroailab/Neural-Alignment (Alignments/primitives.py, alignment.py) and
# differentiated by autograd in float64: x the layer's input in the same
# forward pass, W and x constants, means over the batch, no bias. Kunin's B
# is our B transposed: his B^T x is F.linear / F.conv2d with our B, his
# B W x the input gradient of W x through B (conv2d_input). The probe
# records dR/dB of the first pass ("grad" of the feedback matrix); with
# noise as R's input (feedback.<rule>.input) that gradient cannot be
# repeated and only the steps' parameters are compared to a run on data.

KUNIN_RULES = ("sa", "aa", "ia")


def kunin_coeffs(man, rule):
    o = man.get("feedback_options", {}).get(rule)
    if o is None:
        raise ManifestError("rule %s: the manifest records no feedback_options.%s" % (rule, rule))
    return o


def kunin_capture(rules):
    """Each sa/aa/ia layer keeps the input of its latest forward pass."""
    for w, m in zip(rules.wl, rules.mods):
        if w["rule"] in KUNIN_RULES and not getattr(m, "kunin_hooked", False):
            m.register_forward_pre_hook(lambda mod, inp: setattr(mod, "kunin_x", inp[0].detach().clone()))
            m.kunin_hooked = True


def kunin_loss(m, rule, W, B, x, o):
    """R(W, B, x) with our B (W's shape)."""
    f = lambda v: float(np.float32(v))  # the library keeps options as float32
    conv = isinstance(m, FBConv2d)
    N = x.shape[0]

    def proj(M):
        return F.conv2d(x, M, None, m.stride, m.padding) if conv else F.linear(x.reshape(N, -1), M)

    decay = (W * W).sum() + (B * B).sum()
    if rule == "sa":
        return f(o["alpha"]) * decay - f(o["beta"]) * (W * B).sum()
    Wx, Bx = proj(W), proj(B)
    amp = -(Bx * Wx).sum() / N
    if rule == "aa":
        return f(o["alpha"]) * ((Wx * Wx).sum() / N + (Bx * Bx).sum() / N) + f(o["beta"]) * amp
    BWx = torch.nn.grad.conv2d_input(list(x.shape), B, Wx, m.stride, m.padding) if conv else Wx @ B
    return f(o["alpha"]) * amp + f(o["beta"]) * (BWx * BWx).sum() / N + f(o["gamma"]) * decay


def kunin_grad(m, rule, B, o):
    """dR/dB (float32) at the layer's W, B and latest input."""
    Bd = B.detach().double().requires_grad_(True)
    R = kunin_loss(m, rule, m.weight.detach().double(), Bd, m.kunin_x.double(), o)
    g, = torch.autograd.grad(R, Bd)
    return g.float()


def kunin_first(rep, rules, man, d):
    """The probe's dR/dB of the first pass against autograd's."""
    for w, m in zip(rules.wl, rules.mods):
        r = w["rule"]
        if r not in KUNIN_RULES:
            continue
        f = rules.fbs[w["feedback"]]
        o = kunin_coeffs(man, r)
        if o.get("input", "data") != "data":
            rep.note("%s: R on noise, dR/dB not compared" % f["name"])
            continue
        if "grad" not in f:
            raise ManifestError("feedback %s (rule %s): no recorded gradient" % (f["name"], r))
        theirs = kunin_grad(m, r, torch.from_numpy(rules.F0[w["feedback"]]), o).numpy()
        rep.compare("grad %s (%s)" % (f["name"], r), load(d, f["grad"]), theirs, scaled="grad", nontrivial=True)


def kunin_trained(rules, Bs):
    """(module, rule, B) of the sa/aa/ia layers of a run."""
    if not rules:
        return []
    return [(m, w["rule"], B) for w, m, B in zip(rules.wl, rules.mods, Bs) if w["rule"] in KUNIN_RULES]


def kunin_set_grads(man, trained):
    """B.grad = dR/dB after a forward pass; noise input refused (not repeatable)."""
    for m, r, B in trained:
        o = kunin_coeffs(man, r)
        if o.get("input", "data") != "data":
            raise ManifestError("rule %s on noise: the steps cannot be repeated" % r)
        B.grad = kunin_grad(m, r, B, o)


def kunin_after(rep, fname, r, B0, Ba, Bs_torch, k):
    """B after the steps against the torch run's."""
    if Bs_torch is None:
        rep.note("%s: %s B after the steps not compared (the steps are not reproducible)" % (fname, r))
        return
    theirs = Bs_torch[k].numpy()
    rep.compare("after %s (%s)" % (fname, r), Ba, theirs)
    rep.compare("step %s (%s)" % (fname, r), Ba.astype(np.float64) - B0, theirs.astype(np.float64) - B0, scaled="step", nontrivial=True)

# ---- end of Kunin et al.'s rules -------------------------------------------
# ---- the direct rules of the second wave: sdfa, drtp, dkp ----------------
# sdfa: the block's output gradient is sign(e) D / N; drtp: y* D / N, y*
# the one-hot target (ChFrenkel/DirectRandomTargetProjection function.py,
# whose sums over the batch are taken as means here, as asymbp does); dkp:
# e D, with D trained by the optimizer (weight decay and momentum as a
# weight) on the gradient e^T h, h the
# block's output (webstah/dkp-gist).

DIRECT_RULES = ("dfa", "sdfa", "drtp", "dkp")


def direct_signal(p):
    """What a direct rule's projection D receives: (N, classes)."""
    n = p.e.shape[0]
    if p.rule == "sdfa":
        return torch.sign(p.e) * np.float32(1.0 / n)
    if p.rule == "drtp":
        return F.one_hot(p.y, p.D.shape[0]).to(torch.float32) * np.float32(1.0 / n)
    return p.e


def dkp_projections(projs):
    return [p for p in projs if p.rule == "dkp"]


def dkp_gradients(dkp):
    """D's gradient e^T h after a backward pass (dkp)."""
    for p in dkp:
        p.D.grad = p.e.t() @ p.h


def check_dkp_after(rep, rules, k, w):
    """dkp's D after the steps against the torch run, whole and its change."""
    di = w["dfa"]
    name = rules.fbs[di]["name"]
    if rules.dkp_after is None:
        rep.note("%s: dkp's D after the steps not compared (the steps are not reproducible)" % name)
        return
    theirs = rules.dkp_after[k].astype(np.float64)
    D0 = rules.F0[di].astype(np.float64)
    rep.compare("after %s (dkp)" % name, rules.Fa[di], theirs)
    rep.compare("step %s (dkp)" % name, rules.Fa[di].astype(np.float64) - D0, theirs - D0, scaled="step", nontrivial=True)


def forward_backward(man, net, x, y, projs, outs=None):
    """One training-mode forward pass, the loss and the backward pass; under
    DFA the output error e is computed first and handed to the projections."""
    logits = net.forward(x, outs)
    if list(logits.shape) != [x.shape[0], man["classes"]]:
        raise ManifestError("torch logits have shape %s, expected [%d, %d]" % (list(logits.shape), x.shape[0], man["classes"]))
    logits.retain_grad()
    loss = loss_fn(man, logits, y)
    if projs:
        e, = torch.autograd.grad(loss, logits, retain_graph=True)
        for p in projs:
            p.e, p.y = e.detach(), y
    loss.backward()
    return logits, loss


def check_feedback_first(rep, rules, man, net_outs):
    """Properties of the feedback matrices used in the first backward pass."""
    o = rules.opts
    p = np.float32(o["feedback.concordance"])
    for k, w in enumerate(rules.wl):
        r, name = w["rule"], w["name"]
        if r in SIGN_RULES and rules.masks[k] is None:  # sparse feedback: check_sparse
            B0, W0 = rules.F0[w["feedback"]], rules.W0[k]
            n = B0.size
            agree = int(np.sum(sgn(B0) * sgn(W0) > 0))
            want = round_half_away(float(p) * n)
            rep.check("concordance %s" % rules.fbs[w["feedback"]]["name"], agree == want,
                      "sign(B) == sign(W) on %d of %d entries, expected %d (concordance %g)" % (agree, n, want, p))
            if r == "usf" and not o["feedback.norm_feedback"]:
                s = usf_scale(o, W0.shape)
                a = np.abs(B0[W0 != 0]).astype(np.float64)
                ok = a.size > 0 and np.max(np.abs(a - s)) <= 1e-6 * s
                rep.check("usf scale %s" % name, ok, "|B| in [%.6g, %.6g], s = %.6g" % (a.min(), a.max(), s))
            if r in ("brsf", "frsf") and not o["feedback.norm_feedback"]:
                b = uniform_bound(o, W0.shape)
                if b is not None:
                    rep.check("bound %s" % name, np.max(np.abs(B0)) <= b * (1 + 1e-6),
                              "max|B| %.6g <= %.6g (feedback.init %s)" % (np.max(np.abs(B0)), b, o["feedback.init"]))
        if r in DIRECT_RULES and k in rules.blocks:
            top, end = rules.blocks[k]
            D = rules.F0[w["dfa"]]
            size = int(np.prod(net_outs[end].shape[1:]))
            rep.check("dfa block %s" % name, list(D.shape) == [man["classes"], size],
                      "layers %d..%d, D %s, expected [%d, %d]" % (top, end, list(D.shape), man["classes"], size))
        elif r in DIRECT_RULES and k in rules.nested:
            D = rules.F0[w["dfa"]]
            rep.check("dfa block %s" % name, D.ndim == 2 and D.shape[0] == man["classes"], "D %s, expected [%d, ...]" % (list(D.shape), man["classes"]))
        elif r in DIRECT_RULES:
            rep.check("dfa output layer %s" % name, w["dfa"] < 0, "the last weight layer has no D (dfa index %d)" % w["dfa"])


def check_feedback_after(rep, rules, man, d, steps, Bs_torch, params_torch):
    """The feedback matrices after the K steps."""
    o = rules.opts
    ps = man["params"]
    for k, w in enumerate(rules.wl):
        r, fi = w["rule"], w["feedback"]
        W_after = load(d, ps[w["weight"]]["after"])
        if r == "dkp" and w["dfa"] >= 0:
            check_dkp_after(rep, rules, k, w)
        elif r in DIRECT_RULES and w["dfa"] >= 0:
            di = w["dfa"]
            rep.compare("after %s (fixed)" % rules.fbs[di]["name"], rules.Fa[di], rules.F0[di])
        if fi < 0:
            continue
        fname = rules.fbs[fi]["name"]
        B0, Ba = rules.F0[fi], rules.Fa[fi]
        if r in ("fa", "usf", "frsf"):
            # from asymbp's own W after the steps: the rule, not the trajectory
            if r == "fa":
                want = B0.astype(np.float64)
            else:
                want = np.abs(B0).astype(np.float64) * sgn(W_after) * np.where(sgn(B0) * sgn(rules.W0[k]) < 0, -1.0, 1.0)
            if o["feedback.norm_feedback"]:
                nw = np.linalg.norm(W_after.astype(np.float64))
                want = want * (nw / np.linalg.norm(want))
            rep.compare("after %s (%s)" % (fname, r), Ba, want)
        elif r == "kp":
            if Bs_torch is None:
                rep.note("%s: kp B after the steps not compared (the steps are not reproducible)" % fname)
                continue
            theirs = Bs_torch[k].numpy()
            rep.compare("after %s (kp)" % fname, Ba, theirs)
            rep.compare("step %s (kp)" % fname, Ba.astype(np.float64) - B0, theirs.astype(np.float64) - B0, scaled="step")
            # W - B decays as (1 - lr wd)^t: kp's defining property
            if params_torch is not None:
                dW = W_after.astype(np.float64) - Ba
                rep.compare("after %s - %s (kp)" % (ps[w["weight"]]["name"], fname), dW,
                            params_torch[w["weight"]].astype(np.float64) - theirs.astype(np.float64))
        elif r == "brsf":
            pat0 = sgn(B0) * sgn(rules.W0[k])
            pat1 = sgn(Ba) * sgn(W_after)
            live = (rules.W0[k] != 0) & (W_after != 0)
            same = int(np.sum(pat0[live] == pat1[live]))
            rep.check("signs %s (brsf)" % fname, same == int(live.sum()),
                      "sign(B) sign(W) unchanged on %d of %d entries" % (same, int(live.sum())))
            b = uniform_bound(o, B0.shape)
            if b is not None and not o["feedback.norm_feedback"]:
                rep.check("bound %s (brsf)" % fname, np.max(np.abs(Ba)) <= b * (1 + 1e-6),
                          "max|B after| %.6g <= %.6g" % (np.max(np.abs(Ba)), b))
            if steps > 0:
                kept = float(np.mean(np.abs(Ba) == np.abs(B0)))
                rep.check("redrawn %s (brsf)" % fname, kept < 0.5, "|B| unchanged on %.1f%% of entries" % (100 * kept))
        elif r == "wm":
            check_mirror(rep, rules, k, w, fname, B0, Ba, W_after, steps, Bs_torch)
        elif r in KUNIN_RULES:
            kunin_after(rep, fname, r, B0, Ba, Bs_torch, k)
        elif r in LEARNED_RULES:
            check_learned_after(rep, rules, k, w, fname, B0, Ba, W_after, Bs_torch, params_torch, man, d)


def check_mirror(rep, rules, k, w, fname, B0, Ba, W_after, steps, Bs_torch):
    """wm's B after the K steps, each followed by wm.steps mirror steps
    B <- keep B + lr / (n std^2) sum y x^T / count with the recorded seeds.
    After one optimizer step from asymbp's own W after it; after more, from
    the torch run, which repeated the mirror steps after each of its own
    optimizer steps. B is compared whole, and the part the mirror steps
    added (B - keep^s B0, s mirror steps) relative to its own scale."""
    o = rules.opts
    if "mirror" not in w:
        rep.note("%s: the manifest records no mirror seeds (an older probe): wm's B after the steps not compared" % fname)
        return
    seeds = rules.seeds[k]
    if seeds is None:
        rep.check("mirror %s (wm)" % fname, False, "the probe recorded no seeds for the %d x %d mirror steps (seeds %r)" %
                  (steps, o["feedback.wm.steps"], w["mirror"].get("seeds")))
        return
    flat = [sd for step in seeds for sd in step]
    keep = mirror_keep(o)
    if steps == 1:
        want, kept = B0.astype(np.float64), 0
        for seed in flat:
            est, nk = mirror_estimate(rules.mods[k], W_after, w["mirror"]["n"], seed, o)
            want = keep * want + est
            kept += nk
        if rules.masks[k] is not None:
            want = want * rules.masks[k]
        if o["feedback.norm_feedback"]:
            want = want * (np.linalg.norm(W_after.astype(np.float64)) / np.linalg.norm(want))
        if kept:
            rep.note("%s: %d orthogonal noise blocks kept plain normal noise (Cholesky failed)" % (fname, kept))
        how = "from W after the step"
    elif Bs_torch is not None:
        want = Bs_torch[k].numpy().astype(np.float64)
        how = "torch run"
    else:
        rep.note("%s: wm's B after %d steps not compared (the steps are not reproducible)" % (fname, steps))
        return
    base = keep ** len(flat) * B0.astype(np.float64)
    rep.compare("after %s (wm, %s)" % (fname, how), Ba, want)
    rep.compare("mirror %s (wm, %d seeds)" % (fname, len(flat)), Ba.astype(np.float64) - base, want - base, scaled="step", nontrivial=len(flat) > 0)

# ---- learned and product feedback (urfb, pfa), sparse feedback ------------
#
# urfb (Amit 2019): B is trained by the optimizer with W's gradient and its
# own state, without weight decay, so W - B stays W0 - B0 when the weight
# decay is 0. pfa (Li & Benna 2024): B = F R with F (out, mid) fixed and R
# (mid, in...) trained by the optimizer (weight decay included) with the
# gradient F^T dW; B is recomputed after every step. Sparse feedback
# (feedback.sparsity, or feedback.urfb.sparsity for urfb layers): exactly
# round(s n) entries of B held at zero, the same ones after every change;
# the mask is read from the probe's B0 (its zero entries).

LEARNED_RULES = ("urfb", "pfa")
RULES = RULES + LEARNED_RULES
B_RULES = B_RULES + LEARNED_RULES
OPTION_DEFAULTS.update({"feedback.sparsity": 0.0, "feedback.urfb.sparsity": 0.0, "feedback.pfa.expansion": 10.0})


def layer_sparsity(opts, rule):
    if rule == "urfb" and opts["feedback.urfb.sparsity"] > 0:
        return opts["feedback.urfb.sparsity"]
    return opts["feedback.sparsity"]


def lp_init(rules, man, d):
    """Per weight layer: the sparse-feedback mask (None when dense) and
    pfa's factors F and R (initial and after the steps) from the probe."""
    byname = {f["name"]: i for i, f in enumerate(rules.fbs)}
    rules.masks, rules.factors = [], []
    for w in rules.wl:
        fi = w["feedback"]
        s = layer_sparsity(rules.opts, w["rule"])
        rules.masks.append((rules.F0[fi] != 0).astype(np.float32) if fi >= 0 and s > 0 else None)
        if w["rule"] == "pfa":
            # R is absent where asymbp steps B = F R itself (SGD): torch
            # still trains R, from an R0 with F R0 = B0 (R0 = pinv(F) B0;
            # B's steps depend on R only through F R)
            iF, iR = byname.get(w["name"] + ".F"), byname.get(w["name"] + ".R")
            if iF is None:
                raise ManifestError("weight layer %s (pfa): no feedback %s.F" % (w["name"], w["name"]))
            rules.factors.append((iF, iR))
        else:
            rules.factors.append(None)


def pfa_product(F, R, out_shape):
    return (F @ R.reshape(R.shape[0], -1)).reshape(out_shape)


def pfa_first_R(rules, k, w):
    """pfa's R before the steps: the probe's, or pinv(F) B0 where asymbp
    keeps no R."""
    iF, iR = rules.factors[k]
    if iR is not None:
        return rules.F0[iR].astype(np.float32)
    F = rules.F0[iF].astype(np.float64)
    B0 = rules.F0[w["feedback"]].astype(np.float64)
    R = np.linalg.pinv(F) @ B0.reshape(B0.shape[0], -1)
    return R.reshape((F.shape[1],) + B0.shape[1:]).astype(np.float32)


class LearnedFeedback:
    """The tensors the optimizer trains besides the parameters and kp's B:
    urfb's B (no weight decay) and pfa's R (with it), and their gradients."""

    def __init__(self, rules, Bs):
        self.rules, self.Bs = rules, Bs
        self.undecayed, self.decayed, self.urfb, self.pfa = [], [], [], []
        for k, (w, m, B) in enumerate(zip(rules.wl, rules.mods, Bs)):
            if w["rule"] == "urfb":
                self.urfb.append((m.weight, B))
                self.undecayed.append(B)
            elif w["rule"] == "pfa":
                iF, _ = rules.factors[k]
                F = torch.from_numpy(rules.F0[iF].astype(np.float32))
                R = torch.from_numpy(pfa_first_R(rules, k, w)).clone()
                self.pfa.append((k, m.weight, F, R))
                self.decayed.append(R)
        rules.learned = self

    def set_grads(self):
        for W, B in self.urfb:
            B.grad = W.grad.clone()
        for _, W, F, R in self.pfa:
            R.grad = (F.t() @ W.grad.reshape(W.shape[0], -1)).reshape(R.shape)

    def R_after(self, k):
        for j, _, _, R in self.pfa:
            if j == k:
                return R.detach()
        return None


def lp_after_step(rules, k, w, B):
    """After the optimizer step, before feedback.norm_feedback: pfa's B = F R,
    then the sparse-feedback mask."""
    if B is None:
        return
    if w["rule"] == "pfa" and getattr(rules, "learned", None) is not None:
        for j, _, F, R in rules.learned.pfa:
            if j == k:
                B.copy_(pfa_product(F, R, B.shape))
    if rules.masks[k] is not None:
        B.mul_(torch.from_numpy(rules.masks[k]))


def check_sparse(rep, rules, man, d, after=False):
    """Exactly round(s n) entries of B at zero, and after the steps the same
    ones (a learned B's other entries moved)."""
    for k, w in enumerate(rules.wl):
        mask = rules.masks[k]
        if mask is None:
            continue
        fi = w["feedback"]
        name = rules.fbs[fi]["name"]
        s = layer_sparsity(rules.opts, w["rule"])
        if not after:
            zero = int(mask.size - mask.sum())
            want = round_half_away(float(np.float32(s)) * mask.size)
            rep.check("sparsity %s (%s)" % (name, w["rule"]), zero == want,
                      "%d of %d entries of B at zero, expected %d (sparsity %g)" % (zero, mask.size, want, s))
        else:
            Ba = rules.Fa[fi]
            held = bool(np.all(Ba[mask == 0] == 0))
            rep.check("sparse after %s (%s)" % (name, w["rule"]), held,
                      "%d entries of the mask nonzero after the steps" % int(np.sum(Ba[mask == 0] != 0)))


def check_learned_after(rep, rules, k, w, fname, B0, Ba, W_after, Bs_torch, params_torch, man, d):
    """urfb: B after the steps against the torch run, and W - B unchanged
    (weight decay 0) or as torch's; pfa: R after the steps against the torch
    run, F unchanged, and B = F R from asymbp's own factors."""
    r = w["rule"]
    ps = man["params"]
    if Bs_torch is None:
        rep.note("%s: %s's B after the steps not compared (the steps are not reproducible)" % (fname, r))
        return
    theirs = Bs_torch[k].numpy()
    rep.compare("after %s (%s)" % (fname, r), Ba, theirs)
    rep.compare("step %s (%s)" % (fname, r), Ba.astype(np.float64) - B0, theirs.astype(np.float64) - B0, scaled="step")
    if r == "urfb":
        W0 = rules.W0[k].astype(np.float64)
        live = rules.masks[k] if rules.masks[k] is not None else np.ones_like(B0)
        if man["optimizer"]["weight_decay"] == 0:
            # W - B = W0 - B0 on every entry B keeps: urfb's defining property
            rep.compare("after %s - %s (urfb, = W0 - B0)" % (ps[w["weight"]]["name"], fname),
                        (W_after.astype(np.float64) - Ba) * live, (W0 - B0) * live)
        elif params_torch is not None:
            rep.compare("after %s - %s (urfb)" % (ps[w["weight"]]["name"], fname), W_after.astype(np.float64) - Ba,
                        params_torch[w["weight"]].astype(np.float64) - theirs.astype(np.float64))
    else:
        iF, iR = rules.factors[k]
        R_theirs = rules.learned.R_after(k).numpy() if getattr(rules, "learned", None) else None
        rep.compare("after %s (pfa, fixed)" % rules.fbs[iF]["name"], rules.Fa[iF], rules.F0[iF])
        if iR is None:
            # B stepped itself: against F times torch's R (compared above as
            # torch's B too)
            if R_theirs is None:
                return
            want = pfa_product(rules.Fa[iF].astype(np.float64), R_theirs.astype(np.float64), Ba.shape)
            if rules.masks[k] is not None:
                want = want * rules.masks[k]
            rep.compare("after %s = F R, R torch's (pfa, B stepped)" % fname, Ba, want)
            return
        if R_theirs is not None:
            R0 = rules.F0[iR].astype(np.float64)
            rep.compare("after %s (pfa)" % rules.fbs[iR]["name"], rules.Fa[iR], R_theirs)
            rep.compare("step %s (pfa)" % rules.fbs[iR]["name"], rules.Fa[iR].astype(np.float64) - R0, R_theirs.astype(np.float64) - R0, scaled="step")
        want = pfa_product(rules.Fa[iF].astype(np.float64), rules.Fa[iR].astype(np.float64), Ba.shape)
        if rules.masks[k] is not None:
            want = want * rules.masks[k]
        if rules.opts["feedback.norm_feedback"]:
            want = want * (np.linalg.norm(W_after.astype(np.float64)) / np.linalg.norm(want))
        rep.compare("after %s = F R (pfa)" % fname, Ba, want)


def check_pfa_first(rep, rules):
    """pfa's B in the first backward pass is the product of its factors."""
    for k, w in enumerate(rules.wl):
        if w["rule"] != "pfa":
            continue
        iF, iR = rules.factors[k]
        if iR is None:
            continue  # B stepped itself: R was a draw for B0 alone
        B0 = rules.F0[w["feedback"]]
        want = pfa_product(rules.F0[iF].astype(np.float64), rules.F0[iR].astype(np.float64), B0.shape)
        if rules.masks[k] is not None:
            want = want * rules.masks[k]
        if rules.opts["feedback.norm_feedback"]:
            want = want * (np.linalg.norm(rules.W0[k].astype(np.float64)) / np.linalg.norm(want))
        rep.compare("%s = F R (pfa)" % rules.fbs[w["feedback"]]["name"], B0, want)

# ---- end of learned and product feedback ----------------------------------


def run(man, d, args):
    rep = Report(args.rtol, args.rtol_scaled, args.rtol_step, not args.quiet)
    x = torch.from_numpy(load(d, man["x"]).astype(np.float32))
    y = torch.from_numpy(load(d, man["y"]).astype(np.int64))
    if list(x.shape) != list(man["input_shape"]):
        raise ManifestError("x has shape %s, manifest says %s" % (list(x.shape), man["input_shape"]))
    opts = probe_options(man, args)
    # a probe without "weight_layers" predates the feedback rules: exact BP
    rules = Rules(man, d, opts) if "weight_layers" in man else None
    if rules is None and (opts["optimizer.manhattan"] or opts["feedback.clip_dx"] > 0):
        raise ManifestError("the manifest has no weight_layers: Batch Manhattan and clip_dx need them")
    if args.expect_rules is not None:
        want = [r.strip() for r in args.expect_rules.split(",")]
        got = [w["rule"] for w in rules.wl] if rules else []
        rep.check("rules", got == want, "resolved %s, expected %s" % (",".join(got), ",".join(want)))

    # one forward and backward pass
    net = build(man, d)
    counter, taps, projs = [0, 0], {}, []
    if rules:
        _, projs = rules.attach(net, counter, taps)
        kunin_capture(rules)
    xg = x.clone().requires_grad_(True)
    outs = []
    logits, loss = forward_backward(man, net, xg, y, projs, outs)
    rep.compare("loss", np.float32(man["loss_value"]), loss.item())
    rep.compare("logits", load(d, man["logits"]), logits.detach().numpy())
    rep.compare("dlogits", load(d, man["dlogits"]), logits.grad.numpy(), scaled="grad", nontrivial=True)
    rep.compare("dx", load(d, man["dx"]), xg.grad.numpy(), scaled="grad", nontrivial=True)
    for p, t in zip(man["params"], net.params):
        g = t.grad if t.grad is not None else torch.zeros_like(t)
        rep.compare("grad " + p["name"], load(d, p["grad"]), g.numpy(), scaled="grad", nontrivial=True)
    for p, t in zip(man["buffers"], net.buffers):
        rep.compare("buffer " + p["name"], load(d, p["value"]), t.numpy())
    if rules:
        acts = man.get("activations", [])
        if acts and len(acts) != len(outs):
            raise ManifestError("manifest has %d activations, the model %d layers" % (len(acts), len(outs)))
        for i, (f, t) in enumerate(zip(acts, outs)):
            ours = load(d, f)
            theirs = t.detach().numpy()
            if ours.size == theirs.size:
                theirs = theirs.reshape(ours.shape)
            rep.compare("activation %d %s" % (i, man["layers"][i]["type"]), ours, theirs)
        for k, w in enumerate(rules.wl):
            ours = load(d, w["error"])
            theirs = taps.get(k)
            theirs = np.zeros_like(ours) if theirs is None else theirs.numpy()
            if ours.size == theirs.size:
                theirs = theirs.reshape(ours.shape)
            rep.compare("error %s (%s)" % (w["name"], w["rule"]), ours, theirs, scaled="grad", nontrivial=True)
        check_feedback_first(rep, rules, man, outs)
        kunin_first(rep, rules, man, d)
        check_sparse(rep, rules, man, d)
        check_pfa_first(rep, rules)
        if opts["feedback.clip_dx"] > 0:
            # nothing clipped: the probe does not test clipping
            rep.check("clip_dx", counter[0] > 0, "%d of %d input gradients clipped to norm %g" %
                      (counter[0], counter[1], opts["feedback.clip_dx"]))

    # K optimizer steps from the initial values
    steps = int(man.get("steps", 0))
    if steps > 0:
        net = build(man, d)
        Bs, projs, state = [], [], None
        if rules:
            Bs, projs = rules.attach(net)
            kunin_capture(rules)
            state = rules.init_state()
        kp = [(m.weight, B) for w, m, B in zip(rules.wl, rules.mods, Bs) if w["rule"] == "kp"] if rules else []
        kun = kunin_trained(rules, Bs)
        dkp = dkp_projections(projs)
        learned = LearnedFeedback(rules, Bs) if rules else None
        trained = list(net.params) + [B for _, B in kp] + [p.D for p in dkp] + (learned.decayed if learned else [])
        undecayed = learned.undecayed if learned else []
        opt = make_optimizer(man, trained if not undecayed else [{"params": trained}, {"params": undecayed, "weight_decay": 0.0}])
        trained = trained + undecayed
        if kun:
            opt.add_param_group({"params": [B for _, _, B in kun], "weight_decay": 0.0})
        ambiguous = 0
        for _ in range(steps):
            opt.zero_grad()
            for _, B in kp:
                B.grad = None
            forward_backward(man, net, x, y, projs)
            for W, B in kp:
                B.grad = W.grad.clone()  # kp: B gets W's gradient, its own decay and momentum
            kunin_set_grads(man, kun)
            dkp_gradients(dkp)
            if learned:
                learned.set_grads()
            if opts["optimizer.manhattan"]:
                for t in trained:
                    if t.grad is not None:
                        g = t.grad
                        big = float(g.abs().max())
                        ambiguous += int(((g != 0) & (g.abs() <= 1e-6 * big)).sum())
                        t.grad = torch.sign(g)
            opt.step()
            if rules:
                rules.after_step(net, Bs, state)
        if ambiguous:
            rep.note("Batch Manhattan: %d gradient entries within rounding of zero (their sign is arbitrary)" % ambiguous)
        reproducible = rules is None or rules.steps_reproducible or steps == 1
        if reproducible:
            for p, t in zip(man["params"], net.params):
                before = load(d, p["value"]).astype(np.float64)
                after = load(d, p["after"])
                theirs = t.detach().numpy()
                rep.compare("after " + p["name"], after, theirs)
                rep.compare("step " + p["name"], after - before, theirs.astype(np.float64) - before, scaled="step")
        else:
            rep.note("parameters after %d steps not compared: brsf redraws (and wm noise without recorded seeds) cannot be repeated (only with --steps 1)" % steps)
        if rules:
            rules.dkp_after = {p.k: p.D.detach().numpy() for p in dkp} if reproducible else None
            check_feedback_after(rep, rules, man, d, steps, [B.detach() if B is not None else None for B in Bs] if reproducible else None,
                                 [t.detach().numpy() for t in net.params] if reproducible else None)
            check_sparse(rep, rules, man, d, after=True)

    for ok, r in rep.rows:
        if rep.verbose or not ok:
            print(r)
    n = len(rep.rows) - len(rep.notes)
    ws = rep.worst_scaled or (0.0, "-", 0.0)
    print("torch_oracle: %d tensors, %d failed; worst rel %.2e (%s, maxdiff %.3e); worst rel/scale %.2e (%s, maxdiff %.3e)%s" %
          (n, rep.failed, rep.worst[0], rep.worst[1], rep.worst[2], ws[0], ws[1], ws[2],
           "" if rep.failed == 0 else "  MISMATCH"))
    return 0 if rep.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
