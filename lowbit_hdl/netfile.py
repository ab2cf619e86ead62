"""Saving and loading networks: one ``.npz`` file holding a JSON description plus the
integer weights and thresholds; and loading topologies from ``networks/*.py`` files."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import traceback
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import MissingParametersError, NetworkError, NetworkFileError
from .ir import FC, Conv, Layer, MaxPool, Network, TopK
from .runtime.dtypes import DataType, parse_dtype

__all__ = ["to_json", "from_json", "save", "load", "load_network", "random_weights_note"]

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
        # layers whose parameters are random (Network.randomize): only when there are any
        **({"random_weights": dict(net.random_weights)} if net.random_weights else {}),
        # what the network is for (runtime.layout.TASKS): only when set
        **({"task": net.task} if getattr(net, "task", None) else {}),
        # real value of the raw integer output (training export of a detector): when set
        **({"output_scale": list(net.output_scale), "output_offset": list(net.output_offset)}
           if getattr(net, "output_scale", None) is not None else {}),
    }


#: the top-level fields of a network description (to_json), and those it must have
_FIELDS = {"format", "version", "name", "description", "input_shape", "input_dtype",
           "input_fold", "labels", "layers", "random_weights", "task", "output_scale",
           "output_offset"}
_REQUIRED = ("format", "version", "name", "input_shape", "input_dtype", "layers")


def _dtype(text: object, what: str) -> DataType:
    if not isinstance(text, str):
        raise NetworkFileError(f"{what}: expected a data type name, got {text!r}")
    try:
        return parse_dtype(text)
    except ValueError as e:
        raise NetworkFileError(f"{what}: {e}") from None


def _layer_from_dict(i: int, ld: object) -> Layer:
    if not isinstance(ld, dict):
        raise NetworkFileError(f"layers[{i}]: expected an object, got {ld!r:.40}")
    ld = dict(ld)
    kind = ld.pop("kind", None)
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    name = ld.get("name", f"layers[{i}]")
    if cls is None:
        raise NetworkFileError(f"layer {name}: unknown kind {kind!r} (one of "
                               f"{', '.join(_KINDS)})")
    allowed = {f.name for f in dataclasses.fields(cls)} - {"weights", "thresholds"}
    unknown = sorted(set(ld) - allowed)
    if unknown:
        raise NetworkFileError(f"layer {name}: unknown field(s) {', '.join(unknown)} for a "
                               f"{kind} layer")
    for k in ("weight_dtype", "act"):
        if k in ld and ld[k] is not None:
            ld[k] = _dtype(ld[k], f"layer {name}: {k}")
    if cls is MaxPool and isinstance(ld.get("padding"), list):
        ld["padding"] = tuple(ld["padding"])  # (top, bottom, left, right), a list in JSON
    try:
        return cls(**ld)
    except TypeError as e:  # a required field missing
        raise NetworkFileError(f"layer {name}: {e}") from None


def from_json(d: dict) -> Network:
    """Inverse of :func:`to_json`. Raises :class:`NetworkFileError` for a description that
    is not one (foreign, unknown fields, unknown data types); the network's rules are
    checked by :meth:`Network.infer`."""
    if not isinstance(d, dict) or d.get("format") != "lowbit-hdl-network":
        raise NetworkFileError("not a lowbit-hdl network description")
    if d.get("version") != FORMAT_VERSION:
        raise NetworkFileError(f"format version {d.get('version')!r} is not supported (this "
                               f"lowbit-hdl reads version {FORMAT_VERSION})")
    unknown = sorted(set(d) - _FIELDS)
    if unknown:
        raise NetworkFileError(f"unknown field(s) {', '.join(map(str, unknown))}")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise NetworkFileError(f"missing field(s) {', '.join(missing)}")
    if not isinstance(d["layers"], list):
        raise NetworkFileError("layers: expected a list")
    if not isinstance(d["input_shape"], list):
        raise NetworkFileError(f"input_shape: expected a list, got {d['input_shape']!r}")
    layers = [_layer_from_dict(i, ld) for i, ld in enumerate(d["layers"])]
    net = Network(d["name"], tuple(d["input_shape"]), layers,
                  _dtype(d["input_dtype"], "input_dtype"), d.get("input_fold"),
                  d.get("description", ""), d.get("labels"), d.get("task"))
    rnd = d.get("random_weights", {})
    names = {getattr(lay, "name", None) for lay in layers}
    if not isinstance(rnd, dict) or not all(k in names and type(v) is int
                                            for k, v in rnd.items()):
        raise NetworkFileError("random_weights: expected {layer: seed} of the network's layers")
    net.random_weights = dict(rnd)
    for k in ("output_scale", "output_offset"):
        v = d.get(k)
        if v is not None and not (isinstance(v, list) and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
            raise NetworkFileError(f"{k}: expected a list of numbers")
        setattr(net, k, None if v is None else tuple(float(x) for x in v))
    return net


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


#: what reading a damaged or foreign .npz can raise (zip, zlib, numpy header, pickle refusal)
_NPZ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError,
               UnicodeDecodeError, NotImplementedError)


def _in_file(path: Path | str, e: NetworkError) -> NetworkError:
    """``e`` again (the same class), its message prefixed with the file's name."""
    msg = f"{path}: {e}"
    if isinstance(e, MissingParametersError):
        return MissingParametersError(msg, e.layers)
    return type(e)(msg)


