"""cocotb bench of the engine's sequencer (``lowbit_hdl.hw.engine.sequencer``) against
cocotbext-axi's ``AxiRamRead`` (ports ``m_axi__*``, ``bus_separator="__"``) and a fake
datapath: after each ``layer_start`` it records ``cfg``, takes the layer's region words from
``tiles`` (random back-pressure) and pulses ``layer_done`` some cycles after the last word;
for a layer marked rejected it pulses ``layer_done`` with ``layer_error`` the next cycle and
takes no word.

Configuration: ``mem_size``, ``seed``, ``ports`` (read masters ``m_axi``, ``m_axi1``, …,
each served by its own RAM holding the same images; default 1), ``images``
(``[base, words]``: engine images written into the memory) and ``phases``, each with
``base``, ``frames``, ``ar_pause``/``r_pause``/
``delay``/``stall`` (probabilities), ``done_delay`` (max cycles from the last tile word to
``layer_done``), ``bad_from`` (addresses from here answer SLVERR), ``layers`` (per layer
run: ``[cfg value, region words, reject code (0: run it)]``, in order, frame after frame),
``error`` (the expected error code, 0 for none), ``error_layer`` and ``check_cycles`` (the
gap from ``layer_done`` to the next ``layer_start`` against ``gap``, and from
``layer_start`` to the region's first word against ``region_latency``, each + the memory
latency measured on the bus).
"""

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge
from cocotbext.axi import AxiReadBus
from tb_axi import FaultyRam, pauses

from lowbit_hdl.sim.runner import tb_config
from lowbit_hdl.sim.stream import StreamSink, cycle, pulse, start_clock_reset


class Recorder:
    """Stamps the pulses, the AR handshakes and the R beats."""

    def __init__(self, dut) -> None:
        self.dut = dut
        self.starts: list[int] = []
        self.dones: list[int] = []
        self.frame_dones: list[int] = []
        self.run_dones: list[int] = []
        self.ar: list[int] = []
        self.r: list[int] = []
        self.tiles: list[int] = []  # cycles of tile-word handshakes
        cocotb.start_soon(self.run())

    async def run(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk)
            await ReadOnly()
            now = cycle()
            for sig, log in ((d.layer_start, self.starts), (d.layer_done, self.dones),
                             (d.frame_done, self.frame_dones), (d.done, self.run_dones)):
                if int(sig.value):
                    log.append(now)
            if int(d.m_axi__rvalid.value) and int(d.m_axi__rready.value):
                self.r.append(now)
            if int(d.tiles__valid.value) and int(d.tiles__ready.value):
                self.tiles.append(now)
            if int(d.m_axi__arvalid.value) and int(d.m_axi__arready.value):
                self.ar.append(now)


