"""The benchmark's data loaders, built from a config's LazyCall, with read errors that name the file.

Detectron2's `DatasetMapper` reads images with PIL, whose error for a truncated file
(`image file is truncated (47 bytes not processed)`) does not say which file; the wrapped mapper finds the
broken file of the failing dict and raises `datasets.fileio.DataError` naming it.
"""

from __future__ import annotations

from detectron2.config import instantiate

from datasets.fileio import DataError, decode_image

FILE_KEYS = ("file_name", "sem_seg_file_name", "depth_file_name")


class FileNamingMapper:
    def __init__(self, mapper):
        self.mapper = mapper

    def __call__(self, dataset_dict: dict):
        try:
            return self.mapper(dataset_dict)
        except (OSError, ValueError, SyntaxError) as e:  # PIL: OSError / UnidentifiedImageError / SyntaxError
            raise DataError(broken_file_message(dataset_dict, e)) from e


def broken_file_message(dataset_dict: dict, error: Exception) -> str:
    for key in FILE_KEYS:
        if dataset_dict.get(key):
            try:
                decode_image(dataset_dict[key])
            except DataError as bad:
                return str(bad)
    return f"{dataset_dict.get('file_name')}: cannot be loaded ({type(error).__name__}: {error})"


def build_loader(loader_cfg):
    """`instantiate(loader_cfg)` with its mapper wrapped; the config itself is left as it was."""
    mapper_cfg = loader_cfg.mapper
    loader_cfg.mapper = FileNamingMapper(instantiate(mapper_cfg))
    try:
        return instantiate(loader_cfg)
    finally:
        loader_cfg.mapper = mapper_cfg
