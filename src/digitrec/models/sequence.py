"""A small CRNN that reads a whole number strip: conv stack, per-column features, BiLSTM, CTC.

Input: float (N, 1, 32, W) strips (:mod:`digitrec.data.strips`: white ink in 0..1 on black).
Output: (T, N, 11) log-probabilities over T = ceil(W / 4) columns; class 0 is the CTC blank,
class 1 + d is digit d.
"""

from __future__ import annotations

import torch
from torch import nn

NUM_CLASSES = 11  # blank + 10 digits
BLANK = 0
STRIDE = 4  # input columns per output column
# Pixel mean and spread of training strips (mostly background).
MEAN = 0.1
STD = 0.3


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class CRNN(nn.Module):
    """Conv stack (32 rows -> 2) -> column features -> BiLSTM -> 11 classes per column.

    Args:
        width: Channels of the first conv block (the others are 2x, 3x, 4x that).
        hidden: Hidden units of each LSTM direction.
    """

    def __init__(self, width: int = 32, hidden: int = 64) -> None:
        super().__init__()
        c1, c2, c3, c4 = width, 2 * width, 3 * width, 4 * width
        self.width, self.hidden = width, hidden
        self.convs = nn.Sequential(
            *_block(1, c1),
            nn.MaxPool2d(2),  # 16 x W/2
            *_block(c1, c2),
            nn.MaxPool2d(2),  # 8 x W/4
            *_block(c2, c3),
            *_block(c3, c3),
            nn.MaxPool2d((2, 1)),  # 4 x W/4
            *_block(c3, c4),
            nn.MaxPool2d((2, 1)),  # 2 x W/4
        )
        self.rnn = nn.LSTM(2 * c4, hidden, batch_first=False, bidirectional=True)
        self.head = nn.Linear(2 * hidden, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 32, W) strips -> (T, N, 11) log-probabilities, T = ceil(W / 4)."""
        pad = (-x.shape[-1]) % STRIDE
        if pad:
            x = nn.functional.pad(x, (0, pad))
        f = self.convs((x - MEAN) / STD)  # (N, C, 2, T)
        n, c, h, t = f.shape
        seq = f.reshape(n, c * h, t).permute(2, 0, 1)  # (T, N, C * 2)
        out, _ = self.rnn(seq)
        return self.head(out).log_softmax(-1)


def out_lengths(widths: torch.Tensor) -> torch.Tensor:
    """Output columns for input strips ``widths`` wide (int64 (N,))."""
    return (widths + STRIDE - 1) // STRIDE
