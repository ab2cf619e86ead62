"""The runtime's control path for hybrid designs (weights in DDR) against the fake PYNQ's
accelerator register model (no RTL): the DDR image in a pynq.allocate buffer, the register
writes per batch, the performance counters, and every error the runtime must name (wrong ID,
AXI error, a run that never finishes, missing or mis-shaped weights)."""

import time

import numpy as np
import pytest
from helpers import board_files, golden_fake, images, tiny_net

from lowbit_hdl.flow.plan import plan_network
from lowbit_hdl.golden import forward
from lowbit_hdl.runtime import Accelerator, PynqBackend, regs
from lowbit_hdl.runtime.backend import DmaError, OverlayError
from lowbit_hdl.runtime.control import DDR_WEIGHTS_FILE, AcceleratorError
from lowbit_hdl.runtime.ddrimage import DdrLayoutError, pack_image
from lowbit_hdl.runtime.preprocess import quantize
from lowbit_hdl.sim.fakepynq import FakeAccelerator


def _setup(tmp_path, weights_file=True, accel_cell=True, **accel_kw):
    net = tiny_net()
    plan = plan_network(net, ddr_layers=["fc0"])
    lay = plan.layout()
    assert lay.ddr is not None
    hwh = {"accelerator": lay.ip_names.accelerator} if accel_cell else {}
    bit = board_files(tmp_path, lay, **hwh)
    weights = {r.layer: next(i for i in plan.infos if i.name == r.layer).weight_matrix()
               for r in lay.ddr.regions}
    if weights_file:
        np.savez(tmp_path / DDR_WEIGHTS_FILE, **weights)
    fake = golden_fake(net, lay, accelerator=FakeAccelerator(lay.ddr, **accel_kw))
    return net, lay, bit, fake, weights


def _expected(net, imgs):
    return forward(net, quantize(imgs[:, None], "UINT8")).output


def _writes(fake):
    return [(c[1], c[2]) for c in fake.calls if c[0] == "ctrl.write"]


def test_image_registers_and_counters(tmp_path):
    net, lay, bit, fake, weights = _setup(tmp_path)
    acc = Accelerator(bit, backend=PynqBackend(fake), max_batch=4)  # finds ddr_weights.npz
    # the image: one extra buffer, allocated first, holding pack_image's bytes, flushed
    image = pack_image(lay.ddr, weights)
    buf = fake.buffers[0]
    assert fake.calls[fake.names().index("allocate")][1] == (max(len(image), 8),)
    assert bytes(np.asarray(buf)[:len(image)]) == image
    assert fake.read_dram(buf.physical_address, len(image)) == image  # flushed to DRAM
    assert buf.physical_address % 4096 == 0
    assert len({b.physical_address for b in fake.buffers}) == len(fake.buffers) == 3
    lo, hi = regs.offset("WEIGHTS_BASE_LO"), regs.offset("WEIGHTS_BASE_HI")
    assert _writes(fake) == [(lo, buf.physical_address), (hi, 0)]

    imgs = images(10)
    res = acc.classify(imgs)
    np.testing.assert_array_equal(res.outputs, _expected(net, imgs))
    # per batch (4, 4, 2): FRAMES, then START, before the batch's first DMA transfer
    frames, ctrl = regs.offset("FRAMES"), regs.offset("CTRL")
    assert _writes(fake)[2:] == [(frames, 4), (ctrl, regs.CTRL_START)] * 2 + [
        (frames, 2), (ctrl, regs.CTRL_START)]
    names = fake.names()
    first_start = next(i for i, c in enumerate(fake.calls)
                       if c == ("ctrl.write", ctrl, regs.CTRL_START))
    assert first_start < names.index("send.transfer")
    # the accelerator read the image the runtime wrote, at the address it was given
    assert fake.accelerator.image == image
    assert fake.accelerator.runs == 3
    # the counters, summed over the three batches
    assert res.timing.counters == {"CYCLES": 100 * 10, "STALL_CYCLES": 0,
                                   "BYTES_READ": lay.ddr.bytes_per_frame * 10}


def test_weights_given_as_dict_and_path(tmp_path):
    net, lay, bit, fake, weights = _setup(tmp_path, weights_file=False)
    acc = Accelerator(bit, backend=PynqBackend(fake), ddr_weights=weights)
    imgs = images(3)
    np.testing.assert_array_equal(acc.classify(imgs).outputs, _expected(net, imgs))
    np.savez(tmp_path / "w.npz", **weights)
    net, lay, bit, fake, _ = _setup(tmp_path / "b", weights_file=False)
    Accelerator(bit, backend=PynqBackend(fake), ddr_weights=tmp_path / "w.npz")
    assert fake.accelerator is not None


def test_id_mismatch(tmp_path):
    *_, bit, fake, _ = _setup(tmp_path, ident=0x1234_5678)
    with pytest.raises(AcceleratorError, match=r"ID register reads 0x12345678, expected "
                                                r"0x4C420001"):
        Accelerator(bit, backend=PynqBackend(fake))


