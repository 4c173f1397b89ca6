"""Images in, MNIST-style digits out: decoding, normalisation and segmentation (no torch)."""

from digitrec.images.decode import MAX_PIXELS, ImageReadError, load_image
from digitrec.images.normalise import center_digit, ink_map, preprocess_file, to_mnist
from digitrec.images.segment import segment_digits

__all__ = [
    "MAX_PIXELS",
    "ImageReadError",
    "center_digit",
    "ink_map",
    "load_image",
    "preprocess_file",
    "segment_digits",
    "to_mnist",
]
