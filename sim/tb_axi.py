"""cocotb benches of the AXI hardware (``lowbit_hdl.hw.axi``), one test per top level (run
with ``testcase=``):

* ``read_master``: an ``AXI4ReadMaster`` against cocotbext-axi's ``AxiRamRead`` (ports
  ``m_axi__*``, ``bus_separator="__"``). Configuration: ``data_width``, ``max_burst``,
  ``max_outstanding``, ``mem_size``, ``seed`` and ``phases``, each with ``commands``
  (``[addr, beats]``), ``stall_out`` (consumer), ``ar_pause``/``r_pause`` (probabilities of
  the memory holding AR ready or R valid low), ``delay`` (probability of a random 1–20 cycle
  latency before a beat), ``bad_from`` (addresses from here answer SLVERR) and
  ``check_cycles`` (exact cycles: ``N + L_mem + latency``, ``L_mem`` measured on the bus).
  A bus monitor checks every burst (length, 4 KiB, size, INCR), the number in flight and
  that RREADY is never low under RVALID.
* ``lite_regs``: an ``AXI4LiteRegisters`` against cocotbext-axi's ``AxiLiteMaster``
  (``s_axil__*``). Configuration: ``registers`` (``[name, access, reset]``) and ``seed``.
"""

import random

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiRamRead, AxiReadBus, AxiResp

from lowbit_hdl.sim.runner import tb_config
from lowbit_hdl.sim.stream import StreamSink, StreamSource, cycle, pulse, start_clock_reset

PAGE = 4096


def pauses(rng: random.Random, p: float):
    """Endless pause pattern: True with probability ``p`` each cycle."""
    while True:
        yield p > 0 and rng.random() < p


class FaultyRam(AxiRamRead):
    """``AxiRamRead`` with random extra latency and a region that answers SLVERR (the model
    answers SLVERR when ``_read`` raises)."""

    rng = random.Random(0)
    delay = 0.0
    bad_from: int | None = None

    async def _read(self, address, length):
        if self.delay and self.rng.random() < self.delay:
            await ClockCycles(self.clock, self.rng.randint(1, 20))
        if self.bad_from is not None and address >= self.bad_from:
            raise OSError(f"read at {address:#x} in the faulty region")
        return await super()._read(address, length)


