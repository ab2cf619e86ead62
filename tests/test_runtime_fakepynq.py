"""The PYNQ code path against the fake PYNQ: recorded calls (buffers, dtypes, sizes, DMA
ordering, cache maintenance), results, power, and the fake's own checks."""

import numpy as np
import pytest
from helpers import board_files, golden_fake, images, tiny_layout, tiny_net

from lowbit_hdl.golden import forward
from lowbit_hdl.runtime import Accelerator, PynqBackend
from lowbit_hdl.runtime.backend import RECV_ALIGN
from lowbit_hdl.runtime.preprocess import quantize
from lowbit_hdl.sim.fakepynq import FakeDevice, FakePynq, FakePynqError, write_test_hwh


def _expected(net, imgs):
    return forward(net, quantize(imgs[:, None], "UINT8")).output


def _setup(tmp_path, **fake_kw):
    net = tiny_net()
    lay = tiny_layout(net)
    bit = board_files(tmp_path, lay)
    fake = golden_fake(net, lay, **fake_kw)
    return net, lay, bit, fake


def test_calls_buffers_and_ordering(tmp_path):
    net, lay, bit, fake = _setup(tmp_path)
    acc = Accelerator(bit, backend=PynqBackend(fake), max_batch=8)
    imgs = images(20)
    res = acc.classify(imgs)
    np.testing.assert_array_equal(res.outputs, _expected(net, imgs))
    np.testing.assert_array_equal(res.indices, res.outputs.reshape(20, 2))
    assert res.labels == [lay.labels[i] for i in res.top1]

    ifb, ofb = lay.input.frame_bytes, lay.output.frame_bytes
    assert (ifb, ofb) == (16, 2)
    allocs = [c for c in fake.calls if c[0] == "allocate"]
    # two buffers, allocated once, uint8, sized for max_batch frames
    assert allocs == [("allocate", (8 * ifb,), "uint8"),
                      ("allocate", (8 * RECV_ALIGN,), "uint8")]
    assert fake.calls[0] == ("Overlay", str(bit))

    names = fake.names()
    # per batch: flush, recv armed, then one send of the whole batch, then per frame a wait
    # (and the next frame's recv), the send's wait last, then invalidate
    batches = [8, 8, 4]
    pos = names.index("flush")
    for n in batches:
        seq = fake.calls[pos:pos + 3 + 2 * n + 1]
        assert seq[0] == ("flush", 0)
        assert seq[1] == ("recv.transfer", 1, 0, ofb)
        assert seq[2] == ("send.transfer", 0, 0, n * ifb)
        for k in range(n):
            assert seq[3 + 2 * k] == ("recv.wait",)
            if k + 1 < n:
                assert seq[4 + 2 * k] == ("recv.transfer", 1, (k + 1) * RECV_ALIGN, ofb)
        assert seq[3 + 2 * n - 1] == ("send.wait",)
        assert fake.calls[pos + 3 + 2 * n] == ("invalidate", 1)
        pos += 3 + 2 * n + 1
    assert fake.calls[pos:] == [("get_rails",)]  # power, after the work

    # a second call reuses the buffers
    acc.classify(imgs[:3], batch=3)
    assert names.count("allocate") == fake.names().count("allocate") == 2
    acc.close()
    assert fake.names()[-2:] == ["freebuffer", "freebuffer"]


def test_per_frame_mode(tmp_path):
    net, lay, bit, fake = _setup(tmp_path)
    acc = Accelerator(bit, backend=PynqBackend(fake), per_frame=True, max_batch=4)
    imgs = images(5, seed=3)
    np.testing.assert_array_equal(acc.classify(imgs).outputs, _expected(net, imgs))
    transfers = [c for c in fake.calls if c[0].endswith("transfer")]
    assert len(transfers) == 10
    for k, (r, s) in enumerate(zip(transfers[0::2], transfers[1::2], strict=True)):
        slot = k % 4
        assert r == ("recv.transfer", 1, slot * RECV_ALIGN, 2)
        assert s == ("send.transfer", 0, slot * RECV_ALIGN, 16)
    assert res_timing_latency(acc, imgs[:2])


