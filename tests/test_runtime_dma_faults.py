"""DMA faults on the PYNQ code path, against the fake PYNQ's register model of the AXI DMA
(PG021, direct register mode): a too-long output frame (DMAIntErr), a too-short one (tlast
early), memory errors (DMASlvErr, DMADecErr), a stalled design, a reset that never
completes, an overlay that is not loaded. None may hang, each raises its named error, and
the accelerator streams again after the DMA reset."""

import time

import numpy as np
import pytest
from helpers import board_files, golden_fake, images, tiny_layout, tiny_net

from lowbit_hdl.golden import forward
from lowbit_hdl.runtime import (
    Accelerator,
    BackendError,
    DmaError,
    DmaResetError,
    DmaTimeoutError,
    FramingError,
    OverlayError,
    PynqBackend,
)
from lowbit_hdl.runtime.backend import DmaRegisters, decode_status
from lowbit_hdl.runtime.preprocess import quantize
from lowbit_hdl.sim.fakepynq import FakePynq, FakePynqError

TIMEOUT = 0.2  # s: every fault below must be reported well within a few of these


def _setup(tmp_path, per_frame=False, **fake_kw):
    net = tiny_net()
    lay = tiny_layout(net)
    bit = board_files(tmp_path, lay)
    fake = golden_fake(net, lay, **fake_kw)
    acc = Accelerator(bit, backend=PynqBackend(fake, reset_timeout_s=TIMEOUT),
                      timeout_s=TIMEOUT, per_frame=per_frame)
    return net, fake, acc


def _expected(net, imgs):
    return forward(net, quantize(imgs[:, None], "UINT8")).output


def _fails(acc, exc, match, n=3):
    """classify raises ``exc`` quickly (no timeout unless that is the fault)."""
    t = time.perf_counter()
    with pytest.raises(exc, match=match) as e:
        acc.classify(images(n, seed=7))
    assert time.perf_counter() - t < 10 * TIMEOUT
    return e.value


def _usable_again(net, fake, acc):
    """After the fault: the DMA was reset (bounded: no PYNQ spin), and streams correctly."""
    assert ("dma.reset",) in fake.calls
    assert fake.hangs == []
    imgs = images(5, seed=8)
    np.testing.assert_array_equal(acc.classify(imgs).outputs, _expected(net, imgs))


@pytest.mark.parametrize("per_frame", [False, True])
def test_too_long_output_frame(tmp_path, per_frame):
    net, fake, acc = _setup(tmp_path, per_frame)
    dev = fake.device
    fn, ofb = dev.fn, dev.out_frame_bytes
    dev.fn = lambda x: np.concatenate([fn(x), np.zeros((len(x), 1), np.uint8)], axis=1)
    dev.out_frame_bytes = ofb + 1  # one byte more before tlast than layout.json says
    err = _fails(acc, DmaError, r"S2MM \(receive\) error during receive of output frame 0: "
                                r"DMASR=0x00004011 \[Halted, DMAIntErr, Err_Irq\]: an output "
                                "frame is longer than layout.json says")
    assert type(err) is DmaError and isinstance(err, BackendError)
    assert (err.channel, err.frame, err.status) == ("S2MM", 0, 0x4011)
    assert err.flags == ("Halted", "DMAIntErr", "Err_Irq")
    assert "the DMA was reset and runs again" in str(err)
    dev.fn, dev.out_frame_bytes = fn, ofb
    _usable_again(net, fake, acc)


def test_too_short_output_frame(tmp_path):
    net, fake, acc = _setup(tmp_path)
    dev = fake.device
    fn, ofb = dev.fn, dev.out_frame_bytes
    dev.fn = lambda x: fn(x)[:, :1]
    dev.out_frame_bytes = 1  # tlast one byte early
    err = _fails(acc, FramingError, "output frame 0: the DMA received 1 bytes, expected 2 "
                                    r"\(tlast too early")
    assert (err.channel, err.frame) == ("S2MM", 0)
    dev.fn, dev.out_frame_bytes = fn, ofb
    _usable_again(net, fake, acc)


@pytest.mark.parametrize("channel, error, words", [
    ("S2MM", "DMADecErr", "memory write went to an address nothing decodes"),
    ("S2MM", "DMASlvErr", "memory write was refused"),
    ("MM2S", "DMADecErr", "memory read went to an address nothing decodes"),
    ("MM2S", "DMASlvErr", "memory read was refused"),
])
def test_memory_errors(tmp_path, channel, error, words):
    net, fake, acc = _setup(tmp_path)
    fake.inject_error(channel, error)
    err = _fails(acc, DmaError, f"{channel} .* error .*{error}.*: .*{words}")
    assert err.channel == channel and error in err.flags and "Halted" in err.flags
    assert err.frame == 0
    _usable_again(net, fake, acc)


def test_stalled_design_times_out(tmp_path):
    net, fake, acc = _setup(tmp_path)
    fake.device.stalled = True
    err = _fails(acc, DmaTimeoutError, f"receive of output frame 0 did not finish within "
                                       f"{TIMEOUT:g} s: DMASR=0x00000000 \\[no flags\\]: the "
                                       "accelerator stalled")
    assert err.channel == "S2MM"
    fake.device.stalled = False
    _usable_again(net, fake, acc)


def test_slow_reset_is_polled(tmp_path):
    net, fake, acc = _setup(tmp_path, reset_reads=50)
    fake.inject_error("S2MM", "DMADecErr")
    _fails(acc, DmaError, "DMADecErr")
    _usable_again(net, fake, acc)


