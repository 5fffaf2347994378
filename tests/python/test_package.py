"""test_package.py TMPDIR: the Python package (python/asymbp) against the
command's own outputs: a run trained from a dict yields the records
log.jsonl holds, a bad key raises asymbp.Error with the library's message,
a loaded model has the weights and logits the probe writes for model.bin,
and its PyTorch export (an MLP with batch norm, LeNet, ResNet-20) gives
asymbp's logits.
Prints one line per check; exits 1 at the first failure."""
import json
import os
import sys

import numpy as np

import asymbp

tmp = sys.argv[1]


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        sys.exit(1)


CONFIG = {
    "name": "py", "seed": 4, "epochs": 3, "batch_size": 10, "threads": 1, "rule": "fa",
    "data": {"format": "random", "random": {"n": 60, "c": 1, "h": 5, "w": 5, "classes": 4}, "val_size": 10},
    "model": {"layers": ["flatten", {"type": "fc", "out": 12}, "tanh", {"type": "fc", "out": 4}]},
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
}

check(asymbp.rules()[:2] == ["bp", "fa"] and "wm" in asymbp.rules(), f"rules by name: {asymbp.rules()}")
check(asymbp.version()["asymbp"] == "0.1.0", "version.json as a dict")

run = os.path.join(tmp, "py-run")
records = []
it = asymbp.train_iter(CONFIG, out=run, sets={"optimizer.lr": 0.05})
while True:
    try:
        records.append(next(it))
    except StopIteration as stop:
        summary = stop.value
        break
lines = [json.loads(s) for s in open(os.path.join(run, "log.jsonl"))]
check(len(records) == 3 == len(lines) and summary["epochs"] == 3, "three epoch records, a summary")
for r, l in zip(records, lines):
    same = r["epoch"] == l["epoch"] and abs(r["lr"] - 0.05) < 1e-9
    for k in ("train_loss", "train_err", "test_loss", "test_err", "val_err", "mean_angle"):
        same = same and abs(r[k] - l[k]) <= 1e-5 * max(1.0, abs(l[k]))
    for a, b in zip(r["layers"], l["layers"]):
        same = same and a["name"] == b["name"] and a["rule"] == "fa" and abs(a["angle"] - b["angle"]) <= 1e-4
    check(same, f"epoch {r['epoch']}: the record is log.jsonl's line (test_err {r['test_err']:.4f}, angles {[round(a['angle'], 2) for a in r['layers']]})")

try:
    asymbp.train(CONFIG, sets={"bogus": 1})
    check(False, "a bad key raises")
except asymbp.Error as e:
    check("unknown key 'bogus'" in str(e), f"a bad key raises asymbp.Error: {e}")

model = asymbp.load_model(run)
ev = model.evaluate()
check(ev["n"] > 0 and abs(ev["err"] - summary["final_test_err"]) < 1e-9 and ev["err5"] is None and ev["unreadable"] == 0,
      f"evaluate: the run's final test error ({ev})")
t = asymbp.probe(os.path.join(run, "config.yaml"), out=os.path.join(tmp, "py-probe"), batch=8, steps=0,
                 weights=os.path.join(run, "model.bin"))
names = [p["name"] for p in t["manifest"]["params"]]
params = model.params
check(names == list(params) and all(np.array_equal(params[n], t[f"p{i:03d}"]) for i, n in enumerate(names)), f"model.bin's weights: {names}")
logits = model.forward(t["x"])
diff = float(np.abs(logits - t["logits"]).max())
check(logits.shape == (8, 4) and diff < 1e-6, f"forward pass = the probe's logits (max diff {diff:.1e})")
# PyTorch export: the torch module with asymbp's weights gives its logits
import torch  # noqa: E402

import asymbp.export  # noqa: E402

NETS = [
    ("mlp-bn", {"name": "m", "epochs": 1, "batch_size": 16, "data": {"format": "random", "random": {"n": 64, "c": 1, "h": 6, "w": 6, "classes": 5}},
                "model": {"layers": ["flatten", {"type": "fc", "out": 20}, "batchnorm", "relu", {"type": "dropout", "p": 0.2}, {"type": "fc", "out": 5}]},
                "optimizer": {"name": "sgd", "lr": 0.1}}, {}),
    ("lenet", "configs/fmnist/lenet.yaml", {"data.format": "random", "data.random.n": 64, "data.random.h": 28, "data.random.w": 28, "epochs": 1}),
    ("resnet20", "configs/cifar10/resnet20.yaml", {"data.format": "random", "data.random.n": 64, "epochs": 1}),
]
for name, cfg, sets in NETS:
    d = os.path.join(tmp, "export-" + name)
    asymbp.train(cfg, out=d, sets=sets)
    net = asymbp.export.to_torch(d)
    x = asymbp.probe(os.path.join(d, "config.yaml"), out=d + "-probe", batch=8, steps=0)["x"]
    ours = asymbp.load_model(d).forward(x)
    theirs = net(torch.from_numpy(x)).detach().numpy()
    scale = max(1.0, float(np.abs(ours).max()))
    diff = float(np.abs(ours - theirs).max())
    check(diff <= 1e-5 * scale, f"{name} in torch: logits within {diff:.1e} of asymbp's (scale {scale:.2g}); state_dict of {len(net.state_dict())} tensors")
print("python package: every check passed")
