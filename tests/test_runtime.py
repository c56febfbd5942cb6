"""specc.runtime for applications: optimization levels and the optimized-graph cache, batching,
threads, IOBinding with DLPack tensors, node placement, and one clear error per bad model file."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

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


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A per-test cache folder, as SPECC_CACHE_DIR names it."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SPECC_CACHE_DIR", str(folder))
    return folder


def altered(source: Path, target: Path, delta: float = 1.0) -> Path:
    """The same graph with its first weight moved by `delta`: another model of the same size."""
    proto = onnx.load(str(source))
    w = onnx.numpy_helper.to_array(proto.graph.initializer[0]) + delta
    proto.graph.initializer[0].CopyFrom(
        onnx.numpy_helper.from_array(w, proto.graph.initializer[0].name)
    )
    onnx.save(proto, str(target))
    return target


def bare(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_every_optimization_level_and_the_cache_compute_the_same(exported, tmp_path, cache):
    x = inputs()
    want = reference(exported, x)
    for level in ("disabled", "basic", "extended", "all"):
        np.testing.assert_allclose(
            sr.load(exported, optimization=level, cache=False)(x), want, atol=1e-5
        )
    folder = tmp_path / "run"
    folder.mkdir()
    model_file = folder / "m.onnx"
    model_file.write_bytes((exported / "model.onnx").read_bytes())
    first, second = sr.load(model_file), sr.load(model_file)
    assert (first.cache, second.cache) == ("written", "hit")
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    (entry,) = cache.iterdir()  # keyed by the model's sha256, in the cache folder
    assert entry.name == f"{digest}.all.cpu.ort{ort.__version__}.onnx"
    assert sorted(p.name for p in folder.iterdir()) == ["m.onnx"]  # nothing beside the model
    np.testing.assert_allclose(second(x), want, atol=1e-5)
    assert second.labels == ["a", "b", "c"]  # metadata survives the optimized copy
    # another model under the same name: another key, another entry, never the first one's
    altered(model_file, model_file)
    third = sr.load(model_file)
    assert third.cache == "written" and len(list(cache.iterdir())) == 2
    np.testing.assert_allclose(third(x), bare(model_file, x), atol=1e-5)
    assert not np.allclose(third(x), want)
    # a damaged cache entry is rebuilt, not trusted
    (entry_of_third,) = [p for p in cache.iterdir() if p != entry]
    entry_of_third.write_bytes(b"garbage")
    fourth = sr.load(model_file)
    assert fourth.cache == "written"
    np.testing.assert_allclose(fourth(x), third(x), atol=1e-6)
    assert sr.load(model_file, cache=False).cache == "off"
    assert sr.load(model_file, optimization="disabled").cache == "off"


def test_the_cache_folder_comes_from_the_environment(monkeypatch, tmp_path):
    from specc.runtime.session import cache_dir

    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("SPECC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "specc"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "specc"


def test_a_planted_graph_never_runs(exported, tmp_path, cache):
    """The cache swap attack: a folder (a tarball keeps mtimes) that carries another graph
    beside model.onnx under the old cache's name, with a sidecar matching model.onnx's size and
    mtime, and another graph planted in the cache folder under wrong keys. Only model.onnx's
    own bytes decide what runs."""
    x = inputs()
    folder = tmp_path / "shipped"
    folder.mkdir()
    genuine = folder / "model.onnx"
    genuine.write_bytes((exported / "model.onnx").read_bytes())
    evil = altered(genuine, tmp_path / "evil.onnx", delta=50.0)
    want, bad = bare(genuine, x), bare(evil, x)
    assert not np.allclose(want, bad)
    stat = genuine.stat()
    for level, provider in (("all", "cpu"), ("extended", "cpu"), ("basic", "cpu")):
        stem = f".model.{level}.{provider}"
        (folder / f"{stem}.onnx").write_bytes(evil.read_bytes())
        (folder / f"{stem}.json").write_text(
            json.dumps(
                {
                    "model_sha256": hashlib.sha256(genuine.read_bytes()).hexdigest(),
                    "file": {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
                    "settings": {
                        "optimization": level,
                        "providers": ["CPUExecutionProvider"],
                        "onnxruntime": ort.__version__,
                    },
                }
            )
        )
    # in the cache folder: the evil graph under its own key, a made-up key, another version's
    cache.mkdir(mode=0o700)
    evil_digest = hashlib.sha256(evil.read_bytes()).hexdigest()
    digest = hashlib.sha256(genuine.read_bytes()).hexdigest()
    for name in (
        f"{evil_digest}.all.cpu.ort{ort.__version__}.onnx",
        f"{'0' * 64}.all.cpu.ort{ort.__version__}.onnx",
        f"{digest}.all.cpu.ort0.0.0.onnx",
    ):
        (cache / name).write_bytes(evil.read_bytes())
    for level in ("all", "basic"):
        model = sr.load(folder, optimization=level)
        assert model.cache == "written"  # none of the planted files was taken
        np.testing.assert_allclose(model(x), want, atol=1e-5)
        np.testing.assert_allclose(sr.load(folder, optimization=level)(x), want, atol=1e-5)
    # the other way round: a cached genuine graph never answers for changed bytes, even when
    # the file keeps its size and mtime
    altered(genuine, genuine, delta=50.0)
    os.utime(genuine, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert genuine.stat().st_size == stat.st_size
    np.testing.assert_allclose(sr.load(folder)(x), bad, atol=1e-4)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_cache_folder_others_can_write_is_not_used(exported, cache):
    cache.mkdir()
    cache.chmod(0o777)  # anyone could plant an entry: not used, nothing written
    model = sr.load(exported)
    assert model.cache == "off" and list(cache.iterdir()) == []
    cache.chmod(0o700)
    assert sr.load(exported).cache == "written"


def test_thread_settings_reach_the_session(exported):
    m = sr.load(exported, threads=1, inter_op_threads=2, cache=False)
    opts = m.session.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 2
    with pytest.raises(sr.ModelLoadError, match="unknown optimization level 'max'"):
        sr.load(exported, optimization="max")
    for bad in (-1, "2", 1.5, True):
        with pytest.raises(sr.ModelLoadError, match=r"threads must be a whole number >= 1"):
            sr.load(exported, threads=bad)
    with pytest.raises(sr.ModelLoadError, match=r"inter_op_threads must be a whole number"):
        sr.load(exported, inter_op_threads=-3)
    assert sr.load(exported, threads=0).session is not None  # 0: ONNX Runtime's choice


def test_nan_and_infinity_are_refused_unless_allowed(exported):
    m = sr.load(exported)
    x = inputs(3)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[1, 0, 2, 5] = bad
        for call in (m, m.predict, lambda v: m.run(x=v), lambda v: m.run_batched(v, 2)):
            with pytest.raises(sr.InputError, match=r"input 'x' holds .* at \[1, 0, 2, 5\]"):
                call(y)
    allowed = sr.load(exported, check_finite=False)
    y = x.copy()
    y[1, 0, 2, 5] = np.nan
    out = allowed(y)
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()


def test_run_batched_equals_one_run(exported):
    m = sr.load(exported)
    x = inputs(101)
    whole = m(x)
    for size in (1, 7, 64, 500):
        np.testing.assert_allclose(m.run_batched(x, size), whole, atol=1e-6)
    assert m.run_batched({"x": x}, 10)["logits"].shape == (101, 3)
    with pytest.raises(sr.InputError, match="batch_size must be at least 1"):
        m.run_batched(x, 0)
    with pytest.raises(sr.InputError, match="the batch is empty"):
        m.run_batched(x[:0])
    with pytest.raises(sr.InputError, match=r"input 'x' is a scalar"):
        m.run_batched(np.float32(1.0))
    with pytest.raises(sr.InputError, match="input 'x' is not a rectangular array of numbers"):
        m.run_batched([[1.0, 2.0], [3.0]])
    with pytest.raises(sr.InputError, match="input 'x' is not a rectangular array of numbers"):
        m([[1.0, 2.0], [3.0]])
    with pytest.raises(sr.InputError, match="must be an array of numbers, got <U1"):
        m.run_batched(np.array(["a", "b"]))
    with pytest.raises(sr.InputError, match="batch_size must be a whole number"):
        m.run_batched(x, 2.5)


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


TOKENS = """\
specc: 1
name: tokens
task: classification
inputs:
  words: {shape: [time], dtype: int64}
  lengths: {shape: [], dtype: int64}
