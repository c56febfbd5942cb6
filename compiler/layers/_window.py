"""Shared arithmetic of sliding-window layers (convolutions and pooling) over N spatial axes."""

from __future__ import annotations

from .base import (
    Dim,
    Shape,
    ShapeError,
    check_window,
    fmt_shape,
    need_int,
    same_pad,
    window_out,
)

AXES = {1: "length", 2: "height and width"}


def as_tuple(v, nd: int) -> tuple:
    return tuple(v) if isinstance(v, tuple) else (v,) * nd


def spatial_input(shape: Shape, nd: int, layer: str) -> tuple[Dim, tuple]:
    """Split (C, *spatial) and check the rank."""
    if len(shape) != nd + 1:
        expected = "(batch, channels, length)" if nd == 1 else "(batch, channels, height, width)"
        hint = "add a reshape to give the input its channels" if len(shape) < nd + 1 else None
        raise ShapeError(f"{layer} expects input {expected}, got {fmt_shape(shape)}", hint)
    return need_int(shape[0], f"{layer}'s input channels"), tuple(shape[1:])


def resolve_padding(padding, kernel: tuple, stride: tuple, dilation: tuple, nd: int) -> tuple:
    if padding == "valid":
        return (0,) * nd
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ShapeError(
                "padding 'same' needs stride 1",
                "give padding as numbers for a strided layer",
                field="padding",
            )
        return tuple(same_pad(k, d) for k, d in zip(kernel, dilation))
    return as_tuple(padding, nd)


def window_shape(spatial: tuple, kernel, stride, padding, dilation, nd: int, same: bool) -> tuple:
    kernel, stride, padding, dilation = (
        as_tuple(v, nd) for v in (kernel, stride, padding, dilation)
    )
    for k, s, d in zip(kernel, stride, dilation):
        check_window(k, s, d)  # before 'same' padding, which never reaches window_out
    if same:  # PyTorch pads 'same' asymmetrically for even kernels: the size is kept exactly
        return tuple(spatial)
    return tuple(
        window_out(size, k, s, p, d, what=f"input {AXES[nd]}" if nd == 1 else "input")
        for size, k, s, p, d in zip(spatial, kernel, stride, padding, dilation)
    )


def check_groups(in_channels: int, out_channels: int, groups: int):
    if in_channels % groups or out_channels % groups:
        raise ShapeError(
            f"groups={groups} must divide both input channels ({in_channels}) and out_channels ({out_channels})",
            field="groups",
        )
