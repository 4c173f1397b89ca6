"""Page conditions of synthetic photos: what a phone photo shows besides the writing.

Each condition is a seeded change to one stage of :func:`digitrec.data.synth.render_photo`:
the pen layer (a frame, a decimal point), the paper (ruled or squared lines, a red margin,
pencil), or the scene (the table beyond the paper's edge, a hard shadow edge, a dark strip at a
border, glare, a perspective tilt). Colours are RGB in 0..255; images are float32 (H, W, 3).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

# Every condition a photo can be rendered with ("mixed" draws two of the others).
CONDITIONS = (
    "clean",
    "table",
    "shadow",
    "strip",
    "ruled",
    "squared",
    "glare",
    "tilt",
    "frame",
    "point",
    "mixed",
)
DESCRIPTIONS = {
    "clean": "clean: any ink or paper colour, rotated, 3-7x",
    "table": "the paper's edge and the table visible",
    "shadow": "a hard shadow edge across the page",
    "strip": "a dark strip (10-30 px) at one border",
    "ruled": "ruled paper with a red margin",
    "squared": "squared paper, pencil",
    "glare": "glare (a bright spot) near the writing",
    "tilt": "perspective tilt",
    "frame": "a frame drawn around the writing",
    "point": "a decimal point after the digit",
    "mixed": "two of the conditions above at once",
}
_MIXABLE = ("table", "shadow", "strip", "ruled", "squared", "glare", "tilt", "frame")
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), canvas pixels


def expand(condition: str, rng: np.random.Generator) -> frozenset[str]:
    """The set of basic conditions a (possibly "mixed") condition stands for."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown photo condition '{condition}'")
    if condition == "clean":
        return frozenset()  # draws nothing: clean photos stay as they always were
    if condition != "mixed":
        return frozenset({condition})
    picks = rng.choice(len(_MIXABLE), size=2, replace=False)
    chosen = {_MIXABLE[i] for i in picks}
    if {"ruled", "squared"} <= chosen:
        chosen.discard("squared")
    return frozenset(chosen)


def _stroke(alpha: np.ndarray) -> float:
    """Typical stroke width of ink alpha (float (h, w)), in px: ink area / half its outline."""
    ink = alpha > 0.5
    edges = (ink[1:] != ink[:-1]).sum() + (ink[:, 1:] != ink[:, :-1]).sum()
    return max(1.5, 2.0 * ink.sum() / max(int(edges), 1))


def pen_marks(alpha: np.ndarray, conds: frozenset[str], rng: np.random.Generator) -> np.ndarray:
    """Add pen marks around the writing: a hand-drawn frame, or a decimal point after it.

    Args:
        alpha: float32 (h, w) ink alpha in 0..1 of the writing.

    Returns:
        float32 (h', w') alpha, padded to hold the marks.
    """
    if not conds & {"frame", "point"}:
        return alpha
    rows = np.nonzero(alpha.max(axis=1) > 0.25)[0]
    height = float(rows[-1] + 1 - rows[0]) if rows.size else float(alpha.shape[0])
    width = max(2, round(_stroke(alpha) * rng.uniform(0.6, 1.0)))
    if "point" in conds:
        d = max(3, round(_stroke(alpha) * rng.uniform(1.1, 1.6)))
        gap = round(height * rng.uniform(0.08, 0.25))
        alpha = np.pad(alpha, ((0, 0), (0, gap + d + 2)))
        img = Image.fromarray((alpha * 255).astype(np.uint8))
        x = alpha.shape[1] - d - 2
        y = int(rows[-1]) - d + 1 if rows.size else alpha.shape[0] - d
        ImageDraw.Draw(img).ellipse((x, y, x + d, y + d), fill=255)
        alpha = np.asarray(img, dtype=np.float32) / 255.0
    if "frame" in conds:
        m = round(height * rng.uniform(0.12, 0.35)) + width
        alpha = np.pad(alpha, m)
        h, w = alpha.shape
        img = Image.fromarray((alpha * 255).astype(np.uint8))
        jit = 0.04 * height
        # Corners of a hand-drawn box: each a little off, the last stroke overshooting.
        pts = [
            (width + rng.uniform(0, jit), width + rng.uniform(0, jit)),
            (w - 1 - width - rng.uniform(0, jit), width + rng.uniform(0, jit)),
            (w - 1 - width - rng.uniform(0, jit), h - 1 - width - rng.uniform(0, jit)),
            (width + rng.uniform(0, jit), h - 1 - width - rng.uniform(0, jit)),
        ]
        ImageDraw.Draw(img).line([*pts, pts[0], pts[1]], fill=255, width=width, joint="curve")
        alpha = np.asarray(img, dtype=np.float32) / 255.0
    return alpha


