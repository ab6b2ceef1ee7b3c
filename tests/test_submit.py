"""tools.submit / core.cluster without submitit: the SLURM request, the command each task runs with torchrun's
environment, resubmission with --resume on preemption, and the errors a user can make."""

import pickle
import sys
import types

import pytest

from core import cluster
from tools import submit


class FakeExecutor:
    made = []

    def __init__(self, folder, cluster, slurm_max_num_timeout):
        self.folder, self.max_requeues, self.params, self.jobs = folder, slurm_max_num_timeout, {}, []
        self.cluster = cluster
        FakeExecutor.made.append(self)

    def update_parameters(self, **params):
        self.params.update(params)

    def submit(self, job):
        self.jobs.append(job)
        return types.SimpleNamespace(job_id="4321")


@pytest.fixture
def fake_submitit(monkeypatch):
    """A stand-in for the submitit module: its executor, job environment and DelayedSubmission."""
    FakeExecutor.made = []
    module = types.SimpleNamespace(
        AutoExecutor=FakeExecutor,
        JobEnvironment=lambda: types.SimpleNamespace(
            job_id="4321_0", global_rank=5, local_rank=1, num_tasks=8, num_nodes=2, hostnames=["node-a", "node-b"]
        ),
        helpers=types.SimpleNamespace(DelayedSubmission=lambda fn, *a, **k: ("delayed", fn, a, k)),
    )
    monkeypatch.setitem(sys.modules, "submitit", module)
    monkeypatch.setattr(cluster.shutil, "which", lambda name: f"/usr/bin/{name}")  # a SLURM login node
    return module


def test_submit_requests_one_task_per_gpu_on_every_node(fake_submitit, capsys):
    argv = [
        "--nodes",
        "2",
        "--gpus-per-node",
        "4",
        "--partition",
        "gpu",
        "--account",
        "lab",
        "--time-min",
        "600",
        "pretrain",
        "--config",
        "pretrain/configs/scannet_vit_b.py",
        "train.output_dir=output/pretrain/vitb",
    ]
    assert submit.main(argv) == 0
    (executor,) = FakeExecutor.made
    assert executor.folder == "output/slurm/%j" and executor.max_requeues == 20
    assert {
        k: executor.params[k]
        for k in ("nodes", "tasks_per_node", "gpus_per_node", "timeout_min", "slurm_partition", "name")
    } == {
        "nodes": 2,
        "tasks_per_node": 4,
        "gpus_per_node": 4,
        "timeout_min": 600,
        "slurm_partition": "gpu",
        "name": "mask3d-pretrain",
    }
    assert executor.params["slurm_additional_parameters"] == {"account": "lab"}
    (job,) = executor.jobs
    assert job == cluster.RunJob(
        "pretrain", ["--config", "pretrain/configs/scannet_vit_b.py", "train.output_dir=output/pretrain/vitb"]
    )
    assert pickle.loads(pickle.dumps(job)) == job  # submitit pickles it to the nodes
    assert "job 4321 on 2 node(s) x 4 GPU(s)" in capsys.readouterr().out


def test_preemption_resubmits_the_same_run_with_resume_first(fake_submitit):
    job = cluster.RunJob("bench", ["--config-file", "benchmark/configs/scannet/semseg_vit_b.py", "train.max_iter=9"])
    kind, again, args, kwargs = job.checkpoint()
    assert kind == "delayed" and args == () and kwargs == {}
    assert again.argv == ["--resume", "--config-file", "benchmark/configs/scannet/semseg_vit_b.py", "train.max_iter=9"]
    assert again.checkpoint()[1] == again  # a second preemption does not add another --resume


def test_each_task_runs_the_entry_point_with_torchruns_environment(fake_submitit, monkeypatch):
    import pretrain.train

    seen = {}

    def fake_main(argv):
        seen.update(
            argv=argv,
            env={
                k: cluster.os.environ[k]
                for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR")
            },
        )
        return seen.get("rc", 0)

    # a copy: the task's variables must not leak into later tests (they would look like a torchrun process)
    monkeypatch.setattr(
        cluster.os,
        "environ",
        {
            k: v
            for k, v in cluster.os.environ.items()
            if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
        },
    )
    monkeypatch.setattr(pretrain.train, "main", fake_main)
    assert cluster.RunJob("pretrain", ["--config", "c.py"])() == 0
    assert seen["argv"] == ["--config", "c.py"]
    assert seen["env"] == {
        "RANK": "5",
        "WORLD_SIZE": "8",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "4",
        "MASTER_ADDR": "node-a",
    }
    assert 20000 <= int(cluster.os.environ["MASTER_PORT"]) < 30000
    seen["rc"] = 1
    with pytest.raises(RuntimeError, match="exited with 1"):  # submitit then marks the task failed
        cluster.RunJob("pretrain", ["--config", "c.py"])()
    monkeypatch.undo()
    assert "WORLD_SIZE" not in cluster.os.environ or cluster.os.environ["WORLD_SIZE"] != "8"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pretrain", "--num-gpus", "8", "--config", "c.py"], "come from SLURM here"),
        (["--nodes", "0", "bench", "--config-file", "c.py"], "must be >= 1"),
    ],
)
def test_bad_requests_are_one_line(fake_submitit, capsys, argv, message):
    assert submit.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not any(e.jobs for e in FakeExecutor.made)


