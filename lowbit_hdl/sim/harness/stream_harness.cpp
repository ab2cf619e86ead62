// Fast stream harness of a generated design (lowbit_hdl.sim.fast): a Verilator C++ main
// that plays the AXI DMA in front of the top level's AXI-Stream ports, with no Python in
// the cycle loop.
//
// The model (lowbit_hdl.sim.fast.reset_wrapper around the design) is verilated with
// `--prefix Vtop`; ports: clk, rst (active-high, synchronous),
// s_axis__tdata/tvalid/tready/tlast (input), m_axis__tdata/tvalid/tready/tlast (output).
//
// Usage: Vharness key=value ...
//   in=PATH           input beats, `in_beat_bytes` bytes each, little-endian (the packed
//                     stream bytes of lowbit_hdl.runtime.layout.StreamLayout.pack)
//   sends=PATH        MM2S transfers, int64 triples (first_beat, nbeats, after_recv): a
//                     transfer starts when the previous one is complete and `after_recv`
//                     receive transfers are done; tlast on its last beat
//   out=PREFIX        results: PREFIX.data (output beats), PREFIX.cycle (int64 cycle of each
//                     output beat), PREFIX.last (uint8 tlast of each output beat),
//                     PREFIX.infirst (int64 cycle at which each input frame's first beat was
//                     accepted), PREFIX.json (summary)
//   in_beat_bytes, out_beat_bytes, in_frame_beats (beats of one input frame)
//   recvs=N recv_beats=B  S2MM transfers: N of up to B beats; one completes at tlast or when
//                     full (the Python side checks where tlast was)
//   stall=P seed=S    probability per cycle that MM2S keeps tvalid low (once offered, a
//                     beat is held until accepted; tvalid never depends on tready) and that
//                     S2MM keeps tready low; seeded generator
//   rearm=C           cycles between two receive transfers (S2MM re-armed by the CPU)
//   timeout=C         give up after C cycles without any handshake
//   drain=C           after the last receive transfer, C more cycles with tready high and
//                     no input, counting output beats that should not be there
//   reset=C           cycles of reset at the start
//
// Designs with AXI4 read masters m_axi<k>__* and an AXI4-Lite control slave s_axil__* (the
// hybrid designs: weights in DDR) get, from the generated header harness_ports.h
// (lowbit_hdl.sim.fast.ports_header, which binds the ports the Verilog top has):
//   ddr=ADDR:PATH     a memory region: the bytes of PATH at byte address ADDR (repeatable);
//                     every m_axi port reads the same regions; a beat outside every region
//                     answers SLVERR with zero data
//   ddr_error=LO:HI:RESP  beats overlapping [LO, HI) answer RRESP=RESP (2 SLVERR, 3 DECERR)
//                     with zero data (repeatable)
//   ddr_latency=L     cycles from a burst's AR handshake to its first R beat (>= 1)
//   ddr_outstanding=N bursts a port accepts before it holds ARREADY low
//                     With stall=P > 0 every port also holds ARREADY low and delays offering
//                     an R beat with probability P per cycle (an offered beat is held until
//                     accepted). INCR bursts only, no 4 KiB crossing, arsize <= the data
//                     width: anything else ends the run with status "protocol".
//   wr=OFF:VAL        an AXI4-Lite write performed after reset, before the first transfer
//                     (repeatable, in order; e.g. the weights' base, FRAMES, CTRL.START)
//   poll=OFF:MASK:C   after the drain: read OFF until (value & MASK) != 0, at most C cycles
//   rd=OFF            an AXI4-Lite read after the poll (repeatable); the values go to the
//                     summary's "registers" ({"OFF": value}); done after a timeout too
//                     Control accesses time out after `timeout` cycles (status "control").
//
// Cycle numbering: cycle 0 is the first cycle after reset; a handshake "at cycle c" is
// presented after clock edge c and taken at edge c + 1 (the cocotb benches' cycle() at their
// ReadOnly sampling point, up to a constant offset).
#include "Vtop.h"
#include "verilated.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

// Verilator escapes the double underscore of Amaranth's port names
#define S_TDATA s_axis___05Ftdata
#define S_TVALID s_axis___05Ftvalid
#define S_TREADY s_axis___05Ftready
#define S_TLAST s_axis___05Ftlast
#define M_TDATA m_axis___05Ftdata
#define M_TVALID m_axis___05Ftvalid
#define M_TREADY m_axis___05Ftready
#define M_TLAST m_axis___05Ftlast

