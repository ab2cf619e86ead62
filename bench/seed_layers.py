"""Single-layer co-simulations of the seed networks' layer shapes at their real sizes
(issue 13): each Conv/FC layer of DoReFa AlexNet W1A2 or Tiny-YOLO W1A3 becomes a one-layer
network (its input shape and type, its folding, random weights and thresholds), placed on
chip or in DDR as the hybrid design places it, and goes through the generated RTL under
Verilator (cocotb, DDR models from cocotbext-axi) bit-exactly against the golden model.

    python bench/seed_layers.py alexnet fc0 conv3          # some layers
    python bench/seed_layers.py tiny_yolo conv7 --frames 2
    python bench/seed_layers.py alexnet --list              # shapes, placements, cycles

``--folding`` takes a folding file (``{layer: {pe, simd}}``, optionally ``placements``:
``{layer: onchip|stream|tiled}``; default ``bench/foldings/<net>.hybrid.json``). Prints the
measured cycles per frame against the plan's and the wall time. Large on-chip layers take
long to build (their weights become ROM logic).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lowbit_hdl.flow.plan import plan_network  # noqa: E402
from lowbit_hdl.ir import FC, Conv, Network  # noqa: E402
from lowbit_hdl.netfile import load_network  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NETS = {"alexnet": "networks/dorefa_alexnet_w1a2.py", "tiny_yolo": "networks/tiny_yolo_w1a3.py"}
FOLDINGS = {"alexnet": "bench/foldings/dorefa_alexnet_w1a2.hybrid.json",
            "tiny_yolo": "bench/foldings/tiny_yolo_w1a3.hybrid.json"}


def single_layer(net: Network, name: str, pe: int, simd: int, seed: int) -> Network:
    """Layer ``name`` of ``net`` alone, at folding (pe, simd), with random parameters."""
    info = next(i for i in net.infer() if i.name == name)
    lay = info.layer
    if isinstance(lay, Conv):
        new = Conv(lay.name, lay.out_channels, lay.kernel, stride=lay.stride,
                   padding=lay.padding, weight_dtype=lay.weight_dtype, act=lay.act, pe=pe,
                   simd=simd, pad_value=lay.pad_value)
    elif isinstance(lay, FC):
        new = FC(lay.name, lay.out_features, weight_dtype=lay.weight_dtype, act=lay.act,
                 pe=pe, simd=simd)
    else:
        raise SystemExit(f"{name} is not a Conv/FC layer")
    return Network(f"{net.name}_{name}", info.in_shape, [new], info.in_dtype).randomize(seed)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("net", choices=sorted(NETS))
    ap.add_argument("layers", nargs="*")
    ap.add_argument("--folding", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--stall", type=float, default=0.0)
    ap.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    net = load_network(ROOT / NETS[a.net], seed=a.seed)
    fold = json.loads((a.folding or ROOT / FOLDINGS[a.net]).read_text())
    placements = fold.get("placements", {})
    ok = True
    for info in net.infer():
        if not info.is_mvtu or (a.layers and info.name not in a.layers):
            continue
        f = fold.get(info.name, {"pe": info.layer.pe, "simd": info.layer.simd})
        one = single_layer(net, info.name, f["pe"], f["simd"], a.seed)
        placement = placements.get(info.name, "onchip")
        ddr = [info.name] if placement != "onchip" else []
        plan = plan_network(one, ddr_layers=ddr)
        print(f"{info.name}: {info.in_shape} → {info.out_shape}, {info.layer.weight_dtype} × "
              f"{info.in_dtype}, PE={f['pe']} SIMD={f['simd']}, {placement}: "
              f"{plan.cycles_per_frame:,} cycles per frame", flush=True)
        if a.list:
            continue
        from lowbit_hdl.sim.network import simulate_network

        t0 = time.monotonic()
        res = simulate_network(one, frames=a.frames, stall=a.stall, plan=plan, seed=a.seed,
                               simulator=a.simulator)
        print(res.summary())
        print(f"{info.name}: wall time {time.monotonic() - t0:.0f} s\n", flush=True)
        ok &= res.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