def res_timing_latency(acc, imgs):
    t = acc.classify(imgs, batch=1).timing
    return t.calls == 2 and t.latency_s is not None and t.fps > 0


def test_explicit_cache_maintenance_suffices(tmp_path):
    """Like PYNQ before 2.6: no flush in transfer, no invalidate in wait."""
    net, lay, bit, fake = _setup(tmp_path, implicit_cache_ops=False)
    acc = Accelerator(bit, backend=PynqBackend(fake))
    imgs = images(6, seed=1)
    np.testing.assert_array_equal(acc.classify(imgs).outputs, _expected(net, imgs))


class NoCacheBackend(PynqBackend):
    """A broken driver that forgets the cache maintenance."""

    def stream(self, send, recv, frames, framing, timeout_s=10.0):
        class Plain:  # hide flush/invalidate
            pass
        sc, rc = self._dma.sendchannel, self._dma.recvchannel
        rc.transfer(recv, start=0, nbytes=framing.out_frame_bytes)
        sc.transfer(send, start=0, nbytes=frames * framing.in_frame_bytes)
        for k in range(frames):
            rc.wait()
            if k + 1 < frames:
                rc.transfer(recv, start=(k + 1) * framing.out_stride,
                            nbytes=framing.out_frame_bytes)
        sc.wait()
        from lowbit_hdl.runtime.backend import StreamStats
        return StreamStats(frames, 0.0)


def test_fake_catches_missing_cache_maintenance(tmp_path):
    net, lay, bit, fake = _setup(tmp_path, implicit_cache_ops=False)
    acc = Accelerator(bit, backend=NoCacheBackend(fake))
    imgs = images(6, seed=1)
    # the device sees stale (zero) DRAM and the CPU sees a stale receive buffer
    assert not np.array_equal(acc.classify(imgs).outputs, _expected(net, imgs))


def test_batches_split_at_dma_maximum(tmp_path):
    net = tiny_net()
    lay = tiny_layout(net)
    bit = board_files(tmp_path, lay, sg_length_width=6)  # at most 63 bytes = 3 frames
    fake = golden_fake(net, lay)
    acc = Accelerator(bit, backend=PynqBackend(fake))
    assert acc.max_batch == 3
    imgs = images(7, seed=2)
    res = acc.classify(imgs)
    np.testing.assert_array_equal(res.outputs, _expected(net, imgs))
    sends = [c for c in fake.calls if c[0] == "send.transfer"]
    assert [c[3] for c in sends] == [48, 48, 16]
    assert res.timing.calls == 3
    with pytest.raises(ValueError, match="batch=4 must be in 1..3"):
        acc.classify(imgs, batch=4)


def test_frame_larger_than_dma_maximum(tmp_path):
    lay = tiny_layout()
    bit = board_files(tmp_path, lay, sg_length_width=4)  # 15 bytes < 16-byte frame
    with pytest.raises(Exception, match="c_sg_length_width"):
        Accelerator(bit, backend=PynqBackend(golden_fake(tiny_net(), lay)))


def test_power_from_rails(tmp_path):
    net, lay, bit, fake = _setup(tmp_path, rails={"VCCINT": 0.25, "VCCAUX": 0.5})
    res = Accelerator(bit, backend=PynqBackend(fake)).classify(images(2))
    assert res.power_w == {"VCCINT": 0.25, "VCCAUX": 0.5}
    assert "get_rails" in fake.names()
    net, lay, bit, fake = _setup(tmp_path / "b")
    assert Accelerator(bit, backend=PynqBackend(fake)).classify(images(2)).power_w is None

    class Broken(FakePynq):
        def get_rails(self):
            raise OSError("no PMBus")
    broken = Broken(fake.device)
    assert PynqBackend(broken).power() is None