def test_without_submitit_the_message_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import fails as if not installed
    assert submit.main(["pretrain", "--config", "c.py"]) == 1
    assert "pip install submitit" in capsys.readouterr().err


def test_campaign_runs_go_to_slurm_with_their_environment(fake_submitit):
    cluster.submit_command(
        ["-m", "benchmark.train_net", "--config-file", "c.py", "--resume"],
        name="run1",
        folder="output/reproduce/x/run1",
        env={"MASK3D_DATA": "data"},
        gpus=2,
        partition="gpu",
        timeout_min="90",
    )
    (executor,) = FakeExecutor.made
    assert (executor.params["nodes"], executor.params["gpus_per_node"], executor.params["timeout_min"]) == (1, 2, 90)
    assert executor.params["slurm_partition"] == "gpu" and executor.folder == "output/reproduce/x/run1/%j"
    (job,) = executor.jobs
    assert job == cluster.RunJob("bench", ["--config-file", "c.py", "--resume"], env={"MASK3D_DATA": "data"})
    with pytest.raises(cluster.ClusterError, match="unknown SLURM option"):
        cluster.submit_command(["-m", "pretrain"], name="p", folder="f", env={}, partion="gpu")
    with pytest.raises(cluster.ClusterError, match="unknown SLURM option.*nodes"):
        cluster.submit_command(["-m", "pretrain"], name="p", folder="f", env={}, nodes="2")  # one node per run
    with pytest.raises(cluster.ClusterError, match="only python -m"):
        cluster.submit_command(["-m", "tools.speed"], name="s", folder="f", env={})


def test_without_slurm_submitting_is_an_error_unless_local(fake_submitit, monkeypatch, capsys):
    """submitit alone would run all eight tasks on this machine and report them submitted."""
    monkeypatch.setattr(cluster.shutil, "which", lambda name: None)
    assert submit.main(["pretrain", "--config", "c.py"]) == 1
    assert capsys.readouterr().err == (
        "error: no SLURM cluster here (`sbatch` is not on PATH): submit from a SLURM login node, or pass --local "
        "to run the job's processes on this machine\n"
    )
    assert not any(e.jobs for e in FakeExecutor.made)
    assert submit.main(["--local", "--gpus-per-node", "2", "pretrain", "--config", "c.py"]) == 0
    (executor,) = FakeExecutor.made
    assert executor.cluster == "local" and len(executor.jobs) == 1
    assert "started on this machine with 2 process(es) (--local)" in capsys.readouterr().out
    assert submit.main(["--local", "--nodes", "2", "pretrain", "--config", "c.py"]) == 1
    assert capsys.readouterr().err == ("error: --local runs on this machine only: --nodes 2 needs a SLURM cluster\n")


@pytest.mark.parametrize("extra", [[], ["--local"]])
def test_two_nodes_with_the_real_submitit_and_no_slurm_is_one_line(tmp_path, monkeypatch, capsys, extra):
    monkeypatch.setattr(cluster.shutil, "which", lambda name: None)
    argv = ["--nodes", "2", "--logs", str(tmp_path), *extra, "pretrain", "--config", "c.py"]
    assert submit.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_request_submitit_refuses_is_one_line(fake_submitit, monkeypatch, capsys):
    def refuse(self, **params):
        raise ValueError("LocalExecutor can use only one node. Use nodes=1")

    monkeypatch.setattr(FakeExecutor, "update_parameters", refuse)
    assert submit.main(["pretrain", "--config", "c.py"]) == 1
    assert capsys.readouterr().err == (
        "error: submitit refused the request: LocalExecutor can use only one node. Use nodes=1\n"
    )
