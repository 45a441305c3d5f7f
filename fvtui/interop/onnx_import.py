"""A feed-forward ReLU network trained elsewhere, read from ONNX into fvtui's numpy `Network`.

Supported: one input, one output, and a single chain of Gemm, MatMul, Add, Relu and Flatten (and
Identity, Dropout) whose weights are initializers or Constant nodes. Consecutive affine operators
form one layer; each Relu closes a layer; the chain must end with an affine layer (the logits).
Anything else (Conv, Softmax, Sigmoid, branches, weights computed at run time) is refused with the
first unsupported operator named.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from ..verify.network import Network

AFFINE = ("Gemm", "MatMul", "Add")
SHAPE_ONLY = ("Flatten", "Identity", "Dropout")
SUPPORTED = (*AFFINE, "Relu", *SHAPE_ONLY, "Constant")


def load_model(path: str | Path):
    """The ONNX model at path, checked; a missing, corrupt or truncated file is a UserError."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - protobuf DecodeError, onnx ValidationError, ...
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not a readable ONNX model (corrupt, truncated or not ONNX: {detail})") from None
    return model


def read_network(path: str | Path) -> Network:
    from onnx import numpy_helper

    path = Path(path)
    model = load_model(path)
    graph = model.graph
    for node in graph.node:
        if node.op_type not in SUPPORTED:
            raise UserError(f"{path} is not a feed-forward ReLU network: operator '{node.op_type}' (node "
                            f"'{node.name or node.output[0]}') is not supported; fvtui reads Gemm, MatMul+Add, "
                            "Relu and Flatten")
    consts = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UserError(f"{path} has {len(inputs)} inputs and {len(graph.output)} outputs; fvtui reads networks "
                        "with one input and one output")
    current = inputs[0].name
    layers: list[tuple[np.ndarray, np.ndarray | None]] = []
    affine: tuple[np.ndarray, np.ndarray | None] | None = None  # (matrix (out, in), bias or None) since the last Relu

    def refuse(node, why: str) -> UserError:
        return UserError(f"{path} is not a feed-forward ReLU network: node '{node.name or node.output[0]}' "
                         f"({node.op_type}) {why}")

    def constant(node, name: str) -> np.ndarray:
        if name not in consts:
            raise refuse(node, f"takes '{name}', which is neither the layer's input nor a constant weight")
        return consts[name]

    def compose(node, matrix: np.ndarray, bias: np.ndarray | None) -> None:
        nonlocal affine
        if affine is None:
            affine = (matrix, bias)
            return
        m, b = affine
        if matrix.shape[1] != m.shape[0]:
            raise refuse(node, f"takes {matrix.shape[1]} values where the layer before gives {m.shape[0]}")
        b = None if b is None else matrix @ b
        affine = (matrix @ m, b if bias is None else (bias if b is None else b + bias))

    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t).astype(np.float64)
            continue
        if current not in node.input:
            raise refuse(node, "is not on the network's single chain of layers")
        others = [name for name in node.input if name and name != current]
        if node.op_type == "Gemm":
            attrs = {a.name: a for a in node.attribute}
            if attrs.get("transA") and attrs["transA"].i:
                raise refuse(node, "transposes its input (transA)")
            if list(node.input).index(current) != 0:
                raise refuse(node, "takes the layer's input as its second operand")
            w = constant(node, node.input[1])
            w = w.T if attrs.get("transB") and attrs["transB"].i else w  # (in, out)
            alpha = attrs["alpha"].f if "alpha" in attrs else 1.0
            beta = attrs["beta"].f if "beta" in attrs else 1.0
            bias = None
            if len(node.input) > 2 and node.input[2]:
                bias = beta * constant(node, node.input[2]).reshape(-1)  # (n,), (1, n) or one value, as ONNX allows
                if bias.size not in (1, w.shape[1]):
                    raise refuse(node, f"adds a bias of {bias.size} values to its {w.shape[1]} outputs")
                bias = np.broadcast_to(bias, (w.shape[1],)).astype(np.float64)
            matrix = (alpha * w).T if alpha != 1.0 else w.T
            compose(node, matrix, bias)
        elif node.op_type == "MatMul":
            if node.input[0] != current or len(others) != 1:
                raise refuse(node, "does not multiply the layer's input by a constant matrix")
            w = constant(node, others[0])
            if w.ndim != 2:
                raise refuse(node, f"multiplies by a {w.ndim}-d tensor, not a matrix")
            compose(node, w.T, None)
        elif node.op_type == "Add":
            if len(others) != 1:
                raise refuse(node, "does not add a constant to the layer's input")
            b = constant(node, others[0]).reshape(-1)
            if affine is None:
                raise refuse(node, "adds to the network's input before any linear layer")
            width = affine[0].shape[0]
            b = np.broadcast_to(b, (width,)) if b.size in (1, width) else None
            if b is None:
                raise refuse(node, f"adds a constant that does not fit the layer's {width} outputs")
            m, old = affine
            affine = (m, np.array(b, np.float64) if old is None else old + b)
        elif node.op_type == "Relu":
            if affine is None:
                raise refuse(node, "is not preceded by a linear layer")
            layers.append(affine)
            affine = None
        # Flatten, Identity, Dropout (inference): the values pass through in the same order
        current = node.output[0]
    if current != graph.output[0].name:
        raise UserError(f"{path}: the output '{graph.output[0].name}' is not the end of the chain of layers")
    if affine is None:
        raise UserError(f"{path} is not a feed-forward ReLU network of the kind fvtui verifies: it ends with a Relu, "
                        "not with a linear layer giving the logits")
    layers.append(affine)
    if len(layers) == 1:
        raise UserError(f"{path} has no hidden layer (no Relu): fvtui verifies ReLU networks of at least one hidden "
                        "layer")
    for (m, _), (m_next, _) in zip(layers, layers[1:]):
        if m_next.shape[1] != m.shape[0]:
            raise UserError(f"{path}: a layer takes {m_next.shape[1]} values where the one before gives {m.shape[0]}")
    shape = declared_shape(inputs[0])
    declared = None if shape is None else int(np.prod(shape))
    if declared is not None and declared != layers[0][0].shape[1]:
        raise UserError(f"{path}: its input '{inputs[0].name}' has {declared} values but its first layer takes "
                        f"{layers[0][0].shape[1]}")
    return Network(tuple(np.ascontiguousarray(m, np.float32) for m, _ in layers),
                   tuple(None if b is None else np.ascontiguousarray(b, np.float32) for _, b in layers))


