"""`datasets.builtin`: data-root resolution, idempotent re-registration, helpful errors for absent datasets."""

import shutil

import pytest

from tests import raw_fixtures as R
from tools import prepare_scannet


@pytest.fixture(autouse=True, scope="module")
def _restore_catalog():
    """These tests re-point the catalog at their own roots; give later modules the default registration."""
    yield
    from datasets.builtin import register_all

    register_all()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("builtin")
    R.scannet_export(str(root / "raw"), scenes=("scene0000_00",), val_scenes=("scene0001_00",), frames=1)
    for prefix in ("scannet", "synthetic", "synthetic_pool", "synthetic_control"):
        assert (
            prepare_scannet.main(
                ["--raw", str(root / "raw"), "--out", str(root / "a" / prefix), "--frame-skip", "1", "--workers", "1"]
            )
            == 0
        )
    shutil.copytree(root / "a" / "scannet", root / "b" / "scannet")
    return root


def test_data_root_prefers_mask3d_data_then_detectron2_datasets(monkeypatch):
    from datasets.builtin import data_root

    monkeypatch.setenv("MASK3D_DATA", "/x/mask3d")
    monkeypatch.setenv("DETECTRON2_DATASETS", "/x/d2")
    assert data_root() == "/x/mask3d"
    monkeypatch.delenv("MASK3D_DATA")
    assert data_root() == "/x/d2"
    monkeypatch.delenv("DETECTRON2_DATASETS")
    assert data_root() == "data"


def test_register_all_is_idempotent_and_follows_the_new_root(prepared):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from datasets.builtin import register_all

    first = register_all(str(prepared / "a"))
    assert "synthetic_sem_seg_val" in first and "scannet_sem_seg_val" in first  # prefix from meta.json
    assert {"synthetic_pool_rgbd_train", "synthetic_control_sem_seg_train"} <= set(first)  # the extra trees
    assert register_all(str(prepared / "a")) == first
    assert DatasetCatalog.get("synthetic_sem_seg_val")[0]["file_name"].startswith(str(prepared / "a" / "synthetic"))
    second = register_all(str(prepared / "b"))
    assert "scannet_sem_seg_val" in second and "synthetic_sem_seg_val" not in second
    assert DatasetCatalog.get("scannet_sem_seg_val")[0]["file_name"].startswith(str(prepared / "b" / "scannet"))
    assert MetadataCatalog.get("scannet_sem_seg_val").root == str(prepared / "b" / "scannet")
    assert "synthetic_sem_seg_val" not in DatasetCatalog.list()


def test_absent_datasets_are_unregistered_but_name_their_preparation_command(tmp_path):
    from detectron2.data import DatasetCatalog

    from datasets.builtin import KNOWN, get_dicts, register_all

    (tmp_path / "nyuv2").mkdir()
    (tmp_path / "nyuv2" / "meta.json").write_text("{not json")  # a broken tree must not break the others
    (tmp_path / "cityscapes").mkdir()
    (tmp_path / "cityscapes" / "meta.json").write_text('{"complete": false}')  # interrupted preparation
    assert register_all(str(tmp_path)) == []
    known = [n for names, _ in KNOWN.values() for n in names]
    assert len(known) == 60 and not set(known) & set(DatasetCatalog.list())
    for name, command in [
        ("scannet_sem_seg_train", "tools.prepare_scannet"),
        ("nyuv2_sem_seg13_test", "tools.prepare_nyuv2 --mat"),
        ("cityscapes_fine_sem_seg_val", "tools.prepare_cityscapes"),
        ("synthetic_instance_train", "make data-synthetic"),
        ("synthetic_pool_rgbd_train", "make data-synthetic-extra .* --seed 1 "),
        ("synthetic_control_sem_seg_train", "make data-synthetic-extra .* --seed 2 "),
    ]:
        with pytest.raises(KeyError, match=command) as err:
            get_dicts(name)
        assert str(tmp_path) in str(err.value)
    with pytest.raises(KeyError, match="'no_such_dataset' is not registered") as err:
        get_dicts("no_such_dataset")
    assert "Available" not in str(err.value)  # not Detectron2's list of every registered name
    with pytest.raises(KeyError, match="'scannet_sem_seg_trian' is not registered; did you mean scannet_sem_seg_train"):
        get_dicts("scannet_sem_seg_trian")
    assert type(DatasetCatalog).__module__.startswith("detectron2.")  # the catalog itself is left as it is
