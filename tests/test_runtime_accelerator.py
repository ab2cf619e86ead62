"""Accelerator: error paths (files, mismatched layouts, shapes, types), output kinds,
results and the PYNQ-less and hung-board cases (DMA faults: test_runtime_dma_faults.py)."""

import json
import sys
import time

import numpy as np
import pytest
from helpers import board_files, golden_fake, images, tiny_layout, tiny_net

from lowbit_hdl import FC, UINT, Network
from lowbit_hdl.golden import forward
from lowbit_hdl.netfile import save, to_json
from lowbit_hdl.runtime import (
    Accelerator,
    BackendError,
    DesignLayout,
    DmaTimeoutError,
    LayoutError,
    PreprocessError,
    PynqBackend,
    StreamLayout,
)
from lowbit_hdl.runtime.preprocess import quantize


def _acc(tmp_path, net=None, lay=None, **kw):
    net = net or tiny_net()
    lay = lay or tiny_layout(net)
    bit = board_files(tmp_path, lay)
    return Accelerator(bit, backend=PynqBackend(golden_fake(net, lay)), **kw)


def test_missing_files(tmp_path):
    lay = tiny_layout()
    bit = board_files(tmp_path, lay)
    fake = golden_fake(tiny_net(), lay)
    with pytest.raises(FileNotFoundError, match="bitstream .*other.bit does not exist"):
        Accelerator(tmp_path / "other.bit", backend=PynqBackend(fake))
    bit.with_suffix(".hwh").unlink()
    with pytest.raises(FileNotFoundError, match="tiny.hwh is missing"):
        Accelerator(bit, backend=PynqBackend(fake))
    bit2 = board_files(tmp_path / "b", lay)
    (tmp_path / "b" / "layout.json").unlink()
    with pytest.raises(FileNotFoundError, match="layout file"):
        Accelerator(bit2, backend=PynqBackend(fake))
    with pytest.raises(ValueError, match="a bitstream"):
        Accelerator(None, lay, PynqBackend(fake))


def test_layout_from_another_build(tmp_path):
    lay = tiny_layout()
    fake = golden_fake(tiny_net(), lay)
    bit = board_files(tmp_path, lay, name="lenet")
    with pytest.raises(LayoutError, match="network 'tiny' but the bitstream is lenet.bit"):
        Accelerator(bit, backend=PynqBackend(fake))
    bit = board_files(tmp_path / "w", lay, mm2s_tdata_bits=64)
    with pytest.raises(LayoutError, match="MM2S .* 64 bits wide .* 32 bits"):
        Accelerator(bit, backend=PynqBackend(fake))
    bit = board_files(tmp_path / "o", lay, s2mm_tdata_bits=16)
    with pytest.raises(LayoutError, match="S2MM .* 16 bits wide"):
        Accelerator(bit, backend=PynqBackend(fake))
    bit = board_files(tmp_path / "sg", lay, scatter_gather=True)
    with pytest.raises(LayoutError, match="scatter-gather mode"):
        Accelerator(bit, backend=PynqBackend(fake))
    bit = board_files(tmp_path / "d", lay, dma_name="dma")
    with pytest.raises(LayoutError, match="no DMA instance named 'axi_dma_0'.*'dma'"):
        Accelerator(bit, backend=PynqBackend(fake))
    # the DMA under another name works when asked for, or when the build's layout.json
    # names it (ip_names)
    assert Accelerator(bit, backend=PynqBackend(fake), dma_name="dma").dma_name == "dma"
    d = json.loads((tmp_path / "d" / "layout.json").read_text())
    d["ip_names"] = {"dma": "dma", "accelerator": "lowbit_accel_0"}
    (tmp_path / "d" / "layout.json").write_text(json.dumps(d))
    assert Accelerator(bit, backend=PynqBackend(fake)).dma_name == "dma"


def test_network_checked_against_layout(tmp_path):
    net = tiny_net()
    lay = tiny_layout(net)
    save(net, tmp_path / "tiny.npz")
    (tmp_path / "tiny.json").write_text(json.dumps(to_json(net)))
    for network in (net, tmp_path / "tiny.npz", tmp_path / "tiny.json", to_json(net)):
        _acc(tmp_path / "ok", net, lay, network=network)
    other = Network("tiny", (1, 2, 8), [FC("fc0", 4, act=None), ], UINT(8)).randomize()
    with pytest.raises(LayoutError, match="input shape"):
        _acc(tmp_path / "a", net, lay, network=other)
    renamed = tiny_net()
    renamed.name = "tiny2"
    with pytest.raises(LayoutError, match="network name 'tiny2'"):
        _acc(tmp_path / "b", net, lay, network=renamed)
    relabelled = tiny_net()
    relabelled.labels = ["w", "x", "y", "z"]
    with pytest.raises(LayoutError, match="labels differ"):
        _acc(tmp_path / "c", net, lay, network=relabelled)
    with pytest.raises(LayoutError, match="top-3"):
        _acc(tmp_path / "d", net, lay, network=tiny_net(k=3))
    bad = dict(lay.to_json(), input=dict(lay.to_json()["input"], dtype="UINT4"))
    bad["input"]["elems_per_beat"] = 4
    with pytest.raises(LayoutError, match="input type UINT8"):
        _acc(tmp_path / "e", net, DesignLayout.from_json(bad), network=net)


