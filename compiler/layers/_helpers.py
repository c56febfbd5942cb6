"""Helper code some layer types need in model.py, written once per file, plain torch."""

EXPORTABLE_RECURRENT = '''\
class ExportableRecurrent:
    """Mixin for nn.RNN, nn.LSTM and nn.GRU: padded batches, a learned initial state, ONNX export.

    forward(x, hx=None, lengths=None) -> (outputs, final state), like torch's layer, batch_first.
    - lengths (batch,): positions at or after a sequence's length are padding. They never change
      the outputs at real positions or the final state, and their outputs are zero.
    - learned_init: the initial state is a parameter rather than zeros.
    - While exporting, the same parameters run through torch's scan, which becomes one ONNX Scan
      over any sequence length (torch's own layers export only for the example's length).
    """

    def __init__(self, *args, learned_init: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        shape = (self.num_layers * (2 if self.bidirectional else 1), 1, self.hidden_size)
        self.h0 = nn.Parameter(torch.zeros(shape)) if learned_init else None
        self.c0 = nn.Parameter(torch.zeros(shape)) if learned_init and self.mode == "LSTM" else None

    def initial_state(self, batch: int):
        """The state before the first step, in torch's layout: h, or (h, c), each (layers * directions, batch, hidden)."""
        if self.h0 is None:
            zeros = self.weight_ih_l0.new_zeros(self.num_layers * (2 if self.bidirectional else 1), batch, self.hidden_size)
            return (zeros, zeros.clone()) if self.mode == "LSTM" else zeros
        h = self.h0.expand(-1, batch, -1).contiguous()
        return (h, self.c0.expand(-1, batch, -1).contiguous()) if self.c0 is not None else h

    def forward(self, x: torch.Tensor, hx=None, lengths: torch.Tensor | None = None):
        if hx is None and self.h0 is not None:
            hx = self.initial_state(x.shape[0])
        if torch.compiler.is_exporting():
            return self._scan(x, hx if hx is not None else self.initial_state(x.shape[0]), lengths)
        if lengths is None:
            return super().forward(x, hx)
        lengths = lengths.clamp(1, x.shape[1]).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = super().forward(packed, hx)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0], state

    def _scan(self, x, hx, lengths):
        from torch._higher_order_ops.scan import scan

        lstm = self.mode == "LSTM"
        h_all, c_all = hx if lstm else (hx, None)
        valid = None  # (time, batch, 1): 1 at real positions, 0 at padding
        if lengths is not None:
            steps = torch.arange(x.shape[1], device=x.device)
            valid = (steps[:, None] < lengths.clamp(1, x.shape[1])[None, :]).to(x.dtype)[..., None]
        layer_in, finals, cells = x, [], []
        for layer in range(self.num_layers):
            outs = []
            for reverse in (False, True) if self.bidirectional else (False,):
                index = layer * (2 if self.bidirectional else 1) + int(reverse)
                suffix = f"_l{layer}" + ("_reverse" if reverse else "")
                w_ih, w_hh = getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix)
                b_ih = getattr(self, "bias_ih" + suffix) if self.bias else None
                b_hh = getattr(self, "bias_hh" + suffix) if self.bias else None
                # The input half of every gate for all steps at once: one large matrix product
                # outside the loop, leaving only the recurrent half inside it.
                seq, mask = F.linear(layer_in, w_ih, b_ih).transpose(0, 1), valid  # (time, batch, gates)
                if reverse:
                    seq, mask = seq.flip(0), (mask.flip(0) if mask is not None else None)
                # Clones: scan guards on a view's storage offset, which would fix the batch size.
                start = (h_all[index].clone(), c_all[index].clone()) if lstm else h_all[index].clone()

                def step(state, inputs, w_hh=w_hh, b_hh=b_hh):
                    x_t, keep = inputs if isinstance(inputs, tuple) else (inputs, None)
                    new = self._step(state, x_t, w_hh, b_hh)
                    if keep is not None:  # padding leaves the state as it was and outputs zeros
                        new = tuple(keep * n + (1 - keep) * s for n, s in zip(new, state)) if lstm else keep * new + (1 - keep) * state
                    h = new[0] if lstm else new
                    return new, (h * keep if keep is not None else h.clone())

                last, ys = scan(step, start, (seq, mask) if mask is not None else seq)
                outs.append((ys.flip(0) if reverse else ys).transpose(0, 1))
                finals.append(last[0] if lstm else last)
                if lstm:
                    cells.append(last[1])
            layer_in = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
        h_n = torch.stack(finals)
        return layer_in, (h_n, torch.stack(cells)) if lstm else h_n

    def _step(self, state, x_w, w_hh, b_hh):
        """One time step as torch defines each mode (gate order: LSTM i f g o, GRU r z n);
        x_w is the step's input already multiplied by the input weights."""
        if self.mode == "LSTM":
            h, c = state
            i, f, g, o = (x_w + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c
        if self.mode == "GRU":
            x_r, x_z, x_n = x_w.chunk(3, dim=-1)
            h_r, h_z, h_n = F.linear(state, w_hh, b_hh).chunk(3, dim=-1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            return (1 - z) * torch.tanh(x_n + r * h_n) + z * state
        act = torch.tanh if self.mode == "RNN_TANH" else torch.relu
        return act(x_w + F.linear(state, w_hh, b_hh))


class ExportableRNN(ExportableRecurrent, nn.RNN):
    """nn.RNN with padding, a learned initial state and dynamic-length export."""


class ExportableLSTM(ExportableRecurrent, nn.LSTM):
    """nn.LSTM with padding, a learned initial state and dynamic-length export."""


class ExportableGRU(ExportableRecurrent, nn.GRU):
    """nn.GRU with padding, a learned initial state and dynamic-length export."""
'''

