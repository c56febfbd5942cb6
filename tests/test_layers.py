"""Every registered layer type, the moment it exists: it validates, infers a shape, generates code
that parses, produces in torch exactly the inferred shape and parameter count, and exports to
ONNX with ONNX Runtime agreeing with PyTorch at other batch sizes."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from helpers import REPO

from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.layers import LAYERS
from specc.compiler.load import load_text
from specc.compiler.pipeline import compile_file

# A natural input for each layer type (batch excluded). A new layer type must add its entry.
INPUT_FOR = {
    "linear": [6],
    "sigmoid": [5, 6],
    "tanh": [6],
    "relu": [3, 4, 4],
    "leaky_relu": [6],
    "elu": [6],
    "gelu": [6],
    "softmax": [6],
    "log_softmax": [2, 6],
    "identity": [6],
    "dropout": [6],
    "batchnorm1d": [4, 16],
    "batchnorm2d": [3, 8, 8],
    "group_norm": [4, 5, 5],
    "layernorm": [5, 6],
    "flatten": [3, 4, 4],
    "reshape": [64],
    "conv1d": [4, 16],
    "conv2d": [3, 12, 12],
    "conv_transpose2d": [3, 6, 6],
    "maxpool1d": [4, 16],
    "avgpool1d": [4, 16],
    "maxpool2d": [3, 12, 12],
    "avgpool2d": [3, 12, 12],
    "adaptive_avgpool2d": [3, 12, 12],
    "upsample": [3, 5, 5],
    "add": [3, 4, 4],
    "concat": [3, 4, 4],
    "embedding": ["time"],
    "rnn": ["time", 6],
    "lstm": ["time", 6],
    "gru": ["time", 6],
    "decoder": [6],
    "gaussian_latent": [6],
    "multihead_attention": ["time", 8],
    "attention": ["time", 8],
    "positional_encoding": ["time", 8],
    "transformer_encoder_layer": ["time", 8],
    "transformer_decoder_layer": ["time", 8],
    "recurrent": ["time", 6],
}
DTYPE_FOR = {"embedding": "int64"}  # token ids
ELMAN = {  # the cell the recurrent layer's doc example names
    "my_cell": {
        "state": {"h": "hidden"},
        "params": {"W": ["hidden", "input"], "U": ["hidden", "hidden"], "b": ["hidden"]},
        "equations": ["h = tanh(W @ x + U @ h + b)"],
    }
}


def test_every_layer_has_a_test_input():
    assert sorted(LAYERS) == sorted(INPUT_FOR), "add the new layer type to INPUT_FOR"


def layer_spec(tmp_path, kind: str) -> str:
    example = yaml.safe_load(LAYERS[kind].doc_example)[0]
    layer = {"type": example} if isinstance(example, str) else dict(example)
    shape = INPUT_FOR[kind]
    if LAYERS[kind].arity == "many":
        inputs = {"left": {"shape": shape}, "right": {"shape": shape}}
        layer["from"] = ["left", "right"]
    else:
        inputs = {"x": {"shape": shape, "dtype": DTYPE_FOR.get(kind, "float32")}}
    spec = {
        "specc": 1,
        "name": f"only_{kind}",
        "task": "regression",
        "inputs": inputs,
        "model": [layer],
    }
    if kind == "recurrent":
        spec["cells"] = ELMAN
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_end_to_end(kind, tmp_path):
    compiled = compile_file(layer_spec(tmp_path, kind))
    out_dir = tmp_path / "build"
    codegen.write(compiled, out_dir)
    model = ex.instantiate(out_dir)
    feeds = ex.example_feeds(model, 3, 8, seed=1)
    with torch.no_grad():
        out = model(*feeds.values())
    inferred = compiled.inferred.out_shapes[compiled.parsed.layers[-1].name]
    dynamic = {name: 8 for name in compiled.ir.dynamic_dims}  # what example_feeds gave named dims
    concrete = [eval(d, {}, dynamic) if isinstance(d, str) else d for d in inferred]
    assert tuple(out.shape) == (3, *concrete)
    assert (
        sum(p.numel() for p in model.parameters() if p.requires_grad)
        == compiled.inferred.total_params
    )
    onnx_path = ex.export(model, compiled.ir, tmp_path / "m.onnx")
    par = ex.parity(model, onnx_path, compiled.ir, [1, 5], tolerance=1e-5)
    assert par.ok, par.as_dict()


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_doc_example_validates(kind):
    assert LAYERS[kind].doc_example, f"{kind} needs a doc_example"
    text = (
        "specc: 1\nname: t\ntask: regression\ninputs: {x: {shape: [4]}}\nmodel:\n  "
        + LAYERS[kind].doc_example
        + "\n"
    )
    assert load_text(text).data["model"]


# Shape rules against PyTorch's own arithmetic on awkward settings.
CONV_CASES = [
    dict(out_channels=4, kernel_size=3, stride=2, padding=1),
    dict(out_channels=6, kernel_size=[3, 5], stride=[1, 2], padding=[2, 0], dilation=[2, 1]),
    dict(out_channels=6, kernel_size=4, padding="same", groups=3),
    dict(out_channels=3, kernel_size=2, padding="valid", bias=False),
]


@pytest.mark.parametrize("params", CONV_CASES)
def test_conv2d_shape_and_params_match_torch(params):
    from specc.compiler.layers.conv2d import Conv2d

    layer = Conv2d(type="conv2d", **params)
    shape = (3, 17, 13)
    ref = torch.nn.Conv2d(
        3,
        params["out_channels"],
        **{
            k: (tuple(v) if isinstance(v, list) else v)
            for k, v in params.items()
            if k != "out_channels"
        },
    )
    out = ref(torch.zeros(1, *shape))
    assert layer.infer([shape]) == tuple(out.shape[1:])
    assert layer.param_count([shape]) == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize("k,s,p,op", [(4, 2, 1, 0), (3, 2, 1, 1), (5, 3, 2, 2)])
def test_conv_transpose2d_shape_matches_torch(k, s, p, op):
    from specc.compiler.layers.conv_transpose2d import ConvTranspose2d

    layer = ConvTranspose2d(
        type="conv_transpose2d",
        out_channels=5,
        kernel_size=k,
        stride=s,
        padding=p,
        output_padding=op,
    )
    ref = torch.nn.ConvTranspose2d(2, 5, k, stride=s, padding=p, output_padding=op)
    assert layer.infer([(2, 7, 9)]) == tuple(ref(torch.zeros(1, 2, 7, 9)).shape[1:])
    assert layer.param_count([(2, 7, 9)]) == sum(q.numel() for q in ref.parameters())


@pytest.mark.parametrize("size,k,s,p", [(17, 3, 2, 1), (16, 2, None, 0), (9, 3, 3, 0)])
def test_pool_shapes_match_torch(size, k, s, p):
    from specc.compiler.layers.avgpool1d import AvgPool1d
    from specc.compiler.layers.maxpool2d import MaxPool2d

    m = MaxPool2d(type="maxpool2d", kernel_size=k, stride=s, padding=p)
    assert m.infer([(2, size, size)]) == tuple(
        torch.nn.MaxPool2d(k, s, p)(torch.zeros(1, 2, size, size)).shape[1:]
    )
    a = AvgPool1d(type="avgpool1d", kernel_size=k, stride=s, padding=p)
    assert a.infer([(2, size)]) == tuple(
        torch.nn.AvgPool1d(k, s, p)(torch.zeros(1, 2, size)).shape[1:]
    )


def test_symbolic_dims_flow_through_conv1d(write_spec):
    path = write_spec(
        "specc: 1\nname: t\ntask: regression\ninputs: {x: {shape: [2, time]}}\nmodel:\n  - {type: conv1d, out_channels: 3, kernel_size: 3, stride: 2}\n"
    )
    compiled = compile_file(path)
    (dim,) = compiled.inferred.out_shapes["conv1d_1"][1:]
    for t in (5, 8, 31):
        assert eval(dim, {}, {"time": t}) == math.floor((t - 3) / 2) + 1


def test_the_layer_table_in_the_docs_is_generated_from_the_registry():
    """docs/spec-language.md's table is `make docs` output: a new layer or a changed default
    shows up there, or this fails."""
    from specc.compiler.docs import with_table

    text = (REPO / "docs" / "spec-language.md").read_text(encoding="utf-8")
    assert text == with_table(text), "run `make docs`"
    for kind, cls in LAYERS.items():
        assert f"| `{kind}` |" in text and cls.doc_shapes, kind


def test_group_norm_matches_torch_and_needs_groups_that_divide_the_channels(write_spec):
    """The layer added in one file: its module is torch's own, and a bad group count is located."""
    from specc.compiler.diagnostics import SpecError

    spec = "specc: 1\nname: g\ntask: regression\ninputs: {x: {shape: [6, 4, 4]}}\nmodel:\n  - {type: group_norm, num_groups: GROUPS}\n"
    compiled = compile_file(write_spec(spec.replace("GROUPS", "3")))
    assert compiled.ir.nodes[0].module == "nn.GroupNorm(3, 6)"
    assert compiled.inferred.total_params == sum(
        p.numel() for p in torch.nn.GroupNorm(3, 6).parameters()
    )
    with pytest.raises(SpecError) as e:
        compile_file(write_spec(spec.replace("GROUPS", "4")))
    (d,) = e.value.diagnostics
    assert (d.pos.line, "4 groups do not divide 6 channels") == (6, d.message.split(": ", 1)[1])
