"""Mask R-CNN with a ResNet-50 FPN backbone (Detectron2's `common/models/mask_rcnn_fpn.py`), as Pri3D."""

from detectron2 import model_zoo

from .resnet import fpn, pixel_mean, pixel_std

model = model_zoo.get_config("common/models/mask_rcnn_fpn.py").model
model.backbone = fpn
model.pixel_mean = pixel_mean
model.pixel_std = pixel_std
model.input_format = "RGB"