def load(path: str | Path) -> Network:
    """Read a network written by :func:`save`; its attached parameters are checked.

    Raises ``FileNotFoundError`` when it does not exist, :class:`NetworkFileError` saying
    what is wrong with a damaged or foreign file, and :class:`NetworkError` (naming the
    file and layer) for a description or parameters that break a rule.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"network file {path} does not exist")
    if path.is_dir():
        raise NetworkFileError(f"{path}: is a folder, not a saved network (.npz)")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise NetworkFileError(f"{path}: a single .npy array, not a saved network "
                                   "(a .npz archive)")
        with z:
            if "__network__" not in z.files:
                raise NetworkFileError(f"{path}: not a saved lowbit-hdl network (no "
                                       f"__network__ entry; entries: {', '.join(z.files[:8])})")
            raw = z["__network__"]
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise NetworkFileError(f"{path}: __network__ is not the JSON bytes of a "
                                       "network description")
            try:
                d = json.loads(raw.tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise NetworkFileError(f"{path}: __network__ is not UTF-8 JSON ({e})") from None
            net = from_json(d)
            known = {"__network__"}
            for lay in net.layers:
                for k in ("weights", "thresholds"):
                    key = f"{lay.name}/{k}"
                    if key in z.files:
                        arr = z[key]
                        if not np.issubdtype(arr.dtype, np.integer):
                            raise NetworkFileError(f"{path}: {key} holds {arr.dtype}, not "
                                                   "integers")
                        setattr(lay, k, arr.astype(np.int64))
                        known.add(key)
            extra = sorted(set(z.files) - known)
            if extra:
                raise NetworkFileError(f"{path}: entries {', '.join(extra[:5])} belong to no "
                                       "layer of the network")
        net.check_params(allow_missing=True)
    except NetworkError as e:
        raise _in_file(path, e) if not str(e).startswith(str(path)) else e from None
    except (*_NPZ_ERRORS, OSError) as e:
        if isinstance(e, (PermissionError, FileNotFoundError, IsADirectoryError)):
            raise
        raise NetworkFileError(f"{path}: damaged or not a .npz archive "
                               f"({type(e).__name__}: {e})") from None
    return net


def random_weights_note(net: Network) -> str | None:
    """One line saying which layers have random weights and thresholds (and their seed),
    or ``None`` when no layer has. Commands print it; builds record it."""
    rnd = net.random_weights
    if not rnd:
        return None
    mvtu = [i.name for i in net.infer() if i.is_mvtu]
    seeds = sorted(set(rnd.values()))
    which = "every layer" if set(mvtu) <= set(rnd) else \
        f"layers {', '.join(n for n in mvtu if n in rnd)} (the others are the network's own)"
    return (f"RANDOM weights and thresholds (seed {', '.join(map(str, seeds))}) in {which}: "
            "outputs are not meaningful predictions")


def _user_code_error(path: Path, e: BaseException) -> NetworkFileError:
    """A network file (or a sibling it imports) that raised: the message names the file and
    line of the user's code nearest to the error, e.g. ``networks/foo.py line 12:
    ZeroDivisionError: division by zero``."""
    folder = path.resolve().parent

    def show(filename: str) -> str:
        f = Path(filename)
        return str(path) if f.resolve() == path.resolve() else str(path.parent / f.name)

    where = str(path)
    if isinstance(e, SyntaxError) and e.filename:
        where = f"{show(e.filename)} line {e.lineno}"
    else:
        mine = [f for f in traceback.extract_tb(e.__traceback__)
                if Path(f.filename).resolve().parent == folder]
        if mine:
            where = f"{show(mine[-1].filename)} line {mine[-1].lineno}"
    text = e.msg if isinstance(e, SyntaxError) else str(e)
    return NetworkFileError(f"{where}: {type(e).__name__}: {text}")


def _exec_topology(path: Path) -> tuple[Network, object]:
    """Run a topology file; (its network, its PARAMS)."""
    modname = f"_lowbit_net_{path.stem}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise NetworkFileError(f"{path}: cannot be loaded as a Python file")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(mod)
        obj = getattr(mod, "network", None)
        if callable(obj) and not isinstance(obj, Network):
            obj = obj()
    except (Exception, SystemExit) as e:
        raise _user_code_error(path, e) from e
    finally:
        sys.path.pop(0)
    if not isinstance(obj, Network):
        raise NetworkFileError(f"{path}: defines no `network` (a lowbit_hdl.Network or a "
                               "function returning one)")
    return obj, getattr(mod, "PARAMS", None)


def _attach_params_file(path: Path, net: Network, params: object) -> None:
    """Attach the parameters of the topology's ``PARAMS`` file."""
    if not isinstance(params, (str, Path)):
        raise NetworkFileError(f"{path}: PARAMS must be a file name (str), got {params!r}")
    ppath = path.parent / params
    if not ppath.exists():
        raise NetworkFileError(f"{path}: PARAMS file {ppath} does not exist")
    trained = load(ppath)
    if [(lay.kind, lay.name) for lay in trained.layers] != [
            (getattr(lay, "kind", None), getattr(lay, "name", None)) for lay in net.layers]:
        raise NetworkFileError(f"{path}: PARAMS file {params} does not match the topology "
                               "(other layers or layer names)")
    for lay, tl in zip(net.layers, trained.layers, strict=True):
        if not hasattr(lay, "weights"):
            continue
        if lay.weights is not None or lay.thresholds is not None:
            raise NetworkFileError(f"{path}: layer {lay.name}: parameters both in the file "
                                   f"and in PARAMS file {params}")
        lay.weights, lay.thresholds = tl.weights, tl.thresholds
    net.random_weights.update(trained.random_weights)


