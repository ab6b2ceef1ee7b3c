"""Tiny raw trees in the official formats, with known content, for the preparation tests.

Every frame shows the same rectangles (fractions of the image), so tests can assert exact mapped values:
`SCANNET_OBJECTS` lists (ScanNet label id, instance id, y0, y1, x0, x1). The tsv rows follow the official
`scannetv2-labels.combined.tsv` header; NYUv2 is written with h5py in MATLAB v7.3's reversed axis order."""

import json
import os

import cv2
import numpy as np

from datasets.labels import NYU40_CLASSES, SCANNET_TSV_COLUMNS, SCANNET_TSV_NAME

# (ScanNet id, raw category, nyu40id, nyu40 class); id 40 is deliberately absent (an unknown id in tests).
TSV_ROWS = (
    (1, "wall", 1, "wall"),
    (2, "chair", 5, "chair"),
    (3, "floor", 2, "floor"),
    (4, "table", 7, "table"),
    (14, "picture", 11, "picture"),
    (18, "monitor", 40, "otherprop"),
    (22, "pillow", 18, "pillow"),
    (39, "ceiling", 22, "ceiling"),
)
# (scannet id, instance id, y0, y1, x0, x1), drawn in order; fractions of the frame.
SCANNET_OBJECTS = (
    (1, 1, 0.0, 0.5, 0.0, 1.0),  # wall      -> nyu40 1  -> train id 0, not a thing
    (3, 2, 0.75, 1.0, 0.0, 1.0),  # floor     -> nyu40 2  -> train id 1, not a thing
    (2, 3, 0.5, 0.75, 0.0, 0.25),  # chair     -> nyu40 5  -> train id 4, thing 2
    (18, 4, 0.5, 0.75, 0.25, 0.5),  # monitor   -> nyu40 40 -> 255 (20 cls) / 39 (40 cls)
    (4, 5, 0.5, 0.75, 0.5, 1.0),  # table     -> nyu40 7  -> train id 6, thing 4
    (14, 6, 0.125, 0.375, 0.25, 0.5),  # picture   -> nyu40 11 -> train id 10, thing 8
    (2, 7, 0.0, 0.0625, 0.875, 0.90625),
)  # tiny chair (dropped by the size threshold)
# Colour intrinsics of a real ScanNet scene at 1296x968, scaled to whatever size is written.
SCANNET_K = np.array([[1169.621094, 0.0, 646.295044], [0.0, 1167.105103, 489.927032], [0.0, 0.0, 1.0]])


