"""Careful file I/O for preparation and checks: decode with errors that name the file, write atomically.

A preparation that dies half-way must never leave a file a rerun would trust, so every write goes to a
temporary file in the same folder and is moved into place with `os.replace`."""
import json
import os
import tempfile

import cv2
import numpy as np
from pycocotools import mask as mask_util


class DataError(Exception):
    """Bad or missing input; the message names the file and how to fix it."""


_JPEG_END = b"\xff\xd9"
_PNG_END = b"IEND\xaeB`\x82"


def read_bytes(path: str) -> np.ndarray:
    try:
        return np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: file is missing") from None


def decode_image(path: str, flags: int = cv2.IMREAD_UNCHANGED, data: np.ndarray = None) -> np.ndarray:
    """Decode a JPEG/PNG with OpenCV; truncated or undecodable files raise `DataError` naming the file.

    libjpeg returns a grey-padded image for a truncated JPEG instead of failing, hence the end-marker check."""
    if data is None:
        data = read_bytes(path)
    tail = data[-16:].tobytes().rstrip(b"\x00")
    lower = path.lower()
    if (lower.endswith((".jpg", ".jpeg")) and not tail.endswith(_JPEG_END)) or \
            (lower.endswith(".png") and not tail.endswith(_PNG_END)):
        raise DataError(f"{path}: truncated or corrupt image file (no end marker); re-extract or re-download it")
    img = cv2.imdecode(data, flags) if data.size else None
    if img is None:
        raise DataError(f"{path}: cannot decode image (corrupt or not an image); re-extract or re-download it")
    return img


def read_rgb(path: str, reduce: int = 1) -> np.ndarray:
    """HxWx3 uint8 RGB; `reduce` in (1, 2, 4, 8) lets libjpeg decode at a fraction of the size (fast)."""
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}[reduce]
    return cv2.cvtColor(decode_image(path, flags), cv2.COLOR_BGR2RGB)


def read_depth_png(path: str, data: np.ndarray = None) -> np.ndarray:
    """A depth map must be a single-channel 16-bit PNG (millimetres); an 8-bit one would be silently wrong."""
    depth = decode_image(path, cv2.IMREAD_UNCHANGED, data)
    if depth.dtype != np.uint16 or depth.ndim != 2:
        raise DataError(f"{path}: depth must be a single-channel 16-bit PNG in millimetres, got "
                        f"{depth.dtype} with shape {depth.shape}; re-export it (ScanNet SensReader writes uint16)")
    return depth


def read_label_png(path: str, dtypes=(np.uint8, np.uint16)) -> np.ndarray:
    label = decode_image(path, cv2.IMREAD_UNCHANGED)
    if label.ndim != 2 or label.dtype not in dtypes:
        raise DataError(f"{path}: expected a single-channel {'/'.join(np.dtype(d).name for d in dtypes)} label "
                        f"PNG, got {label.dtype} with shape {label.shape}")
    return label


def _atomic(path: str, write) -> None:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes(path: str, data) -> None:
    _atomic(path, lambda f: f.write(data))


def write_json(path: str, obj) -> None:
    _atomic(path, lambda f: f.write(json.dumps(obj, separators=(",", ":")).encode()))


def write_image(path: str, img: np.ndarray, rgb: bool = False, jpeg_quality: int = 95) -> None:
    """Encode (PNG keeps uint8/uint16 exactly; JPEG for colour) and write atomically."""
    if rgb:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if path.lower().endswith((".jpg", ".jpeg")) else \
        [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, buf = cv2.imencode(os.path.splitext(path)[1], img, params)
    if not ok:
        raise DataError(f"{path}: OpenCV could not encode the image")
    write_bytes(path, buf.tobytes())


def read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: file is missing") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


def mask_annotation(mask: np.ndarray, category_id: int) -> dict:
    """A COCO-style instance annotation from a boolean mask: XYXY_ABS box (BoxMode 0) and str RLE counts."""
    ys, xs = np.nonzero(mask)
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"bbox": [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)],
            "bbox_mode": 0, "category_id": int(category_id), "iscrowd": 0, "area": int(len(ys)),
            "segmentation": {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle["counts"].decode()}}


def write_depth_mm(path: str, depth_m: np.ndarray) -> None:
    """float metres -> uint16 millimetres; non-finite, non-positive or beyond 65.535 m becomes 0 (invalid)."""
    mm = np.nan_to_num(depth_m.astype(np.float64) * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
    mm = np.where((mm > 0) & (mm < 65535.5), np.rint(mm), 0).astype(np.uint16)
    write_image(path, mm)
