"""The deployment bundle: everything the PYNQ board needs next to the bitstream.

:func:`write_deploy_bundle` writes ``<build>/deploy/``::

    deploy/
      lowbit_runtime/     the runtime package (numpy only) and its data file (ImageNet class
                          names), copied from lowbit_hdl/runtime
      <net>.npz           the network with its integer weights (lowbit_hdl.netfile format;
                          layers with random weights listed under ``random_weights``)
      layout.json         the design's stream layout
      ddr_weights.npz     hybrid designs only: {layer: (MH, MW) integer weight matrix} of
                          every layer whose weights the design reads from DDR (the runtime
                          packs them into the DDR image at load)
      labels.txt          class names, one per line (when the network has labels)
      samples.npz         sample images (uint8 N×C×H×W), their labels when known, and the
                          golden model's outputs for them ("expected")
      run.py              classify the samples on the board: predictions, accuracy,
                          bit-exactness against the golden outputs, timing, power
      validate.py         accuracy on a whole test set (.npz, MNIST IDX, CIFAR-10 .bin)
      deploy.ipynb        run.py's steps as a Jupyter notebook (its cells call run.py)
      README.md           what to copy where and what to run (and a warning when the
                          weights are random)
      <net>.bit/.hwh      copied when the caller passes the bitstream

run.py and validate.py are copied unchanged from ``deploy_files/`` (they find the network's
name in layout.json); deploy.ipynb is made from ``deploy_files/notebook.py``. Development
machine only (it runs the golden model).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .. import runtime
from ..runtime.control import DDR_WEIGHTS_FILE
from ..runtime.layout import DesignLayout

__all__ = ["write_deploy_bundle", "write_ddr_weights", "notebook_from_source", "RUNTIME_DIR",
           "RUNTIME_FILES", "PACKAGE", "DEPLOY_FILES", "SCRIPTS", "NOTEBOOK_SOURCE"]

#: the board runtime package, shipped whole (numpy and the standard library only)
RUNTIME_DIR = Path(runtime.__file__).resolve().parent
#: its modules and data files (the ImageNet class names), in sorted order
RUNTIME_FILES = tuple(sorted(p.name for p in RUNTIME_DIR.iterdir()
                             if p.is_file() and p.suffix in (".py", ".txt")))
#: name of the runtime package inside the bundle (the scripts import it by this name)
PACKAGE = "lowbit_runtime"
#: the bundle's scripts and the notebook's source: real files, package data of lowbit_hdl
#: (not importable modules), checked by ruff like the rest of the package
DEPLOY_FILES = Path(__file__).resolve().parent / "deploy_files"
#: copied into the bundle unchanged; they read the network's name from layout.json
SCRIPTS = ("run.py", "validate.py")
#: percent-format source of deploy.ipynb (its cells call run.py)
NOTEBOOK_SOURCE = "notebook.py"

README = """# {name} on PYNQ

Copy this folder to the board (for example to `/home/xilinx/jupyter_notebooks/{name}/`)
together with `{name}.bit` and `{name}.hwh` from the Vivado build, then on the board:

    sudo -E /usr/local/share/pynq-venv/bin/python3 run.py      # predictions, accuracy, timing
    sudo -E /usr/local/share/pynq-venv/bin/python3 validate.py --dataset FILE  # a test set
    # or open deploy.ipynb in Jupyter

