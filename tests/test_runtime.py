"""specc.runtime for applications: optimization levels and the optimized-graph cache, batching,
threads, IOBinding with DLPack tensors, node placement, and one clear error per bad model file."""

from __future__ import annotations

import threading

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import specc.runtime as sr
from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file

SPEC = """\
specc: 1
name: small
task: classification
inputs: {x: {shape: [1, 8, 8]}}
labels: [a, b, c]
model:
  - {type: conv2d, out_channels: 4, kernel_size: 3, padding: same}
  - relu
  - flatten
  - {type: linear, out_features: 3}
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small CNN exported by specc (fresh weights: the runtime, not training, is under test)."""
    folder = tmp_path_factory.mktemp("small")
    (folder / "small.yaml").write_text(SPEC)
    compiled = compile_file(folder / "small.yaml")
    codegen.write(compiled, folder)
    torch.manual_seed(0)
    ex.export(ex.instantiate(folder), compiled.ir, folder / "model.onnx", labels=["a", "b", "c"])
    return folder


def inputs(n=10, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 1, 8, 8)).astype(np.float32)


def reference(folder, x):
    """A bare ONNX Runtime session: what the runtime must agree with."""
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_every_optimization_level_and_the_cache_compute_the_same(exported, tmp_path):
    x = inputs()
    want = reference(exported, x)
    for level in ("disabled", "basic", "extended", "all"):
        np.testing.assert_allclose(
            sr.load(exported, optimization=level, cache=False)(x), want, atol=1e-5
        )
    model_file = tmp_path / "m.onnx"
    model_file.write_bytes((exported / "model.onnx").read_bytes())
    first, second = sr.load(model_file), sr.load(model_file)
    assert (first.cache, second.cache) == ("written", "hit")
    assert (tmp_path / ".m.all.cpu.onnx").is_file() and (tmp_path / ".m.all.cpu.json").is_file()
    np.testing.assert_allclose(second(x), want, atol=1e-5)
    assert second.labels == ["a", "b", "c"]  # metadata survives the optimized copy
    # another model under the same name: the hash differs, the cache is rebuilt, never reused
    other = onnx.load(str(model_file))
    w = onnx.numpy_helper.to_array(other.graph.initializer[0]) + 1.0
    other.graph.initializer[0].CopyFrom(
        onnx.numpy_helper.from_array(w, other.graph.initializer[0].name)
    )
    onnx.save(other, str(model_file))
    third = sr.load(model_file)
    assert third.cache == "written"
    plain = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(third(x), plain.run(None, {"x": x})[0], atol=1e-5)
    assert not np.allclose(third(x), want)
    # a damaged cache file is rebuilt, not trusted
    (tmp_path / ".m.all.cpu.onnx").write_bytes(b"garbage")
    fourth = sr.load(model_file)
    assert fourth.cache == "written"
    np.testing.assert_allclose(fourth(x), third(x), atol=1e-6)
    assert sr.load(model_file, cache=False).cache == "off"


def test_thread_settings_reach_the_session(exported):
    m = sr.load(exported, threads=1, inter_op_threads=2, cache=False)
    opts = m.session.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 2
    with pytest.raises(sr.ModelLoadError, match="unknown optimization level 'max'"):
        sr.load(exported, optimization="max")


def test_run_batched_equals_one_run(exported):
    m = sr.load(exported)
    x = inputs(101)
    whole = m(x)
    for size in (1, 7, 64, 500):
        np.testing.assert_allclose(m.run_batched(x, size), whole, atol=1e-6)
    assert m.run_batched({"x": x}, 10)["logits"].shape == (101, 3)
    with pytest.raises(sr.InputError, match="batch_size must be at least 1"):
        m.run_batched(x, 0)


def test_one_model_shared_by_threads(exported):
    m = sr.load(exported)
    batches = [inputs(5 + i % 4, seed=i) for i in range(64)]
    expected = [m(b) for b in batches]
    results: dict[int, np.ndarray] = {}

    def work(k):
        for i in range(k, len(batches), 8):
            results[i] = m(batches[i])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(64))
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(results[i], want)


def test_bound_runs_take_and_return_tensors_in_place(exported):
    m = sr.load(exported)
    x = inputs(6)
    want = m(x)
    out = m.run_bound(x=torch.from_numpy(x))["logits"]
    assert isinstance(out, torch.Tensor) and out.device.type == m.device
    np.testing.assert_allclose(out.numpy(), want, atol=1e-6)
    value = m.run_bound(x=x)["logits"]
    assert isinstance(value, ort.OrtValue)
    np.testing.assert_allclose(value.numpy(), want, atol=1e-6)
    np.testing.assert_allclose(
        m.run_bound(x=ort.OrtValue.ortvalue_from_numpy(x))["logits"].numpy(), want, atol=1e-6
    )
    # the input is used in place: DLPack shares the tensor's memory with ONNX Runtime
    t = torch.from_numpy(x.copy())
    shared = ort.OrtValue.from_dlpack(t)
    t[0, 0, 0, 0] = 123.0
    assert shared.numpy()[0, 0, 0, 0] == 123.0
    with pytest.raises(
        sr.InputError, match=r"input 'x': expected float32 \(batch, 1, 8, 8\), got tensor\(double\)"
    ):
        m.run_bound(x=torch.zeros(2, 1, 8, 8, dtype=torch.float64))
    with pytest.raises(sr.InputError, match="missing input 'x'"):
        m.run_bound(y=x)


def test_node_placement_counts_the_nodes_each_provider_ran(exported):
    placement = sr.load(exported).node_placement()
    assert set(placement) == {"CPUExecutionProvider"}
    assert (
        1
        <= placement["CPUExecutionProvider"]
        <= len(onnx.load(str(exported / "model.onnx")).graph.node)
    )


@pytest.mark.skipif(
    "CUDAExecutionProvider" not in ort.get_available_providers(),
    reason="needs onnxruntime-gpu and an NVIDIA GPU (this machine has neither)",
)
def test_cuda_bound_run_keeps_tensors_on_the_gpu(exported):
    m = sr.load(exported, device="cuda")
    x = torch.from_numpy(inputs(4)).cuda()
    out = m.run_bound(x=x)["logits"]
    assert out.is_cuda
    np.testing.assert_allclose(
        out.cpu().numpy(), sr.load(exported, device="cpu")(inputs(4)), atol=1e-4
    )
    assert set(m.node_placement()) <= {"CUDAExecutionProvider", "CPUExecutionProvider"}


def test_bad_model_files_get_one_clear_message_each(exported, tmp_path):
    good = (exported / "model.onnx").read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good[: len(good) // 3])
    with pytest.raises(sr.ModelLoadError, match="truncated or not an ONNX model"):
        sr.load(truncated)
    proto = onnx.load(str(exported / "model.onnx"))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "foreign.onnx"))
    with pytest.raises(
        sr.ModelLoadError, match="has no specc metadata: it was not exported by specc"
    ):
        sr.load(tmp_path / "foreign.onnx")
    proto = onnx.load(str(exported / "model.onnx"))
    for p in proto.metadata_props:
        if p.key == "specc.format":
            p.value = "2"
        if p.key == "specc.version":
            p.value = "9.0.0"
    onnx.save(proto, str(tmp_path / "future.onnx"))
    with pytest.raises(
        sr.ModelLoadError,
        match="built by specc 9.0.0 in model format 2; this specc.runtime reads format 1",
    ):
        sr.load(tmp_path / "future.onnx")
    with pytest.raises(sr.ModelLoadError, match="no model at"):
        sr.load(tmp_path / "missing.onnx")