async def fake_datapath(dut, layers: list, ph: dict, seed: int, got: list) -> None:
    """Serve ``len(layers)`` layers: wait for ``layer_start``, record ``cfg``, take the region
    words, pulse ``layer_done``."""
    rng = random.Random(seed)
    snk = StreamSink(dut, "tiles", stall=ph["stall"], seed=seed + 1)
    for _, words, reject in layers:
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            if int(dut.layer_start.value):
                break
        cfg = int(dut.cfg.value)
        if reject:  # rejected at start: done (with the code) the next cycle, no tile taken
            got.append((cfg, []))
            await RisingEdge(dut.clk)
            dut.layer_error.value = reject
        else:
            data = await snk.receive(len(words), timeout_cycles=3000)
            got.append((cfg, data))
            for _ in range(rng.randint(0, ph["done_delay"])):
                await RisingEdge(dut.clk)
            await RisingEdge(dut.clk)
        dut.layer_done.value = 1
        await RisingEdge(dut.clk)
        dut.layer_done.value = 0
        dut.layer_error.value = 0


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def sequencer(dut):
    cfg = tb_config()
    for s in ("start", "frame_free", "layer_done", "layer_error", "tiles__ready"):
        getattr(dut, s).value = 0
    dut.base.value = 0
    dut.frames.value = 0
    rams = []
    for j in range(cfg.get("ports", 1)):
        bus = AxiReadBus.from_prefix(dut, "m_axi" if j == 0 else f"m_axi{j}",
                                     bus_separator="__")
        r = FaultyRam(bus, dut.clk, dut.rst, size=cfg["mem_size"])
        r.rng = random.Random(cfg["seed"] + 7 * j)
        for base, words in cfg["images"]:
            r.write(base, b"".join(int(w).to_bytes(8, "little") for w in words))
        rams.append(r)
    rec = Recorder(dut)
    await start_clock_reset(dut)

    for k, ph in enumerate(cfg["phases"]):
        for j, ram in enumerate(rams):
            ram.ar_channel.set_pause_generator(pauses(random.Random(10 * k + 1 + 100 * j),
                                                      ph["ar_pause"]))
            ram.r_channel.set_pause_generator(pauses(random.Random(10 * k + 2 + 100 * j),
                                                     ph["r_pause"]))
            ram.delay = ph["delay"]
            ram.bad_from = ph.get("bad_from")
        n_start, n_done, n_ar = len(rec.starts), len(rec.dones), len(rec.ar)
        n_frame, n_run = len(rec.frame_dones), len(rec.run_dones)
        got: list = []
        dp = cocotb.start_soon(fake_datapath(dut, ph["layers"], ph, 100 * k, got))
        dut.base.value = ph["base"]
        dut.frames.value = ph["frames"]
        await pulse(dut, dut.start)
        # the loader: the first frame's map at once, the next ones a little later each
        for f in range(ph["frames"]):
            await pulse(dut, dut.frame_free)
            for _ in range(random.Random(k + f).randint(0, 60)):
                await RisingEdge(dut.clk)
        # wait for the end of the run
        for _ in range(20000):
            await RisingEdge(dut.clk)
            if len(rec.run_dones) > n_run:
                break
        else:
            raise TimeoutError(f"phase {k}: no done")
        await ReadOnly()
        assert len(rec.run_dones) == n_run + 1, f"phase {k}: done pulses"
        assert not int(dut.busy.value), f"phase {k}: busy after done"
        code = int(dut.error_code.value)
        assert code == ph["error"], f"phase {k}: error code {code}, expected {ph['error']}"
        assert int(dut.error.value) == int(ph["error"] != 0), f"phase {k}: error flag"
        if ph["error"]:
            assert int(dut.layer.value) == ph["error_layer"], f"phase {k}: error layer"
        await dp  # the datapath got every layer it was due
        assert len(got) == len(ph["layers"]), f"phase {k}: {len(got)} layers run"
        for n, ((cfg_got, words), (cfg_want, want, reject)) in enumerate(
                zip(got, ph["layers"], strict=True)):
            assert cfg_got == cfg_want, f"phase {k}, layer run {n}: cfg {cfg_got:#x}"
            assert words == ([] if reject else want), \
                f"phase {k}, layer run {n}: region words differ"
        assert len(rec.starts) - n_start == len(ph["layers"]), f"phase {k}: layer_start pulses"
        n_frames_done = len(rec.frame_dones) - n_frame
        assert n_frames_done == (ph["frames"] if not ph["error"] else 0), \
            f"phase {k}: {n_frames_done} frame_done pulses"
        for _ in range(5):  # nothing more on tiles
            await RisingEdge(dut.clk)
            await ReadOnly()
            assert not int(dut.tiles__valid.value), f"phase {k}: an extra tile word"
        if ph.get("check_cycles"):
            starts, dones = rec.starts[n_start:], rec.dones[n_done:]
            gaps = []
            for d in dones[:-1]:
                nxt = min(s for s in starts if s > d)
                # the descriptor read: the first AR after the done (the region's bursts
                # are all over by then), and its first R beat
                ar = min(t for t in rec.ar[n_ar:] if t > d)
                l_mem = min(t for t in rec.r if t > ar) - ar
                gaps.append((nxt - d, ph["gap"] + l_mem))
            # between frames the loader and the count read come in between: layers of one
            # frame only
            per_frame = len(ph["layers"]) // ph["frames"]
            inner = [g for i, g in enumerate(gaps) if (i + 1) % per_frame]
            assert inner and all(a == b for a, b in inner), f"phase {k}: gaps {inner}"
            dut._log.info("phase %d: layer gaps %s", k, inner)
            # the region's first word: region_latency + L_mem after layer_start
            firsts = []
            for st in starts:
                ar = min(t for t in rec.ar[n_ar:] if t >= st)
                l_mem = min(t for t in rec.r if t > ar) - ar
                first = min(t for t in rec.tiles if t > st)
                firsts.append((first - st, ph["region_latency"] + l_mem))
            assert all(a == b for a, b in firsts), f"phase {k}: first tile words {firsts}"
        await RisingEdge(dut.clk)
