"""PNG encoding with the standard library alone (zlib, struct), for sample grids.

Shared by the runtime (`save_grid`) and the generated train.py (samples/ per epoch), which
inlines this module: no imaging library is needed to write a picture.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np


def png_bytes(picture: np.ndarray) -> bytes:
    """An (H, W), (H, W, 1) or (H, W, 3) uint8 array as the bytes of a PNG file."""
    a = np.asarray(picture, dtype=np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    color = 2 if a.ndim == 3 else 0
    height, width = a.shape[:2]
    raw = b"".join(b"\x00" + row.tobytes() for row in a.reshape(height, -1))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
