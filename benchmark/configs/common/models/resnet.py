"""ResNet-50 FPN pieces shared by the R50 models (Pri3D's backbone, torchvision layout).

Pri3D, MoCo and torchvision checkpoints put the stride in the 3x3 convolution (`stride_in_1x1=False`)
and expect RGB input normalised with ImageNet statistics. All BatchNorms are trainable SyncBN, the usual
choice when fine-tuning self-supervised ResNets (a plain BN on one process).
"""

from detectron2 import model_zoo

_mask_rcnn = model_zoo.get_config("common/models/mask_rcnn_fpn.py").model
_constants = model_zoo.get_config("common/data/constants.py").constants

fpn = _mask_rcnn.backbone
fpn.bottom_up.stem.norm = "SyncBN"
fpn.bottom_up.stages.norm = "SyncBN"
fpn.bottom_up.stages.stride_in_1x1 = False
fpn.bottom_up.freeze_at = 0
pixel_mean = _constants.imagenet_rgb256_mean
pixel_std = _constants.imagenet_rgb256_std
