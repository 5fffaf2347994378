"""asymbp from Python: the library's public API (include/asymbp.h) through
cffi on the shared library, libasymbp.so (installed, or built in the
source tree by `make build/libasymbp.so.VERSION`).

    import asymbp
    for epoch in asymbp.train_iter("configs/fmnist/mlp.yaml", out="runs/mlp", sets={"epochs": 3}):
        print(epoch["epoch"], epoch["test_err"], [l["angle"] for l in epoch["layers"]])
    tensors = asymbp.probe("configs/fmnist/mlp.yaml", out="runs/probe")   # name -> numpy array
    model = asymbp.load_model("runs/mlp")                                 # its weights, its forward pass

A configuration is a YAML file or a dict (the same keys); sets are
--set overrides ({"optimizer.lr": 0.05}). Errors raise asymbp.Error with the
library's message, which names the file, line or key at fault.
"""
import glob
import json
import os
import queue
import re
import subprocess
import tempfile
import threading

# OpenMP threads that spin while they wait collapse a run on shared cores
# (docs/PERFORMANCE.md, "A shared machine"); the runtime reads its wait
# policy when first loaded, so it is set here, before anything loads it,
# unless the environment chose one. (When torch was imported first, its
# runtime is loaded already and keeps its policy.)
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "passive"

import numpy as np  # noqa: E402
from cffi import FFI

