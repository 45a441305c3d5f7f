"""`fvtui verify MODEL.onnx` (issue 22): networks trained elsewhere, read from ONNX and verified."""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from fvtui.errors import UserError
from fvtui.interop.command import add_export_flags, add_parser, main_verify
from fvtui.interop.onnx_export import onnx_bytes, onnx_logits
from fvtui.interop.onnx_import import read_network
from fvtui.interop.verify_command import VerifyOptions, print_report, run_verify
from fvtui.model import new_model, train
from fvtui.verify import SolverPool


@pytest.fixture(scope="module")
def small(demo):
    torch.set_num_threads(1)
    model = new_model(demo.num_features, (8,), demo.num_classes, seed=4)
    return train(model, demo.train_x[:300], demo.train_y[:300], epochs=3, batch_size=32, lr=1e-3, seed=4)


@pytest.fixture(scope="module")
def small_onnx(small, demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("verify") / "small.onnx"
    path.write_bytes(onnx_bytes(small, demo.num_features)[0])
    return path


@pytest.fixture(scope="module")
def pool():
    with SolverPool(1) as p:
        yield p


def save(tmp_path, nodes, inits, n_in=784, n_out=10, name="net.onnx", in_shape=None):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape or [1, n_in])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_matmul_add_flatten_network_reads_like_onnxruntime(tmp_path, demo):
    rng = np.random.default_rng(0)
    w1, b1, w2, b2 = rng.normal(size=(784, 12)), rng.normal(size=12), rng.normal(size=(12, 10)), rng.normal(size=10)
    path = save(tmp_path, [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "W1"], ["m"]),
                           helper.make_node("Add", ["m", "B1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
                           helper.make_node("Gemm", ["r", "W2", "B2"], ["y"])],
                {"W1": w1, "B1": b1, "W2": w2, "B2": b2})
    net = read_network(path)
    assert [w.shape for w in net.weights] == [(12, 784), (10, 12)]
    x = demo.test_x[:20].numpy()
    assert np.abs(net.logits(x) - onnx_logits(path, x)).max() < 1e-4


def test_torch_exported_network_reads_back_exactly(small, small_onnx, demo):
    net = read_network(small_onnx)
    reference = [m.weight.detach().numpy() for m in small.linears]
    assert all(np.array_equal(a, b) for a, b in zip(net.weights, reference))
    assert net.biases[-1] is None


def test_verify_at_one_eps_gives_the_table_and_pngs(small_onnx, pool, tmp_path, capsys):
    opts = VerifyOptions(model=str(small_onnx), dataset="demo", samples=3, eps=0.05, out=str(tmp_path / "png"))
    report = run_verify(opts, pool=pool)
    assert report["samples"] == 3 and report["onnxruntime_max_abs_diff"] < 1e-5
    statuses = [r["status"] for r in report["results"]]
    assert set(statuses) <= {"robust", "counterexample", "timeout"}
    found = [r for r in report["results"] if r["status"] == "counterexample"]
    for r in found:
        assert r["counterexample_class"] != r["predicted"] and r["counterexample_distance"] <= 0.05 + 1e-6
        assert (tmp_path / "png" / r["png"].split("/")[-1]).is_file()
    json.dumps(report)  # --json prints it as is
    print_report(report, as_json=False)
    rows = capsys.readouterr().out.splitlines()[3:6]
    classes = report["classes"]
    assert classes[:3] == ["T-shirt/top", "Trouser", "Pullover"]  # the table names them
    for line, r in zip(rows, report["results"]):
        assert line.split("  ")[0] == str(r["index"])
        assert f"  {classes[r['label']]}  " in line and f"  {classes[r['predicted']]}  " in line, line
        if "counterexample_class" in r:
            assert f"  {classes[r['counterexample_class']]} at {r['counterexample_distance']:.4f}  " in line, line


def test_certified_radius_brackets_the_first_counterexample(small_onnx, pool, tmp_path):
    report = run_verify(VerifyOptions(model=str(small_onnx), dataset="demo", samples=1, radius=True,
                                      precision=0.01, out=str(tmp_path)), pool=pool)
    (row,) = report["results"]
    assert row["status"] == "exact" and row["radius_upper"] - row["radius_lower"] <= 0.01
    if "counterexample_class" in row:
        assert row["counterexample_distance"] <= row["radius_upper"] + 1e-6


