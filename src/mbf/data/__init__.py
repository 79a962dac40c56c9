"""Data: dataset readers, image transforms, identity-balanced samplers and loaders."""
from .datasets import DATASETS, Item, ReIDDataset, build_dataset, build_test_set, parse_name, register_dataset
from .io import IMAGE_EXTENSIONS, read_image
from .loaders import ImageSet, build_test_loader, build_train_loader, build_train_sampler
from .samplers import DistributedRandomIdentitySampler, RandomIdentitySampler
from .transforms import build_test_transform, build_train_transform

__all__ = [
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "DistributedRandomIdentitySampler",
    "ImageSet",
    "Item",
    "RandomIdentitySampler",
    "ReIDDataset",
    "build_dataset",
    "build_test_set",
    "build_test_loader",
    "build_test_transform",
    "build_train_loader",
    "build_train_sampler",
    "build_train_transform",
    "parse_name",
    "read_image",
    "register_dataset",
]