def fixture_pose(scene_index, frame):
    """A distinct camera-to-world pose per frame: yawed by 10 degrees per frame, moved 0.25 m per frame and 1 m
    per scene, at eye height."""
    a = np.radians(10 * frame)
    pose = np.eye(4)
    pose[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    pose[:3, 3] = [0.25 * frame, 1.0 * scene_index, 1.5]
    return pose


# SensReader's text for a frame the reconstruction lost track of: the whole matrix is -inf.
LOST_POSE = np.full((4, 4), -np.inf)


def _box(hw, y0, y1, x0, x1):
    h, w = hw
    return slice(round(y0 * h), round(y1 * h)), slice(round(x0 * w), round(x1 * w))


def object_maps(hw, objects=SCANNET_OBJECTS):
    """(label, instance) maps of the rectangles at size hw."""
    label, inst = np.zeros(hw, np.uint16), np.zeros(hw, np.uint8)
    for sid, iid, *box in objects:
        ys, xs = _box(hw, *box)
        label[ys, xs], inst[ys, xs] = sid, iid
    return label, inst


def depth_mm(hw, frame):
    """Depth in millimetres: a ramp that differs per frame, with an invalid (0) corner."""
    y, x = np.mgrid[0 : hw[0], 0 : hw[1]]
    d = (1000 + 100 * frame + 7 * y * 480 // hw[0] + 3 * x * 640 // hw[1]).astype(np.uint16)
    d[: hw[0] // 8, : hw[1] // 8] = 0
    return d


def color_image(hw, frame, realistic=False, seed=0):
    """RGB uint8; `realistic` adds blurred texture so JPEG codecs work as hard as on camera frames."""
    y, x = np.mgrid[0 : hw[0], 0 : hw[1]]
    img = np.stack(
        [(x * 255 // max(hw[1] - 1, 1)), (y * 255 // max(hw[0] - 1, 1)), np.full(hw, (40 * frame) % 256)], -1
    ).astype(np.uint8)
    if realistic:
        noise = np.random.default_rng(seed + frame).integers(0, 40, img.shape, dtype=np.uint8)
        img = cv2.GaussianBlur(cv2.add(img, noise), (3, 3), 0)
    return img


def _write(path, img, rgb=False):
    """JPEGs at quality 75, what SensReader's imageio export writes."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 75] if path.endswith(".jpg") else []
    ok = cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if rgb else img, params)
    assert ok, path


def _write_matrix(path, m):
    """As SensReader's `save_mat_to_file`: one row per line, '%f' fields separated by spaces."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savetxt(path, m, fmt="%f")


def write_tsv(path, rows=TSV_ROWS):
    lines = ["\t".join(SCANNET_TSV_COLUMNS)]
    for sid, raw, nyu, nyu_name in rows:
        fields = {"id": sid, "raw_category": raw, "category": raw, "count": 10, "nyu40id": nyu, "nyu40class": nyu_name}
        lines.append("\t".join(str(fields.get(c, "")) for c in SCANNET_TSV_COLUMNS))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _k4(hw):
    k = np.eye(4)
    k[:3, :3] = SCANNET_K
    k[0] *= hw[1] / 1296
    k[1] *= hw[0] / 968
    return k


def scannet_export(
    root,
    scenes=("scene0000_00", "scene0001_00"),
    val_scenes=("scene0002_00",),
    frames=3,
    color_hw=(96, 128),
    depth_hw=(48, 64),
    realistic=False,
    lost=(),
):
    """ScanNet as SensReader exports it plus the unzipped label-filt/instance-filt archives. Frame f of the
    i-th scene has pose `fixture_pose(i, f)`, or `LOST_POSE` when (scene, f) is in `lost`."""
    os.makedirs(root, exist_ok=True)
    write_tsv(os.path.join(root, SCANNET_TSV_NAME))
    for split, names in (("train", scenes), ("val", val_scenes)):
        with open(os.path.join(root, f"scannetv2_{split}.txt"), "w") as f:
            f.write("".join(s + "\n" for s in names))
    label, inst = object_maps(color_hw)
    for i, scene in enumerate(tuple(scenes) + tuple(val_scenes)):
        sdir = os.path.join(root, "scans", scene)
        _write_matrix(os.path.join(sdir, "intrinsic", "intrinsic_color.txt"), _k4(color_hw))
        _write_matrix(os.path.join(sdir, "intrinsic", "intrinsic_depth.txt"), _k4(depth_hw))
        for name in ("extrinsic_color.txt", "extrinsic_depth.txt"):
            _write_matrix(os.path.join(sdir, "intrinsic", name), np.eye(4))
        for f in range(frames):
            _write(os.path.join(sdir, "color", f"{f}.jpg"), color_image(color_hw, f, realistic), rgb=True)
            _write(os.path.join(sdir, "depth", f"{f}.png"), depth_mm(depth_hw, f))
            _write(os.path.join(sdir, "label-filt", f"{f}.png"), label)
            _write(os.path.join(sdir, "instance-filt", f"{f}.png"), inst)
            _write_matrix(
                os.path.join(sdir, "pose", f"{f}.txt"), LOST_POSE if (scene, f) in lost else fixture_pose(i, f)
            )
    return root


def scannet_frames25k(
    root,
    scenes=("scene0000_00",),
    val_scenes=("scene0001_00",),
    frames=2,
    color_hw=(96, 128),
    depth_hw=(48, 64),
    lost=(),
):
    """The scannet_frames_25k layout: NYU40 8-bit labels, 16-bit `nyu40 * 1000 + id` instances, poses as
    SensReader writes them under `pose/NNNNNN.txt` (`fixture_pose(i, f)` of frame f of the i-th scene, stem
    `100 * f`; `LOST_POSE` when (scene, stem) is in `lost`)."""
    nyu_of = {sid: nyu for sid, _, nyu, _ in TSV_ROWS}
    label, inst = object_maps(color_hw)
    nyu = np.vectorize(lambda s: nyu_of.get(int(s), 0))(label).astype(np.uint8)
    inst25k = np.where(inst > 0, nyu.astype(np.uint16) * 1000 + inst, 0).astype(np.uint16)
    top = os.path.join(root, "scannet_frames_25k")
    for split, names in (("train", scenes), ("val", val_scenes)):
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, f"scannetv2_{split}.txt"), "w") as f:
            f.write("".join(s + "\n" for s in names))
    for i, scene in enumerate(tuple(scenes) + tuple(val_scenes)):
        sdir = os.path.join(top, scene)
        _write_matrix(os.path.join(sdir, "intrinsics_color.txt"), _k4(color_hw))
        _write_matrix(os.path.join(sdir, "intrinsics_depth.txt"), _k4(depth_hw))
        for f in range(frames):
            stem = f"{100 * f:06d}"
            _write(os.path.join(sdir, "color", stem + ".jpg"), color_image(color_hw, f), rgb=True)
            _write(os.path.join(sdir, "depth", stem + ".png"), depth_mm(depth_hw, f))
            _write(os.path.join(sdir, "label", stem + ".png"), nyu)
            _write(os.path.join(sdir, "instance", stem + ".png"), inst25k)
            _write_matrix(
                os.path.join(sdir, "pose", stem + ".txt"), LOST_POSE if (scene, stem) in lost else fixture_pose(i, f)
            )
    return root


# NYUv2: raw 894-class ids used by the fixture and their NYU40 targets in the fixture's classMapping40.
NYU_RAW_TO_40 = {21: 1, 11: 2, 5: 5, 19: 7, 28: 3, 4: 22, 894: 40}
# (raw class, instance number, y0, y1, x0, x1): two chairs share raw class 5 with instance numbers 1 and 2.
NYU_OBJECTS = (
    (21, 1, 0.0, 0.5, 0.0, 1.0),
    (11, 1, 0.75, 1.0, 0.0, 1.0),
    (5, 1, 0.5, 0.75, 0.0, 0.25),
    (5, 2, 0.5, 0.75, 0.25, 0.5),
    (19, 1, 0.5, 0.75, 0.5, 1.0),
    (4, 1, 0.0, 0.125, 0.0, 0.25),
)


def nyuv2_mat(folder, n=4, hw=(24, 32), train=(1, 3), test=(2, 4)):
    """`nyu_depth_v2_labeled.mat` (v7.3/HDF5, MATLAB dims reversed: images (N,3,W,H), the rest (N,W,H)),
    `splits.mat` (1-based `trainNdxs`/`testNdxs`, column vectors) and `classMapping40.mat` (`mapClass` 1x894,
    `className` 1x40 cell). Image i's depth is 1 + 0.25 * i metres plus a ramp; pixel (0, 0) is unlabeled."""
    import h5py
    from scipy.io import savemat

    os.makedirs(folder, exist_ok=True)
    h, w = hw
    images = np.zeros((n, h, w, 3), np.uint8)
    depths = np.zeros((n, h, w), np.float32)
    labels = np.zeros((n, h, w), np.uint16)
    instances = np.zeros((n, h, w), np.uint8)
    y, x = np.mgrid[0:h, 0:w]
    for i in range(n):
        images[i] = color_image(hw, i)
        depths[i] = 1.0 + 0.25 * i + 0.001 * x + 0.01 * y
        for raw, num, *box in NYU_OBJECTS:
            ys, xs = _box(hw, *box)
            labels[i, ys, xs], instances[i, ys, xs] = raw, num
        labels[i, 0, 0], instances[i, 0, 0] = 0, 0
    mat = os.path.join(folder, "nyu_depth_v2_labeled.mat")
    with h5py.File(mat, "w", userblock_size=512) as f:
        f.create_dataset("images", data=images.transpose(0, 3, 2, 1))
        f.create_dataset("depths", data=depths.transpose(0, 2, 1))
        f.create_dataset("labels", data=labels.transpose(0, 2, 1))
        f.create_dataset("instances", data=instances.transpose(0, 2, 1))
    with open(mat, "r+b") as f:  # the MATLAB v7.3 text header in the HDF5 user block
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")
    savemat(
        os.path.join(folder, "splits.mat"),
        {"trainNdxs": np.array(train, float)[:, None], "testNdxs": np.array(test, float)[:, None]},
    )
    map_class = np.full((1, 894), 40.0)  # every raw class not in the fixture is "otherprop"
    for raw, c40 in NYU_RAW_TO_40.items():
        map_class[0, raw - 1] = c40
    names = np.empty((1, 40), dtype=object)
    names[0, :] = list(NYU40_CLASSES)
    savemat(os.path.join(folder, "classMapping40.mat"), {"mapClass": map_class, "className": names})
    return folder


# Cityscapes: a car (instance), a person (instance), road and sky on every image; camera of aachen_000000.
CITYSCAPES_CAMERA = {
    "extrinsic": {"baseline": 0.209313, "pitch": 0.038, "roll": 0.0, "x": 1.7, "y": 0.1, "yaw": -0.0195, "z": 1.22},
    "intrinsic": {"fx": 2262.52, "fy": 2265.3017905988554, "u0": 1096.98, "v0": 513.137},
}
CITYSCAPES_DISPARITIES = (8, 16, 32, 64)


def cityscapes(root, splits=(("train", "aachen", 2), ("val", "frankfurt", 1)), hw=(32, 64)):
    """leftImg8bit, gtFine (polygons json + labelIds/instanceIds drawn from it by cityscapesscripts),
    disparity (16-bit, d = (p - 1) / 256, 0 invalid) and camera json. The disparity is 8, 16, 32 and 64 px
    in the four vertical quarters of the image (`CITYSCAPES_DISPARITIES`), except column 0 which is invalid."""
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
    from cityscapesscripts.preparation.json2labelImg import createLabelImage

    h, w = hw
    objects = [
        ("sky", (0, 0, w, h // 4)),
        ("road", (0, h // 2, w, h)),
        ("car", (w // 8, h // 2, w // 2, 3 * h // 4)),
        ("person", (5 * w // 8, h // 4, 3 * w // 4, 3 * h // 4)),
    ]
    for split, city, count in splits:
        for i in range(count):
            base = f"{city}_{i:06d}_000019"
            img_dir = os.path.join(root, "leftImg8bit", split, city)
            gt_dir = os.path.join(root, "gtFine", split, city)
            _write(os.path.join(img_dir, base + "_leftImg8bit.png"), color_image(hw, i), rgb=True)
            poly = {
                "imgHeight": h,
                "imgWidth": w,
                "objects": [
                    {"label": lab, "polygon": [[x0, y0], [x1 - 1, y0], [x1 - 1, y1 - 1], [x0, y1 - 1]]}
                    for lab, (x0, y0, x1, y1) in objects
                ],
            }
            jpath = os.path.join(gt_dir, base + "_gtFine_polygons.json")
            os.makedirs(gt_dir, exist_ok=True)
            with open(jpath, "w") as f:
                json.dump(poly, f)
            ann = Annotation()
            ann.fromJsonFile(jpath)
            createLabelImage(ann, "ids").save(os.path.join(gt_dir, base + "_gtFine_labelIds.png"))
            inst = np.asarray(createInstanceImage(ann, "ids")).astype(np.uint16)  # 16-bit like the release
            _write(os.path.join(gt_dir, base + "_gtFine_instanceIds.png"), inst)
            quarter = np.asarray(CITYSCAPES_DISPARITIES)[np.arange(w) * 4 // w]
            disp = (1 + 256 * quarter)[None].repeat(h, 0).astype(np.uint16)
            disp[:, 0] = 0
            _write(os.path.join(root, "disparity", split, city, base + "_disparity.png"), disp)
            cam = os.path.join(root, "camera", split, city, base + "_camera.json")
            os.makedirs(os.path.dirname(cam), exist_ok=True)
            with open(cam, "w") as f:
                json.dump(CITYSCAPES_CAMERA, f)
    return root
