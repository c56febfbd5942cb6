"""What specc's compiler writes into a model and its runtime reads back, defined once.

Torch-free and compiler-free: the exporter (specc.compiler) imports these names to write ONNX
metadata and to build graphs; the runtime imports them to read them. A name changed here changes
both sides at once, so the two can never disagree.
"""

from __future__ import annotations

# Bump when a runtime could no longer read what the exporter writes.
MODEL_FORMAT = "1"


class Meta:
    """Keys of the metadata every exported graph carries (ONNX `metadata_props`)."""

    VERSION = "specc.version"  # specc's version that exported the graph
    FORMAT = "specc.format"  # MODEL_FORMAT at export time
    SPEC_NAME = "specc.spec_name"
    SPEC_SHA256 = "specc.spec_sha256"  # sha256 of the spec text and its --set overrides
    TASK = "specc.task"
    OUTPUT_KIND = "specc.output_kind"  # logits | probabilities | ... | values (see OUTPUT_KINDS)
    INPUTS = "specc.inputs"  # JSON: [{name, dims, dtype}], batch first, named dims as strings
    OUTPUTS = "specc.outputs"  # JSON: [{name, dims}]
    NUM_CLASSES = "specc.num_classes"
    LABELS = "specc.labels"  # JSON list, in class-index order
    VOCAB = "specc.vocab"  # JSON: a text model's vocabulary (runtime.text.Vocab.to_json)
    GRAPH = "specc.graph"  # which graph of a run: model | step | encoder | decoder
    STATES = "specc.states"  # JSON: a step graph's state inputs and the outputs that continue them
    INITIAL_STATE = "specc.initial_state"  # JSON: learned initial states by state name
    LATENT = "specc.latent"  # JSON: an autoencoder's code {dim, type: gaussian | code}
    SEQ2SEQ = "specc.seq2seq"  # JSON: how a seq2seq model's encoder and step graphs connect
    QUANTIZED = "specc.quantized"  # int8 when `specc export --quantize` wrote the graph
    QUANTIZATION = "specc.quantization"  # JSON: {method: static|dynamic, speedup: {batch: x}}
    PREPROCESS = "specc.preprocess"  # JSON: per data input, how a raw value becomes it
    # JSON {input name: n}: an integer token input's ids run from 0 to n - 1 (the rows of the
    # embeddings that read it); the runtime refuses others before ONNX Runtime sees them.
    TOKEN_IDS = "specc.token_ids"
    # A step graph's: how many positions its decoder can represent (the rows of the smallest
    # learned position table it reads); absent: nothing bounds them. Decoding stops there.
    MAX_POSITIONS = "specc.max_positions"


# Token ids every text vocabulary starts with, in this order.
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD, UNK, BOS, EOS = range(len(SPECIAL_TOKENS))
IGNORE_INDEX = -100  # a padded target position: counts for no loss and no metric

# Inputs specc adds to a spec's own.
GAN_NOISE = "z"  # a GAN generator's input: a draw from N(0, I) of latent.dim values
SOURCE_LENGTHS = "source_lengths"  # a seq2seq token source's lengths (its padding)
TARGET_IN = "target_in"  # a seq2seq decoder's input: <bos> and the target shifted right by one

# Names of the state tensors a step graph carries: inputs `state.<layer>.<part>` are continued by
# outputs `next.<layer>.<part>`; a seq2seq encoder's outputs are `memory.<layer>[.<part>]`.
STATE_PREFIX, NEXT_PREFIX, MEMORY_PREFIX = "state.", "next.", "memory."


def next_state(state_name: str) -> str:
    """The step-graph output that continues a state input: state.lstm_1.h -> next.lstm_1.h."""
    return NEXT_PREFIX + state_name.split(".", 1)[1]