def test_no_control_cell(tmp_path):
    *_, bit, fake, _ = _setup(tmp_path, accel_cell=False)
    with pytest.raises(OverlayError, match="no control port 'lowbit_accel_0'"):
        Accelerator(bit, backend=PynqBackend(fake))


@pytest.mark.parametrize("code, name", [(regs.ERROR_AXI_SLVERR, "SLVERR"),
                                        (regs.ERROR_AXI_DECERR, "DECERR")])
def test_axi_error_is_reported_and_recovered(tmp_path, code, name):
    net, lay, bit, fake, _ = _setup(tmp_path, fail=code)
    acc = Accelerator(bit, backend=PynqBackend(fake), timeout_s=5.0)
    t0 = time.perf_counter()
    with pytest.raises(AcceleratorError, match=rf"DDR read error: AXI .* \({name}\)"):
        acc.classify(images(2))
    assert time.perf_counter() - t0 < 1.0  # reported at once, not after the timeout
    # the runtime soft-resets the block; once the fault is gone the next run works
    assert _writes(fake)[-1] == (regs.offset("CTRL"), regs.CTRL_SOFT_RESET)
    fake.accelerator.fail = None
    imgs = images(2, seed=5)
    np.testing.assert_array_equal(acc.classify(imgs).outputs, _expected(net, imgs))


def test_image_outside_memory_is_a_decode_error(tmp_path):
    *_, bit, fake, _ = _setup(tmp_path)
    acc = Accelerator(bit, backend=PynqBackend(fake))
    # a wrong base address (not the image's buffer): the read decodes to nothing
    fake.accelerator.write(regs.offset("WEIGHTS_BASE_LO"), 0x0800_0000)
    with pytest.raises(AcceleratorError, match="DECERR"):
        acc.classify(images(1))


def test_never_done_times_out(tmp_path):
    *_, bit, fake, _ = _setup(tmp_path, never_done=True)
    acc = Accelerator(bit, backend=PynqBackend(fake), timeout_s=0.2)
    t0 = time.perf_counter()
    with pytest.raises(AcceleratorError, match=r"did not finish its run within 0.2 s "
                                                r"\(STATUS 0x1\)"):
        acc.classify(images(2))
    assert time.perf_counter() - t0 < 2.0
    assert _writes(fake)[-1] == (regs.offset("CTRL"), regs.CTRL_SOFT_RESET)
    assert not fake.accelerator.busy


def test_dma_error_stops_the_run(tmp_path):
    net, lay, bit, fake, _ = _setup(tmp_path)
    acc = Accelerator(bit, backend=PynqBackend(fake), timeout_s=1.0)
    fake.inject_error("MM2S", "DMASlvErr")
    with pytest.raises(DmaError):
        acc.classify(images(2))
    # the frames never arrived: the runtime soft-resets the accelerator, which is usable again
    assert _writes(fake)[-1] == (regs.offset("CTRL"), regs.CTRL_SOFT_RESET)
    imgs = images(2, seed=7)
    np.testing.assert_array_equal(acc.classify(imgs).outputs, _expected(net, imgs))


def test_busy_at_start(tmp_path):
    *_, bit, fake, _ = _setup(tmp_path)
    acc = Accelerator(bit, backend=PynqBackend(fake))
    fake.accelerator.write(regs.offset("FRAMES"), 5)
    fake.accelerator.write(regs.offset("CTRL"), regs.CTRL_START)  # a run nobody feeds
    with pytest.raises(AcceleratorError, match="still busy"):
        acc.classify(images(1))


def test_missing_weights_file(tmp_path):
    *_, bit, fake, _ = _setup(tmp_path, weights_file=False)
    with pytest.raises(FileNotFoundError, match=DDR_WEIGHTS_FILE):
        Accelerator(bit, backend=PynqBackend(fake))


def test_missing_layer(tmp_path):
    *_, bit, fake, weights = _setup(tmp_path, weights_file=False)
    with pytest.raises(DdrLayoutError, match="layer fc0: no weights given"):
        Accelerator(bit, backend=PynqBackend(fake), ddr_weights={"fc1": weights["fc0"]})


def test_misshaped_weights(tmp_path):
    *_, bit, fake, weights = _setup(tmp_path, weights_file=False)
    with pytest.raises(DdrLayoutError, match=r"layer fc0: weights of shape \(16, 8\), the "
                                             r"region holds \(8, 16\)"):
        Accelerator(bit, backend=PynqBackend(fake), ddr_weights={"fc0": weights["fc0"].T})


def test_fake_accelerator_checks():
    acc = FakeAccelerator()
    assert acc.read(regs.offset("ID")) == regs.ID_VALUE
    with pytest.raises(AssertionError, match="offset 6"):
        acc.read(6)
    with pytest.raises(AssertionError, match="Python int"):
        acc.write(0, np.uint32(1))
    with pytest.raises(ValueError, match="fail=0"):
        FakeAccelerator(fail=regs.ERROR_NONE)
