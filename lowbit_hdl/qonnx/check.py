"""Check an imported network against qonnx's own executor on random inputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import golden
from .importer import ImportResult

__all__ = ["CheckReport", "random_codes", "check"]


@dataclass
class CheckReport:
    """What :func:`check` compared: ``inputs`` inputs, ``layers`` layer outputs per input
    (our levels against the graph's tensors; the graph's quantized input too), with
    ``mismatches`` differing values and
    ``decisions_differ`` differing class decisions; ``max_output_error`` is the largest
    difference between the graph's output and ``scale·(ours + offset)`` (float32 rounding)."""

    inputs: int
    layers: int
    values: int
    mismatches: int
    decisions_differ: int
    max_output_error: float

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.decisions_differ == 0


def random_codes(result: ImportResult, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random network inputs (levels the graph's input quantizer can produce)."""
    net = result.network
    rng = np.random.default_rng(seed)
    shape = (n, *net.input_shape)
    if net.input_dtype.is_bipolar:
        return rng.choice(np.array([-1, 1]), size=shape)
    return rng.integers(result.input.min_code, result.input.max_code + 1, size=shape)


def check(result: ImportResult, n: int = 1000, seed: int = 0,
          codes: np.ndarray | None = None) -> CheckReport:
    """Run ``n`` random inputs (or ``codes``) through qonnx's ``execute_onnx`` on the graph
    as imported and through the golden model; compare every layer that lines up with a graph
    tensor (exactly) and the class decisions. The graph's batch size is its own: inputs go
    through in batches of that size."""
    from qonnx.core.onnx_exec import execute_onnx

    model = result.model
    net = result.network
    codes = random_codes(result, n, seed) if codes is None else np.asarray(codes)
    n = len(codes)
    ours = golden.forward(net, codes)
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    batch = int(model.get_tensor_shape(iname)[0] or 1)
    layers = values = bad = differ = 0
    err = 0.0
    for s in range(0, n, batch):
        part = codes[s:s + batch]
        if len(part) < batch:  # the graph's batch is fixed: pad, compare the real ones
            part = np.concatenate([part, np.repeat(part[:1], batch - len(part), 0)])
        k = min(batch, n - s)
        ctx = execute_onnx(model, {iname: result.input.to_float(part)},
                           return_full_exec_context=True)
        inp = result.input
        if inp.tensor:  # the graph's input quantizer reproduces our input levels
            got = np.asarray(ctx[inp.tensor])[:k]
            want = (inp.scale * (part[:k].astype(np.float64) - inp.zero_point)
                    ).astype(np.float32).reshape(got.shape)
            bad += int(np.count_nonzero(got != want))
            values += got.size
        for lname, lm in result.layers.items():
            got = np.asarray(ctx[lm.tensor])[:k]
            # [:, :channels]: a layer may carry one more neuron (an output bias, see notes)
            mine = ours.intermediates[lname][s:s + k, :got.shape[1]].astype(np.float64)
            shape = (-1, 1, 1) if got.ndim == 4 else (-1,)
            mine = mine.reshape(got.shape) if got.ndim == 4 else mine.reshape(k, -1)
            sc, off = (np.resize(v, got.shape[1]).reshape(shape) for v in (lm.scale, lm.offset))
            want = (sc * (mine + off)).astype(np.float32)
            bad += int(np.count_nonzero(got != want))
            values += got.size
            layers += 1 if s == 0 else 0
        y = np.asarray(ctx[oname])[:k].reshape(k, -1)
        mine_out = ours.output[s:s + k]
        differ += int(np.count_nonzero(y.argmax(1) != golden.decide(net, mine_out)))
        if result.output_scale is not None:
            ref = result.output_scale * (mine_out.reshape(k, -1) + result.output_offset)
            err = max(err, float(np.abs(y - ref).max()))
    return CheckReport(n, layers, values, bad, differ, err)