IDENTITY_RECURRENT = '''\
def identity_recurrent(rnn: nn.RNN) -> nn.RNN:
    """IRNN initialisation (Le, Jaitly, Hinton 2015): recurrent weights = identity, biases = 0."""
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            if name.startswith("weight_hh"):
                p.copy_(torch.eye(p.shape[0]))
            elif name.startswith("bias"):
                p.zero_()
    return rnn
'''

CELL_RECURRENT = '''\
class CellRecurrent(nn.Module):
    """Runs a cell over time: a Python loop in training, torch's scan (one ONNX Scan) on export.

    forward(x, hx=None, lengths=None) -> (outputs, final states), like torch's recurrent layers;
    padding (positions at or after `lengths`) leaves the states as they were and outputs zeros.
    """

    def __init__(self, cell: nn.Module, states: int, output_index: int, hidden_size: int, learned_init: bool = False):
        super().__init__()
        self.cell, self.states, self.output_index, self.hidden_size = cell, states, output_index, hidden_size
        self.h0 = nn.Parameter(torch.zeros(states, hidden_size)) if learned_init else None

    def initial_state(self, batch: int) -> tuple:
        """The states before the first step, each (batch, hidden)."""
        if self.h0 is None:
            like = next(self.parameters(), torch.zeros(()))
            return tuple(like.new_zeros(batch, self.hidden_size) for _ in range(self.states))
        return tuple(h.expand(batch, -1).contiguous() for h in self.h0)

    def _advance(self, state, x_t, keep):
        new = self.cell(x_t, state)
        if keep is not None:
            new = tuple(keep * n + (1 - keep) * s for n, s in zip(new, state))
        out = new[self.output_index]
        return new, (out * keep if keep is not None else out.clone())

    def forward(self, x: torch.Tensor, hx: tuple | None = None, lengths: torch.Tensor | None = None):
        if hx is None:
            hx = self.initial_state(x.shape[0])
        keep = None  # (time, batch, 1): 1 at real positions
        if lengths is not None:
            steps = torch.arange(x.shape[1], device=x.device)
            keep = (steps[:, None] < lengths.clamp(1, x.shape[1])[None, :]).to(x.dtype)[..., None]
        if torch.compiler.is_exporting():
            from torch._higher_order_ops.scan import scan

            def step(state, inputs):
                x_t, k = inputs if isinstance(inputs, tuple) else (inputs, None)
                return self._advance(state, x_t, k)

            seq = x.transpose(0, 1)
            state, ys = scan(step, tuple(hx), (seq, keep) if keep is not None else seq)
            return ys.transpose(0, 1), state
        state, outs = tuple(hx), []
        for t in range(x.shape[1]):
            state, out = self._advance(state, x[:, t], keep[t] if keep is not None else None)
            outs.append(out)
        return torch.stack(outs, dim=1), state
'''

ORTHOGONAL_RECURRENT = '''\
def orthogonal_recurrent(layer: nn.Module) -> nn.Module:
    """Recurrent weight matrices start orthogonal, one square block per gate (Saxe et al. 2014)."""
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith("weight_hh"):
                for block in p.split(p.shape[1]):
                    nn.init.orthogonal_(block)
    return layer
'''

