"""Run settings shared by every benchmark config (Detectron2's `common/train.py` plus ours).

`init` is an initialisation spec for `benchmark.inits` (`random`, `mask3d:PATH`, `mae:PATH`, a baseline
name, ...). An empty `output_dir` lets `benchmark.train_net` derive
`output/bench/<dataset>/<config>/<init>/seed<seed>` so runs never share a folder.
"""

from detectron2 import model_zoo

train = model_zoo.get_config("common/train.py").train
train.output_dir = ""
train.init = "random"
train.seed = 0
train.amp.enabled = True
train.checkpointer = dict(period=5000, max_to_keep=2)
train.eval_period = 0  # evaluate once, after training; set > 0 for periodic evaluation
train.log_period = 20
