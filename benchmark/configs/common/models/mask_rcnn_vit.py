"""ViTDet Mask R-CNN (`common/models/mask_rcnn_vitdet.py`) without square padding.

ViTDet pads COCO images to 1024x1024; indoor frames (4:3) and Cityscapes (2:1) are padded only to a
multiple of 32 (`benchmark.modeling.PaddedSimpleFeaturePyramid`), and the dataset configs pick `img_size`
(sizes the relative position tables) and a `window_size` that tiles their token grid exactly. The ViT is
`benchmark.backbones.GridViT`, which keeps a pre-trained export's own (non-square) position grid.
"""

from detectron2 import model_zoo

from benchmark.backbones import GridViT
from benchmark.modeling import PaddedSimpleFeaturePyramid

model = model_zoo.get_config("common/models/mask_rcnn_vitdet.py").model
model.backbone._target_ = PaddedSimpleFeaturePyramid
model.backbone.net._target_ = GridViT
model.backbone.square_pad = 0
