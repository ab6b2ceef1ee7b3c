"""The synthetic RGB-D generator: exact geometry of the renderer and the exported-ScanNet tree it writes."""

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from datasets import synthetic as S
from datasets.synthetic import export
from tools import make_synthetic

H, W = 120, 160
BENCHMARK_NYU40 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39}


def _room_with(*objects, size=(4.0, 4.0, 3.0)):
    """An empty room plus floating single boxes/cylinders given as (kind, center, half, label name)."""
    scene = S.empty_room(size)
    instances = []
    for kind, center, half, name in objects:
        instances.append(scene.new_instance())
        scene.add(kind, center, half, 0.0, S.label_id(name), instances[-1], (0.5, 0.5, 0.5), S.PLAIN)
    return scene, instances


def _frontal(eye=(2.0, 0.5, 1.0)):
    """A camera looking straight along +y (image x = world x, image y = -world z)."""
    return S.look_at(eye, (eye[0], eye[1] + 1.0, eye[2]))


def _project(K, x, z_up, depth, eye):
    """Pixel (u, v) of the world point (x, eye_y + depth, z_up) seen by `_frontal(eye)`."""
    return K[0, 0] * (x - eye[0]) / depth + K[0, 2], K[1, 1] * (eye[2] - z_up) / depth + K[1, 2]


def test_depth_of_known_planes_is_z_along_the_optical_axis():
    K = S.intrinsics(H, W)
    scene, _ = _room_with()
    frame = S.render(scene, K, _frontal(), H, W)
    far_wall = frame.primitive == 3  # wall y = 4, 3.5 m in front of the camera
    assert far_wall.mean() > 0.5
    np.testing.assert_allclose(frame.z[far_wall], 3.5, atol=1e-5)  # z, not ray length, on the whole wall
    assert np.all(frame.depth[far_wall] == 3500)
    floor = frame.primitive == 0  # floor 1 m below the camera: z = fy * 1 / (v - cy)
    v = np.nonzero(floor)[0].astype(np.float64)
    z_expected = K[1, 1] * 1.0 / (v - K[1, 2])
    keep = z_expected <= 3.5
    np.testing.assert_allclose(frame.z[floor][keep], z_expected[keep], rtol=1e-5)
    assert np.all(frame.label[floor] == S.label_id("floor")) and np.all(frame.label[far_wall] == S.label_id("wall"))


def test_cylinder_depth_follows_its_surface():
    K = S.intrinsics(H, W)
    eye = (2.0, 0.5, 1.0)
    scene, (inst,) = _room_with((S.CYLINDER, (2.0, 2.5, 1.0), (0.4, 0.4, 0.5), "trash can"))
    frame = S.render(scene, K, _frontal(eye), H, W)
    row = int(round(K[1, 2]))
    cols = np.nonzero(frame.instance[row] == inst)[0]
    assert len(cols) > 10
    # a ray through column u hits x = (u - cx) / fx * z on the circle (x - 0)^2 + (z + 0.5 - 2.0)^2 = r^2
    a = (cols - K[0, 2]) / K[0, 0]
    dist, r = 2.0, 0.4
    z = (dist - np.sqrt(dist**2 - (1 + a**2) * (dist**2 - r**2))) / (1 + a**2)
    np.testing.assert_allclose(frame.z[row, cols], z, rtol=1e-4)


