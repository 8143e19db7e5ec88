"""Data (layer 1 of 7): images as tensors, datasets, the poisoned training set, augmentation.

`ImageDataset` and the embedded datasets' loaders (re-exported here from `dataset`), the loaders
of the downloadable datasets (`datasets`), the training set with its poison (`trainset.TrainSet`),
image helpers (uint8 conversion, quantisation, resizing), batch augmentation and seeded sampling.
May import bdcore.errors and bdcore.config only.
"""

from bdcore.data.dataset import ImageDataset, load_digits, load_mnist5k, stratified_split

__all__ = ["ImageDataset", "load_digits", "load_mnist5k", "stratified_split"]