namespace {

// --- ports of any width ---------------------------------------------------------------------

template <typename T>
inline void put_bits(T& port, const uint8_t* p, int n) {
    uint64_t v = 0;
    std::memcpy(&v, p, n < 8 ? n : 8);
    port = static_cast<T>(v);
}

template <std::size_t W>
inline void put_bits(VlWide<W>& port, const uint8_t* p, int n) {
    for (std::size_t i = 0; i < W; ++i) {
        uint32_t w = 0;
        int off = static_cast<int>(4 * i);
        int k = n - off;
        if (k > 4) k = 4;
        if (k > 0) std::memcpy(&w, p + off, k);
        port[i] = w;
    }
}

template <typename T>
inline void get_bits(const T& port, uint8_t* p, int n) {
    uint64_t v = static_cast<uint64_t>(port);
    std::memcpy(p, &v, n < 8 ? n : 8);
}

template <std::size_t W>
inline void get_bits(const VlWide<W>& port, uint8_t* p, int n) {
    for (std::size_t i = 0; i < W; ++i) {
        uint32_t w = port[i];
        int off = static_cast<int>(4 * i);
        int k = n - off;
        if (k > 4) k = 4;
        if (k > 0) std::memcpy(p + off, &w, k);
    }
}

// --- AXI ports of the design, bound by the generated header ----------------------------------

// A port of at most 64 bits (Verilator's CData/SData/IData/QData); unbound: reads 0, writes
// nothing (optional AXI signals such as arid).
struct Ref {
    void* p = nullptr;
    int n = 0;
    uint64_t get() const {
        switch (n) {
            case 1: return *static_cast<const uint8_t*>(p);
            case 2: return *static_cast<const uint16_t*>(p);
            case 4: return *static_cast<const uint32_t*>(p);
            case 8: return *static_cast<const uint64_t*>(p);
            default: return 0;
        }
    }
    void set(uint64_t v) const {
        switch (n) {
            case 1: *static_cast<uint8_t*>(p) = static_cast<uint8_t>(v); break;
            case 2: *static_cast<uint16_t*>(p) = static_cast<uint16_t>(v); break;
            case 4: *static_cast<uint32_t*>(p) = static_cast<uint32_t>(v); break;
            case 8: *static_cast<uint64_t*>(p) = v; break;
            default: break;
        }
    }
};

template <typename T>
Ref ref(T& port) {
    static_assert(sizeof(T) <= 8, "AXI ports of the fast harness are at most 64 bits wide");
    return Ref{&port, static_cast<int>(sizeof(T))};
}

// an AXI4 read master of the design (AR and R channels)
struct AxiIO {
    Ref araddr, arlen, arsize, arburst, arid, arvalid, arready;
    Ref rdata, rresp, rlast, rid, rvalid, rready;
    int data_bytes = 8;
};

// the AXI4-Lite slave of the design
struct AxilIO {
    Ref awaddr, awvalid, awready, wdata, wstrb, wvalid, wready, bresp, bvalid, bready;
    Ref araddr, arvalid, arready, rdata, rresp, rvalid, rready;
};

}  // namespace

#include "harness_ports.h"  // kAxiPorts, kAxiLite, bind_axi(top, io), bind_axil(top, io)

namespace {

// --- seeded generator (splitmix64) -----------------------------------------------------------

struct Rng {
    uint64_t s;
    double next() {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
    }
};

// --- arguments --------------------------------------------------------------------------------

struct Region {
    uint64_t base;
    std::vector<uint8_t> bytes;
};

struct ErrorRange {
    uint64_t lo, hi;
    int resp;
};

struct Args {
    std::string in, sends, out;
    long in_beat_bytes = 0, out_beat_bytes = 0, in_frame_beats = 1;
    long recvs = 0, recv_beats = 1, rearm = 0, timeout = 100000, drain = 64, reset = 4;
    double stall = 0.0;
    uint64_t seed = 1;
    std::vector<std::pair<uint64_t, std::string>> ddr;
    std::vector<ErrorRange> ddr_errors;
    long ddr_latency = 2, ddr_outstanding = 2;
    std::vector<std::pair<uint64_t, uint64_t>> wr;
    std::vector<uint64_t> rd;
    bool poll = false;
    uint64_t poll_off = 0, poll_mask = 0;
    long poll_cycles = 0;
};

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "stream_harness: %s\n", msg.c_str());
    std::exit(2);
}