DECODER = '''\
class Decoder(nn.Module):
    """One-to-many: unrolls a recurrent cell for `steps` steps from a vector.

    The vector sets the first state (through a linear bridge and tanh). Each step reads the
    previous step's output, the argmax embedded for tokens or the values themselves, and the
    first step reads a learned start vector. In training, with probability `teacher_forcing`
    per step, a step reads the true previous target instead (padding, -100, reads token 0).
    """

    def __init__(self, in_features: int, hidden_size: int, out_features: int, steps: int, cell: str = "gru", tokens: bool = True, embedding_dim: int = 16, teacher_forcing: float = 0.5):
        super().__init__()
        self.steps, self.tokens, self.teacher_forcing, self.lstm = steps, tokens, teacher_forcing, cell == "lstm"
        feed = embedding_dim if tokens else out_features
        self.bridge = nn.Linear(in_features, hidden_size * (2 if self.lstm else 1))
        self.embed = nn.Embedding(out_features, embedding_dim) if tokens else None
        self.start = nn.Parameter(torch.zeros(feed))
        self.cell = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}[cell](feed, hidden_size)
        self.head = nn.Linear(hidden_size, out_features)

    def forward(self, v: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        state = torch.tanh(self.bridge(v))
        if self.lstm:
            state = tuple(state.chunk(2, dim=-1))
        step_in = self.start.expand(v.shape[0], -1)
        outs = []
        for t in range(self.steps):
            state = self.cell(step_in, state)
            out = self.head(state[0] if self.lstm else state)
            outs.append(out)
            forced = self.training and targets is not None and bool(torch.rand(()) < self.teacher_forcing)
            if forced:
                prev = targets[:, t].clamp_min(0) if self.tokens else targets[:, t]
            else:
                prev = out.argmax(dim=-1) if self.tokens else out
            step_in = self.embed(prev) if self.tokens else prev
        return torch.stack(outs, dim=1)
'''

GAUSSIAN_LATENT = '''\
class GaussianLatent(nn.Module):
    """The VAE latent: mean and log-variance from the features (Kingma and Welling 2014).

    forward returns (code, mean, log_var): in training the code is a sample drawn with the
    reparameterisation trick, mean + eps * exp(log_var / 2), so gradients reach both; in
    evaluation it is the mean.
    """

    def __init__(self, in_features: int, dim: int):
        super().__init__()
        self.mean = nn.Linear(in_features, dim)
        self.log_var = nn.Linear(in_features, dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_var = self.mean(h), self.log_var(h)
        if not self.training:
            return mean, mean, log_var
        return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var), mean, log_var
'''

MULTIHEAD_ATTENTION = '''\
class MultiheadAttention(nn.Module):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017), written out so the exported
    graph keeps dynamic lengths and masks: per head, softmax(Q K^T / sqrt(d_head) + mask) V.

    forward(query (B, Tq, D), memory (B, Tk, Dk), causal, lengths) -> (context (B, Tq, D),
    weights (B, heads, Tq, Tk)). lengths (B,): keys at or after a sequence's length are padding
    and get no weight; causal: position i attends to keys 0..i only.
    """

    def __init__(self, dim: int, num_heads: int, kdim: int | None = None, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.heads, self.dropout = num_heads, dropout
        self.q = nn.Linear(dim, dim, bias=bias)
        self.k = nn.Linear(kdim or dim, dim, bias=bias)
        self.v = nn.Linear(kdim or dim, dim, bias=bias)
        self.out = nn.Linear(dim, dim, bias=bias)

    def project(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory's keys and values, (B, heads, Tk, head) each."""
        b, head = memory.shape[0], self.q.out_features // self.heads
        k = self.k(memory).reshape(b, -1, self.heads, head).transpose(1, 2)
        return k, self.v(memory).reshape(b, -1, self.heads, head).transpose(1, 2)

    def forward(self, query: torch.Tensor, memory: torch.Tensor | None, causal: bool = False, lengths: torch.Tensor | None = None, cache: tuple | None = None, projected: tuple | None = None):
        """cache: (keys, values) of earlier positions (B, heads, past, head), for decoding one
        step at a time; the keys and values with this call's appended come back third.
        projected: the memory's keys and values, already computed (project(memory))."""
        b, dim = query.shape[0], self.q.out_features
        head = dim // self.heads
        q = self.q(query).reshape(b, -1, self.heads, head).transpose(1, 2)  # (B, heads, Tq, head)
        k, v = projected if projected is not None else self.project(memory)  # (B, heads, Tk, head)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        scores = q @ k.transpose(-2, -1) / head**0.5  # (B, heads, Tq, Tk)
        if lengths is not None:
            keys = torch.arange(k.shape[2], device=k.device)
            padding = keys[None, :] >= lengths.clamp(min=1)[:, None]  # (B, Tk)
            scores = scores.masked_fill(padding[:, None, None, :], float("-inf"))
        if causal:  # query i sits at key position past + i, and sees keys up to there
            tq, tk = q.shape[2], k.shape[2]
            future = torch.ones(tq, tk, dtype=torch.bool, device=query.device).triu(tk - tq + 1)
            scores = scores.masked_fill(future, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        context = F.dropout(weights, self.dropout, self.training) @ v  # (B, heads, Tq, head)
        out = self.out(context.transpose(1, 2).reshape(b, -1, dim))
        return (out, weights) if cache is None else (out, weights, (k, v))
'''

