"""Time the dashboard's refusal of a decompression-bomb upload: a 13000 x 13000 all-black PNG (a few KB on disk).

Reproduces the "refused in N ms" sentence of docs/readme/86-threat-model.md. The PNG is built by hand (1-bit
greyscale rows that compress to almost nothing); `dashboards.pages.drag.decode_upload` must refuse it from the
header alone, before any pixel is decoded. Prints the file size, the refusal message, the first call's time and the best of the next ones.

    python scripts/docs_upload_limit.py
"""

from __future__ import annotations

import base64
import struct
import time
import zlib


def bomb_png(w: int, h: int) -> bytes:
    """A valid all-black 1-bit greyscale PNG of w x h pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = bytes(1 + (w + 7) // 8)
    idat = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    header = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def main(side: int = 13000, repeats: int = 5) -> float:
    from dashboards.pages.drag import UploadError, decode_upload

    raw = bomb_png(side, side)
    contents = "data:image/png;base64," + base64.b64encode(raw).decode()
    times, message = [], ""
    for _ in range(repeats):
        t = time.perf_counter()
        try:
            decode_upload(contents, "big.png")
        except UploadError as e:
            message = str(e)
        else:
            raise SystemExit("error: the bomb was decoded instead of refused")
        times.append(time.perf_counter() - t)
    print(f"{side} x {side} PNG of {len(raw):,} bytes: {message}")
    print(
        f"refused in {1000 * times[0]:.1f} ms the first time (PIL import included), "
        f"{1000 * min(times[1:]):.2f} ms after (best of {repeats - 1})"
    )
    return min(times[1:])


if __name__ == "__main__":
    main()
