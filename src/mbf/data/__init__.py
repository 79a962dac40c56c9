"""Data: dataset readers, image transforms, identity-balanced samplers and loaders; ``build`` reads the config."""
from .datasets import DATASETS, Item, ReIDDataset, build_dataset, build_test_set, parse_name, register_dataset
from .io import IMAGE_EXTENSIONS, read_image
from .build import (build_num_workers, build_test_loader, build_test_transform, build_train_loader, build_train_sampler,
                    build_train_transform, evaluation_set_names, load_dataset, load_test_set)
from .loaders import ImageSet, capped_workers, test_loader, train_loader, train_sampler
from .samplers import DistributedRandomIdentitySampler, RandomIdentitySampler
from .transforms import eval_transform, train_transform

__all__ = [
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "DistributedRandomIdentitySampler",
    "ImageSet",
    "Item",
    "RandomIdentitySampler",
    "ReIDDataset",
    "build_dataset",
    "build_num_workers",
    "capped_workers",
    "eval_transform",
    "evaluation_set_names",
    "load_dataset",
    "load_test_set",
    "test_loader",
    "train_loader",
    "train_sampler",
    "train_transform",
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
