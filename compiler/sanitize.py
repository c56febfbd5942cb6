"""The one gate between spec text and generated code.

Every identifier from a spec goes through `Identifiers.make`, every value through `lit`, and
user prose only into comments or docstrings through `comment_text`. Nothing else from a spec
reaches a template, so no spec can inject code.
"""

from __future__ import annotations

import builtins
import keyword
import math
import re
import unicodedata

# Public attributes of torch.nn.Module (torch 2.13): a layer called `train` or `to` must not
# replace the method of that name on the generated model.
MODULE_ATTRS = set(
    "add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches "
    "eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu "
    "load_state_dict modules mtia named_buffers named_children named_modules named_parameters "
    "parameters register_backward_hook register_buffer register_forward_hook register_forward_pre_hook "
    "register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook "
    "register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook "
    "register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict "
    "to to_empty train training type xpu zero_grad T_destination".split()
)

# Names the generated files use themselves; a spec's names must never shadow them.
GENERATED_NAMES = set(
    "self torch nn F np math x h super model Model json os sys time argparse Path batch config CONFIG "
    "INPUTS OUTPUT TASK LABELS main device input_mean input_std example_inputs targets step "
    "initial_state batch_size".split()
)
RESERVED = (
    GENERATED_NAMES
    | MODULE_ATTRS
    | set(dir(builtins))
    | set(keyword.kwlist)
    | set(keyword.softkwlist)
)


def slug(text: str, fallback: str = "model") -> str:
    """ASCII [a-z0-9_] only, for file and folder names: no separators, no dots, never empty."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    s = re.sub(r"[^A-Za-z0-9_]+", "_", ascii_text).strip("_").lower()
    return s[:64] or fallback


class Identifiers:
    """Turns arbitrary strings into distinct, safe Python identifiers."""

    def __init__(self, reserved=RESERVED):
        self.taken = set(reserved)
        self.assigned: dict[str, str] = {}

    def make(self, name: str) -> str:
        if name in self.assigned:
            return self.assigned[name]
        base = slug(name, "layer")
        if base[0].isdigit():
            base = "l_" + base
        if base in self.taken or keyword.iskeyword(base) or base.startswith("__"):
            base = base.strip("_") + "_"
            if base == "_":
                base = "layer_"
        candidate, k = base, 2
        while candidate in self.taken:
            candidate = f"{base}{k}"
            k += 1
        assert candidate.isidentifier() and not keyword.iskeyword(candidate)
        self.taken.add(candidate)
        self.assigned[name] = candidate
        return candidate


def class_name(name: str) -> str:
    """'lenet-5 model' -> 'Lenet5Model' (a safe identifier, never a reserved one)."""
    parts = re.split(
        r"[^A-Za-z0-9]+",
        unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode(),
    )
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    if not out or out[0].isdigit():
        out = "Net" + out
    if out in RESERVED or keyword.iskeyword(out):
        out += "Net"
    return out[:64]


def lit(value) -> str:
    """A Python literal for a value of a known plain type; anything else is refused."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return f'float("{value}")'
        return repr(float(value))
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, tuple):
        inner = ", ".join(lit(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(lit(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{lit(str(k))}: {lit(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no literal for {type(value).__name__}")


def comment_text(text: str, limit: int = 200) -> str:
    """User prose for a comment or docstring: one line, printable, no quotes or backslashes."""
    s = "".join(ch if ch.isprintable() else " " for ch in str(text))
    s = s.replace("\\", "/").replace('"', "'")
    s = re.sub(r"\s+", " ", s).strip()
    return s[:limit]
