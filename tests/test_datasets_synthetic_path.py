"""The synthetic tree goes through the ScanNet preparation code and registers as `synthetic_*`."""

import numpy as np


def test_synthetic_tree_is_prepared_and_registered_like_scannet(synthetic_root, capsys):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from datasets.fileio import read_json, read_label_png
    from tools import check_dataset

    meta = read_json(str(synthetic_root / "synthetic" / "meta.json"))
    assert meta["complete"] and meta["options"]["prefix"] == "synthetic" and meta["options"]["layout"] == "exported"
    assert len(meta["splits"]["train"]) == 3 and len(meta["splits"]["val"]) == 1
    train = DatasetCatalog.get("synthetic_sem_seg_train")
    assert len(train) == 12 and (train[0]["height"], train[0]["width"]) == (96, 128)
    assert len(DatasetCatalog.get("synthetic_rgbd_val")) == 4
    assert 1 <= len(DatasetCatalog.get("synthetic_sem_seg_train_20pct")) < 12
    labels = np.concatenate([read_label_png(d["sem_seg_file_name"]).ravel() for d in train])
    assert labels.max() <= 19 or set(np.unique(labels[labels > 19]).tolist()) == {255}
    assert len(np.unique(labels[labels < 20])) >= 3  # several benchmark classes actually present
    inst = DatasetCatalog.get("synthetic_instance_train")
    assert sum(len(d["annotations"]) for d in inst) > 0
    assert MetadataCatalog.get("synthetic_instance_train").evaluator_type == "coco"
    assert check_dataset.main(["synthetic_instance_val", "--root", str(synthetic_root)]) == 0
    assert "problems     0" in capsys.readouterr().out
