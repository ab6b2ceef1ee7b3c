"""Pre-training on a pack (`datasets.packed`): `RGBDPretrainDataset`'s crops, flips and colour jitter applied to
frames read from memory-mapped shards instead of decoded from JPEG and PNG files."""

from __future__ import annotations

from datasets.packed import PackedFrames

from .data import RGBDPretrainDataset


class PackedPretrainDataset(RGBDPretrainDataset):
    """Same items and random stream as `RGBDPretrainDataset` (crops are drawn relative to the frame, so the
    pack's size changes only the pixels they are cut from)."""

    read_order = "RGB"  # packs store RGB: no channel swap per frame

    def __init__(self, folder: str, img_size, **augment):
        self.frames = PackedFrames(folder)
        super().__init__(self.frames.records, img_size, **augment)

    def read(self, index):
        """(RGB uint8, uint16 mm) of one packed frame, views into its shard's memory maps."""
        return self.frames[index]