def test_reset_that_never_completes(tmp_path):
    net, fake, acc = _setup(tmp_path, reset_reads=None)
    fake.inject_error("S2MM", "DMASlvErr")
    err = _fails(acc, DmaError, f"the DMA reset failed too .*did not come out of reset "
                                f"within {TIMEOUT:g} s")
    assert "DMASlvErr" in err.flags
    # the backend refuses to stream rather than touching a DMA in an unknown state
    t = time.perf_counter()
    with pytest.raises(DmaResetError, match="unusable since a failed reset"):
        acc.classify(images(1))
    assert time.perf_counter() - t < TIMEOUT
    assert fake.hangs == []
    # loading the overlay again gives a fresh DMA
    acc.backend.load(acc.bitfile, acc.dma_name)
    imgs = images(2)
    np.testing.assert_array_equal(acc.classify(imgs).outputs, _expected(net, imgs))


def test_overlay_not_loaded(tmp_path):
    net = tiny_net()
    lay = tiny_layout(net)
    bit = board_files(tmp_path, lay)

    class OtherBitstreamLoaded(FakePynq):
        def Overlay(self, bitfile, download=True):  # noqa: N802
            ol = super().Overlay(bitfile, download)
            self.loaded = "base.bit"  # someone downloaded another bitstream meanwhile
            return ol

    fake = OtherBitstreamLoaded(golden_fake(net, lay).device)
    with pytest.raises(OverlayError, match="tiny.bit is not loaded on the board "
                                           r"\(Overlay not currently loaded\)"):
        Accelerator(bit, backend=PynqBackend(fake))

    class Broken(FakePynq):
        def Overlay(self, bitfile, download=True):  # noqa: N802
            raise RuntimeError("Bitstream download failed")
    with pytest.raises(OverlayError, match="could not load tiny.bit: Bitstream download"):
        Accelerator(bit, backend=PynqBackend(Broken()))
    with pytest.raises(ValueError, match="reset_timeout_s=0"):
        PynqBackend(fake, reset_timeout_s=0)


# -- the register model itself (PG021) ----------------------------------------------------


def test_decode_status():
    assert decode_status(0x4011) == ("Halted", "DMAIntErr", "Err_Irq")
    assert decode_status(0x1002) == ("Idle", "IOC_Irq")
    assert decode_status(0x0060) == ("DMASlvErr", "DMADecErr")
    assert decode_status(0) == ()
    with pytest.raises(TypeError):
        decode_status("0x1")


def test_register_access():
    with pytest.raises(TypeError, match="read\\(offset\\)"):
        DmaRegisters(object())
    with pytest.raises(BackendError, match="no register access"):
        DmaRegisters.of(object())


def _dma(tmp_path, **kw):
    net = tiny_net()
    lay = tiny_layout(net)
    bit = board_files(tmp_path, lay)
    fake = golden_fake(net, lay, **kw)
    dma = fake.Overlay(str(bit)).axi_dma_0
    return fake, dma


def test_fake_error_latches_until_reset(tmp_path):
    fake, dma = _dma(tmp_path)
    src, dst = fake.allocate(16), fake.allocate(128)
    rc, sc, mmio = dma.recvchannel, dma.sendchannel, dma.mmio
    # after the driver started them: running, not yet idle (pynq's _first_transfer)
    assert mmio.read(0x04) == mmio.read(0x34) == 0
    fake.inject_error("recv", "DMADecErr")
    rc.transfer(dst, 0, 2)
    sc.transfer(src, 0, 16)
    assert mmio.read(0x34) == 0x4041  # Err_Irq | DMADecErr | Halted, not Idle
    assert (rc.running, rc.idle, rc.error) == (False, False, True)
    with pytest.raises(RuntimeError, match="DMA channel not started"):  # pynq's wait()
        rc.wait()
    with pytest.raises(RuntimeError, match="DMA channel not started"):
        rc.transfer(dst, 0, 2)
    rc.stop()  # returns: the channel is halted already
    with pytest.raises(FakePynqError, match="start\\(\\) would hang: .*DMADecErr"):
        rc.start()
    assert mmio.read(0x34) & 0x40  # still latched
    mmio.write(0x34, 0x4000)  # Err_Irq is write-1-to-clear, the error bit is not
    assert mmio.read(0x34) == 0x0041
    mmio.write(0x30, 0x4)  # reset (either channel's DMACR resets the whole DMA)
    assert mmio.read(0x30) == 0x0001_0000 and mmio.read(0x00) == 0x0001_0000
    assert mmio.read(0x34) == mmio.read(0x04) == 0x1  # halted, errors cleared
    rc.start()
    sc.start()
    assert rc.running and sc.running
    assert len(fake.hangs) == 1


def test_fake_stop_and_stuck_reset(tmp_path):
    fake, dma = _dma(tmp_path, reset_reads=None)
    dst = fake.allocate(128)
    dma.recvchannel.transfer(dst, 0, 2)  # nothing will ever arrive
    with pytest.raises(FakePynqError, match="stop\\(\\) would hang"):
        dma.recvchannel.stop()
    dma.mmio.write(0x00, 0x4)
    assert all(dma.mmio.read(0x00) & 0x4 for _ in range(100))  # the reset never completes
    with pytest.raises(FakePynqError, match="Python int"):
        dma.mmio.write(0x00, np.uint32(4))
    with pytest.raises(FakePynqError, match="channel.transfer, not a write"):
        dma.mmio.write(0x58, 2)
    with pytest.raises(ValueError, match="channel"):
        fake.inject_error("both", "DMADecErr")
    with pytest.raises(ValueError, match="error"):
        fake.inject_error("recv", "Halted")
    with pytest.raises(ValueError, match="reset_reads"):
        FakePynq(reset_reads=0)