uint64_t number(const std::string& v) {
    std::size_t used = 0;
    uint64_t x = std::stoull(v, &used, 0);
    if (used != v.size()) die("not a number: " + v);
    return x;
}

// "A:B" or "A:B:C" split at the colons (a path may not hold one: it comes last)
std::vector<std::string> fields(const std::string& v, std::size_t n) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i + 1 < n; ++i) {
        std::size_t c = v.find(':', start);
        if (c == std::string::npos) die("expected " + std::to_string(n) + " fields in " + v);
        out.push_back(v.substr(start, c - start));
        start = c + 1;
    }
    out.push_back(v.substr(start));
    return out;
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("+verilator", 0) == 0) continue;  // Verilator's own options
        auto eq = s.find('=');
        if (eq == std::string::npos) die("argument " + s + " is not key=value");
        std::string k = s.substr(0, eq), v = s.substr(eq + 1);
        if (k == "in") a.in = v;
        else if (k == "sends") a.sends = v;
        else if (k == "out") a.out = v;
        else if (k == "in_beat_bytes") a.in_beat_bytes = std::stol(v);
        else if (k == "out_beat_bytes") a.out_beat_bytes = std::stol(v);
        else if (k == "in_frame_beats") a.in_frame_beats = std::stol(v);
        else if (k == "recvs") a.recvs = std::stol(v);
        else if (k == "recv_beats") a.recv_beats = std::stol(v);
        else if (k == "rearm") a.rearm = std::stol(v);
        else if (k == "timeout") a.timeout = std::stol(v);
        else if (k == "drain") a.drain = std::stol(v);
        else if (k == "reset") a.reset = std::stol(v);
        else if (k == "stall") a.stall = std::stod(v);
        else if (k == "seed") a.seed = std::stoull(v);
        else if (k == "ddr") {
            auto f = fields(v, 2);
            a.ddr.emplace_back(number(f[0]), f[1]);
        } else if (k == "ddr_error") {
            auto f = fields(v, 3);
            a.ddr_errors.push_back({number(f[0]), number(f[1]), static_cast<int>(number(f[2]))});
        } else if (k == "ddr_latency") a.ddr_latency = std::stol(v);
        else if (k == "ddr_outstanding") a.ddr_outstanding = std::stol(v);
        else if (k == "wr") {
            auto f = fields(v, 2);
            a.wr.emplace_back(number(f[0]), number(f[1]));
        } else if (k == "rd") a.rd.push_back(number(v));
        else if (k == "poll") {
            auto f = fields(v, 3);
            a.poll = true;
            a.poll_off = number(f[0]);
            a.poll_mask = number(f[1]);
            a.poll_cycles = static_cast<long>(number(f[2]));
        } else die("unknown argument " + k);
    }
    if (a.in.empty() || a.sends.empty() || a.out.empty()) die("in=, sends= and out= are needed");
    if (a.in_beat_bytes <= 0 || a.out_beat_bytes <= 0 || a.in_frame_beats <= 0)
        die("in_beat_bytes, out_beat_bytes and in_frame_beats must be positive");
    if (a.reset < 1) die("reset must be at least 1 cycle");
    if (a.ddr_latency < 1 || a.ddr_outstanding < 1)
        die("ddr_latency and ddr_outstanding must be at least 1");
    for (const auto& e : a.ddr_errors)
        if (e.lo >= e.hi || e.resp < 1 || e.resp > 3) die("bad ddr_error range or response");
    if (!kAxiLite && (!a.wr.empty() || !a.rd.empty() || a.poll))
        die("wr=, rd= and poll= need an AXI4-Lite control port s_axil__* on the design");
    return a;
}

std::vector<uint8_t> slurp(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) die("cannot open " + path);
    std::fseek(f, 0, SEEK_END);
    long n = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    std::vector<uint8_t> buf(static_cast<std::size_t>(n));
    if (n && std::fread(buf.data(), 1, buf.size(), f) != buf.size()) die("cannot read " + path);
    std::fclose(f);
    return buf;
}

