"""`supervised`: semantic segmentation from the whole, unmasked RGB frame, the positive control of a pre-training
comparison (an encoder that has seen labels must fine-tune better than its matched from-scratch start, `none`, or
the benchmark cannot see a pre-training benefit). Each token of the encoder's output (after its final norm) is
mapped by one linear layer to class logits for its patch's pixels; cross-entropy over labelled pixels (255 =
ignore). It reads a `*_sem_seg_*` dataset, whose `stuff_classes` must number `model.num_classes`; no depth."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import default_collate

from datasets.labels import IGNORE_LABEL

from ..data import to_model_inputs
from ..masking import unpatchify
from ..model import OBJECTIVE_REGISTRY, MaskedRGBD


@OBJECTIVE_REGISTRY.register()
class Supervised(MaskedRGBD):
    name = "supervised"
    batch_keys = ("image", "sem_seg")
    logged = ("pixel_acc",)

    def build(self, num_classes=20):
        if num_classes < 1:
            raise ValueError(f"model.num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.seg_head = nn.Linear(self.embed_dim, self.patch_size**2 * num_classes)

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        """(B, num_classes, H, W) float logits of the unmasked frames."""
        x, grid = self.embed_rgb(image)
        return unpatchify(self.seg_head(self.encode(x)).float(), self.patch_size, grid)

    def losses(self, batch, generator):
        logits, labels = self.logits(batch["image"]), batch["sem_seg"].long()
        labelled = labels != IGNORE_LABEL
        ce = nn.functional.cross_entropy(logits, labels, ignore_index=IGNORE_LABEL, reduction="sum")
        loss = ce / labelled.sum().clamp(min=1)  # a frame without labels gives 0, not NaN
        correct = (logits.detach().argmax(1) == labels) & labelled
        pixel_acc = float(correct.sum() / labelled.sum().clamp(min=1))
        return {"loss": loss, "loss_sem_seg": loss, "pixel_acc": pixel_acc}

    @torch.no_grad()
    def metrics(self, dataset, device, seed, amp=False, max_images=64, batch_size=8) -> dict:
        """Pixel accuracy and mIoU (over classes present in labels or predictions) of centre views spread over the
        pre-training frames: how well the labels were learned, not a held-out score."""
        indices = sorted({int(i) for i in np.linspace(0, len(dataset) - 1, min(max_images, len(dataset)))})
        confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        was_training = self.training
        self.eval()
        try:
            for start in range(0, len(indices), batch_size):
                views = default_collate([dataset[i] for i in indices[start : start + batch_size]])
                inputs = to_model_inputs(views, device)
                image, labels = inputs["image"], inputs["sem_seg"].long().cpu()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    pred = self.logits(image).argmax(1).cpu()
                keep = labels != IGNORE_LABEL
                pairs = labels[keep] * self.num_classes + pred[keep]
                confusion += torch.bincount(pairs, minlength=self.num_classes**2).view_as(confusion)
        finally:
            self.train(was_training)
        hits, union = confusion.diag(), confusion.sum(0) + confusion.sum(1) - confusion.diag()
        if int(confusion.sum()) == 0:
            return {}
        return {
            "train_pixel_acc": float(hits.sum() / confusion.sum()),
            "train_miou": float((hits[union > 0] / union[union > 0]).mean()),
        }