def load_network(path: str | Path, seed: int | None = None, *,
                 require_params: bool = False) -> Network:
    """Load a network from a ``networks/*.py`` topology file or a saved ``.npz``.

    A topology file defines ``network`` (a :class:`Network`) or ``network()`` returning one;
    it may import sibling files of its folder, attach parameters to its layers itself, or
    name a trained parameter file in ``PARAMS`` (relative to the file). Attached parameters
    are checked against their layers' shapes and types.

    Layers left without weights and thresholds get random ones from ``seed`` when it is
    given (recorded in :attr:`Network.random_weights`; the other layers keep theirs);
    otherwise they stay unset, which ``require_params`` turns into a
    :class:`MissingParametersError` naming them. Errors name the file: a topology file that
    raises gives a :class:`NetworkFileError` naming its line.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"network file {path} does not exist")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise TypeError(f"load_network: seed must be an int or None, got {seed!r}")
    if path.suffix == ".npz":
        net = load(path)
    elif path.suffix == ".py":
        net, params = _exec_topology(path)
        try:
            if params is not None:
                _attach_params_file(path, net, params)
            net.check_params(allow_missing=True)
        except NetworkError as e:
            raise (e if str(e).startswith(str(path)) else _in_file(path, e)) from None
    else:
        raise NetworkFileError(f"{path}: expected a .py topology or a .npz network file")
    missing = net.check_params(allow_missing=True)
    if missing and seed is not None:
        net.randomize(seed, layers=missing)
    elif missing and require_params:
        have = [i.name for i in net.infer() if i.is_mvtu and i.name not in missing]
        def layers(names: list[str]) -> str:
            return ("layer " if len(names) == 1 else "layers ") + ", ".join(names)

        what = (f"{layers(missing)} {'has' if len(missing) == 1 else 'have'} no weights or "
                f"thresholds ({layers(have)} {'has' if len(have) == 1 else 'have'})" if have else
                "the network has no weights or thresholds (no PARAMS file, none attached)")
        raise MissingParametersError(
            f"{path}: {what}; attach trained ones (PARAMS, see docs/topologies.md) or ask "
            "for random ones with --random-weights", missing)
    return net
