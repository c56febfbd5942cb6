"""torch's RNN, LSTM and GRU with padding, a learned initial state and dynamic-length export. Inlined into model.py by specc (layers/_helpers/__init__.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
            zeros = self.weight_ih_l0.new_zeros(
                self.num_layers * (2 if self.bidirectional else 1), batch, self.hidden_size
            )
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
                        new = (
                            tuple(keep * n + (1 - keep) * s for n, s in zip(new, state))
                            if lstm
                            else keep * new + (1 - keep) * state
                        )
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