class BusMonitor:
    """Checks the AXI read channels every cycle and stamps the handshakes."""

    def __init__(self, dut, bpb: int, max_burst: int, max_outstanding: int) -> None:
        self.dut, self.bpb = dut, bpb
        self.max_burst, self.max_outstanding = max_burst, max_outstanding
        self.ar: list[tuple[int, int, int]] = []  # (cycle, addr, beats)
        self.r: list[int] = []  # cycles of R beats
        self.inflight = 0
        self.errors: list[str] = []
        cocotb.start_soon(self.run())

    async def run(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk)
            await ReadOnly()
            if int(d.rst.value):
                continue
            now = cycle()
            if int(d.m_axi__arvalid.value) and int(d.m_axi__arready.value):
                addr, beats = int(d.m_axi__araddr.value), int(d.m_axi__arlen.value) + 1
                self.ar.append((now, addr, beats))
                self.inflight += 1
                if beats > self.max_burst:
                    self.errors.append(f"burst of {beats} beats at {addr:#x}")
                if addr // PAGE != (addr + beats * self.bpb - 1) // PAGE:
                    self.errors.append(f"burst {addr:#x}+{beats} crosses 4 KiB")
                if addr % self.bpb or 1 << int(d.m_axi__arsize.value) != self.bpb:
                    self.errors.append(f"unaligned address {addr:#x} or wrong ARSIZE")
                if int(d.m_axi__arburst.value) != 1:
                    self.errors.append("ARBURST is not INCR")
            if int(d.m_axi__rvalid.value):
                if not int(d.m_axi__rready.value):
                    self.errors.append(f"RREADY low under RVALID at cycle {now}")
                else:
                    self.r.append(now)
                    if int(d.m_axi__rlast.value):
                        self.inflight -= 1
            if self.inflight > self.max_outstanding:
                self.errors.append(f"{self.inflight} bursts in flight at cycle {now}")


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def read_master(dut):
    cfg = tb_config()
    bpb = cfg["data_width"] // 8
    rng = random.Random(cfg["seed"])
    dut.clear.value = 0
    dut.cmd__valid.value = 0
    dut.o__ready.value = 0
    bus = AxiReadBus.from_prefix(dut, "m_axi", bus_separator="__")
    ram = FaultyRam(bus, dut.clk, dut.rst, size=cfg["mem_size"])
    ram.rng = random.Random(cfg["seed"] + 1)
    image = rng.randbytes(cfg["mem_size"])
    ram.write(0, image)
    mon = BusMonitor(dut, bpb, cfg["max_burst"], cfg["max_outstanding"])
    await start_clock_reset(dut)
    addr_bits = len(dut.m_axi__araddr)

    for k, ph in enumerate(cfg["phases"]):
        ram.ar_channel.set_pause_generator(pauses(random.Random(10 * k + 1), ph["ar_pause"]))
        ram.r_channel.set_pause_generator(pauses(random.Random(10 * k + 2), ph["r_pause"]))
        ram.delay = ph["delay"]
        bad = ph.get("bad_from")
        ram.bad_from = bad
        await pulse(dut, dut.clear)
        n_ar, n_r = len(mon.ar), len(mon.r)
        expected = []
        for addr, beats in ph["commands"]:
            for j in range(beats):
                a = addr + j * bpb
                word = 0 if bad is not None and a >= bad else int.from_bytes(
                    image[a:a + bpb], "little")
                expected.append(word)
        src = StreamSource(dut, "cmd", stall=0.0, seed=3 * k)
        snk = StreamSink(dut, "o", stall=ph["stall_out"], seed=3 * k + 1)
        send = cocotb.start_soon(src.send([a | b << addr_bits for a, b in ph["commands"]]))
        got = await snk.receive(len(expected), timeout_cycles=2000)
        await send
        for j, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert g == e, f"phase {k}, word {j}: got {g:#x}, expected {e:#x}"
        for _ in range(10):  # nothing more comes out, and the master goes idle
            await ReadOnly()
            assert not int(dut.o__valid.value), f"phase {k}: an extra output word"
            await RisingEdge(dut.clk)
        await ReadOnly()
        assert not int(dut.busy.value), f"phase {k}: busy after the last word"
        assert not mon.errors, f"phase {k}: " + "; ".join(mon.errors[:5])
        beats = sum(b for _, b in ph["commands"])
        assert sum(b for _, _, b in mon.ar[n_ar:]) == beats, f"phase {k}: burst beats"
        assert int(dut.bytes_read.value) == beats * bpb, f"phase {k}: bytes_read"
        if bad is None:
            assert not int(dut.error.value), f"phase {k}: error without a bad read"
        else:
            assert int(dut.error.value) == 1, f"phase {k}: SLVERR did not set error"
            assert int(dut.error_code.value) == int(AxiResp.SLVERR), f"phase {k}: error code"
        if ph.get("check_cycles"):
            l_mem = mon.r[n_r] - mon.ar[n_ar][0]
            measured = snk.cycles[-1] - src.accepted_at[0] + 1
            want = beats + l_mem + cfg["latency"]
            assert measured == want, (f"phase {k}: {measured} cycles for {beats} beats, "
                                      f"expected N + L_mem + latency = {beats} + {l_mem} + "
                                      f"{cfg['latency']} = {want}")
            dut._log.info("phase %d: %d beats in %d cycles (L_mem %d)", k, beats, measured,
                          l_mem)
        await RisingEdge(dut.clk)
    await pulse(dut, dut.clear)
    await ReadOnly()
    assert not int(dut.error.value) and not int(dut.error_code.value), "clear left the error"
    assert not int(dut.bytes_read.value), "clear left bytes_read"


