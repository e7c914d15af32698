"""What one inference costs: arithmetic and bytes, node by node, from the ONNX graph.

Counted for the input dimensions given (shapes from onnx's shape inference on the graph with
its inputs fixed; a tensor whose shape it cannot find, such as a Range that depends on an
input's shape, is measured by running the model once with ONNX Runtime and reading it back).
No hardware counter is needed: the roofline and the scaling model divide these counts by the
measured time.

Conventions (the same as most papers and tools, stated so a count can be checked by hand):

- a multiply-add is 2 operations: MatMul [.., M, K] x [.., K, N] costs 2·M·K·N per batch
  element; Gemm adds M·N for its bias; Conv costs 2·(output elements)·(Cin/group)·(kernel
  area), plus one per output element for its bias. Their quantized forms (MatMulInteger,
  QLinearMatMul, ConvInteger, QLinearConv) count the same, as integer operations;
- elementwise ops cost ``PER_ELEMENT[op]`` per output element (1 for Add, Relu...; Gelu 8,
  Softmax 5, LayerNormalization 8: the operations their usual kernels do);
- reductions and global pooling cost 1 per input element; MaxPool and AveragePool the
  kernel area per output element;
- data movement (Reshape, Transpose, Gather, Concat, Cast, ...) costs no operations.

Bytes per node: ``weights``, the initializers (and Constant outputs) it reads, whole, except a
Gather from a table, which reads only the rows it gathers (the encoder's 47 MB embedding
table costs seq x hidden x 4 bytes); ``activations``, every other input it reads and every
output it writes. Their sum over the graph is the traffic if nothing stayed in cache between
nodes: an upper estimate of activation traffic, exact for weights read once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError
from ..words import plural

__all__ = ["NodeCost", "ModelCost", "model_cost", "PER_ELEMENT"]

# Operations per output element of elementwise (and normalisation) ops.
PER_ELEMENT = {
    **dict.fromkeys(("Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Sqrt", "Reciprocal",
                     "Neg", "Abs", "Relu", "LeakyRelu", "PRelu", "Clip", "Exp", "Log", "Erf",
                     "Tanh", "Sigmoid", "Where", "Equal", "Less", "Greater", "Not", "And", "Or",
                     "Floor", "Ceil", "Round", "Sign", "Mod", "Sum", "Mean"), 1),
    "Gelu": 8, "FastGelu": 8, "Softmax": 5, "LogSoftmax": 5, "LayerNormalization": 8,
    "SkipLayerNormalization": 9, "BatchNormalization": 2, "InstanceNormalization": 8,
    "HardSigmoid": 3, "HardSwish": 4, "Swish": 4, "Elu": 3, "Selu": 3, "Softplus": 3,
    "QuantizeLinear": 2, "DequantizeLinear": 2, "DynamicQuantizeLinear": 4,
}
_REDUCE = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
           "ReduceSumSquare", "GlobalAveragePool", "GlobalMaxPool", "ArgMax", "ArgMin")
_MATMUL = ("MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul")
_CONV = ("Conv", "ConvInteger", "QLinearConv")


@dataclass(frozen=True)
class NodeCost:
    name: str
    op_type: str
    ops: float            # arithmetic operations (a multiply-add is 2)
    weight_bytes: float   # initializers read (rows only, for a Gather from a table)
    activation_bytes: float  # other inputs read + outputs written


@dataclass
class ModelCost:
    nodes: list[NodeCost]
    stored_weight_bytes: int          # every initializer, as stored
    inputs: dict = field(default_factory=dict)  # each input's shape as counted
    measured_shapes: int = 0          # tensors whose shape ONNX Runtime had to tell

    @property
    def ops(self) -> float:
        return sum(n.ops for n in self.nodes)

    @property
    def weight_bytes(self) -> float:
        return sum(n.weight_bytes for n in self.nodes)

    @property
    def activation_bytes(self) -> float:
        return sum(n.activation_bytes for n in self.nodes)

    def by_type(self) -> dict[str, dict]:
        """Per op type, heaviest first: nodes, ops, their share of all ops, bytes."""
        out: dict[str, dict] = {}
        for n in self.nodes:
            t = out.setdefault(n.op_type, {"nodes": 0, "ops": 0.0, "weight_bytes": 0.0,
                                           "activation_bytes": 0.0})
            t["nodes"] += 1
            t["ops"] += n.ops
            t["weight_bytes"] += n.weight_bytes
            t["activation_bytes"] += n.activation_bytes
        total = self.ops or 1.0
        for t in out.values():
            t["share"] = t["ops"] / total
        return dict(sorted(out.items(), key=lambda kv: (-kv[1]["ops"], kv[0])))

    def to_dict(self, per_node: bool = False) -> dict:
        d = {"ops": self.ops, "weight_bytes": self.weight_bytes,
             "activation_bytes": self.activation_bytes,
             "stored_weight_bytes": self.stored_weight_bytes,
             "intensity": self.ops / max(1.0, self.weight_bytes + self.activation_bytes),
             "inputs": dict(self.inputs), "measured_shapes": self.measured_shapes,
             "by_type": self.by_type()}
        if per_node:
            d["nodes"] = [dict(vars(n)) for n in self.nodes]
        return d


def model_cost(path: str, dims: dict | None = None) -> ModelCost:
    """The cost of one inference of the model at ``path`` with its dynamic dimensions ``dims``
    (as ``--dim`` gives them; batch 1 by default). A UsageError for a dimension that is
    missing; an op whose cost it cannot count for lack of a shape is a UsageError naming it."""
    import onnx
    from onnx import shape_inference

    from .models import inputs, make_inputs
    feeds = make_inputs(inputs(path), dims)
    model = onnx.load(str(path))
    graph = model.graph
    for i in graph.input:
        if i.name in feeds:
            shape = i.type.tensor_type.shape
            for d, v in zip(shape.dim, feeds[i.name].shape):
                d.Clear()
                d.dim_value = int(v)
    inits = {t.name: t for t in graph.initializer}
    weights = {n: (tuple(t.dims), _itemsize(t.data_type)) for n, t in inits.items()}
    for node in graph.node:  # Constant outputs are weights too
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            t = node.attribute[0].t
            weights[node.output[0]] = (tuple(t.dims), _itemsize(t.data_type))
    inferred = shape_inference.infer_shapes(_without_big_weights(model), data_prop=True).graph
    shapes: dict[str, tuple[tuple, int]] = {}
    for vi in list(inferred.input) + list(inferred.value_info) + list(inferred.output):
        t = vi.type.tensor_type
        dims_ = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        if t.HasField("shape") and None not in dims_:
            shapes[vi.name] = (dims_, _itemsize(t.elem_type))
    shapes.update(weights)
    unknown = [o for n in graph.node for o in n.output if o and o not in shapes]
    if unknown:
        shapes.update(_measured(model, feeds, unknown))
    nodes = []
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        try:
            ops = _ops(node, {a.name: onnx.helper.get_attribute_value(a)
                              for a in node.attribute}, shapes)
        except KeyError as e:
            raise UsageError(f"cannot count node {node.name or node.op_type} "
                             f"({node.op_type}): no shape for {e.args[0]}") from None
        w = a = 0.0
        for k, x in enumerate(node.input):
            if not x or x not in shapes:
                continue
            size = _bytes(shapes[x])
            if x in weights:
                w += (_bytes(shapes[node.output[0]]) if node.op_type == "Gather" and k == 0
                      else size)
            else:
                a += size
        a += sum(_bytes(shapes[o]) for o in node.output if o in shapes)
        nodes.append(NodeCost(node.name or node.output[0], node.op_type, float(ops), w, a))
    stored = sum(int(np.prod(t.dims, dtype=np.int64)) * _itemsize(t.data_type)
                 for t in inits.values())
    return ModelCost(nodes, stored, inputs={k: list(v.shape) for k, v in feeds.items()},
                     measured_shapes=len(unknown))


def _without_big_weights(model):
    """A copy for shape inference, which needs the weights' shapes but the values only of
    small ones (a Reshape's target shape): big initializers keep their dims, lose their data
    (copying and reading 168 MB of weights took most of the time)."""
    import onnx
    light = onnx.ModelProto()
    light.CopyFrom(model)
    for t in light.graph.initializer:
        if math.prod(t.dims) > 4096:
            for f in ("raw_data", "float_data", "int32_data", "int64_data", "double_data"):
                t.ClearField(f)
    return light


def _itemsize(elem_type: int) -> int:
    import onnx
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return 0  # strings and the like: no bytes worth counting


def _bytes(entry) -> float:
    shape, item = entry
    return float(math.prod(shape)) * item


def _measured(model, feeds, names) -> dict:
    """Shapes that shape inference left open, read back from one run with ONNX Runtime, the
    tensors added as outputs."""
    import onnx
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError(f"the shapes of {', '.join(names[:3])} depend on the inputs' values; "
                         "counting them needs onnxruntime: pip install 'numaprobe[infer]'") from None
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    got = sess.run(names, feeds)
    return {n: (tuple(v.shape), v.dtype.itemsize) for n, v in zip(names, got)}


def _ops(node, attrs: dict, shapes: dict) -> float:
    op = node.op_type
    out = shapes[node.output[0]][0] if node.output and node.output[0] else ()
    elements = float(math.prod(out))
    if op in _MATMUL:
        a = shapes[node.input[0]][0]
        k = a[-1]
        return 2.0 * elements * k
    if op == "Gemm":
        a = shapes[node.input[0]][0]
        k = a[0] if attrs.get("transA") else a[1]
        bias = elements if len(node.input) > 2 and node.input[2] else 0.0
        return 2.0 * elements * k + bias
    if op in _CONV:
        w = shapes[node.input[3 if op == "QLinearConv" else 1]][0]
        per = float(math.prod(w[1:]))  # Cin/group x kernel area
        bias_at = 8 if op == "QLinearConv" else 2
        bias = elements if len(node.input) > bias_at and node.input[bias_at] else 0.0
        return 2.0 * elements * per + bias
    if op in PER_ELEMENT:
        return PER_ELEMENT[op] * elements
    if op in _REDUCE:
        return float(math.prod(shapes[node.input[0]][0]))
    if op in ("MaxPool", "AveragePool", "LpPool"):
        return elements * float(math.prod(attrs.get("kernel_shape", [1])))
    return 0.0  # data movement


# ------------------------------------------------------------------------ the result kind

def _text(doc: dict) -> str:
    from ..topology import human_bytes
    r = doc["result"]
    feeds = ", ".join(f"{k} [{', '.join(map(str, v))}]" for k, v in r["inputs"].items())
    lines = [f"model {r['model']['name']}: one inference with {feeds}",
             f"  {_ops_words(r['ops'])}; weights read {human_bytes(r['weight_bytes'])} "
             f"(stored {human_bytes(r['stored_weight_bytes'])})",
             f"  activations read and written {human_bytes(r['activation_bytes'])} if nothing "
             "stays in cache",
             f"  intensity {r['intensity']:.3g} operations per byte"
             + (f"; {plural(r['measured_shapes'], 'shape')} read back from one ONNX Runtime run"
                if r["measured_shapes"] else ""),
             f"{'op type':<24}{'nodes':>6}{'operations':>14}{'share':>8}{'weights':>12}"
             f"{'activations':>13}"]
    for name, t in r["by_type"].items():
        lines.append(f"{name:<24}{t['nodes']:>6}{t['ops']:>14.4g}{100 * t['share']:>7.1f}%"
                     f"{human_bytes(t['weight_bytes']):>12}{human_bytes(t['activation_bytes']):>13}")
    return "\n".join(lines)


def _ops_words(ops: float) -> str:
    return f"{ops / 1e9:.3g} G operations" if ops >= 1e8 else f"{ops / 1e6:.3g} M operations"


def _html(doc: dict) -> str:
    from ..report import html as H
    from ..topology import human_bytes
    r = doc["result"]
    rows = [[name, str(t["nodes"]), f"{t['ops']:.4g}", f"{100 * t['share']:.1f} %",
             human_bytes(t["weight_bytes"]), human_bytes(t["activation_bytes"])]
            for name, t in r["by_type"].items()]
    return (f"<p>{H.e(_ops_words(r['ops']))} per inference; weights read "
            f"{H.e(human_bytes(r['weight_bytes']))}; intensity {r['intensity']:.3g} ops/byte</p>"
            + H.table(["op type", "nodes", "operations", "share", "weights", "activations"],
                      rows, caption="cost per op type", numeric=(1, 2, 3, 4, 5)))


def _rows(doc: dict) -> tuple[list, list]:
    r = doc["result"]
    return (["op_type", "nodes", "ops", "share", "weight_bytes", "activation_bytes"],
            [[k, t["nodes"], t["ops"], t["share"], t["weight_bytes"], t["activation_bytes"]]
             for k, t in r["by_type"].items()])


def _register() -> None:
    from ..kinds import Kind, register
    register(Kind("cost", "cost of one inference", text=_text, html=_html, rows=_rows))


_register()