FILE* create(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) die("cannot create " + path);
    return f;
}

// --- DDR: AXI4 read slaves over shared memory regions -----------------------------------------

struct Burst {
    uint64_t addr;  // aligned to the beat size
    long beats;
    int size;  // bytes per beat
    uint64_t id;
    int64_t ready;  // first cycle its first beat may be offered
};

struct ReadPort {
    AxiIO io;
    std::deque<Burst> q;  // accepted bursts, the one being answered first
    long beat = 0;  // next beat of q.front()
    bool offered = false;  // an R beat is presented (held until accepted)
    bool ar_ready = false;
};

struct Ddr {
    std::vector<ReadPort> ports;
    std::vector<Region> regions;
    std::vector<ErrorRange> errors;
    long latency = 1, outstanding = 2;
    double p = 0.0;
    Rng rng{1};
    std::string error;  // the first protocol violation
    uint64_t bursts = 0, beats = 0, error_beats = 0;
    std::size_t last_region = 0;

    // RRESP of the word at `a` (n bytes); its data into `data`
    int read(uint64_t a, int n, uint64_t* data) {
        *data = 0;
        for (const auto& e : errors)
            if (a < e.hi && e.lo < a + n) return e.resp;
        for (std::size_t k = 0; k < regions.size(); ++k) {
            const std::size_t r = (last_region + k) % regions.size();
            const Region& reg = regions[r];
            if (reg.base <= a && a + n <= reg.base + reg.bytes.size()) {
                std::memcpy(data, reg.bytes.data() + (a - reg.base), n);
                last_region = r;
                return 0;
            }
        }
        return 2;  // SLVERR: no memory there
    }

    void present(ReadPort& rp) {
        const Burst& b = rp.q.front();
        const uint64_t a = (b.addr + static_cast<uint64_t>(rp.beat) * b.size) &
                           ~static_cast<uint64_t>(rp.io.data_bytes - 1);
        uint64_t data = 0;
        const int resp = read(a, rp.io.data_bytes, &data);
        if (resp) ++error_beats;
        rp.io.rdata.set(data);
        rp.io.rresp.set(resp);
        rp.io.rlast.set(rp.beat == b.beats - 1);
        rp.io.rid.set(b.id);
    }

    // inputs of cycle `now` (before the clk=0 evaluation)
    void drive(int64_t now) {
        const bool stalls = p > 0.0;
        for (auto& rp : ports) {
            rp.ar_ready = static_cast<long>(rp.q.size()) < outstanding &&
                          (!stalls || rng.next() >= p);
            rp.io.arready.set(rp.ar_ready);
            if (!rp.offered && !rp.q.empty() && now >= rp.q.front().ready &&
                (!stalls || rng.next() >= p)) {
                rp.offered = true;
                present(rp);
            }
            rp.io.rvalid.set(rp.offered);
        }
    }

    // handshakes of cycle `now` (after the clk=0 evaluation); false on a protocol violation
    bool sample(int64_t now) {
        for (std::size_t k = 0; k < ports.size(); ++k) {
            ReadPort& rp = ports[k];
            if (rp.offered && rp.io.rready.get()) {
                rp.offered = false;
                ++beats;
                if (++rp.beat == rp.q.front().beats) {
                    rp.q.pop_front();
                    rp.beat = 0;
                }
            }
            if (rp.ar_ready && rp.io.arvalid.get() && !accept(k, now)) return false;
        }
        return true;
    }

    bool accept(std::size_t k, int64_t now) {
        ReadPort& rp = ports[k];
        const uint64_t addr = rp.io.araddr.get();
        const long beats_ = static_cast<long>(rp.io.arlen.get()) + 1;
        const int size = 1 << rp.io.arsize.get();
        const std::string where = "m_axi" + std::to_string(k) + ": burst at 0x" + hex(addr);
        if (rp.io.arburst.get() != 1) {
            error = where + " has ARBURST " + std::to_string(rp.io.arburst.get()) +
                    " (only INCR is modelled)";
            return false;
        }
        if (size > rp.io.data_bytes) {
            error = where + " has ARSIZE " + std::to_string(rp.io.arsize.get()) +
                    ", wider than the " + std::to_string(rp.io.data_bytes) + "-byte data bus";
            return false;
        }
        const uint64_t aligned = addr & ~static_cast<uint64_t>(size - 1);
        if ((aligned & 0xFFF) + static_cast<uint64_t>(beats_) * size > 0x1000) {
            error = where + " of " + std::to_string(beats_) + " beats crosses a 4 KiB boundary";
            return false;
        }
        rp.q.push_back({aligned, beats_, size, rp.io.arid.get(), now + latency});
        ++bursts;
        return true;
    }