class PulseMonitor:
    """Records (cycle, value) of every cycle a w1s port is non-zero."""

    def __init__(self, dut, ports: list[str]) -> None:
        self.dut, self.seen = dut, {p: [] for p in ports}
        cocotb.start_soon(self.run())

    async def run(self) -> None:
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            for p, log in self.seen.items():
                v = int(getattr(self.dut, p).value)
                if v:
                    log.append((cycle(), v))


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def lite_regs(dut):
    cfg = tb_config()
    rng = random.Random(cfg["seed"])
    regs = cfg["registers"]
    ro_values = {}
    for name, access, _ in regs:
        if access == "ro":
            ro_values[name] = rng.getrandbits(32)
            getattr(dut, name.lower()).value = ro_values[name]
    bus = AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__")
    master = AxiLiteMaster(bus, dut.clk, dut.rst)
    pulses = PulseMonitor(dut, [n.lower() for n, a, _ in regs if a == "w1s"])
    await start_clock_reset(dut)
    value = {n: (ro_values.get(n, 0) if a != "rw" else r) for n, a, r in regs}
    value.update({n: 0 for n, a, _ in regs if a == "w1s"})

    async def read(off: int) -> tuple[int, AxiResp]:
        resp = await master.read(off, 4)
        return int.from_bytes(resp.data, "little"), resp.resp

    async def check_all(when: str) -> None:
        for i, (name, access, _) in enumerate(regs):
            got, resp = await read(4 * i)
            assert resp == AxiResp.OKAY, f"{when}: read {name}: {resp}"
            assert got == value[name], f"{when}: {name} reads {got:#x}, expected {value[name]:#x}"
            if access == "rw":
                port = int(getattr(dut, name.lower()).value)
                assert port == value[name], f"{when}: port {name.lower()} = {port:#x}"

    await check_all("after reset")
    # writes, with AW and W in both orders and together, responses back-pressured at random
    wr = master.write_if
    for trial in range(3 * len(regs)):
        i = rng.randrange(len(regs))
        name, access, _ = regs[i]
        data = rng.getrandbits(32)
        order = trial % 3  # 0: together, 1: W first, 2: AW first
        held = (wr.aw_channel if order == 1 else wr.w_channel) if order else None
        if held is not None:
            held.pause = True
        wr.b_channel.set_pause_generator(pauses(random.Random(trial), 0.3))
        task = cocotb.start_soon(master.write(4 * i, data.to_bytes(4, "little")))
        if held is not None:
            await ClockCycles(dut.clk, rng.randint(2, 6))
            held.pause = False
        before = len(pulses.seen.get(name.lower(), []))
        resp = await task
        assert resp.resp == AxiResp.OKAY, f"write {name} (order {order}): {resp.resp}"
        if access == "rw":
            value[name] = data
        elif access == "w1s":
            await ClockCycles(dut.clk, 2)
            new = pulses.seen[name.lower()][before:]
            assert len(new) == 1 and new[0][1] == data, (
                f"{name}: pulses {new} after writing {data:#x}, expected one of one cycle")
        wr.b_channel.clear_pause_generator()
    await check_all("after writes")
    # byte strobes: two bytes into the middle of each rw register
    for i, (name, access, _) in enumerate(regs):
        if access != "rw":
            continue
        b = rng.getrandbits(16)
        resp = await master.write(4 * i + 1, b.to_bytes(2, "little"))
        assert resp.resp == AxiResp.OKAY
        value[name] = (value[name] & 0xFF0000FF) | b << 8
    await check_all("after byte writes")
    # unmapped addresses: SLVERR, nothing changes
    top = 1 << len(dut.s_axil__awaddr)
    for off in (4 * len(regs), 4 * len(regs) + 8, top - 4):
        if off >= top:
            continue
        _, resp = await read(off)
        assert resp == AxiResp.SLVERR, f"read of unmapped {off:#x}: {resp}"
        resp = await master.write(off, rng.getrandbits(32).to_bytes(4, "little"))
        assert resp.resp == AxiResp.SLVERR, f"write of unmapped {off:#x}: {resp.resp}"
    await check_all("after unmapped accesses")
    # ro registers follow their inputs
    for name in ro_values:
        value[name] = rng.getrandbits(32)
        getattr(dut, name.lower()).value = value[name]
    await check_all("after new ro inputs")
    for p, log in pulses.seen.items():
        assert all(b[0] - a[0] > 1 for a, b in zip(log, log[1:], strict=False)), (
            f"{p}: a pulse longer than one cycle: {log}")
