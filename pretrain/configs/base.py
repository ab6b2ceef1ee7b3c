"""Every pre-training setting in one place, at the paper's scale (ViT-B/16). Other configs import this and
override a few attributes (ViTDet style). Each default names its source: the Mask3D paper, MAE (He et al.
2022), MultiMAE (Bachmann et al. 2022), or "our choice" where the paper does not say (or we could not check
it against the paper)."""

from detectron2.config import LazyCall as L

from pretrain.model import MaskedRGBD

model = L(MaskedRGBD)(
    objective="mask3d",  # paper; baselines: "mae", "multimae", "none" (export the initialisation)
    preset="vit_b",  # paper: ViT-B/16
    patch_size=16,  # paper: ViT-B/16
    img_size=(240, 320),  # our choice: ScanNet's 4:3 frames, 15x20 patches
    rgb_mask_ratio=0.75,  # MAE; the paper ablates RGB/depth ratios (values not checked here): sweep it
    depth_mask_ratio=0.75,  # our choice (same as RGB); sweep it
    weight_init="mae",  # MAE's xavier-uniform; "detectron2": the encoder as Detectron2's ViT starts (trunc normal 0.02)
    centre_pos=False,  # our choice: True subtracts the sin-cos table's mean over the grid (docs/interfaces.md)
    decoder_dim=512,  # MAE's light decoder: 8 blocks x 512 wide, 16 heads
    decoder_depth=8,  # MAE
    decoder_heads=16,  # MAE
    depth_loss="l1",  # MultiMAE's depth loss; "l2" is the alternative
    depth_norm="image",  # our choice: per-image standardised depth (scale-free); "metric" or "patch"
    rgb_norm_pix=True,  # MAE: per-patch normalised pixel targets (mae/multimae objectives only)
)

data = dict(
    names=["scannet_rgbd_train"],  # any registered datasets with depth_file_name, or "a,b" to concatenate
    scale=(0.2, 1.0),  # MAE's RandomResizedCrop area range
    ratio=(3 / 4, 4 / 3),  # torchvision/MAE aspect jitter (relative to the output aspect here)
    hflip=0.5,  # MAE
    color_jitter=0.4,  # our choice (the common SimCLR/torchvision strength; MAE uses none); RGB only
    min_overlap=0.3,  # pri3d only: frame pairs kept when each sees >= 30 % of the other (Pri3D's threshold)
    workers=8,  # our choice: loader processes per GPU
    pin_memory=True,  # our choice (CUDA only)
    packed="",  # a folder of `tools.pack_rgbd` shards to read instead of decoding the files of `names` (GPU speed)
)

train = dict(
    output_dir="",  # "" -> output/pretrain/<config name>-<objective>
    max_iter=50000,  # our choice: ~280 epochs of ~90k ScanNet frames at batch 512
    batch_size=64,  # our choice: per GPU; 8 GPUs -> effective 512
    accum_steps=1,  # gradient accumulation: effective batch = batch_size * accum_steps * GPUs
    base_lr=1.5e-4,  # MAE: lr = base_lr * effective batch / 256
    min_lr=0.0,  # MAE: cosine to 0
    warmup_iters=2500,  # our choice: 5% of the run, MAE's 40/800-epoch proportion
    weight_decay=0.05,  # MAE
    betas=(0.9, 0.95),  # MAE
    seed=0,  # seeds the initialisation, data order, augmentation and masks
    amp=True,  # bf16 autocast on CUDA (ignored on CPU)
    compile=False,  # torch.compile the model (GPU; first iterations slower)
    device="auto",  # "cpu" forces CPU
    cpu_threads=0,  # torch threads on CPU, 0 = torch's default; on a busy machine use 1 or OMP_WAIT_POLICY=PASSIVE
    # (spinning OpenMP threads made ViT-tiny 6x slower on a shared 2-core machine)
    init_checkpoint="",  # start the encoder from a MAE .pth / timm / safetensors ViT of the same size
    checkpoint_period=1000,  # our choice, like every operational knob below
    vis_period=5000,  # reconstruction PNG every N iterations (0: only at the end)
    log_period=20,
    tag="",  # free text copied into the results record
)