def test_wrong_images(tmp_path):
    acc = _acc(tmp_path)
    with pytest.raises(PreprocessError, match="does not match|neither"):
        acc.classify(np.zeros((2, 5, 5), np.uint8))
    with pytest.raises(PreprocessError, match="float"):
        acc.classify(np.zeros((2, 4, 4), np.float64))
    with pytest.raises(LayoutError, match="NCHW"):
        acc.execute(np.zeros((2, 4, 4), np.int64))
    with pytest.raises(LayoutError, match="out of range"):
        acc.execute(np.full((1, 1, 4, 4), 256))
    with pytest.raises(ValueError, match="batch=0"):
        acc.classify(images(2), batch=0)
    with pytest.raises(ValueError, match="max_batch=0"):
        _acc(tmp_path / "m", max_batch=0)


def test_results(tmp_path):
    net = tiny_net()
    acc = _acc(tmp_path, net)
    imgs = images(9, seed=4)
    res = acc.classify(imgs, k=1)
    gold = forward(net, quantize(imgs[:, None], "UINT8")).output
    np.testing.assert_array_equal(res.outputs, gold)
    np.testing.assert_array_equal(res.top1, gold[:, 0, 0, 0])
    assert res.indices.shape == (9, 1)
    assert res.accuracy(gold[:, 0, 0, 0]) == 1.0
    assert res.accuracy(np.full(9, -1)) == 0.0
    assert acc.classify(imgs).topk_labels()[0] == [net.labels[i] for i in gold[0, :, 0, 0]]
    t = res.timing
    assert t.images == 9 and t.calls == 1 and t.fps > 0 and t.total_s >= t.device_s
    assert "9 images in 1 batch" in t.summary()
    with pytest.raises(ValueError, match="labels for"):
        res.accuracy([1, 2])
    with pytest.raises(ValueError, match="k=3"):
        acc.classify(imgs, k=3)
    single = acc.classify(imgs[0])  # one H×W image
    assert single.outputs.shape == (1, 2, 1, 1)


def test_score_and_raw_outputs(tmp_path):
    net = Network("scores", (1, 2, 2), [FC("fc0", 6, act=None, simd=4, pe=3)], UINT(8),
                  labels=list("uvwxyz")).randomize(3)
    acc_bits = net.infer()[-1].out_dtype.name
    lay = DesignLayout("scores", StreamLayout((1, 2, 2), "UINT8", 4, 32),
                       StreamLayout((6, 1, 1), acc_bits, 3, 64), 100.0, 4,
                       tuple(net.labels))
    assert lay.kind_of_output() == "scores"
    acc = _acc(tmp_path, net, lay)
    imgs = np.random.default_rng(5).integers(0, 256, (5, 2, 2), dtype=np.uint8)
    res = acc.classify(imgs, k=2)
    scores = forward(net, quantize(imgs[:, None], "UINT8")).output.reshape(5, 6)
    np.testing.assert_array_equal(res.indices,
                                  np.argsort(-scores, axis=1, kind="stable")[:, :2])
    assert res.labels == [net.labels[i] for i in res.indices[:, 0]]
    raw = DesignLayout(**{**lay.__dict__, "output_kind": "raw"})
    res = _acc(tmp_path / "raw", net, raw).classify(imgs)
    assert res.indices is None and res.labels is None
    with pytest.raises(ValueError, match="feature map"):
        res.accuracy([0] * 5)


def test_pynq_not_installed(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynq", None)  # import pynq → ImportError
    bit = board_files(tmp_path, tiny_layout())
    with pytest.raises(BackendError, match="pynq package is not installed"):
        Accelerator(bit)


def test_hung_board_times_out(tmp_path):
    net = tiny_net()
    lay = tiny_layout(net)
    bit = board_files(tmp_path, lay)
    fake = golden_fake(net, lay)
    fake.device.stalled = True  # takes input, never outputs
    acc = Accelerator(bit, backend=PynqBackend(fake), timeout_s=0.05)
    t = time.perf_counter()
    with pytest.raises(DmaTimeoutError, match="did not finish within 0.05 s") as e:
        acc.classify(images(1))
    assert time.perf_counter() - t < 5
    assert isinstance(e.value, BackendError) and e.value.channel == "S2MM"
    assert ("dma.reset",) in fake.calls and fake.hangs == []  # reset, nothing spun forever
    fake.device.stalled = False
    assert acc.classify(images(3)).outputs.shape == (3, 2, 1, 1)  # usable after the reset
