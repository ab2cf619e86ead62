"""``python -m lowbit_hdl import MODEL.onnx --out net.npz``: a QONNX model as a network file."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import netfile
from ..errors import GraphError, nonnegative_int
from .importer import import_model


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="QONNX model (.onnx), e.g. from Brevitas' "
                                            "export_qonnx")
    p.add_argument("--out", type=Path, required=True, help="network file to write (.npz)")
    p.add_argument("--name", help="network name (default: the model file's name)")
    p.add_argument("--check", type=nonnegative_int, default=0, metavar="N",
                   help="run N random inputs through qonnx's executor and the imported "
                        "network and compare every layer (default: 0, no check)")


def run(args: argparse.Namespace) -> int:
    r = import_model(args.model)
    net = r.network
    if args.name:
        net.name = args.name
        net.infer()
    netfile.save(net, args.out)
    inp = r.input
    if inp.quantizer == "datatype annotation":
        how = "integer levels, as the graph's datatype annotation says"
    else:
        how = (f"the graph's {inp.quantizer} of {inp.A:g}·x {'−' if inp.B < 0 else '+'} "
               f"{abs(inp.B):g}"
               + ("" if inp.dtype.is_bipolar else f", level = value / {inp.scale:g}"))
    print(f"imported {args.model} → {args.out}: {len(net.layers)} layers, input "
          f"{net.input_shape} {net.input_dtype} ({how})")
    for lay in net.layers:
        print(f"  {lay.kind:8s} {lay.name:10s} "
              + (f"weights {lay.weight_dtype}, act {lay.act}" if lay.kind in ("conv", "fc")
                 else ""))
    for note in r.notes:
        print(f"note: {note}")
    if args.check:
        from .check import check

        rep = check(r, args.check)
        print(f"checked against qonnx's executor: {rep.inputs} inputs, {rep.layers} layers, "
              f"{rep.values:,} values, {rep.mismatches} differ; {rep.decisions_differ} class "
              "decisions differ")
        if not rep.ok:
            raise GraphError(f"the imported network differs from qonnx's executor on "
                             f"{rep.mismatches} values and {rep.decisions_differ} decisions")
    if r.near_ties:
        print(f"note: {r.near_ties} threshold(s) lie within float32 rounding of an integer "
              "accumulator; qonnx's float32 executor may decide those differently")
    return 0