__all__ = ["Error", "Config", "train", "train_iter", "probe", "load_model", "Model", "rules", "version"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_TREE = os.path.normpath(os.path.join(_HERE, "..", ".."))


class Error(Exception):
    """A call of the library failed; the message is the library's."""


def _pkg_config(var):
    try:
        return subprocess.run(["pkg-config", f"--variable={var}", "asymbp"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _find(env, tree_glob, installed_dir, name):
    """$env; else, for the package make install put beside the library,
    that library; else the source tree's file; else the installed one that
    pkg-config names."""
    if os.environ.get(env):
        return os.environ[env]
    try:
        from ._installed import PATHS
        return os.path.join(PATHS[installed_dir], name)
    except ImportError:
        pass
    found = sorted(glob.glob(os.path.join(_TREE, tree_glob)))
    if found:
        return found[-1]
    d = _pkg_config(installed_dir)
    if d and os.path.exists(os.path.join(d, name)):
        return os.path.join(d, name)
    raise Error(f"{name} not found: set {env}, build it in the source tree, or install asymbp (make install)")


def _declarations(header):
    """The header as cffi's cdef takes it: no preprocessor lines but integer
    #defines, no extern "C" block."""
    text = open(header).read()
    keep = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            m = re.match(r"#define\s+(ASYM_\w+)\s+\(?(-?\d+)\)?$", s)
            if m:
                keep.append(f"#define {m.group(1)} {m.group(2)}")
            continue
        if s in ('extern "C" {', "}") and not line.startswith(" "):
            continue
        keep.append(line)
    return "\n".join(keep)


_ffi = FFI()
_ffi.cdef(_declarations(_find("ASYMBP_INCLUDE", "include/asymbp.h", "includedir", "asymbp.h")))
library_path = _find("ASYMBP_LIB", "build/libasymbp.so.*", "libdir", "libasymbp.so")
"""The shared library this package loaded."""
_lib = _ffi.dlopen(library_path)


def _check(rc):
    if rc != _lib.ASYM_OK:
        raise Error(_ffi.string(_lib.asym_last_error()).decode())


def version():
    """This build's version.json object, as a dict."""
    buf = _ffi.new("char[4096]")
    _lib.asym_version_json(buf, 4096, 0)
    return json.loads(_ffi.string(buf).decode())


def rules():
    """The rule table's names, in its order."""
    return [_ffi.string(_lib.asym_rule_name(r)).decode() for r in range(1, _lib.asym_rule_count() + 1)]


class Config:
    """A configuration: a YAML file's path or a dict of the same keys, with
    --set overrides applied ({"optimizer.lr": 0.05})."""

    def __init__(self, config, sets=None):
        self._tmp = None
        if isinstance(config, dict):
            # JSON is YAML: the dict is written as it stands
            fd, self._tmp = tempfile.mkstemp(suffix=".yaml")
            with os.fdopen(fd, "w") as f:
                json.dump(config, f)
            config = self._tmp
        p = _ffi.new("AsymConfig **")
        _check(_lib.asym_config_load(p, os.fsencode(config)))
        self._cfg = p[0]
        for key, value in (sets or {}).items():
            if isinstance(value, (list, dict, bool)):
                value = json.dumps(value)
            self.set(f"{key}={value}")

    def set(self, assignment):
        _check(_lib.asym_config_set(self._cfg, assignment.encode()))

    def write(self, path):
        _check(_lib.asym_config_write(self._cfg, os.fsencode(path)))

    def __del__(self):
        if getattr(self, "_cfg", None):
            _lib.asym_config_free(self._cfg)
        if self._tmp:
            os.unlink(self._tmp)


class _Experiment:
    def __init__(self, config, sets=None):
        self.config = config if isinstance(config, Config) else Config(config, sets)
        p = _ffi.new("AsymExperiment **")
        _check(_lib.asym_experiment_open(p, self.config._cfg))
        self.ex = p[0]
        info = _ffi.new("AsymExperimentInfo *")
        _lib.asym_experiment_info(self.ex, info)
        self.info = {"name": _ffi.string(info.name).decode(), "seed": info.seed, "epochs": info.epochs, "batch_size": info.batch_size,
                     "threads": info.threads, "lr": info.lr, "data_format": _ffi.string(info.data_format).decode(),
                     "data_path": _ffi.string(info.data_path).decode()}

    def __del__(self):
        if getattr(self, "ex", None):
            _lib.asym_experiment_close(self.ex)


def _num(v):
    return None if v != v or v in (float("inf"), float("-inf")) else float(v)


def _opt(v):
    """A measure the library marks absent with a negative value: None."""
    return None if v < 0 else float(v)


def _epoch_dict(st):
    layers = []
    for i in range(st.n_align):
        a = st.align[i]
        layers.append({"name": _ffi.string(a.name).decode(), "rule": _ffi.string(_lib.asym_rule_name(a.rule)).decode(), "angle": _num(a.angle),
                       "norm_ratio": _num(a.norm_ratio), "sign_agree": _num(a.sign_agree), "delta_angle": _num(a.delta_angle),
                       "grad_angle": _num(a.grad_angle)})
    return {"epoch": st.epoch, "lr": float(st.lr), "train_loss": _num(st.train_loss), "train_err": _num(st.train_err), "test_loss": _num(st.test_loss),
            "test_err": _num(st.test_err), "val_loss": _num(st.val_loss), "val_err": _num(st.val_err), "seconds": st.seconds,
            "images_per_s": st.images_per_s, "mean_angle": _num(st.mean_angle), "layers": layers,
            "test_err5": _opt(st.test_err5), "val_err5": _opt(st.val_err5), "skipped_files": st.skipped_files,
            "data_wait_s": _opt(st.data_wait_s)}


def _summary_dict(s):
    return {"best_test_err": _num(s.best_test_err), "final_test_err": _num(s.final_test_err), "best_epoch": s.best_epoch, "epochs": s.epochs,
            "diverged": bool(s.diverged), "diverged_in": _ffi.string(s.diverged_in).decode(), "final_mean_angle": _num(s.final_mean_angle),
            "seconds": s.seconds, "images_per_s": s.images_per_s, "seed": s.seed}


def train_iter(config, out=None, sets=None, resume=False):
    """Trains, yielding each epoch's record as a dict (log.jsonl's numbers,
    "layers" with every weight layer's angles); the run's summary is the
    generator's return value. out: the run folder (None: nothing written)."""
    ex = _Experiment(config, sets)
    if out and not resume:
        # the run folder holds its configuration, as `asymbp train` leaves it
        os.makedirs(out, exist_ok=True)
        ex.config.write(os.path.join(out, "config.yaml"))
    records = queue.Queue()
    result = {}

    @_ffi.callback("void(void *, const AsymEpochStats *)")
    def on_epoch(user, st):
        records.put(("epoch", _epoch_dict(st)))

    def run():
        hooks = _ffi.new("AsymTrainHooks *", {"on_epoch": on_epoch})
        summary = _ffi.new("AsymSummary *")
        call = _lib.asym_train_resume if resume else _lib.asym_train
        rc = call(ex.ex, os.fsencode(out) if out else _ffi.NULL, hooks, summary)
        result["error"] = _ffi.string(_lib.asym_last_error()).decode() if rc else None
        result["summary"] = _summary_dict(summary)
        records.put(("done", None))

    worker = threading.Thread(target=run)
    worker.start()
    while True:
        kind, record = records.get()
        if kind == "done":
            break
        yield record
    worker.join()
    if result["error"]:
        raise Error(result["error"])
    return result["summary"]


def train(config, out=None, sets=None, resume=False):
    """Trains to the end; returns {"epochs": [record, ...], "summary": {...}}."""
    it = train_iter(config, out, sets, resume)
    epochs = []
    while True:
        try:
            epochs.append(next(it))
        except StopIteration as stop:
            return {"epochs": epochs, "summary": stop.value}


def probe(config, out, sets=None, batch=16, steps=1, weights=None):
    """One fixed batch through the network (asymbp probe): every tensor
    written to out as .npy, returned as {name: numpy array} with the
    manifest under "manifest"."""
    ex = _Experiment(config, sets)
    _check(_lib.asym_probe(ex.ex, os.fsencode(weights) if weights else _ffi.NULL, batch, steps, os.fsencode(out)))
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    arrays = {"manifest": manifest}
    for f in sorted(glob.glob(os.path.join(out, "*.npy"))):
        arrays[os.path.basename(f)[:-4]] = np.load(f)
    return arrays


class Model:
    """A network built from a configuration, its weights loaded from a
    model.bin; parameters as numpy arrays (copies) and a forward pass."""

    def __init__(self, config, weights=None, sets=None):
        self._ex = _Experiment(config, sets)
        p = _ffi.new("AsymNet **")
        _check(_lib.asym_experiment_net(self._ex.ex, p))
        self._net = p[0]
        if weights:
            _check(_lib.asym_net_load(self._net, os.fsencode(weights)))
        self.batch_size = self._ex.info["batch_size"]
        # the last parameter is the output layer's bias or weight: (classes, ...)
        self.classes = _lib.asym_net_param(self._net, _lib.asym_net_n_params(self._net) - 1).shape[0]

    def _tensors(self, count, get):
        out = {}
        for i in range(count(self._net)):
            t = get(self._net, i)
            shape = tuple(t.shape[d] for d in range(t.ndim))
            out[_ffi.string(t.name).decode()] = np.frombuffer(_ffi.buffer(t.w, t.n * 4), dtype=np.float32).reshape(shape).copy()
        return out

    @property
    def params(self):
        """{name: array} of the trainable tensors, in asymbp's order."""
        return self._tensors(_lib.asym_net_n_params, _lib.asym_net_param)

    @property
    def buffers(self):
        """{name: array} of the batch norms' running statistics."""
        return self._tensors(_lib.asym_net_n_buffers, _lib.asym_net_buffer)

    def forward(self, x):
        """Logits (N, classes) of x (N, C, H, W) in evaluation mode, in batches."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        outs = []
        for i in range(0, len(x), self.batch_size):
            part = x[i:i + self.batch_size]
            logits = _lib.asym_net_forward(self._net, _ffi.cast("const float *", part.ctypes.data), len(part), 0)
            outs.append(np.frombuffer(_ffi.buffer(logits, 4 * len(part) * self.classes), dtype=np.float32).reshape(len(part), -1).copy())
        return np.concatenate(outs)

    def evaluate(self):
        """The model on its configuration's test set, in evaluation mode
        (streamed for format imagenet, as training reads it): {"loss",
        "err", "err5" (None with 10 classes or fewer), "n" (images),
        "unreadable" (files skipped)}."""
        loss, err, err5 = _ffi.new("double *"), _ffi.new("double *"), _ffi.new("double *")
        n, bad = _ffi.new("int *"), _ffi.new("long *")
        _check(_lib.asym_experiment_test(self._ex.ex, self._net, loss, err, err5, n, bad, _ffi.NULL, _ffi.NULL))
        return {"loss": loss[0], "err": err[0], "err5": err5[0] if err5[0] >= 0 else None, "n": n[0], "unreadable": bad[0]}

    def __del__(self):
        if getattr(self, "_net", None):
            _lib.asym_net_free(self._net)


def load_model(run_dir, weights=None):
    """The model of a run folder: its config.yaml, and model.bin (or weights)."""
    return Model(os.path.join(run_dir, "config.yaml"), weights or os.path.join(run_dir, "model.bin"))