def declared_shape(value_info) -> tuple[int, ...] | None:
    """The declared input shape of one sample (leading batch dim left out), if fully known."""
    dims = value_info.type.tensor_type.shape.dim
    sizes = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(sizes) >= 2:
        sizes = sizes[1:]
    if not sizes or any(s is None for s in sizes):
        return None
    return tuple(int(s) for s in sizes)


def model_input_shape(path: str | Path) -> tuple[int, ...] | None:
    """What one sample looks like to the model at path, e.g. (3, 32, 32), when it says."""
    graph = load_model(path).graph
    consts = {t.name for t in graph.initializer}
    return declared_shape(next(i for i in graph.input if i.name not in consts))


def channels_first(shape: tuple[int, ...] | None, image_shape: tuple[int, ...]) -> bool:
    """The model reads colour images as (C, H, W), PyTorch's layout, where fvtui's pixels are (H, W, C)."""
    return (shape is not None and len(shape) == 3 and len(image_shape) == 3 and image_shape[2] > 1
            and shape == (image_shape[2], *image_shape[:2]) and shape != tuple(image_shape))


def from_channels_first(net: Network, image_shape: tuple[int, ...]) -> Network:
    """The same function on fvtui's (H, W, C) order: the first layer's columns taken in (C, H, W) order."""
    h, w, c = image_shape
    order = np.arange(h * w * c).reshape(c, h, w).transpose(1, 2, 0).ravel()
    return Network((np.ascontiguousarray(net.weights[0][:, order]), *net.weights[1:]), net.biases)