def paper(
    size: tuple[int, int],
    colour: np.ndarray,
    box: Box,
    conds: frozenset[str],
    rng: np.random.Generator,
) -> np.ndarray:
    """The paper of ``size`` = (W, H), with ruled or squared lines and a margin if asked.

    Line spacing follows the writing's height (``box``): a digit spans about one ruled line,
    two squares.
    """
    width, height = size
    img = np.broadcast_to(colour.astype(np.float32), (height, width, 3)).copy()
    if not conds & {"ruled", "squared"}:
        return img
    ink_h = box[3] - box[1]
    ruled = "ruled" in conds
    step = ink_h * (rng.uniform(0.7, 1.4) if ruled else rng.uniform(0.4, 0.7))
    line = np.array(
        [rng.uniform(120, 190), rng.uniform(150, 200), rng.uniform(190, 235)], np.float32
    )
    if not ruled:
        line = np.full(3, rng.uniform(140, 200), np.float32)
    # Lines are drawn on a 3x canvas, then shrunk: anti-aliased, 0.7-2.3 px thick.
    s = 3
    layer = Image.new("L", (width * s, height * s), 0)
    draw = ImageDraw.Draw(layer)
    thick = int(rng.integers(2, 8))
    phase = rng.uniform(0, step)
    for y in np.arange(phase, height, step):
        draw.line([(0, y * s), (width * s, y * s)], fill=255, width=thick)
    if not ruled:
        for x in np.arange(rng.uniform(0, step), width, step):
            draw.line([(x * s, 0), (x * s, height * s)], fill=255, width=thick)
    cover = np.asarray(layer.resize(size, Image.Resampling.BOX), np.float32) / 255.0
    img += cover[..., None] * (line - img) * rng.uniform(0.6, 1.0)
    if ruled:  # a red margin left of the writing (one or two lines)
        margin = Image.new("L", (width * s, height * s), 0)
        draw = ImageDraw.Draw(margin)
        x = rng.uniform(0.25, 0.9) * box[0]
        for k in range(1 + int(rng.random() < 0.4)):
            draw.line([((x - 4 * k) * s, 0), ((x - 4 * k) * s, height * s)], fill=255, width=thick)
        red = np.array([rng.uniform(190, 235), rng.uniform(30, 90), rng.uniform(40, 100)])
        cover = np.asarray(margin.resize(size, Image.Resampling.BOX), np.float32) / 255.0
        img += cover[..., None] * (red.astype(np.float32) - img)
    return img


