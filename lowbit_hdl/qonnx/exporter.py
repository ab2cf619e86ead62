"""lowbit :class:`~lowbit_hdl.ir.Network` → QONNX graph.

The graph takes the network's integer input (NCHW, as float32 values) and computes the golden
model's integer outputs with standard ONNX ops and qonnx's ``MultiThreshold``:

* Conv → (``Pad`` with the layer's pad value when it is not 0) ``Conv`` with the integer
  weights as a float32 initializer annotated with their QONNX data type, then
  ``MultiThreshold`` with our integer thresholds (BIPOLAR: ``out_scale=2``, ``out_bias=-1``).
* FC → ``Transpose`` to NHWC (our FC reads its input in (H, W, C) order) and ``Reshape`` to
  N×F, ``MatMul``, ``MultiThreshold``.
* MaxPool → ``MaxPool``; TopK → ``Reshape`` + ``TopK`` (the graph output is the indices).
* A last layer with ``act=None`` outputs its raw accumulators.

Every accumulator and threshold must fit float32 exactly (``|x| < 2**24``), which is checked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import GraphError
from ..ir import FC, Conv, MaxPool, Network, TopK
from ..runtime.dtypes import DataType

__all__ = ["to_model", "export"]

_QONNX_DOMAIN = "qonnx.custom_op.general"
_F32_EXACT = 1 << 24


def _qdt(dt: DataType) -> str:
    return dt.name.upper()


def to_model(net: Network, batch: int = 1):
    """The QONNX model (a qonnx ``ModelWrapper``) of ``net``, which must have its weights and
    thresholds attached, for inputs of ``batch`` images (FINN expects 1). Raises
    :class:`~lowbit_hdl.errors.GraphError` when a value would not be exact in float32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from qonnx.core.datatype import DataType as QDataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"to_model: batch must be an int ≥ 1, got {batch!r}")
    infos = net.infer(check_params=True)
    missing = [i.name for i in infos if i.is_mvtu and i.layer.weights is None]
    if missing:
        raise GraphError(f"network {net.name}: layers {', '.join(missing)} have no weights")
    nodes, inits, annotations = [], [], {}
    counter = [0]

    def const(name: str, value: np.ndarray, dtype=np.float32, qdt: str | None = None) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        if qdt:
            annotations[name] = qdt
        return name

    def fresh(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    cur = "global_in"
    annotations[cur] = _qdt(net.input_dtype)
    flat = False
    out_is_index = False
    for info in infos:
        lay = info.layer
        if info.is_mvtu:
            if max(abs(info.acc_min), abs(info.acc_max) + 1) >= _F32_EXACT:
                raise GraphError(f"layer {lay.name}: accumulators up to "
                                 f"{max(abs(info.acc_min), info.acc_max)} are not exact in "
                                 "float32 (|x| < 2**24)")
            w = np.asarray(lay.weights, np.int64)
            wq = _qdt(lay.weight_dtype)
        if isinstance(lay, Conv):
            if flat:
                raise GraphError(f"layer {lay.name}: a Conv after an FC layer")
            src = cur
            pads = [lay.padding] * 4
            if lay.padding and info.pad_value != 0:
                pv = const(fresh(f"{lay.name}_pads"),
                           np.array([0, 0, lay.padding, lay.padding, 0, 0, lay.padding,
                                     lay.padding]), np.int64)
                pval = const(fresh(f"{lay.name}_padval"), np.array(info.pad_value))
                src = fresh(f"{lay.name}_padded")
                nodes.append(helper.make_node("Pad", [cur, pv, pval], [src], mode="constant",
                                              name=f"{lay.name}_pad"))
                pads = [0, 0, 0, 0]
            wname = const(f"{lay.name}_W", w, qdt=wq)
            acc = f"{lay.name}_acc"
            nodes.append(helper.make_node(
                "Conv", [src, wname], [acc], name=f"{lay.name}_conv",
                kernel_shape=[lay.kernel, lay.kernel], strides=[lay.stride, lay.stride],
                pads=pads, group=1, dilations=[1, 1]))
        elif isinstance(lay, FC):
            src = cur
            if not flat:
                c, h, wd = info.in_shape
                if c > 1 and h * wd > 1:
                    src = fresh(f"{lay.name}_nhwc")
                    nodes.append(helper.make_node("Transpose", [cur], [src], perm=[0, 2, 3, 1],
                                                  name=f"{lay.name}_transpose"))
                shp = const(fresh(f"{lay.name}_shape"), np.array([-1, info.mw]), np.int64)
                flat_name = fresh(f"{lay.name}_flat")
                nodes.append(helper.make_node("Reshape", [src, shp], [flat_name],
                                              name=f"{lay.name}_flatten"))
                src, flat = flat_name, True
            wname = const(f"{lay.name}_W", w.T, qdt=wq)
            acc = f"{lay.name}_acc"
            nodes.append(helper.make_node("MatMul", [src, wname], [acc],
                                          name=f"{lay.name}_matmul"))
        elif isinstance(lay, MaxPool):
            if flat:
                raise GraphError(f"layer {lay.name}: a MaxPool after an FC layer")
            out = f"{lay.name}_out"
            s = lay.stride if lay.stride is not None else lay.kernel
            nodes.append(helper.make_node("MaxPool", [cur], [out], name=lay.name,
                                          kernel_shape=[lay.kernel, lay.kernel],
                                          strides=[s, s]))
            annotations[out] = _qdt(info.out_dtype)
            cur = out
            continue
        elif isinstance(lay, TopK):
            src = cur
            if not flat:
                shp = const(fresh(f"{lay.name}_shape"),
                            np.array([-1, int(np.prod(info.in_shape))]), np.int64)
                src = fresh(f"{lay.name}_flat")
                nodes.append(helper.make_node("Reshape", [cur, shp], [src],
                                              name=f"{lay.name}_flatten"))
            k = const(fresh(f"{lay.name}_k"), np.array([lay.k]), np.int64)
            out = f"{lay.name}_out"
            nodes.append(helper.make_node("TopK", [src, k], [f"{lay.name}_values", out],
                                          axis=-1, largest=1, sorted=1, name=lay.name))
            cur, out_is_index = out, True
            continue
        else:  # pragma: no cover - infer() rejects other layers
            raise GraphError(f"layer {lay.name}: cannot be exported")
        if lay.act is None:
            cur = acc
            continue
        t = np.asarray(lay.thresholds, np.int64)
        if t.size and np.abs(t).max() >= _F32_EXACT:
            raise GraphError(f"layer {lay.name}: thresholds are not exact in float32")
        tname = const(f"{lay.name}_T", t)
        out = f"{lay.name}_out"
        attrs = {"out_dtype": _qdt(lay.act)}
        if lay.act.is_bipolar:
            attrs.update(out_scale=2.0, out_bias=-1.0)
        nodes.append(helper.make_node("MultiThreshold", [acc, tname], [out],
                                      domain=_QONNX_DOMAIN, name=f"{lay.name}_thresholds",
                                      **attrs))
        annotations[out] = _qdt(lay.act)
        cur = out

    oinfo = infos[-1]
    if out_is_index:
        out_vi = helper.make_tensor_value_info(cur, TensorProto.INT64, [batch, oinfo.layer.k])
    else:
        shape = [batch, oinfo.out_shape[0]] if flat else [batch, *oinfo.out_shape]
        out_vi = helper.make_tensor_value_info(cur, TensorProto.FLOAT, shape)
    in_vi = helper.make_tensor_value_info("global_in", TensorProto.FLOAT,
                                          [batch, *net.input_shape])
    graph = helper.make_graph(nodes, net.name.replace("-", "_"), [in_vi], [out_vi], inits)
    proto = helper.make_model(graph, producer_name="lowbit-hdl",
                              opset_imports=[helper.make_opsetid("", 13),
                                             helper.make_opsetid(_QONNX_DOMAIN, 1)])
    proto.ir_version = min(proto.ir_version, 8)
    onnx.checker.check_model(proto)
    model = ModelWrapper(proto).transform(InferShapes())
    for name, qdt in annotations.items():
        model.set_tensor_datatype(name, QDataType[qdt])
    return model


def export(net: Network, path: str | Path, batch: int = 1) -> Path:
    """Write ``net`` as a QONNX ``.onnx`` file (see :func:`to_model`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_model(net, batch).save(str(path))
    return path