PYNQ-Z2 images v2.7, v3.0 and v3.1 keep pynq in that virtual environment (PYNQ needs root).
Needs only numpy and pynq. See docs/deploy.md of lowbit-hdl.
"""


def notebook_from_source(text: str) -> dict[str, Any]:
    """A Jupyter notebook (nbformat 4.5) from percent-format source (the form of
    ``deploy_files/notebook.py``): ``# %%`` starts a code cell, ``# %% [markdown]`` a
    markdown cell written as comments; lines before the first marker are left out."""
    if not isinstance(text, str):
        raise TypeError(f"notebook source must be a str, got {type(text).__name__}")
    cells: list[dict[str, Any]] = []
    kind, lines = None, []

    def flush() -> None:
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if kind is None:
            return
        if not lines:
            raise ValueError(f"notebook source: empty {kind} cell")
        src = "\n".join(lines).splitlines(True)
        cell: dict[str, Any] = {"cell_type": kind, "id": f"cell-{len(cells)}",
                                "metadata": {}, "source": src}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind == "markdown":
            if line and not line.startswith("#"):
                raise ValueError(f"notebook source: markdown line not a comment: {line!r}")
            lines.append(line[2:] if line.startswith("# ") else line[1:])
        else:
            lines.append(line)
    flush()
    if not cells:
        raise ValueError("notebook source has no cells (no '# %%' line)")
    return {"cells": cells,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"},
                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def _samples(net: Any, layout: DesignLayout, samples: Any, count: int, seed: int
             ) -> tuple[np.ndarray, np.ndarray | None]:
    from ..runtime.preprocess import load_test_set

    if samples is None:
        c, h, w = layout.input.shape
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, size=(count, c, h, w), dtype=np.uint8), None
    if isinstance(samples, (str, Path)):
        images, labels = load_test_set(samples)
    else:
        images, labels = samples
        images = np.asarray(images)
        labels = None if labels is None else np.asarray(labels).astype(np.int64).reshape(-1)
    return images[:count], None if labels is None else labels[:count]


def write_deploy_bundle(out_dir: str | Path, net: Any, layout: DesignLayout, *,
                        samples: Any = None, sample_count: int = 100,
                        bitfile: str | Path | None = None, seed: int = 0) -> Path:
    """Write the deployment bundle to ``<out_dir>/deploy/`` and return that folder.

    ``out_dir`` is the build folder; ``net`` the :class:`lowbit_hdl.Network` with its
    parameters (the one the design was generated from); ``layout`` its
    :class:`DesignLayout`. ``samples`` (a test-set file for
    :func:`~lowbit_hdl.runtime.preprocess.load_test_set`, or ``(images, labels)`` with
    ``labels`` possibly ``None``; default: ``sample_count`` random images) gives the
    images run.py classifies; their golden-model outputs are stored so the board can
    check itself bit-exactly. ``bitfile`` copies ``<net>.bit`` and its ``.hwh`` in when
    they exist already. Rewrites the folder's files; leaves other files there alone.
    """
    from .. import golden, netfile
    from ..runtime.accelerator import read_network_info
    from ..runtime.preprocess import to_frames

    out = Path(out_dir) / "deploy"
    if layout.network != net.name:
        raise ValueError(f"layout is for {layout.network!r}, the network is {net.name!r}")
    info = read_network_info(net)
    if info["input_shape"] != tuple(layout.input.shape) or \
            info["input_dtype"] != layout.input.dtype.upper():
        raise ValueError("layout input does not match the network input")
    pkg = out / PACKAGE
    pkg.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_FILES:
        shutil.copyfile(RUNTIME_DIR / name, pkg / name)

    netfile.save(net, out / f"{net.name}.npz")
    layout.save(out / "layout.json")  # the build's layout.json, ip_names included
    if layout.ddr is not None:
        write_ddr_weights(out / DDR_WEIGHTS_FILE, net, layout)
    labels = layout.labels or (tuple(net.labels) if net.labels else None)
    if labels:
        (out / "labels.txt").write_text("".join(f"{x}\n" for x in labels))

    images, sample_labels = _samples(net, layout, samples, sample_count, seed)
    frames = to_frames(images, layout.input.shape, layout.input.dtype)
    expected = golden.forward(net, frames, keep=False).output
    c, h, w = layout.input.shape
    arrays: dict[str, np.ndarray] = {
        "images": frames_to_pixels(images, (c, h, w)), "expected": expected.astype(np.int64)}
    if sample_labels is not None:
        arrays["labels"] = sample_labels.astype(np.int64)
    with open(out / "samples.npz", "wb") as fh:
        np.savez_compressed(fh, **arrays)

    for script in SCRIPTS:
        shutil.copyfile(DEPLOY_FILES / script, out / script)
    notebook = notebook_from_source((DEPLOY_FILES / NOTEBOOK_SOURCE).read_text())
    (out / "deploy.ipynb").write_text(json.dumps(notebook, indent=1) + "\n")
    note = netfile.random_weights_note(net)
    ddr_names = [] if layout.ddr is None else [r.layer for r in layout.ddr.regions] + (
        [lay["name"] for lay in layout.ddr.engine.layers] if layout.ddr.engine else [])
    hybrid = "" if layout.ddr is None else (
        f"\nThis design reads the weights of {', '.join(ddr_names)} "
        f"from DDR: keep `{DDR_WEIGHTS_FILE}` next to `layout.json`; the runtime packs them "
        f"into one {layout.ddr.total_bytes:,}-byte DDR image when it opens the accelerator.\n")
    (out / "README.md").write_text(README.format(name=net.name) + hybrid + (
        f"\n**{note}.** The design was built with `--random-weights`; `{net.name}.npz` lists "
        "the layers under `random_weights`.\n" if note else ""))
    if bitfile is not None:
        bit = Path(bitfile)
        for p in (bit, bit.with_suffix(".hwh")):
            if p.exists():
                shutil.copyfile(p, out / f"{net.name}{p.suffix}")
    return out


def ddr_parameters(ddr: Any, infos: Any) -> dict[str, np.ndarray]:
    """What a DDR image holds, from a network's LayerInfos: the weight matrices of its
    regions' and its engine's layers, and the engine layers' thresholds (under
    :data:`~lowbit_hdl.runtime.control.THRESHOLDS_SUFFIX`): the contents of the bundle's
    :data:`~lowbit_hdl.runtime.control.DDR_WEIGHTS_FILE`.

    Raises ``ValueError`` for a layer of the image that is not in ``infos``."""
    from ..runtime.control import THRESHOLDS_SUFFIX

    by = {i.name: i for i in infos}
    engine = [lay["name"] for lay in ddr.engine.layers] if ddr.engine is not None else []
    out: dict[str, np.ndarray] = {}
    for n in [r.layer for r in ddr.regions] + engine:
        if n not in by:
            raise ValueError(f"the layout's DDR image holds layer {n!r}, which the network "
                             "does not have")
        out[n] = np.asarray(by[n].weight_matrix()).astype(np.int64)
        if n in engine and by[n].layer.thresholds is not None:
            out[n + THRESHOLDS_SUFFIX] = np.asarray(by[n].layer.thresholds).astype(np.int64)
    return out


def write_ddr_weights(path: str | Path, net: Any, layout: DesignLayout) -> Path:
    """Write what the layout's DDR image holds (:func:`ddr_parameters`; the runtime's
    :data:`~lowbit_hdl.runtime.control.DDR_WEIGHTS_FILE`) to ``path``; checked against the
    layout by packing the image once here (:func:`~lowbit_hdl.runtime.ddrimage.pack_image`
    raises for a missing layer or a wrong shape)."""
    from ..runtime.control import split_ddr_parameters
    from ..runtime.ddrimage import pack_image

    if layout.ddr is None:
        raise ValueError(f"the design of {layout.network} reads no weights from DDR (no "
                         "ddr in its layout)")
    params = ddr_parameters(layout.ddr, net.infer())
    pack_image(layout.ddr, *split_ddr_parameters(params))
    path = Path(path)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **params)
    return path


def frames_to_pixels(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Sample images as uint8 N×C×H×W (the form samples.npz stores)."""
    from ..runtime.preprocess import _split_images

    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ValueError(f"sample images must be uint8, got {arr.dtype}")
    hwc = _split_images(arr, shape, exact=True)
    return np.stack(hwc).transpose(0, 3, 1, 2).copy()
