"""Tasks are modules (compiler/tasks/): the generic stages never branch on a task's name, and a
layer's section is data, so `blocks:` work in every section of every task."""

from __future__ import annotations

import ast
import re

import pytest
import torch
from helpers import REPO

from specc.compiler import codegen
from specc.compiler import export as ex
from specc.compiler.pipeline import compile_file
from specc.compiler.tasks import TASKS

# every module of compiler/ outside tasks/ (and the export modules of one task each)
GENERIC = sorted(p.stem for p in (REPO / "compiler").glob("*.py"))


@pytest.mark.parametrize("module", GENERIC)
def test_generic_stages_never_name_a_task(module):
    tree = ast.parse((REPO / "compiler" / f"{module}.py").read_text())
    named = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in TASKS
    ]
    assert not named, f"compiler/{module}.py branches on {named}: ask the task instead"


def test_base_templates_never_name_a_task():
    for name in ("model.py.jinja", "train.py.jinja"):
        text = (REPO / "templates" / name).read_text()
        assert not any(re.search(rf"['\"]{task}['\"]", text) for task in TASKS), name


BLOCK = "  dense: {params: {n: 8}, layers: [{type: linear, out_features: $n}, relu]}\n"
SPECS = {  # task -> (the spec's head, its sections with a block use, the same written out)
    "classification": (
        "task: classification\ninputs: {x: {shape: [6]}}\ndata: iris\n",
        "model: [{type: dense, n: 12}, {type: dense, repeat: 2}, {type: linear, out_features: 3}]\n",
        "model: [{type: linear, out_features: 12}, relu, {type: linear, out_features: 8}, relu,\n"
        "        {type: linear, out_features: 8}, relu, {type: linear, out_features: 3}]\n",
    ),
    "multilabel": (
        "task: multilabel\ninputs: {x: {shape: [6]}}\n",
        "model: [{type: dense, n: 12, repeat: 2}, {type: linear, out_features: 3}]\n",
        "model: [{type: linear, out_features: 12}, relu, {type: linear, out_features: 12}, relu,\n"
        "        {type: linear, out_features: 3}]\n",
    ),
    "autoencoder": (
        "task: autoencoder\ninputs: {image: {shape: [1, 8, 8]}}\nlatent: {dim: 2}\n",
        "encoder: [flatten, {type: dense, n: 16}]\n"
        "decoder: [{type: dense, n: 32, repeat: 2}, {type: linear, out_features: 64}, sigmoid, {type: reshape, shape: [1, 8, 8]}]\n",
        "encoder: [flatten, {type: linear, out_features: 16}, relu]\n"
        "decoder: [{type: linear, out_features: 32}, relu, {type: linear, out_features: 32}, relu,\n"
        "          {type: linear, out_features: 64}, sigmoid, {type: reshape, shape: [1, 8, 8]}]\n",
    ),
    "gan": (
        "task: gan\ninputs: {image: {shape: [1, 8, 8]}}\nlatent: {dim: 4}\n",
        "generator: [{type: dense, n: 32}, {type: linear, out_features: 64}, {type: reshape, shape: [1, 8, 8]}]\n"
        "discriminator: [flatten, {type: dense, n: 16, repeat: 2}, {type: linear, out_features: 1}]\n",
        "generator: [{type: linear, out_features: 32}, relu, {type: linear, out_features: 64}, {type: reshape, shape: [1, 8, 8]}]\n"
        "discriminator: [flatten, {type: linear, out_features: 16}, relu, {type: linear, out_features: 16}, relu,\n"
        "                {type: linear, out_features: 1}]\n",
    ),
    "seq2seq": (
        "task: seq2seq\ninputs: {source: {shape: [time], dtype: int64}}\n"
        "data: {type: pairs, generate: reverse, count: 50}\n",
        "encoder:\n  - {type: embed, d: 16}\n  - {type: gru, name: encoded, hidden_size: 16, lengths: source_lengths}\n"
        "decoder:\n  - {type: target_embed}\n  - {type: gru, hidden_size: 16, initial_state: {from: encoded}}\n"
        "  - {type: dense, n: 16, repeat: 2}\n  - {type: linear, out_features: target_vocab}\n",
        "encoder:\n  - {type: embedding, num_embeddings: source_vocab, embedding_dim: 16}\n"
        "  - {type: gru, name: encoded, hidden_size: 16, lengths: source_lengths}\n"
        "decoder:\n  - {type: embedding, num_embeddings: target_vocab, embedding_dim: 8}\n"
        "  - {type: gru, hidden_size: 16, initial_state: {from: encoded}}\n"
        "  - {type: linear, out_features: 16}\n  - relu\n  - {type: linear, out_features: 16}\n  - relu\n"
        "  - {type: linear, out_features: target_vocab}\n",
    ),
}
EXTRA_BLOCKS = {
    "seq2seq": "  embed: {params: {d: 8}, layers: [{type: embedding, num_embeddings: source_vocab, embedding_dim: $d}]}\n"
    "  target_embed: {layers: [{type: embedding, num_embeddings: target_vocab, embedding_dim: 8}]}\n",
}


def _normalized(compiled, text: str) -> str:
    """The generated text with every layer's identifiers renamed by position (blocks prefix them)."""
    names = {}
    for k, node in enumerate(compiled.ir.nodes):
        for old in filter(None, (node.attr, node.var, node.name)):
            if old not in ("x", "h"):
                names.setdefault(old, f"L{k}")
    for old in sorted(names, key=len, reverse=True):
        text = re.sub(rf"\b{re.escape(old)}\b", names[old], text)
    return "\n".join(
        line for line in text.splitlines() if "sha256" not in line.lower() and "Source:" not in line
    )


@pytest.mark.parametrize("task", sorted(SPECS))
def test_blocks_in_every_section_give_the_same_model_as_the_layers_written_out(task, tmp_path):
    head, with_blocks, written_out = SPECS[task]
    common = f"specc: 1\nname: t\n{head}"
    a = tmp_path / "blocks.yaml"
    a.write_text(common + "blocks:\n" + BLOCK + EXTRA_BLOCKS.get(task, "") + with_blocks)
    b = tmp_path / "plain.yaml"
    b.write_text(common + written_out)
    ca, cb = compile_file(a), compile_file(b)
    assert [ca.parsed.section(i) for i in ca.inferred.order] == [
        cb.parsed.section(i) for i in cb.inferred.order
    ]
    fa, fb = codegen.render(ca), codegen.render(cb)
    for name in ("model.py", "train.py"):
        assert _normalized(ca, fa[name]) == _normalized(cb, fb[name]), f"{task}: {name}"
    codegen.write(ca, tmp_path / "a")
    codegen.write(cb, tmp_path / "b")
    torch.manual_seed(0)
    ma = ex.instantiate(tmp_path / "a")
    torch.manual_seed(0)
    mb = ex.instantiate(tmp_path / "b")
    for group in ("parameters", "generator_parameters", "discriminator_parameters"):
        if hasattr(mb, group):  # a GAN's two optimizers own one half each
            shapes_a = [tuple(p.shape) for p in getattr(ma, group)()]
            shapes_b = [tuple(p.shape) for p in getattr(mb, group)()]
            assert shapes_a == shapes_b, group
            assert all(
                torch.equal(p, q)
                for p, q in zip(getattr(ma, group)(), getattr(mb, group)(), strict=True)
            )