def test_box_pixels_carry_its_label_instance_and_depth():
    K = S.intrinsics(H, W)
    eye = (2.0, 0.5, 1.0)
    scene, (inst,) = _room_with((S.BOX, (2.1, 2.5, 1.1), (0.3, 0.2, 0.25), "refrigerator"))
    frame = S.render(scene, K, _frontal(eye), H, W)
    u0, v0 = _project(K, 1.8, 1.35, 1.8, eye)  # front face at y = 2.3, 1.8 m from the camera
    u1, v1 = _project(K, 2.4, 0.85, 1.8, eye)
    inside = np.zeros((H, W), bool)
    inside[int(np.ceil(v0)) + 1 : int(np.floor(v1)), int(np.ceil(u0)) + 1 : int(np.floor(u1))] = True
    grown = np.zeros((H, W), bool)
    grown[int(np.floor(v0)) - 1 : int(np.ceil(v1)) + 2, int(np.floor(u0)) - 1 : int(np.ceil(u1)) + 2] = True
    assert inside.sum() > 100
    assert np.all(frame.label[inside] == S.label_id("refrigerator")) and np.all(frame.instance[inside] == inst)
    assert np.all(frame.depth[inside] == 1800)
    assert not np.any(frame.instance[~grown] == inst)


def test_occluders_hide_what_is_behind_them_in_any_order():
    K = S.intrinsics(H, W)
    eye = (2.0, 0.5, 1.0)
    near = (S.BOX, (2.0, 1.5, 1.0), (0.2, 0.1, 0.2), "box")  # front face 0.9 m away
    far = (S.BOX, (2.1, 3.0, 1.0), (0.6, 0.1, 0.5), "cabinet")
    pole = (S.CYLINDER, (1.7, 2.0, 1.0), (0.05, 0.05, 1.0), "lamp")
    for order in ((near, far, pole), (far, pole, near)):
        scene, insts = _room_with(*order)
        ids = {obj[3]: inst for obj, inst in zip(order, insts, strict=False)}
        frame = S.render(scene, K, _frontal(eye), H, W)
        u0, v0 = _project(K, 1.8, 1.2, 0.9, eye)
        u1, v1 = _project(K, 2.2, 0.8, 0.9, eye)
        window = (slice(int(np.ceil(v0)) + 1, int(np.floor(v1))), slice(int(np.ceil(u0)) + 1, int(np.floor(u1))))
        assert np.all(frame.instance[window] == ids["box"])
        np.testing.assert_allclose(frame.z[window], 0.9, atol=1e-5)
        visible_far = frame.instance == ids["cabinet"]
        assert visible_far.sum() > 200 and np.all(np.abs(frame.z[visible_far] - 2.4) < 1e-4)
        assert np.all(frame.z[frame.instance == ids["lamp"]] < 1.5 + 1e-4)  # pole in front of the cabinet
        if order[0] is near:
            reference = frame
        else:
            assert np.array_equal(frame.label, reference.label) and np.array_equal(frame.depth, reference.depth)


def test_depth_and_label_boundaries_coincide():
    K = S.intrinsics(H, W)
    scene, _ = _room_with()
    inst = scene.new_instance()
    scene.add(S.BOX, (1.8, 2.0, 1.2), (0.4, 0.3, 0.3), 0.5, S.label_id("bed"), inst, (0.5, 0.5, 0.5), S.PLAIN)
    frame = S.render(scene, K, S.look_at((2.5, 0.3, 1.6), (1.8, 2.0, 1.0)), H, W)
    for axis in (0, 1):
        jump = np.abs(np.diff(frame.z, axis=axis)) > 0.3
        is_box = frame.instance == inst
        changes = np.diff(is_box.astype(np.int8), axis=axis) != 0
        assert changes.sum() > 20
        assert np.array_equal(jump, changes)


