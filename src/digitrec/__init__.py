"""digitrec: handwritten-digit recognition with convolutional networks on PyTorch."""

__version__ = "0.1.0"