POSITIONAL_ENCODING = '''\
class PositionalEncoding(nn.Module):
    """Adds position information to (B, T, D): sinusoidal (Vaswani et al. 2017, any length) or
    a learned table of max_len rows."""

    def __init__(self, dim: int, kind: str = "sinusoidal", max_len: int = 512, dropout: float = 0.0):
        super().__init__()
        self.kind, self.dim, self.dropout = kind, dim, nn.Dropout(dropout)
        self.table = nn.Embedding(max_len, dim) if kind == "learned" else None

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """offset: the position of x's first step (decoding continues after `offset` steps)."""
        positions = torch.arange(x.shape[1], device=x.device) + offset
        if self.table is not None:
            return self.dropout(x + self.table(positions))
        rates = 10000.0 ** (-torch.arange(0, self.dim, 2, device=x.device, dtype=torch.float32) / self.dim)
        angles = positions[:, None].float() * rates[None, :]  # (T, D/2)
        encoding = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)[:, : self.dim]  # sin, cos interleaved
        return self.dropout(x + encoding.to(x.dtype))
'''

TRANSFORMER_LAYER = '''\
class TransformerLayer(nn.Module):
    """A transformer encoder layer, or with cross=True a decoder layer (Vaswani et al. 2017):
    self-attention, [attention over a memory,] feed-forward; each a residual branch, with layer
    norm after it (norm_first=False, the original) or before it (pre-norm)."""

    def __init__(self, dim: int, num_heads: int, feedforward: int, dropout: float = 0.1, activation: str = "relu", norm_first: bool = False, cross: bool = False, memory_dim: int | None = None):
        super().__init__()
        self.norm_first = norm_first
        self.self_attention = MultiheadAttention(dim, num_heads, dropout=dropout)
        self.cross_attention = MultiheadAttention(dim, num_heads, kdim=memory_dim, dropout=dropout) if cross else None
        self.feedforward = nn.Sequential(nn.Linear(dim, feedforward), nn.GELU() if activation == "gelu" else nn.ReLU(), nn.Dropout(dropout), nn.Linear(feedforward, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3 if cross else 2))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, causal: bool = False, lengths: torch.Tensor | None = None, memory_lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self._run(x, lambda h: self.self_attention(h, h, causal, lengths)[0], memory, memory_lengths)

    def step(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, memory_keys: torch.Tensor, memory_values: torch.Tensor, memory_lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Causal decoding with a key/value cache: x (B, T, D) continues the cached positions,
        keys/values (B, heads, past, head); the memory comes as its keys and values
        (memory_kv(memory), computed once per source). Returns x and the cache, T positions longer."""
        cache = []

        def attend(h):
            out, _, kv = self.self_attention(h, h, True, None, cache=(keys, values))
            cache.append(kv)
            return out

        x = self._run(x, attend, None, memory_lengths, (memory_keys, memory_values))
        return x, cache[0][0], cache[0][1]

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The cross-attention's keys and values of a memory, (B, heads, S, head) each."""
        return self.cross_attention.project(memory)

    def empty_cache(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of no positions yet: (batch, heads, 0, head) each."""
        attention = self.self_attention
        empty = attention.q.weight.new_zeros(batch, attention.heads, 0, attention.q.out_features // attention.heads)
        return empty, empty.clone()

    def _run(self, x, self_attend, memory, memory_lengths, projected=None):
        branches = [self_attend]
        if self.cross_attention is not None:
            branches.append(lambda h: self.cross_attention(h, memory, False, memory_lengths, projected=projected)[0])
        branches.append(self.feedforward)
        for norm, branch in zip(self.norms, branches):
            if self.norm_first:
                x = x + self.dropout(branch(norm(x)))
            else:
                x = norm(x + self.dropout(branch(x)))
        return x
'''