def test_default_room_cycle_covers_the_benchmark_classes_and_the_ignore_path():
    nyu40 = {raw: nyu for raw, nyu in S.CATEGORIES.values()}
    seen = set()
    for index in range(10):
        scene = S.make_scene(0, index)
        seen |= set(scene.label)
    assert BENCHMARK_NYU40 <= {nyu40[raw] for raw in seen if raw}
    assert S.UNANNOTATED in seen  # ceiling lamps are unannotated
    assert {nyu40[raw] for raw in seen if raw} - BENCHMARK_NYU40  # ceiling, lamp, box, ...: ignored classes


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "raw"
    assert (
        make_synthetic.main(
            [
                "--out",
                str(out),
                "--scenes",
                "3",
                "--frames-per-scene",
                "3",
                "--seed",
                "5",
                "--height",
                "60",
                "--width",
                "80",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    return out


def _digest(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(root).rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_the_same_bytes_with_any_number_of_workers(tree, tmp_path):
    other = tmp_path / "again"
    export.generate(other, scenes=3, frames=3, seed=5, height=60, width=80, workers=2, progress=False)
    assert _digest(other) == _digest(tree)
    changed = tmp_path / "seed6"
    export.generate(changed, scenes=3, frames=3, seed=6, height=60, width=80, progress=False)
    assert _digest(changed)["scans/scene0000_00/depth/0.png"] != _digest(tree)["scans/scene0000_00/depth/0.png"]


def test_exact_scannet_export_layout(tree):
    per_scene = {
        "intrinsic/intrinsic_color.txt",
        "intrinsic/intrinsic_depth.txt",
        "intrinsic/extrinsic_color.txt",
        "intrinsic/extrinsic_depth.txt",
    }
    per_scene |= {
        f"{sub}/{i}.{ext}"
        for i in range(3)
        for sub, ext in (
            ("color", "jpg"),
            ("depth", "png"),
            ("label-filt", "png"),
            ("instance-filt", "png"),
            ("pose", "txt"),
        )
    }
    names = [f"scene{i:04d}_00" for i in range(3)]
    expected = {"scannetv2-labels.combined.tsv", "scannetv2_train.txt", "scannetv2_val.txt", "synthetic.json"}
    expected |= {f"scans/{n}/{f}" for n in names for f in per_scene | {f"{n}.txt"}}
    assert set(_digest(tree)) == expected
    assert (tree / "scannetv2_train.txt").read_text() == "scene0000_00\nscene0001_00\n"
    assert (tree / "scannetv2_val.txt").read_text() == "scene0002_00\n"

    rows = [line.split("\t") for line in (tree / "scannetv2-labels.combined.tsv").read_text().splitlines()]
    assert rows[0] == [
        "id",
        "raw_category",
        "category",
        "count",
        "nyu40id",
        "eigen13id",
        "nyuClass",
        "nyu40class",
        "eigen13class",
        "ModelNet40",
        "ModelNet10",
        "ShapeNetCore55",
        "synsetoffset",
        "wnsynsetid",
        "wnsynsetkey",
        "mpcat40",
        "mpcat40index",
    ]
    table = {int(r[0]): (r[1], int(r[4]), r[7]) for r in rows[1:]}
    assert table[1] == ("wall", 1, "wall") and table[3] == ("floor", 2, "floor") and table[6] == ("couch", 6, "sofa")
    assert table[56] == ("trash can", 39, "otherfurniture") and table[55] == ("shower curtain", 28, "shower curtain")

    scan = tree / "scans" / "scene0001_00"
    color = cv2.imread(str(scan / "color/0.jpg"), cv2.IMREAD_UNCHANGED)
    depth = cv2.imread(str(scan / "depth/0.png"), cv2.IMREAD_UNCHANGED)
    label = cv2.imread(str(scan / "label-filt/0.png"), cv2.IMREAD_UNCHANGED)
    inst = cv2.imread(str(scan / "instance-filt/0.png"), cv2.IMREAD_UNCHANGED)
    assert color.shape == (60, 80, 3) and color.dtype == np.uint8
    assert depth.shape == label.shape == inst.shape == (60, 80)
    assert depth.dtype == np.uint16 and label.dtype == np.uint16 and inst.dtype == np.uint8
    assert 0 < (depth > 0).mean() and depth.max() <= 1000 * S.MAX_RANGE
    assert set(np.unique(label)) - {0} <= set(table)  # every id written is in the tsv
    pose = np.loadtxt(scan / "pose/0.txt")
    assert pose.shape == (4, 4) and np.array_equal(pose[3], [0, 0, 0, 1])
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-5)
    intr = np.loadtxt(scan / "intrinsic/intrinsic_depth.txt")
    assert intr.shape == (4, 4) and intr[0, 0] > 0 and intr[2, 2] == 1 and intr[3, 3] == 1


def test_floor_pixels_of_all_frames_back_project_onto_one_world_plane(tree):
    """Up to the sensor's noise (sigma(z) along the ray), every frame's floor lands on the plane z = 0."""
    for scan in sorted((tree / "scans").iterdir()):
        K = np.loadtxt(scan / "intrinsic/intrinsic_depth.txt")[:3, :3]
        count = 0
        for i in range(3):
            depth = cv2.imread(str(scan / f"depth/{i}.png"), cv2.IMREAD_UNCHANGED) / 1000.0
            label = cv2.imread(str(scan / f"label-filt/{i}.png"), cv2.IMREAD_UNCHANGED)
            pose = np.loadtxt(scan / f"pose/{i}.txt")
            v, u = np.nonzero((label == S.label_id("floor")) & (depth > 0))
            z = depth[v, u]
            ray = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(z)])
            height = (pose[:3, :3] @ (ray * z) + pose[:3, 3:])[2]
            sigma = (0.0012 + 0.0019 * (z - 0.4) ** 2) * np.linalg.norm(ray, axis=0) + 0.001
            assert np.mean(np.abs(height) < 4 * sigma) > 0.99
            assert abs(height.mean()) < 0.004
            count += z.size
        assert count > 500


def test_refuses_a_non_empty_out_and_keeps_what_is_there(tree, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = [
        "--out",
        str(out),
        "--scenes",
        "2",
        "--frames-per-scene",
        "1",
        "--height",
        "32",
        "--width",
        "32",
        "--workers",
        "1",
    ]
    with pytest.raises(SystemExit) as err:
        make_synthetic.main(args)
    assert err.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine" and not (tmp_path / "busy.partial").exists()
    assert make_synthetic.main(args + ["--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and (out / "synthetic.json").is_file()
    stamp = (out / "synthetic.json").stat().st_mtime_ns
    assert make_synthetic.main(args + ["--skip-existing"]) == 0
    assert (out / "synthetic.json").stat().st_mtime_ns == stamp and "already complete" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad, named",
    [
        (["--scenes", "1"], "--scenes"),
        (["--scenes", "x"], "--scenes"),
        (["--frames-per-scene", "0"], "--frames-per-scene"),
        (["--height", "8"], "--height"),
        (["--width", "-3"], "--width"),
        (["--seed", "-1"], "--seed"),
        (["--workers", "0"], "--workers"),
        (["--preview", "sheet.jpg"], "--preview"),
    ],
)
def test_bad_arguments_are_named(tmp_path, capsys, bad, named):
    with pytest.raises(SystemExit) as err:
        make_synthetic.main(["--out", str(tmp_path / "never")] + bad)
    assert err.value.code == 2 and named in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_preview_contact_sheet(tree, tmp_path):
    from datasets.drawing import BAND

    sheet_path = tmp_path / "sheet.png"
    export.write_preview(tree, sheet_path)
    sheet = cv2.imread(str(sheet_path), cv2.IMREAD_COLOR)[..., ::-1]
    assert sheet.shape[0] >= BAND + 3 * 60 + 2 * 2  # titles, three 60 px rows 2 px apart (or a taller legend)
    assert sheet.shape[1] > 4 * 80 + 60  # four columns, the colour bar and the legend
    assert sheet[BAND:, 84:164].std() > 10  # a colour-mapped depth, not a blank panel
    for x0 in (0, 84):
        assert (sheet[:BAND, x0 : x0 + 40] < 128).any(axis=2).sum() > 20, x0  # column titles drawn
    assert (sheet[:, -2:] == 255).all()  # the legend's names end inside the sheet
