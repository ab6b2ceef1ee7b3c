"""Print the versions of the stack and the visible devices; exit 1 naming anything missing."""

import importlib
import sys

import core  # noqa: F401  (silences third-party import warnings before the stack is imported)

REQUIRED = [
    "torch",
    "torchvision",
    "detectron2",
    "timm",
    "cv2",
    "numpy",
    "fvcore",
    "pycocotools",
    "omegaconf",
    "h5py",
    "cityscapesscripts",
    "tensorboard",
    "matplotlib",
    "scipy",
]


def compiled_ops() -> str:
    """Runs never print Detectron2's environment dump (benchmark.train_net.setup); this says once what it would."""
    try:
        from detectron2 import _C  # noqa: F401
    except ImportError:
        return (
            "detectron2._C not built (pure-Python wheel): RoIAlign and NMS run on torchvision.ops, COCO "
            "evaluation on pycocotools' COCOeval instead of the C++ COCOeval_opt; nothing we use needs _C "
            "(rotated boxes and deformable convolutions would)"
        )
    return "detectron2._C built (C++/CUDA ops and the fast COCO evaluation available)"


def main() -> int:
    missing = []
    print(f"python       {sys.version.split()[0]} ({sys.executable})")
    for name in REQUIRED:
        try:
            mod = importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - any import failure is a broken install
            missing.append(name)
            print(f"{name:12s} MISSING ({type(e).__name__}: {e})")
            continue
        print(f"{name:12s} {getattr(mod, '__version__', '(no version)')}")
    try:
        from detectron2.modeling.backbone.vit import SimpleFeaturePyramid, ViT  # noqa: F401
    except Exception as e:  # noqa: BLE001
        missing.append("detectron2 ViT")
        print(f"detectron2 ViT/SimpleFeaturePyramid MISSING ({e})")
    print(compiled_ops())
    try:
        import torch

        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                print(f"cuda:{i}       {p.name}, {p.total_memory / 2**30:.0f} GiB")
        else:
            print(f"cuda         none visible (CPU only, {torch.get_num_threads()} threads)")
    except Exception:  # noqa: BLE001 - torch already reported missing above
        pass
    if missing:
        print(f"\ndoctor: missing {', '.join(missing)}. Run `make clean install` to rebuild .venv.", file=sys.stderr)
        return 1
    print("\ndoctor: all good")
    return 0


if __name__ == "__main__":
    sys.exit(main())
