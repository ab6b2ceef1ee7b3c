"""Print the versions of the stack and the visible devices; exit 1 naming anything missing."""
import importlib
import sys

REQUIRED = ["torch", "torchvision", "detectron2", "timm", "cv2", "numpy", "fvcore", "pycocotools",
            "omegaconf", "h5py", "cityscapesscripts", "tensorboard", "matplotlib", "scipy"]


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
        print(f"\ndoctor: missing {', '.join(missing)}. Run `make clean install` to rebuild .venv.",
              file=sys.stderr)
        return 1
    print("\ndoctor: all good")
    return 0


if __name__ == "__main__":
    sys.exit(main())
