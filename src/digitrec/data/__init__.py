"""Datasets: the IDX reader, dataset specs and loading, fetching, Kaggle CSV, synthetic data."""

from digitrec.data.specs import (
    DATA_ENV,
    class_counts,
    load_mnist,
    resolve_data_dir,
    train_val_split,
)

__all__ = ["DATA_ENV", "class_counts", "load_mnist", "resolve_data_dir", "train_val_split"]
