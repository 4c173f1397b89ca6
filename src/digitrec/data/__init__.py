"""Datasets: the IDX reader, dataset specs and loading, fetching, Kaggle CSV, synthetic data."""

from digitrec.data.specs import (
    DATA_ENV,
    DatasetSpec,
    checksum_status,
    class_counts,
    dataset_of,
    get_dataset,
    list_datasets,
    load_mnist,
    load_split,
    resolve_data_dir,
    train_val_split,
)

__all__ = [
    "DATA_ENV",
    "DatasetSpec",
    "checksum_status",
    "class_counts",
    "dataset_of",
    "get_dataset",
    "list_datasets",
    "load_mnist",
    "load_split",
    "resolve_data_dir",
    "train_val_split",
]
