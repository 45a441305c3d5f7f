"""A session's networks as ONNX: torch's exporter, checked against torch with onnxruntime.

Each file takes one input `input` of shape (1, features) (fvtui's flat pixel order, in [0, 1]) and
gives `logits` of shape (1, classes): the layout VNN-COMP benchmarks use, which every verifier
that reads VNN-LIB expects (X_i is input element i, Y_j output element j). The graph is
Gemm -> Relu -> ... -> MatMul (the output layer has no bias), opset OPSET.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_atomic
from ..errors import UserError

OPSET = 17
INPUT, OUTPUT = "input", "logits"


@dataclass
class Exported:
    path: Path
    label: str  # 'initial' or 'round N'
    max_abs_diff: float  # onnxruntime against torch, over the samples checked
    samples: int  # test samples checked
    exporter: str  # "torch.onnx (TorchScript)" or "onnx.helper" (when torch's exporter is unavailable)


def model_name(round_index: int) -> str:
    """The file name of the model after a round (0: the initial model)."""
    return "initial.onnx" if round_index == 0 else f"round-{round_index:04d}.onnx"


def onnx_bytes(model, features: int, doc: str = "", metadata: dict[str, str] | None = None) -> tuple[bytes, str]:
    """The torch MLP as an ONNX model (bytes), and which exporter made it."""
    import onnx
    import torch

    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, torch.zeros(1, features), buffer, dynamo=False, opset_version=OPSET,
                              input_names=[INPUT], output_names=[OUTPUT])
        proto = onnx.load_from_string(buffer.getvalue())
        exporter = "torch.onnx (TorchScript)"
    except Exception:  # noqa: BLE001 - a torch without its TorchScript exporter: the same graph by hand
        proto = _helper_model(model, features)
        exporter = "onnx.helper"
    proto.doc_string = doc
    proto.producer_name = "fvtui"
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    return proto.SerializeToString(), exporter


def _helper_model(model, features: int):
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, current = [], [], INPUT
    layers = model.linears
    for i, layer in enumerate(layers):
        w = layer.weight.detach().numpy().astype(np.float32)
        out = OUTPUT if i == len(layers) - 1 else f"linear{i}"
        inits.append(numpy_helper.from_array(w, f"W{i}"))
        inputs = [current, f"W{i}"]
        if layer.bias is not None:
            inits.append(numpy_helper.from_array(layer.bias.detach().numpy().astype(np.float32), f"B{i}"))
            inputs.append(f"B{i}")
        nodes.append(helper.make_node("Gemm", inputs, [out], transB=1))
        current = out
        if i < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [out], [f"relu{i}"]))
            current = f"relu{i}"
    graph = helper.make_graph(
        nodes, "fvtui_mlp", [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, features])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [1, layers[-1].weight.shape[0]])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def onnx_logits(data: bytes | str | Path, x: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """onnxruntime's logits for each row of x (one run per row: the model's batch is 1), each reshaped to
    `shape` when given (the model's own input shape, e.g. (1, 28, 28))."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    source = data if isinstance(data, bytes) else str(data)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.asarray(x, np.float32)
    if shape is not None:
        x = x.reshape(len(x), *shape)
    return np.concatenate([session.run(None, {name: row[None]})[0] for row in x]) if len(x) else np.zeros((0, 0))


def write_checked(model, features: int, test_x, path: Path, label: str, metadata: dict[str, str]) -> Exported:
    """Write the model as ONNX at path and compare onnxruntime's logits with torch's on test_x."""
    import torch

    from ..model import logits

    data, exporter = onnx_bytes(model, features, doc=f"fvtui {label}", metadata=metadata)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    write_atomic(path, data)
    x = torch.as_tensor(test_x)
    reference = logits(model, x).numpy()
    got = onnx_logits(data, x.numpy())
    diff = float(np.abs(got - reference).max()) if len(reference) else 0.0
    return Exported(path, label, diff, int(x.shape[0]), exporter)


def session_model(session, dataset, round_index: int):
    from .. import model as nn_model

    cfg = session.config
    return nn_model.model_from_numpy(session.model_state(round_index), dataset.num_features, cfg.hidden,
                                     dataset.num_classes)


def export_networks(session, dataset, folder: Path, rounds: list[int] | None = None) -> list[Exported]:
    """The initial network and each finished round's (or the rounds given) as ONNX in folder."""
    rounds = list(range(len(session.rounds) + 1)) if rounds is None else rounds
    done = []
    for r in rounds:
        label = "initial" if r == 0 else f"round {r}"
        meta = {"fvtui_session": session.name, "fvtui_model": label, "fvtui_dataset": dataset.name,
                "fvtui_input": f"(1, {dataset.num_features}) float32 pixels in [0, 1], fvtui's flat order",
                "opset": str(OPSET)}
        done.append(write_checked(session_model(session, dataset, r), dataset.num_features, dataset.test_x,
                                  folder / model_name(r), label, meta))
    return done
