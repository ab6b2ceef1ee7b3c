"""Careful file I/O for preparation and checks: decode with errors that name the file, write atomically.

A preparation that dies half-way must never leave a file a rerun would trust, so every write goes through
`core.io` (a temporary file in the same folder, moved into place with `os.replace`)."""

import json
import os
import zlib

import cv2
import numpy as np
from pycocotools import mask as mask_util

from core import io


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
    if (lower.endswith((".jpg", ".jpeg")) and not tail.endswith(_JPEG_END)) or (
        lower.endswith(".png") and not tail.endswith(_PNG_END)
    ):
        raise DataError(f"{path}: truncated or corrupt image file (no end marker); re-extract or re-download it")
    img = cv2.imdecode(data, flags) if data.size else None
    if img is None:
        raise DataError(f"{path}: cannot decode image (corrupt or not an image); re-extract or re-download it")
    return img


def png_header(path: str, data: np.ndarray) -> dict:
    """Validate a PNG without inflating it: signature, every chunk's CRC and the IEND chunk (so truncation
    and bit rot are caught); returns IHDR's width, height, bit depth and colour type. ~50x faster than a
    decode, which matters when a file is copied through unchanged."""
    buf = data.tobytes()
    if buf[:8] != b"\x89PNG\r\n\x1a\n":
        raise DataError(f"{path}: not a PNG file; re-extract or re-download it")
    pos, info = 8, None
    while pos + 12 <= len(buf):
        length = int.from_bytes(buf[pos : pos + 4], "big")
        kind, end = buf[pos + 4 : pos + 8], pos + 8 + length
        if end + 4 > len(buf) or zlib.crc32(buf[pos + 4 : end]) != int.from_bytes(buf[end : end + 4], "big"):
            break
        if kind == b"IHDR":
            info = {
                "width": int.from_bytes(buf[pos + 8 : pos + 12], "big"),
                "height": int.from_bytes(buf[pos + 12 : pos + 16], "big"),
                "bit_depth": buf[pos + 16],
                "color_type": buf[pos + 17],
            }
        if kind == b"IEND":
            if info is None:
                break
            return info
        pos = end + 4
    raise DataError(f"{path}: truncated or corrupt PNG (bad chunk at byte {pos}); re-extract or re-download it")


def check_depth_png(path: str, data: np.ndarray) -> tuple:
    """(height, width) of a valid 16-bit single-channel depth PNG, checked without decoding."""
    info = png_header(path, data)
    if info["bit_depth"] != 16 or info["color_type"] != 0:
        raise DataError(
            f"{path}: depth must be a single-channel 16-bit PNG in millimetres, got bit depth "
            f"{info['bit_depth']} colour type {info['color_type']}; re-export it "
            f"(ScanNet SensReader writes uint16)"
        )
    return info["height"], info["width"]


# Decode flags by size reduction: libjpeg decodes at 1/2, 1/4 or 1/8 of the size much faster than in full.
REDUCED_COLOR_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def read_rgb(path: str, reduce: int = 1) -> np.ndarray:
    """HxWx3 uint8 RGB; `reduce` in (1, 2, 4, 8) lets libjpeg decode at a fraction of the size (fast)."""
    return cv2.cvtColor(decode_image(path, REDUCED_COLOR_FLAGS[reduce]), cv2.COLOR_BGR2RGB)


def read_depth_png(path: str, data: np.ndarray = None) -> np.ndarray:
    """A depth map must be a single-channel 16-bit PNG (millimetres); an 8-bit one would be silently wrong."""
    depth = decode_image(path, cv2.IMREAD_UNCHANGED, data)
    if depth.dtype != np.uint16 or depth.ndim != 2:
        raise DataError(
            f"{path}: depth must be a single-channel 16-bit PNG in millimetres, got "
            f"{depth.dtype} with shape {depth.shape}; re-export it (ScanNet SensReader writes uint16)"
        )
    return depth


def read_label_png(path: str, dtypes=(np.uint8, np.uint16)) -> np.ndarray:
    label = decode_image(path, cv2.IMREAD_UNCHANGED)
    if label.ndim != 2 or label.dtype not in dtypes:
        raise DataError(
            f"{path}: expected a single-channel {'/'.join(np.dtype(d).name for d in dtypes)} label "
            f"PNG, got {label.dtype} with shape {label.shape}"
        )
    return label


def write_bytes(path: str, data) -> None:
    io.write_bytes(path, data)


def write_json(path: str, obj) -> None:
    """Compact JSON: prepared indexes are large and read by machines."""
    io.write_json(path, obj, compact=True)


def write_image(path: str, img: np.ndarray, rgb: bool = False, jpeg_quality: int = 95) -> None:
    """Encode (PNG keeps uint8/uint16 exactly; JPEG for colour) and write atomically."""
    if rgb:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    params = (
        [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
        if path.lower().endswith((".jpg", ".jpeg"))
        else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    )
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


def write_index(folder: str, split: str, records) -> None:
    """A split's frame list (`index_<split>.json`, light: what RGB-D and semantic loaders read) and its
    instance annotations (`instances_<split>.json`, {image_id: [annotation]}), each written once."""
    write_json(os.path.join(folder, f"instances_{split}.json"), {r["image_id"]: r["annotations"] for r in records})
    write_json(
        os.path.join(folder, f"index_{split}.json"),
        [{k: v for k, v in r.items() if k != "annotations"} for r in records],
    )


def mask_annotation(mask: np.ndarray, category_id: int) -> dict:
    """A COCO-style instance annotation from a boolean HxW mask (Fortran order avoids a copy): XYXY_ABS box
    (BoxMode 0, exclusive max like pycocotools) and RLE with str counts."""
    rle = mask_util.encode(np.asfortranarray(mask).view(np.uint8))
    x, y, w, h = (float(v) for v in mask_util.toBbox(rle))
    return {
        "bbox": [x, y, x + w, y + h],
        "bbox_mode": 0,
        "category_id": int(category_id),
        "iscrowd": 0,
        "area": int(mask_util.area(rle)),
        "segmentation": {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle["counts"].decode()},
    }


def write_depth_mm(path: str, depth_m: np.ndarray) -> None:
    """float metres -> uint16 millimetres; non-finite, non-positive or beyond 65.535 m becomes 0 (invalid)."""
    mm = np.nan_to_num(depth_m.astype(np.float64) * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
    mm = np.where((mm > 0) & (mm < 65535.5), np.rint(mm), 0).astype(np.uint16)
    write_image(path, mm)