def test_framing_error_reported(tmp_path):
    net = tiny_net()
    lay = tiny_layout(net)
    bit = board_files(tmp_path, lay)
    # the device's output frames are 1 byte short: the S2MM transfer ends early
    dev = FakeDevice(16, 1, lambda x: np.zeros((len(x), 1), np.uint8))
    acc = Accelerator(bit, backend=PynqBackend(FakePynq(dev)))
    with pytest.raises(Exception, match="received 1 bytes, expected 2"):
        acc.classify(images(2))


# -- the fake's own checks (what would fail or hang on a board) ------------------------------


def _dma(tmp_path, **dev_kw):
    lay = tiny_layout()
    bit = board_files(tmp_path, lay)
    dev = FakeDevice(16, 2, lambda x: np.zeros((len(x), 2), np.uint8), **dev_kw)
    fake = FakePynq(dev)
    ol = fake.Overlay(str(bit))
    return fake, ol.axi_dma_0


def test_fake_requires_recv_before_send(tmp_path):
    fake, dma = _dma(tmp_path)
    buf = fake.allocate(32)
    with pytest.raises(FakePynqError, match="before the receive channel was armed"):
        dma.sendchannel.transfer(buf)


def test_fake_checks_buffers(tmp_path):
    fake, dma = _dma(tmp_path)
    with pytest.raises(FakePynqError, match="not allocated with pynq.allocate"):
        dma.recvchannel.transfer(np.zeros(16, np.uint8))
    f32 = fake.allocate((4,), dtype=np.float32)
    with pytest.raises(FakePynqError, match="dtype float32"):
        dma.recvchannel.transfer(f32)
    buf = fake.allocate(256)
    with pytest.raises(FakePynqError, match="not allocated"):  # a slice is not a buffer
        dma.recvchannel.transfer(buf[16:])
    with pytest.raises(FakePynqError, match="outside"):
        dma.recvchannel.transfer(buf, start=250, nbytes=16)
    with pytest.raises(RuntimeError, match="unaligned"):
        dma.recvchannel.transfer(buf, start=3, nbytes=2)
    with pytest.raises(ValueError, match="exceeds the maximum"):
        big = fake.allocate(1 << 27)
        dma.recvchannel.transfer(big)
    buf.freebuffer()
    with pytest.raises(FakePynqError, match="freed"):
        dma.recvchannel.transfer(buf)


def test_fake_detects_hangs_and_misuse(tmp_path):
    fake, dma = _dma(tmp_path, capacity=1)
    src, dst = fake.allocate(16 * 4), fake.allocate(256)
    with pytest.raises(FakePynqError, match="without a transfer"):
        dma.recvchannel.wait()
    dma.recvchannel.transfer(dst, 0, 2)
    with pytest.raises(FakePynqError, match="would block forever: no output"):
        dma.recvchannel.wait()
    with pytest.raises(FakePynqError, match="not waited"):
        dma.recvchannel.transfer(dst, 0, 2)
    with pytest.raises(FakePynqError, match="whole 16-byte frames"):
        dma.sendchannel.transfer(src, 0, 24)
    dma.sendchannel.transfer(src, 0, 64)  # 4 frames, 1 received, design holds 1
    with pytest.raises(FakePynqError, match="sendchannel.wait\\(\\) would block forever"):
        dma.sendchannel.wait()


def test_fake_overlay_errors(tmp_path):
    lay = tiny_layout()
    bit = board_files(tmp_path, lay)
    fake = FakePynq()
    with pytest.raises(OSError):
        fake.Overlay(str(tmp_path / "other.bit"))
    ol = fake.Overlay(str(bit))
    with pytest.raises(AttributeError, match="Could not find IP"):
        _ = ol.axi_dma_1
    with pytest.raises(AttributeError):
        _ = ol.processing_system7_0  # exists, but is not a DMA
    write_test_hwh(tmp_path / "x.hwh")
    (tmp_path / "x.hwh").rename(tmp_path / "y.txt")
    (tmp_path / "y.bit").write_bytes(b"")
    with pytest.raises(ValueError, match="HWH"):
        fake.Overlay(str(tmp_path / "y.bit"))
