"""Helper code some layer types need in model.py, written once per file, plain torch."""

EXPORTABLE_RECURRENT = '''\
class ExportableRecurrent:
    """Mixin for nn.RNN, nn.LSTM and nn.GRU: export with a dynamic sequence length.

    The ONNX exporter can only unroll torch's recurrent layers for the example's length; while
    exporting, this forward runs the same parameters through torch's scan, which becomes one
    ONNX Scan over any length. Training and eager inference use torch's own forward.
    Expects batch_first inputs and no initial state.
    """

    def forward(self, x: torch.Tensor, hx=None):
        if not torch.compiler.is_exporting() or hx is not None:
            return super().forward(x, hx)
        from torch._higher_order_ops.scan import scan

        lstm = self.mode == "LSTM"
        layer_in, finals, cells = x, [], []
        for layer in range(self.num_layers):
            outs = []
            for reverse in (False, True) if self.bidirectional else (False,):
                suffix = f"_l{layer}" + ("_reverse" if reverse else "")
                w_ih, w_hh = getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix)
                b_ih = getattr(self, "bias_ih" + suffix) if self.bias else None
                b_hh = getattr(self, "bias_hh" + suffix) if self.bias else None
                seq = layer_in.transpose(0, 1)  # (time, batch, features)
                if reverse:
                    seq = seq.flip(0)
                zeros = seq.new_zeros(seq.shape[1], self.hidden_size)

                def step(state, x_t, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh):
                    return self._step(state, x_t, w_ih, w_hh, b_ih, b_hh)

                last, ys = scan(step, (zeros, zeros.clone()) if lstm else zeros, seq)
                outs.append((ys.flip(0) if reverse else ys).transpose(0, 1))
                finals.append(last[0] if lstm else last)
                if lstm:
                    cells.append(last[1])
            layer_in = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
        h_n = torch.stack(finals)
        return layer_in, (h_n, torch.stack(cells)) if lstm else h_n

    def _step(self, state, x_t, w_ih, w_hh, b_ih, b_hh):
        """One time step, as torch defines each mode (gate order: LSTM i f g o, GRU r z n)."""
        if self.mode == "LSTM":
            h, c = state
            i, f, g, o = (F.linear(x_t, w_ih, b_ih) + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            return (h, c), h.clone()
        if self.mode == "GRU":
            x_r, x_z, x_n = F.linear(x_t, w_ih, b_ih).chunk(3, dim=-1)
            h_r, h_z, h_n = F.linear(state, w_hh, b_hh).chunk(3, dim=-1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            h = (1 - z) * torch.tanh(x_n + r * h_n) + z * state
            return h, h.clone()
        act = torch.tanh if self.mode == "RNN_TANH" else torch.relu
        h = act(F.linear(x_t, w_ih, b_ih) + F.linear(state, w_hh, b_hh))
        return h, h.clone()


class ExportableRNN(ExportableRecurrent, nn.RNN):
    """nn.RNN, exportable with a dynamic sequence length."""


class ExportableLSTM(ExportableRecurrent, nn.LSTM):
    """nn.LSTM, exportable with a dynamic sequence length."""


class ExportableGRU(ExportableRecurrent, nn.GRU):
    """nn.GRU, exportable with a dynamic sequence length."""
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
    """Runs a cell over time: a Python loop in training, torch's scan (one ONNX Scan) on export."""

    def __init__(self, cell: nn.Module, states: int, output_index: int, hidden_size: int, last: bool):
        super().__init__()
        self.cell, self.states, self.output_index = cell, states, output_index
        self.hidden_size, self.last = hidden_size, last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zeros = x.new_zeros(x.shape[0], self.hidden_size)
        state = tuple(zeros.clone() for _ in range(self.states))
        if torch.compiler.is_exporting():
            from torch._higher_order_ops.scan import scan

            def step(state, x_t):
                state = self.cell(x_t, state)
                return state, state[self.output_index].clone()

            state, ys = scan(step, state, x.transpose(0, 1))
            ys = ys.transpose(0, 1)
        else:
            outs = []
            for t in range(x.shape[1]):
                state = self.cell(x[:, t], state)
                outs.append(state[self.output_index])
            ys = torch.stack(outs, dim=1)
        return state[self.output_index] if self.last else ys
'''

HELPERS = {"ExportableRecurrent": EXPORTABLE_RECURRENT, "identity_recurrent": IDENTITY_RECURRENT}
