"""asymbp.export: a trained asymbp network as a PyTorch module with the
same weights: standard torch layers (nn.Linear, nn.Conv2d, nn.BatchNorm,
pools, activations, residual blocks as asymbp builds them), so that its
state_dict() is the model for torch code. The layer list comes from a probe
of the configuration (asymbp.probe), every tensor from the network with
the weights loaded (asymbp.Model), in asymbp's order, which is the
modules' order here.

    import asymbp.export
    net = asymbp.export.to_torch("runs/lenet")     # nn.Module, eval mode
    torch.save(net.state_dict(), "lenet.pt")
"""
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import Model, probe

__all__ = ["torch_module", "to_torch"]


class ShortcutA(nn.Module):
    """He et al.'s option A: subsample by the stride, zero-pad the channels
    ((out - in) // 2 in front, the rest behind)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.front, self.back, self.stride = (cout - cin) // 2, cout - cin - (cout - cin) // 2, stride

    def forward(self, x):
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.front, self.back))


class ResBlock(nn.Module):
    """relu(main(x) + shortcut(x)): a basic block, or a bottleneck."""

    def __init__(self, main, shortcut):
        super().__init__()
        self.main, self.shortcut = main, shortcut

    def forward(self, x):
        return F.relu(self.main(x) + self.shortcut(x))


def _size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def _resblock(L, shape):
    C, H, W = shape
    O, s, mom, eps = L["out"], L["stride"], L["momentum"], L.get("eps", 1e-5)

    def conv(cin, cout, k, stride):
        return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)

    def bn(ch):
        return nn.BatchNorm2d(ch, eps=eps, momentum=mom)

    if L["bottleneck"]:
        w = O // 4
        main = nn.Sequential(conv(C, w, 1, 1), bn(w), nn.ReLU(), conv(w, w, 3, s), bn(w), nn.ReLU(), conv(w, O, 1, 1), bn(O))
    else:
        main = nn.Sequential(conv(C, O, 3, s), bn(O), nn.ReLU(), conv(O, O, 3, 1), bn(O))
    if s == 1 and C == O:
        sc = nn.Identity()
    elif L["shortcut"] == "A":
        sc = ShortcutA(C, O, s)
    else:
        sc = nn.Sequential(conv(C, O, 1, s), bn(O))
    return ResBlock(main, sc), (O, _size(H, 3, s, 1), _size(W, 3, s, 1))


def torch_module(layers, input_shape):
    """nn.Sequential of asymbp's layer list (a probe manifest's "layers")
    for inputs of input_shape (C, H, W)."""
    mods, shape, flat = [], tuple(input_shape), False
    for L in layers:
        t = L["type"]
        if t in ("conv", "maxpool", "avgpool", "resblock") and flat:
            mods.append(nn.Unflatten(1, shape))
            flat = False
        if t in ("fc", "flatten") and not flat:
            mods.append(nn.Flatten())
            flat = True
        if t == "fc":
            mods.append(nn.Linear(shape[0] * shape[1] * shape[2], L["out"], bias=L["bias"]))
            shape = (L["out"], 1, 1)
        elif t == "conv":
            mods.append(nn.Conv2d(shape[0], L["out"], L["k"], stride=L["stride"], padding=L["pad"], bias=L["bias"]))
            shape = (L["out"], _size(shape[1], L["k"], L["stride"], L["pad"]), _size(shape[2], L["k"], L["stride"], L["pad"]))
        elif t in ("maxpool", "avgpool"):
            k, s, p = (shape[1], 1, 0) if L["k"] == 0 else (L["k"], L["stride"], L["pad"])
            mods.append(nn.MaxPool2d(k, s, p) if t == "maxpool" else nn.AvgPool2d(k, s, p, count_include_pad=True))
            shape = (shape[0], _size(shape[1], k, s, p), _size(shape[2], k, s, p))
        elif t == "batchnorm":
            mods.append((nn.BatchNorm1d if flat else nn.BatchNorm2d)(shape[0], eps=L["eps"], momentum=L["momentum"]))
        elif t in ("relu", "tanh", "sigmoid"):
            mods.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[t]())
        elif t == "flatten":
            shape = (shape[0] * shape[1] * shape[2], 1, 1)
        elif t == "dropout":
            mods.append(nn.Dropout(L["p"]))
        elif t == "resblock":
            m, shape = _resblock(L, shape)
            mods.append(m)
        else:
            raise ValueError(f"layer type {t!r} has no torch module here")
    if not flat:
        mods.append(nn.Flatten())
    return nn.Sequential(*mods)


def _tensors(module):
    """Parameters and buffers in asymbp's order: weight layers' W then bias,
    batch norms' gamma, beta (parameters) and running mean, variance (buffers)."""
    params, buffers = [], []
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            params += [m.weight] + ([m.bias] if m.bias is not None else [])
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            params += [m.weight, m.bias]
            buffers += [m.running_mean, m.running_var]
    return params, buffers


def to_torch(run_or_config, weights=None, sets=None):
    """The torch module of a run folder (its config.yaml and model.bin) or of
    a configuration with weights (a model.bin), in eval mode."""
    if os.path.isdir(run_or_config):
        weights = weights or os.path.join(run_or_config, "model.bin")
        run_or_config = os.path.join(run_or_config, "config.yaml")
    with tempfile.TemporaryDirectory() as tmp:  # the layer list, as the probe writes it
        man = probe(run_or_config, out=tmp, sets=sets, batch=1, steps=0)["manifest"]
    module = torch_module(man["layers"], man["input_shape"][1:])
    model = Model(run_or_config, weights, sets)
    ours = list(model.params.items()) + list(model.buffers.items())
    params, buffers = _tensors(module)
    theirs = params + buffers
    if len(ours) != len(theirs):
        raise ValueError(f"{len(ours)} tensors in asymbp, {len(theirs)} in the torch module")
    with torch.no_grad():
        for (name, v), dst in zip(ours, theirs):
            if tuple(v.shape) != tuple(dst.shape):
                raise ValueError(f"tensor {name}: shape {v.shape} in asymbp, {tuple(dst.shape)} in torch")
            dst.copy_(torch.from_numpy(v))
    return module.eval()