labels: [neg, pos]
model:
  - {type: embedding, num_embeddings: 20, embedding_dim: 8, padding_idx: 0}
  - {type: gru, hidden_size: 8, output: last, lengths: lengths}
  - {type: linear, out_features: 2}
"""


@pytest.fixture(scope="module")
def tokens_model(tmp_path_factory):
    """A two-input text classifier (ids, lengths) with 20 token ids, as the exporter records."""
    from specc.runtime.contracts import Meta

    folder = tmp_path_factory.mktemp("tokens")
    (folder / "tokens.yaml").write_text(TOKENS)
    compiled = compile_file(folder / "tokens.yaml")
    codegen.write(compiled, folder)
    torch.manual_seed(0)
    extra = {Meta.TOKEN_IDS: json.dumps({"words": 20})}
    ex.export(ex.instantiate(folder), compiled.ir, folder / "model.onnx", extra=extra)
    return folder


def test_token_ids_lengths_and_batch_sizes_are_checked_before_onnx_runtime(tokens_model):
    m = sr.load(tokens_model)
    assert m.token_ids == {"words": 20} and m.length_of == {"lengths": "words"}
    words = np.array([[4, 5, 6, 0], [7, 19, 0, 0]])
    lengths = np.array([3, 2])
    good = m.run(words=words, lengths=lengths)["logits"]
    session = ort.InferenceSession(str(tokens_model / "model.onnx"))
    want = session.run(None, {"words": words, "lengths": lengths})[0]
    np.testing.assert_allclose(good, want, atol=1e-6)
    cases = [
        (
            {"words": words * 10, "lengths": lengths},
            r"input 'words' holds token id 40 at \[0, 0\]; this model's token ids run from 0 to 19",
        ),
        ({"words": -words, "lengths": lengths}, r"holds token id -4 at \[0, 0\]"),
        (
            {"words": words, "lengths": np.array([3, 0])},
            r"input 'lengths' holds the length 0 in row 1; .* from 1 to 4",
        ),
        ({"words": words, "lengths": np.array([10**6, 1])}, r"holds the length 1000000 in row 0"),
        (
            {"words": words, "lengths": np.array([3, 2, 1])},
            r"inputs disagree on the batch size: 'words' has 2, 'lengths' has 3",
        ),
        ({"words": words.astype(np.float64) + 0.5, "lengths": lengths}, r"expected int64"),
        ({"words": np.array([[2**40]]), "lengths": np.array([1])}, r"holds token id 1099511627776"),
        (
            {"words": np.array([[2**70]], dtype=object), "lengths": np.array([1])},
            r"must be an array of numbers",
        ),
    ]
    for feeds, message in cases:
        with pytest.raises(sr.InputError, match=message):
            m.run(**feeds)
    # onnxruntime would have failed (out-of-range ids) or answered without a word (the rest)
    with pytest.raises(Exception, match="out of data bounds"):
        session.run(None, {"words": words * 10, "lengths": lengths})
    session.run(None, {"words": -words, "lengths": lengths})
    session.run(None, {"words": words, "lengths": np.array([3, 0])})
    session.run(None, {"words": words, "lengths": np.array([10**6, 1])})


def test_a_vocabulary_in_the_metadata_bounds_the_ids(tokens_model, tmp_path):
    """Without Meta.TOKEN_IDS (a graph exported before it), a text model's vocabulary does."""
    from specc.runtime.contracts import Meta
    from specc.runtime.text import Vocab

    proto = onnx.load(str(tokens_model / "model.onnx"))
    kept = [p for p in proto.metadata_props if p.key != Meta.TOKEN_IDS]
    del proto.metadata_props[:]
    for p in kept:
        proto.metadata_props.add().CopyFrom(p)
    entry = proto.metadata_props.add()
    entry.key = Meta.VOCAB
    entry.value = Vocab(
        ("<pad>", "<unk>", "<bos>", "<eos>", "a", "b", "c"), "word", False
    ).to_json()
    onnx.save(proto, str(tmp_path / "model.onnx"))
    m = sr.load(tmp_path)
    assert m.token_ids == {"words": 7}
    with pytest.raises(sr.InputError, match="token ids run from 0 to 6"):
        m.run(words=np.array([[7]]), lengths=np.array([1]))


def test_an_onnx_runtime_failure_is_a_run_error(tokens_model, tmp_path):
    from specc.runtime.contracts import Meta

    proto = onnx.load(str(tokens_model / "model.onnx"))
    kept = [p for p in proto.metadata_props if p.key != Meta.TOKEN_IDS]
    del proto.metadata_props[:]
    for p in kept:
        proto.metadata_props.add().CopyFrom(p)
    onnx.save(proto, str(tmp_path / "model.onnx"))
    m = sr.load(tmp_path)  # no bound known: onnxruntime finds the id out of range
    assert m.token_ids == {}
    with pytest.raises(
        sr.RunError, match="ONNX Runtime failed on these inputs: .*out of data bounds"
    ) as caught:
        m.run(words=np.array([[50]]), lengths=np.array([1]))
    assert caught.value.input_refused  # onnxruntime's INVALID_ARGUMENT