ATTENTION = '''\
class Attention(nn.Module):
    """Single-head attention of a query sequence over a memory, with one of three scores:
    dot (scaled, Vaswani et al. 2017), general (q^T W k, Luong et al. 2015) or additive
    (v^T tanh(W_q q + W_k k), Bahdanau et al. 2015). Returns (context (B, Tq, Dk), weights (B, Tq, Tk)).
    """

    def __init__(self, query_dim: int, memory_dim: int, score: str = "dot", attention_size: int = 64):
        super().__init__()
        self.score = score
        if score == "general":
            self.w = nn.Linear(memory_dim, query_dim, bias=False)
        if score == "additive":
            self.w_q = nn.Linear(query_dim, attention_size, bias=False)
            self.w_k = nn.Linear(memory_dim, attention_size, bias=True)
            self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(self, query: torch.Tensor, memory: torch.Tensor, causal: bool = False, lengths: torch.Tensor | None = None):
        if self.score == "dot":
            scores = query @ memory.transpose(1, 2) / query.shape[-1] ** 0.5
        elif self.score == "general":
            scores = query @ self.w(memory).transpose(1, 2)
        else:  # (B, Tq, 1, A) + (B, 1, Tk, A) -> (B, Tq, Tk)
            scores = self.v(torch.tanh(self.w_q(query)[:, :, None] + self.w_k(memory)[:, None])).squeeze(-1)
        if lengths is not None:
            keys = torch.arange(memory.shape[1], device=memory.device)
            scores = scores.masked_fill((keys[None, :] >= lengths.clamp(min=1)[:, None])[:, None, :], float("-inf"))
        if causal:
            future = torch.ones(query.shape[1], memory.shape[1], dtype=torch.bool, device=query.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return weights @ memory, weights
'''

BRIDGE = '''\
class Bridge(nn.Module):
    """An encoder's final state -> a decoder's first state: tanh(W s + b) for each of the
    decoder's state tensors (h, and c for an LSTM), as in Cho et al. 2014 and Bahdanau et al. 2015.

    forward(source): a recurrent encoder's final state (its top layer, every direction,
    concatenated) or a vector (batch, in_features) -> (layers, batch, hidden), or (h, c).
    """

    def __init__(self, in_features: int, directions: int, layers: int, hidden: int, states: int):
        super().__init__()
        self.directions, self.layers, self.hidden = directions, layers, hidden
        self.maps = nn.ModuleList(nn.Linear(in_features, layers * hidden) for _ in range(states))

    def forward(self, source) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if isinstance(source, tuple):  # an LSTM's (h, c): the bridge reads h
            source = source[0]
        if source.dim() == 3:  # (layers * directions, batch, hidden) -> the top layer, (batch, directions * hidden)
            source = torch.cat(tuple(source[-self.directions :]), dim=-1)
        out = tuple(torch.tanh(m(source)).reshape(-1, self.layers, self.hidden).transpose(0, 1).contiguous() for m in self.maps)
        return out if len(out) > 1 else out[0]


def with_bridge(rnn: nn.Module, in_features: int, directions: int) -> nn.Module:
    """Give a decoder's recurrent layer the bridge its first state comes through."""
    states = 2 if rnn.mode == "LSTM" else 1
    rnn.bridge = Bridge(in_features, directions, rnn.num_layers, rnn.hidden_size, states)
    return rnn
'''

HELPERS = {
    "Bridge": BRIDGE,
    "Attention": ATTENTION,
    "MultiheadAttention": MULTIHEAD_ATTENTION,
    "PositionalEncoding": POSITIONAL_ENCODING,
    "TransformerLayer": TRANSFORMER_LAYER,
    "GaussianLatent": GAUSSIAN_LATENT,
    "Decoder": DECODER,
    "ExportableRecurrent": EXPORTABLE_RECURRENT,
    "identity_recurrent": IDENTITY_RECURRENT,
    "orthogonal_recurrent": ORTHOGONAL_RECURRENT,
}
