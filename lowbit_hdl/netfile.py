"""Saving and loading networks: one ``.npz`` file holding a JSON description plus the
integer weights and thresholds; and loading topologies from ``networks/*.py`` files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from .ir import FC, Conv, MaxPool, Network, NetworkError, TopK
from .runtime.dtypes import parse_dtype

__all__ = ["to_json", "from_json", "save", "load", "load_network"]

_KINDS = {"conv": Conv, "fc": FC, "maxpool": MaxPool, "topk": TopK}
FORMAT_VERSION = 1


def _layer_to_dict(lay) -> dict:
    d: dict = {"kind": lay.kind}
    for k, v in vars(lay).items():
        if k in ("weights", "thresholds"):
            continue
        if k in ("weight_dtype", "act"):
            v = None if v is None else v.name
        d[k] = v
    return d


def to_json(net: Network) -> dict:
    """The network's description (no parameters) as a JSON-able dict."""
    return {
        "format": "lowbit-hdl-network",
        "version": FORMAT_VERSION,
        "name": net.name,
        "description": net.description,
        "input_shape": list(net.input_shape),
        "input_dtype": net.input_dtype.name,
        "input_fold": net.input_fold,
        "labels": net.labels,
        "layers": [_layer_to_dict(lay) for lay in net.layers],
    }


def from_json(d: dict) -> Network:
    """Inverse of :func:`to_json`."""
    if d.get("format") != "lowbit-hdl-network":
        raise NetworkError("not a lowbit-hdl network description")
    layers = []
    for ld in d["layers"]:
        ld = dict(ld)
        cls = _KINDS.get(ld.pop("kind"))
        if cls is None:
            raise NetworkError(f"layer {ld.get('name')}: unknown kind")
        for k in ("weight_dtype", "act"):
            if k in ld:
                ld[k] = None if ld[k] is None else parse_dtype(ld[k])
        layers.append(cls(**ld))
    return Network(d["name"], tuple(d["input_shape"]), layers, parse_dtype(d["input_dtype"]),
                   d.get("input_fold"), d.get("description", ""), d.get("labels"))


def save(net: Network, path: str | Path) -> Path:
    """Write ``net`` (description + weights + thresholds) to one ``.npz`` file."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "__network__": np.frombuffer(json.dumps(to_json(net), sort_keys=True).encode(),
                                     dtype=np.uint8)}
    for lay in net.layers:
        for k in ("weights", "thresholds"):
            v = getattr(lay, k, None)
            if v is not None:
                arrays[f"{lay.name}/{k}"] = np.asarray(v, dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def load(path: str | Path) -> Network:
    """Read a network written by :func:`save`."""
    with np.load(path) as z:
        net = from_json(json.loads(bytes(z["__network__"]).decode()))
        for lay in net.layers:
            for k in ("weights", "thresholds"):
                key = f"{lay.name}/{k}"
                if key in z:
                    setattr(lay, k, z[key].astype(np.int64))
    return net


def load_network(path: str | Path, seed: int | None = 0) -> Network:
    """Load a network from a ``networks/*.py`` topology file or a saved ``.npz``.

    A topology file defines ``network`` (a :class:`Network`) or ``network()`` returning one;
    it may import sibling files of its folder. A ``.py`` network without parameters gets
    random ones from ``seed`` (pass ``None`` to leave them unset); if it names a trained
    parameter file in ``PARAMS`` (relative to the file) those are loaded instead.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"network file {path} does not exist")
    if path.suffix == ".npz":
        return load(path)
    if path.suffix != ".py":
        raise NetworkError(f"{path}: expected a .py topology or a .npz network file")
    modname = f"_lowbit_net_{path.stem}"
    spec = importlib.util.spec_from_file_location(modname, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.pop(0)
    obj = getattr(mod, "network", None)
    if callable(obj) and not isinstance(obj, Network):
        obj = obj()
    if not isinstance(obj, Network):
        raise NetworkError(f"{path}: defines no `network` (a lowbit_hdl.Network or a function "
                           "returning one)")
    params = getattr(mod, "PARAMS", None)
    if params:
        trained = load(path.parent / params)
        if [(lay.kind, lay.name) for lay in trained.layers] != [
                (lay.kind, lay.name) for lay in obj.layers]:
            raise NetworkError(f"{path}: PARAMS file {params} does not match the topology")
        for lay, tl in zip(obj.layers, trained.layers, strict=True):
            if hasattr(lay, "weights"):
                lay.weights, lay.thresholds = tl.weights, tl.thresholds
        obj.infer(check_params=True)
    elif seed is not None and any(getattr(lay, "weights", 1) is None for lay in obj.layers):
        obj.randomize(seed)
    return obj
