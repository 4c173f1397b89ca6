"""Decode any image file or byte string into a grey ``uint8 (H, W)`` array, safely.

Pillow does the decoding; this module adds a decompression-bomb cap, EXIF orientation,
transparency composited onto paper, and one-line errors for everything that can go wrong.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from digitrec.errors import DigitrecError

# Decompression-bomb cap: a 40-megapixel photo is ~160 MB of RGBA while decoding.
MAX_PIXELS = 40_000_000


class ImageReadError(DigitrecError):
    """A file or byte string that cannot be decoded as an image."""


def _describe(source: str | os.PathLike | bytes) -> str:
    return "image data" if isinstance(source, bytes | bytearray) else f"'{os.fspath(source)}'"


def _too_large(width: int, height: int) -> ImageReadError:
    return ImageReadError(f"image too large: {width} x {height} pixels (max {MAX_PIXELS:,} pixels)")


def _read_path(path: Path, name: str) -> bytes:
    """The file's bytes; what is wrong with the path (a directory, a symlink loop, a dangling
    symlink, no permission) becomes one ImageReadError line."""
    try:
        mode = path.stat().st_mode  # follows symlinks: a loop raises ELOOP here
        if stat.S_ISDIR(mode):
            raise ImageReadError(f"cannot read image {name}: is a directory")
        if not stat.S_ISREG(mode):  # a FIFO would block
            raise ImageReadError(f"cannot read image {name}: not a regular file")
        return path.read_bytes()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            reason = "symlink loop"
        elif isinstance(exc, FileNotFoundError):
            reason = "symlink to a missing file" if path.is_symlink() else "no such file"
        else:
            text = exc.strerror or type(exc).__name__
            reason = text[:1].lower() + text[1:]
        raise ImageReadError(f"cannot read image {name}: {reason}") from None


def _open(source: str | os.PathLike | bytes) -> Image.Image:
    """Open and fully decode an image (``load()`` makes truncated files fail here)."""
    name = _describe(source)
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
    else:
        data = _read_path(Path(source), name)
    if not data:
        raise ImageReadError(f"cannot read image {name}: the file is empty")
    with warnings.catch_warnings():
        # Pillow warns about odd-but-readable files; a bomb warning must stop us, though.
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
            if im.width * im.height > MAX_PIXELS:
                raise _too_large(im.width, im.height)
            im.load()
            return ImageOps.exif_transpose(im)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            # Pillow only reports the pixel count in its message.
            count = re.search(r"\((\d+) pixels\)", str(exc))
            raise ImageReadError(
                f"image too large: {count.group(1) if count else 'too many'} pixels "
                f"(max {MAX_PIXELS:,} pixels)"
            ) from None
        except Image.UnidentifiedImageError:
            raise ImageReadError(f"cannot read image {name}: not a recognised image") from None
        except DigitrecError:
            raise
        except Exception as exc:  # decoders raise many types on corrupt data
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ImageReadError(f"cannot read image {name}: {reason}") from None


def _to_gray(im: Image.Image) -> np.ndarray:
    """Flatten any mode to uint8 luma; transparency is composited onto a contrasting paper."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit / float greys: rescale their real range instead of clipping at 255.
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        return np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if not has_alpha:
        return np.asarray(im.convert("RGB").convert("L"), dtype=np.uint8)
    rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
    alpha = rgba[..., 3]
    luma = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    opaque = alpha > 0.5
    # Ink drawn on a transparent canvas is usually dark -> white paper; light ink -> black paper.
    paper = 0.0 if opaque.any() and (alpha < 0.5).any() and luma[opaque].mean() > 0.5 else 1.0
    out = luma * alpha + paper * (1.0 - alpha)
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def load_image(source: str | os.PathLike | bytes) -> np.ndarray:
    """Decode an image file or encoded bytes into a grey uint8 array.

    Handles PNG, JPEG, BMP, GIF (first frame), WebP and TIFF; applies the EXIF orientation and
    composites transparency onto paper.

    Args:
        source: A path, or the encoded bytes of an image.

    Returns:
        uint8 (H, W) luma, as photographed (no inversion).

    Raises:
        ImageReadError: Missing, empty, truncated, undecodable or oversized image.
    """
    return _to_gray(_open(source))
