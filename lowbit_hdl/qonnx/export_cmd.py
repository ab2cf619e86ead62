"""``python -m lowbit_hdl export-qonnx NET --out model.onnx``: a network as a QONNX graph."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..netfile import load_network
from .exporter import export


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", type=Path, help="network (.py topology or .npz)")
    p.add_argument("--out", type=Path, required=True, help="QONNX model to write (.onnx)")
    p.add_argument("--random-weights", action="store_true",
                   help="give layers without parameters random ones (seed 0)")


def run(args: argparse.Namespace) -> int:
    net = load_network(args.network, seed=0 if args.random_weights else None,
                       require_params=True)
    export(net, args.out)
    print(f"wrote {args.out}: {net.name} as QONNX (input N×{net.input_shape} "
          f"{net.input_dtype} levels as float32, MultiThreshold activations)")
    return 0
