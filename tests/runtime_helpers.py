"""Shared pieces of the runtime tests: a tiny network, its stream layout, board files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lowbit_hdl import FC, UINT, Network, TopK
from lowbit_hdl.golden import forward
from lowbit_hdl.runtime.backend import FakeDevice, FakePynq
from lowbit_hdl.runtime.hwh import write_test_hwh
from lowbit_hdl.runtime.layout import DesignLayout, StreamLayout


def tiny_net(seed: int = 0, k: int = 2) -> Network:
    """16 UINT8 pixels → FC 8 (bipolar) → FC 4 (raw) → top-k, labels a..d."""
    net = Network("tiny", (1, 4, 4), [FC("fc0", 8, pe=2, simd=4),
                                      FC("fc1", 4, act=None, pe=2, simd=4), TopK("top", k=k)],
                  UINT(8), labels=["a", "b", "c", "d"])
    return net.randomize(seed)


def tiny_layout(net: Network | None = None, in_elems: int = 4, in_bits: int = 32,
                **kw) -> DesignLayout:
    net = net if net is not None else tiny_net()
    k = net.layers[-1].k
    args = dict(network=net.name, input=StreamLayout(net.input_shape, "UINT8", in_elems,
                                                     in_bits),
                output=StreamLayout((k, 1, 1), "UINT2", 1, 8), clock_mhz=100.0,
                cycles_per_frame=16, labels=tuple(net.labels))
    args.update(kw)
    return DesignLayout(**args)


def board_files(folder: Path, layout: DesignLayout, name: str | None = None,
                **hwh) -> Path:
    """<name>.bit (dummy), <name>.hwh (one AXI DMA matching the layout), layout.json."""
    name = name or layout.network
    folder.mkdir(parents=True, exist_ok=True)
    bit = folder / f"{name}.bit"
    bit.write_bytes(b"\x00" * 16)
    args = dict(mm2s_tdata_bits=layout.input.tdata_bits,
                s2mm_tdata_bits=layout.output.tdata_bits)
    args.update(hwh)
    write_test_hwh(folder / f"{name}.hwh", **args)
    layout.save(folder / "layout.json")
    return bit


def golden_fake(net: Network, layout: DesignLayout, **kw) -> FakePynq:
    """A fake PYNQ whose device computes the golden model (tests the PYNQ code path only)."""
    dev = FakeDevice.from_layout(layout, lambda x: forward(net, x).output)
    return FakePynq(dev, **kw)


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 4, 4), dtype=np.uint8)


def hw_library() -> dict:
    """The build flow's module library (lowbit_hdl.hw)."""
    from lowbit_hdl.flow.top import default_library

    return default_library()


def scores_net(seed: int = 0) -> Network:
    """16 UINT8 pixels → FC 8 (bipolar) → FC 4 raw scores (no TopK), labels a..d."""
    return Network("tinys", (1, 4, 4), [FC("fc0", 8, pe=2, simd=4),
                                        FC("fc1", 4, act=None, pe=2, simd=4)],
                   UINT(8), labels=["a", "b", "c", "d"]).randomize(seed)