def test_the_command_prints_json(small_onnx, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    add_export_flags(sub.add_parser("export"))
    args = parser.parse_args(["verify", str(small_onnx), "--dataset", "demo", "--samples", "1", "--eps", "0.001",
                              "--json", "--workers", "1", "--out", str(tmp_path)])
    assert main_verify(None, args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["results"][0]["status"] == "robust"


# -- bad input ---------------------------------------------------------------------------------------
def test_an_unsupported_operator_is_named(tmp_path):
    kernel = np.zeros((1, 1, 3, 3))
    path = save(tmp_path, [helper.make_node("Reshape", ["x", "S"], ["img"]),
                           helper.make_node("Conv", ["img", "K"], ["c"]),
                           helper.make_node("Flatten", ["c"], ["y"])], {"S": [1, 1, 28, 28], "K": kernel}, n_out=676)
    with pytest.raises(UserError, match="not a feed-forward ReLU network: operator 'Reshape'"):
        read_network(path)
    path = save(tmp_path, [helper.make_node("Gemm", ["x", "W"], ["z"], transB=1),
                           helper.make_node("Softmax", ["z"], ["y"])], {"W": np.zeros((10, 784))})
    with pytest.raises(UserError, match="operator 'Softmax'"):
        read_network(path)


def test_a_network_ending_in_relu_is_refused(tmp_path):
    path = save(tmp_path, [helper.make_node("Gemm", ["x", "W"], ["z"], transB=1), helper.make_node("Relu", ["z"], ["y"])],
                {"W": np.zeros((10, 784))})
    with pytest.raises(UserError, match="ends with a Relu"):
        read_network(path)


def test_input_size_mismatch(tmp_path):
    path = save(tmp_path, [helper.make_node("Gemm", ["x", "W"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
                           helper.make_node("Gemm", ["r", "V"], ["y"], transB=1)],
                {"W": np.zeros((10, 100)), "V": np.zeros((10, 10))}, n_in=100)
    with pytest.raises(UserError, match="takes 100 input values, but dataset 'demo' has 784"):
        run_verify(VerifyOptions(model=str(path), dataset="demo", samples=1, eps=0.1))


def test_corrupt_and_missing_files(tmp_path, small_onnx):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(small_onnx.read_bytes()[:500])
    with pytest.raises(UserError, match="is not a readable ONNX model"):
        read_network(broken)
    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    with pytest.raises(UserError, match="is not a readable ONNX model"):
        read_network(text)
    with pytest.raises(UserError, match="no such ONNX file"):
        read_network(tmp_path / "ghost.onnx")


@pytest.mark.parametrize("eps", [0.0, -0.1, 1.5])
def test_eps_outside_the_unit_interval(small_onnx, eps):
    with pytest.raises(UserError, match=r"eps must be in \(0, 1\]"):
        run_verify(VerifyOptions(model=str(small_onnx), dataset="demo", samples=1, eps=eps))


@pytest.mark.parametrize("timeout", [0.0, float("nan"), float("inf")])
def test_a_timeout_that_is_no_number_of_seconds_is_refused(small_onnx, timeout):
    """nan and inf passed: every query then failed, and --json wrote NaN, which is no JSON."""
    with pytest.raises(UserError, match=r"--timeout must be in \(0, 86400\] seconds"):
        run_verify(VerifyOptions(model=str(small_onnx), dataset="demo", samples=1, timeout=timeout))


def test_a_gemm_bias_of_shape_1_by_n_reads_like_onnxruntime(tmp_path, demo):
    """ONNX lets Gemm's C broadcast from (1, N); it was a numpy traceback."""
    rng = np.random.default_rng(1)
    w1, b1, w2, b2 = rng.normal(size=(12, 784)), rng.normal(size=(1, 12)), rng.normal(size=(10, 12)), rng.normal(size=(1, 10))
    path = save(tmp_path, [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
                           helper.make_node("Gemm", ["r", "W2", "B2"], ["y"], transB=1)],
                {"W1": w1, "B1": b1, "W2": w2, "B2": b2})
    x = demo.test_x[:5].numpy()
    assert np.abs(read_network(path).logits(x) - onnx_logits(path, x)).max() < 1e-4


def test_a_network_without_a_hidden_layer_is_refused_at_reading(tmp_path):
    path = save(tmp_path, [helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1)],
                {"W": np.ones((10, 784)), "B": np.zeros(10)})
    with pytest.raises(UserError, match="has no hidden layer"):  # every sample was an 'error' of numpy's
        read_network(path)


@pytest.mark.parametrize("colour", [True, False])
def test_a_model_that_reads_images_channels_first_is_verified_as_itself(tmp_path, colour):
    """PyTorch's (C, H, W) input: a colour model was verified on pixels in the wrong order, without a word,
    and onnxruntime's check was skipped for any input shape but (1, n)."""
    rng = np.random.default_rng(2)
    h, w, c = 4, 5, 3 if colour else 1
    x = rng.integers(0, 256, (60, h, w, c) if colour else (60, h, w), dtype=np.uint8)
    y = (x.reshape(60, h * w, c)[:, :, 0].mean(1) > 127).astype(int)  # two classes, from channel 0 alone
    np.savez(tmp_path / "d.npz", x=x, y=y)
    w1 = np.zeros((6, c * h * w))
    w1[:, : h * w] = rng.normal(size=(6, h * w))  # reads channel 0 of a (C, H, W) input only
    path = save(tmp_path, [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "W1", "B1"], ["h"], transB=1),
                           helper.make_node("Relu", ["h"], ["r"]), helper.make_node("Gemm", ["r", "W2"], ["y"], transB=1)],
                {"W1": w1, "B1": rng.normal(size=6), "W2": rng.normal(size=(2, 6))}, n_out=2, in_shape=[1, c, h, w])
    report = run_verify(VerifyOptions(model=str(path), dataset=str(tmp_path / "d.npz"), samples=8, eps=0.01,
                                      out=str(tmp_path / "png")))
    assert report["onnxruntime_max_abs_diff"] is not None and report["onnxruntime_max_abs_diff"] < 1e-4


def test_the_fvtui_command_line_exits_2(small_onnx, capsys):
    """Through fvtui.cli once the interop parsers are wired into it (skipped before)."""
    from fvtui import cli

    parser = cli.build_parser()
    if "verify" not in parser._subparsers._group_actions[0].choices:
        pytest.skip("fvtui verify is not wired into fvtui/cli.py yet")
    assert cli.main(["verify", str(small_onnx), "--dataset", "demo", "--eps", "1.5"]) == 2
    assert "eps must be in (0, 1]" in capsys.readouterr().err


async def test_the_app_opens_an_onnx_networks_samples_in_the_inspector(small_onnx, small, demo):
    """`fvtui verify MODEL.onnx --app`: browse the test samples, verify one in the solver pool, see the
    counterexample beside the original; escape leaves the app."""
    from fvtui.app.app import make_app
    from fvtui.interop.verify_command import inspector_screen
    from fvtui.store import SessionStore

    screen = inspector_screen(VerifyOptions(model=str(small_onnx), dataset="demo", samples=5, eps=0.3, timeout=60))
    app = make_app(SessionStore("unused"), screen=screen)
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.screen is screen
        title = str(screen.query_one("#inspect-title").render())
        assert f"small.onnx · test sample 1/5 (#0) · true {demo.classes[int(demo.test_y[0])]}" in title
        assert screen.query_one("#eps").value == "0.3"
        await pilot.press("n")
        assert screen.position == 1 and np.array_equal(screen.x, demo.test_x[1].numpy())
        await pilot.press("v")
        for _ in range(600):
            await pilot.pause(0.1)
            if not screen.busy:
                break
        result = str(screen.query_one("#verify-result").render())
        assert result.startswith("counterexample at eps 0.3"), result  # eps 0.3 breaks this small network
        point = screen.candidates[-1].x
        assert np.abs(point - screen.x).max() <= 0.3 + 1e-6
        assert screen.net.predict(point) != screen.net.predict(screen.x)
        assert "counterexample ·" in str(screen.query_one("#caption-counterexample").render())
        await pilot.press("escape")
    assert app.return_code == 0 and not app.is_running
    app.close_pool()


def test_app_with_radius_or_json_is_refused(small_onnx):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["verify", str(small_onnx), "--dataset", "demo", "--app", "--json"])
    args = parser.parse_args(["verify", str(small_onnx), "--dataset", "demo", "--app", "--radius"])
    with pytest.raises(UserError, match="--radius is for the table"):
        main_verify(None, args)