def pencil(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Graphite: lighter ink whose strength varies grain by grain (float32 (H, W) alpha)."""
    grain = rng.uniform(0.45, 1.0, size=alpha.shape).astype(np.float32)
    return alpha * grain * rng.uniform(0.7, 0.9)


def _smooth_noise(
    shape: tuple[int, int], cells: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Smooth random field in 0..1 (float32 ``shape``) from a (rows, cols) grid of cells."""
    grid = rng.random(cells).astype(np.float32)
    pil = Image.fromarray(grid, mode="F").resize((shape[1], shape[0]), Image.Resampling.BICUBIC)
    return np.asarray(pil, dtype=np.float32)


def _room(box: Box, size: tuple[int, int]) -> list[tuple[str, int]]:
    """Free pixels between the writing and each border, largest first."""
    width, height = size
    free = [
        ("left", box[0]),
        ("right", width - box[2]),
        ("top", box[1]),
        ("bottom", height - box[3]),
    ]
    return sorted(free, key=lambda s: -s[1])


def _beyond(side: str, depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Soft mask (float32 (H, W)) of what lies within ``depth`` px of a border.

    ``depth`` is the depth per position along that border (float (L,)).
    """
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    dist = {"left": xx, "right": width - 1 - xx, "top": yy, "bottom": height - 1 - yy}[side]
    along = depth[yy.astype(int)] if side in ("left", "right") else depth[xx.astype(int)]
    return np.clip(along - dist + 0.5, 0.0, 1.0)


def scene(img: np.ndarray, box: Box, conds: frozenset[str], rng: np.random.Generator) -> np.ndarray:
    """Apply the scene conditions to a photo of the page (float32 (H, W, 3), modified)."""
    height, width = img.shape[:2]
    size = (width, height)
    if "table" in conds:
        side, room = _room(box, size)[0]
        n = height if side in ("left", "right") else width
        # The writing's extent along that border: the edge stays >= 4 px clear of it there.
        lo, hi = (box[1], box[3]) if side in ("left", "right") else (box[0], box[2])
        slope = rng.uniform(-0.27, 0.27)  # up to 15 degrees
        slope *= min(1.0, max(room - 8, 0) / max(abs(slope) * (hi - lo) / 2, 1e-6))
        d0 = rng.uniform(0.3, 0.9) * max(room - 4 - abs(slope) * (hi - lo) / 2, 2)
        depth = np.clip(d0 + slope * (np.arange(n) - (lo + hi) / 2), 2, None).astype(np.float32)
        mask = _beyond(side, depth, size)
        if rng.random() < 0.75:  # a darker desk, wood-like grain
            base = rng.uniform(40, 150) * np.array([1.0, 0.8, 0.62]) ** rng.uniform(0, 1.5)
        else:  # a desk lighter than the paper
            base = np.full(3, min(255.0, float(img.mean()) + rng.uniform(15, 40)))
        grain = _smooth_noise((height, width), (4, 40) if rng.random() < 0.5 else (40, 4), rng)
        table = base[None, None, :] * (0.85 + 0.3 * grain[..., None])
        img = img + mask[..., None] * (table.astype(np.float32) - img)
    if "strip" in conds:
        side, room = _room(box, size)[0]
        n = height if side in ("left", "right") else width
        thick = min(rng.uniform(10, 30), max(room - 4, 4))
        depth = np.full(n, thick, np.float32)
        mask = _beyond(side, depth, size)
        dark = rng.uniform(10, 70)
        img = img + mask[..., None] * (np.float32(dark) - img)
    if "shadow" in conds:
        # A straight shadow edge anywhere across the page, 0-5 px soft; the far side darker.
        angle = rng.uniform(0, np.pi)
        cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        signed = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
        soft = rng.uniform(0.5, 5.0)
        shade = np.clip(signed / soft + 0.5, 0.0, 1.0)
        factor = rng.uniform(0.4, 0.7)
        img = img * (1.0 - shade * (1.0 - factor))[..., None]
    if "glare" in conds:
        cx = rng.uniform(box[0], box[2])
        cy = rng.uniform(box[1], box[3])
        sigma = rng.uniform(0.1, 0.3) * height
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        glow = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
        strength = np.clip(glow * rng.uniform(0.5, 1.2), 0.0, rng.uniform(0.55, 0.75))
        img = img + strength[..., None] * (255.0 - img)
    if "tilt" in conds:
        img = _perspective(img, rng)
    return img.astype(np.float32)


def _perspective(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The page seen from an angle: each corner of the view pulled in by up to 12 %."""
    height, width = img.shape[:2]
    dx, dy = width * 0.12, height * 0.12
    src = [
        (rng.uniform(0, dx), rng.uniform(0, dy)),
        (width - rng.uniform(0, dx), rng.uniform(0, dy)),
        (width - rng.uniform(0, dx), height - rng.uniform(0, dy)),
        (rng.uniform(0, dx), height - rng.uniform(0, dy)),
    ]
    dst = [(0, 0), (width, 0), (width, height), (0, height)]
    # Solve for the 8 coefficients mapping output (x, y) to input (u, v).
    a, b = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    coeffs = np.linalg.solve(np.array(a, float), np.array(b, float))
    out = np.empty_like(img)
    for c in range(3):
        pil = Image.fromarray(np.ascontiguousarray(img[..., c], dtype=np.float32), mode="F")
        warped = pil.transform(
            (width, height), Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BILINEAR
        )
        out[..., c] = np.asarray(warped, dtype=np.float32)
    return out