    static std::string hex(uint64_t v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%llX", static_cast<unsigned long long>(v));
        return buf;
    }
};

}  // namespace

int main(int argc, char** argv) {
    Args a = parse(argc, argv);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<uint8_t> input = slurp(a.in);
    std::vector<uint8_t> sraw = slurp(a.sends);
    const std::size_t nsends = sraw.size() / (3 * sizeof(int64_t));
    std::vector<int64_t> sends(3 * nsends);
    if (nsends) std::memcpy(sends.data(), sraw.data(), sends.size() * sizeof(int64_t));
    const long in_beats_total = static_cast<long>(input.size()) / a.in_beat_bytes;
    for (std::size_t i = 0; i < nsends; ++i)
        if (sends[3 * i] < 0 || sends[3 * i + 1] <= 0 ||
            sends[3 * i] + sends[3 * i + 1] > in_beats_total)
            die("send transfer " + std::to_string(i) + " lies outside the input");

    VerilatedContext ctx;
    ctx.commandArgs(argc, argv);
    Vtop top{&ctx};

    Ddr ddr;
    ddr.latency = a.ddr_latency;
    ddr.outstanding = a.ddr_outstanding;
    ddr.errors = a.ddr_errors;
    ddr.p = a.stall;
    ddr.rng = Rng{a.seed * 0x9E3779B97F4A7C15ull + 7};
    for (const auto& [base, path] : a.ddr) ddr.regions.push_back({base, slurp(path)});
    {
        AxiIO io[kAxiPorts > 0 ? kAxiPorts : 1];
        bind_axi(top, io);
        for (int k = 0; k < kAxiPorts; ++k) ddr.ports.push_back(ReadPort{io[k]});
    }
    AxilIO lite;
    bind_axil(top, lite);

    FILE* f_data = create(a.out + ".data");
    FILE* f_cycle = create(a.out + ".cycle");
    FILE* f_last = create(a.out + ".last");
    FILE* f_infirst = create(a.out + ".infirst");
    std::vector<uint8_t> beat(static_cast<std::size_t>(a.out_beat_bytes) + 8);

    Rng rng{a.seed * 0x2545F4914F6CDD1Dull + 1};
    const double p = a.stall;
    const bool stalls = p > 0.0;

    // reset, then one idle cycle. The design's rst comes through a register of the wrapper
    // (lowbit_hdl.sim.fast.reset_wrapper, initially 1): it sees at each edge the rst driven
    // one cycle before, so rst is deasserted here one cycle early.
    top.clk = 0;
    top.S_TVALID = 0;
    top.S_TLAST = 0;
    top.M_TREADY = 0;
    for (long i = 0; i < a.reset; ++i) {
        top.rst = i + 1 < a.reset;
        top.clk = 0;
        top.eval();
        top.clk = 1;
        top.eval();
    }
    top.clk = 0;
    top.eval();
    top.clk = 1;
    top.eval();

    // one clock cycle in two halves: inputs (DDR's here, the caller's before) and the clk=0
    // evaluation, then the caller samples the outputs, then the rising edge
    int64_t now = 0;  // cycles since reset, the control accesses included (the DDR's clock)
    bool ddr_ok = true;
    auto low = [&]() {
        ddr.drive(now);
        top.clk = 0;
        top.eval();
        if (!ddr.sample(now)) ddr_ok = false;
    };
    auto high = [&]() {
        top.clk = 1;
        top.eval();
        ++now;
    };

    // AXI4-Lite master: one access at a time, false (and ctrl_error) on a timeout or an
    // error response
    std::string ctrl_error;
    auto wait_for = [&](const Ref& sig, const char* what, uint64_t off) -> bool {
        for (long t = 0;; ++t) {
            low();
            const bool hs = sig.get() != 0;
            if (hs) return true;  // the caller takes the rising edge
            high();
            if (t >= a.timeout || !ddr_ok) {
                if (ctrl_error.empty())
                    ctrl_error = std::string("no ") + what + " from s_axil for " +
                                 std::to_string(a.timeout) + " cycles (register offset 0x" +
                                 Ddr::hex(off) + ")";
                return false;
            }
        }
    };
    auto lite_write = [&](uint64_t off, uint64_t val) -> bool {
        lite.awaddr.set(off);
        lite.wdata.set(val);
        lite.wstrb.set(0xF);
        lite.awvalid.set(1);
        lite.wvalid.set(1);
        bool aw = false, w = false;
        for (long t = 0; !(aw && w); ++t) {
            low();
            const bool aw_hs = !aw && lite.awready.get();
            const bool w_hs = !w && lite.wready.get();
            high();
            if (aw_hs) {
                aw = true;
                lite.awvalid.set(0);
            }
            if (w_hs) {
                w = true;
                lite.wvalid.set(0);
            }
            if (!(aw && w) && (t >= a.timeout || !ddr_ok)) {
                lite.awvalid.set(0);
                lite.wvalid.set(0);
                ctrl_error = "no AWREADY/WREADY from s_axil for " + std::to_string(a.timeout) +
                             " cycles (write to offset 0x" + Ddr::hex(off) + ")";
                return false;
            }
        }
        lite.bready.set(1);
        const bool got = wait_for(lite.bvalid, "BVALID", off);
        const uint64_t resp = got ? lite.bresp.get() : 0;
        if (got) high();
        lite.bready.set(0);
        if (got && resp) {
            ctrl_error = "write to offset 0x" + Ddr::hex(off) + " answered BRESP " +
                         std::to_string(resp);
            return false;
        }
        return got;
    };
    auto lite_read = [&](uint64_t off, uint64_t* val) -> bool {
        lite.araddr.set(off);
        lite.arvalid.set(1);
        const bool ar = wait_for(lite.arready, "ARREADY", off);
        if (ar) high();
        lite.arvalid.set(0);
        if (!ar) return false;
        lite.rready.set(1);
        const bool got = wait_for(lite.rvalid, "RVALID", off);
        *val = got ? lite.rdata.get() : 0;
        const uint64_t resp = got ? lite.rresp.get() : 0;
        if (got) high();
        lite.rready.set(0);
        if (got && resp) {
            ctrl_error = "read of offset 0x" + Ddr::hex(off) + " answered RRESP " +
                         std::to_string(resp);
            return false;
        }
        return got;
    };

    const char* status = "ok";
    for (const auto& [off, val] : a.wr) {
        if (!lite_write(off, val)) {
            status = "control";
            break;
        }
    }
    // the cocotb benches' AXI4-Lite master returns one cycle after the B handshake
    if (!a.wr.empty() && std::strcmp(status, "ok") == 0) {
        low();
        high();
    }
    const int64_t setup_cycles = now;

    int64_t cycle = 0;
    std::size_t si = 0;         // next send transfer
    long sb = 0, sn = 0;        // beat within the active transfer, its length
    const uint8_t* sbase = nullptr;
    bool send_active = false, offered = false;
    long in_beats = 0, out_beats = 0, ri = 0, rb = 0, rearm_left = 0, idle = 0;
    bool armed = a.recvs > 0;

    while (ri < a.recvs && std::strcmp(status, "ok") == 0) {
        if (!send_active && si < nsends && ri >= sends[3 * si + 2]) {
            sbase = input.data() + sends[3 * si] * a.in_beat_bytes;
            sn = static_cast<long>(sends[3 * si + 1]);
            sb = 0;
            send_active = true;
        }
        if (!armed) {
            if (rearm_left <= 0) armed = true;
            else --rearm_left;
        }
        if (send_active && !offered) offered = !stalls || rng.next() >= p;
        const bool valid = send_active && offered;
        if (valid) {
            put_bits(top.S_TDATA, sbase + sb * a.in_beat_bytes,
                     static_cast<int>(a.in_beat_bytes));
            top.S_TLAST = sb == sn - 1;
        }
        top.S_TVALID = valid;
        const bool ready = armed && (!stalls || rng.next() >= p);
        top.M_TREADY = ready;
        low();
        bool progress = false;
        if (valid && top.S_TREADY) {
            if (in_beats % a.in_frame_beats == 0) std::fwrite(&cycle, 8, 1, f_infirst);
            ++in_beats;
            ++sb;
            offered = false;
            progress = true;
            if (sb == sn) {
                send_active = false;
                ++si;
            }
        }
        if (ready && top.M_TVALID) {
            get_bits(top.M_TDATA, beat.data(), static_cast<int>(a.out_beat_bytes));
            const uint8_t last = top.M_TLAST ? 1 : 0;
            std::fwrite(beat.data(), 1, a.out_beat_bytes, f_data);
            std::fwrite(&cycle, 8, 1, f_cycle);
            std::fwrite(&last, 1, 1, f_last);
            ++out_beats;
            ++rb;
            progress = true;
            if (last || rb >= a.recv_beats) {
                ++ri;
                rb = 0;
                armed = false;
                rearm_left = a.rearm;
            }
        }
        high();
        ++cycle;
        if (!ddr_ok) {
            status = "protocol";
            break;
        }
        idle = progress ? 0 : idle + 1;
        if (idle > a.timeout) {
            status = "timeout";
            break;
        }
    }
    const bool inputs_left = si < nsends;
    // anything more coming out would land in the next batch: watch the output a while
    long extra = 0;
    const int64_t done_cycle = cycle;
    if (std::strcmp(status, "ok") == 0) {
        top.S_TVALID = 0;
        top.M_TREADY = 1;
        for (long i = 0; i < a.drain && ddr_ok; ++i) {
            low();
            if (top.M_TVALID) ++extra;
            high();
            ++cycle;
        }
        top.M_TREADY = 0;
        if (!ddr_ok) status = "protocol";
    }
    // the control registers, also after a timeout (they may say why)
    std::vector<std::pair<uint64_t, uint64_t>> registers;
    if (std::strcmp(status, "protocol") != 0 && std::strcmp(status, "control") != 0) {
        bool ok = true;
        if (a.poll) {
            const int64_t until = now + a.poll_cycles;
            uint64_t v = 0;
            while (ok && now < until) {
                ok = lite_read(a.poll_off, &v);
                if (ok && (v & a.poll_mask)) break;
            }
        }
        for (std::size_t i = 0; ok && i < a.rd.size(); ++i) {
            uint64_t v = 0;
            ok = lite_read(a.rd[i], &v);
            if (ok) registers.emplace_back(a.rd[i], v);
        }
        if (!ok && std::strcmp(status, "ok") == 0) status = ddr_ok ? "control" : "protocol";
    }
    top.final();
    std::fclose(f_data);
    std::fclose(f_cycle);
    std::fclose(f_last);
    std::fclose(f_infirst);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::string regs_json;
    for (const auto& [off, v] : registers)
        regs_json += (regs_json.empty() ? "\"" : ", \"") + std::to_string(off) + "\": " +
                     std::to_string(v);
    const std::string error = !ddr.error.empty() ? ddr.error : ctrl_error;
    FILE* f_json = create(a.out + ".json");
    std::fprintf(f_json,
                 "{\"status\": \"%s\", \"cycles\": %lld, \"done_cycle\": %lld, "
                 "\"reset_cycles\": %ld, \"setup_cycles\": %lld, \"in_beats\": %ld, "
                 "\"in_beats_total\": %ld, \"inputs_left\": %s, \"out_beats\": %ld, "
                 "\"recvs_done\": %ld, \"extra_beats\": %ld, \"seconds\": %.6f, "
                 "\"ddr_bursts\": %llu, \"ddr_beats\": %llu, \"ddr_error_beats\": %llu, "
                 "\"registers\": {%s}, \"error\": \"%s\"}\n",
                 status, static_cast<long long>(cycle), static_cast<long long>(done_cycle),
                 a.reset + 1, static_cast<long long>(setup_cycles), in_beats, in_beats_total,
                 inputs_left ? "true" : "false", out_beats, ri, extra, secs,
                 static_cast<unsigned long long>(ddr.bursts),
                 static_cast<unsigned long long>(ddr.beats),
                 static_cast<unsigned long long>(ddr.error_beats), regs_json.c_str(),
                 error.c_str());
    std::fclose(f_json);
    return std::strcmp(status, "ok") == 0 ? 0 : 1;
}
