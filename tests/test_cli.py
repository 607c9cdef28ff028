"""The command line as a user runs it: real subprocesses."""

import subprocess
import sys

import pytest

from src.utils.resolvers import PROJECT_ROOT

QUIET = ["accelerator=cpu", "trainer.enable_progress_bar=false", "callbacks.progress_bar=null",
         "trainer.enable_model_summary=false", "data.batch_size=16", "data.eval_batch_size=20", "data.download=false"]


def run(args, env, timeout=240):
    return subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job", "model=mlp"]])
def test_help_and_cfg_do_not_import_lightning_or_torch(args):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "src.train", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "model" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "hydra" in imported and not {"torch", "lightning"} & imported


@pytest.mark.parametrize("args,message", [
    (["optim.lr=-0.1"], "Error: invalid configuration:\n  optim.lr=-0.1 is not allowed: must be a number > 0"),
    (["-m", "optim.lr=0.1,-0.1"], "optim.lr=-0.1 is not allowed: must be a number > 0 (in the job optim.lr=-0.1"),
    (["trainer.max_epoch=3"], "unknown key trainer.max_epoch; did you mean trainer.max_epochs?"),
    (["-m", "model=mlp,cnn", "model.arch=lenet"], "unknown key model.arch; the keys of model are"),
])
def test_bad_value_exits_with_one_clear_line_before_any_dir_or_torch(subprocess_env, tmp_path, args, message):
    # The sweep's first job is fine: no job may run, and no sweep dir may be created, before all are checked.
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "src.train", *args,
                           f"paths.log_dir={tmp_path / 'logs'}"],
                          cwd=PROJECT_ROOT, env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "logs").exists()
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert not {"torch", "lightning"} & imported


def test_unwritable_log_dir_is_refused_and_earlier_runs_are_untouched(subprocess_env, tmp_path):
    earlier = tmp_path / "logs" / "train" / "runs" / "2020-01-01_00-00-00"
    earlier.mkdir(parents=True)
    (earlier / "train.log").write_text("an earlier run")
    blocker = tmp_path / "logs" / "file"
    blocker.write_text("not a folder")
    proc = run(["src.train", f"paths.log_dir={blocker / 'logs'}"], subprocess_env, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"cannot hold runs: {blocker} is not a folder; set paths.log_dir to a writable folder" in proc.stderr
    assert [p.name for p in (tmp_path / "logs" / "train" / "runs").iterdir()] == [earlier.name]
    assert (earlier / "train.log").read_text() == "an earlier run"


@pytest.mark.parametrize("exists", [False, True], ids=["missing", "empty"])
def test_missing_dataset_exits_with_instructions(subprocess_env, tmp_path, exists):
    if exists:
        (tmp_path / "empty").mkdir()
    earlier = tmp_path / "train" / "runs" / "2020-01-01_00-00-00"
    earlier.mkdir(parents=True)
    (earlier / "train.log").write_text("an earlier run")
    env = {**subprocess_env, "DATA_DIR": str(tmp_path / "empty")}
    proc = run(["src.train", "data=fashion_mnist", "data.download=false", f"paths.log_dir={tmp_path}"], env)
    assert proc.returncode == 1
    assert f"Fashion-MNIST not found in {tmp_path / 'empty' / 'FashionMNIST' / 'raw'}" in proc.stderr
    assert "DATA_DIR=" in proc.stderr and "Traceback" not in proc.stderr
    assert (earlier / "train.log").read_text() == "an earlier run" and list(earlier.iterdir()) == [earlier / "train.log"]


@pytest.mark.slow
def test_multirun_gives_one_dir_per_job_and_survives_a_crashed_job(subprocess_env, tmp_path):
    # Job 0 holds out (nearly) everything for validation and fails in setup; job 1 must still run.
    proc = run(["src.train", "-m", "model=softmax", "trainer.max_epochs=1", "logger=csv", *QUIET,
                "data.val_fraction=0.999,0.2", f"paths.log_dir={tmp_path}"], subprocess_env)
    sweeps = list((tmp_path / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p.name for p in sweeps[0].iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    assert proc.returncode != 0  # the sweep reports the failure at the end: its message, not a traceback
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for part in ("job 0 (model=softmax", "data.val_fraction=0.999", "leaves no train or no validation data"):
        assert part in proc.stderr
    assert str(sweeps[0] / "0" / "error.txt") in proc.stderr
    assert "leaves no train or no validation data" in (sweeps[0] / "0" / "error.txt").read_text()
    assert (sweeps[0] / "1" / "checkpoints" / "last.ckpt").is_file()
    assert (sweeps[0] / "1" / "csv" / "metrics.csv").is_file()
    assert not (sweeps[0] / "1" / "error.txt").exists()


@pytest.mark.slow
def test_two_runs_never_share_a_directory(subprocess_env, tmp_path):
    for _ in range(2):
        proc = run(["src.train", "model=softmax", "trainer.fast_dev_run=true", "logger=none", *QUIET,
                    f"paths.log_dir={tmp_path}"], subprocess_env)
        assert proc.returncode == 0, proc.stderr
    runs = list((tmp_path / "train" / "runs").iterdir())
    assert len(runs) == 2


@pytest.mark.parametrize("args,message", [
    (["trainer.precision=8-mixed"], "trainer.precision='8-mixed' is not allowed: must be one of: 32-true, 16-mixed"),
    (["data.device=cuda"], "data.device='cuda' is not allowed: must be one of: auto, cpu"),
    (["accelerator=cpu", "trainer=ddp", "trainer.devices=4096"],
     "trainer.devices=4096 is not allowed with accelerator=cpu: this machine has"),
    (["compile=true", "model=linreg", "data=salary"], "compile=true compiles the model's network; model=linreg has none"),
])
def test_what_the_machine_cannot_run_is_refused_before_any_dir(subprocess_env, tmp_path, args, message):
    proc = run(["src.train", *args, f"paths.log_dir={tmp_path / 'logs'}"], subprocess_env, timeout=60)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "logs").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_accelerator_gpu_without_a_gpu_names_the_fix(subprocess_env, tmp_path):
    proc = run(["src.train", "accelerator=gpu", f"paths.log_dir={tmp_path / 'logs'}"], subprocess_env, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "trainer.accelerator=gpu: PyTorch sees no CUDA GPU on this machine" in proc.stderr
    assert "use accelerator=cpu, or accelerator=auto" in proc.stderr and not (tmp_path / "logs").exists()


@pytest.mark.parametrize("args", [["accelerator=gpu", "trainer.devices=3"], ["trainer.devices=3"], ["trainer=ddp"]])
def test_more_devices_than_gpus_is_refused_also_under_accelerator_auto(monkeypatch, tmp_path, args):
    # A machine with one GPU and 16 cores: accelerator=auto (the default) takes the GPU, so 3 devices are 2 too many.
    import torch

    from src.utils.errors import UserError
    from src.utils.preflight import check_job

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    with pytest.raises(UserError, match=r"trainer.devices=\d is more than this machine has \(1 GPU\); set trainer.devices to at most 1"):
        check_job("train", [*args, f"paths.log_dir={tmp_path / 'logs'}"])
    check_job("train", ["accelerator=gpu", f"paths.log_dir={tmp_path / 'logs'}"])  # one device fits
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("sweep,jobs", [
    (["optim=adam,sgd"], [["optim=adam"], ["optim=sgd"]]),
    (["seed=range(1,4)"], [["seed=1"], ["seed=2"], ["seed=3"]]),
    (["optim=choice(adam,sgdm)"], [["optim=adam"], ["optim=sgdm"]]),
    (["optim=glob(sgd*)"], [["optim=sgd"], ["optim=sgd_scratch"], ["optim=sgdm"]]),  # the group's own options
    (["optim.lr=interval(0.001,0.1)", "model=mlp"], [["model=mlp"]]),  # a sweeper's range: chosen in the job
])
def test_every_sweep_form_is_expanded_for_the_preflight_check(sweep, jobs):
    from src.utils.preflight import job_overrides

    assert sorted(job_overrides(["-m", *sweep])) == jobs


def test_a_checkpoint_that_cannot_be_resumed_is_refused_before_any_dir(cfg_factory, subprocess_env, tmp_path):
    from src.train import train

    cfg = cfg_factory("model=mlp", "logger=none", "test=false", name="logs/train/runs/first")
    cfg.paths.log_dir = str(tmp_path / "logs")
    train(cfg)
    last = tmp_path / "logs" / "train" / "runs" / "first" / "checkpoints" / "last.ckpt"
    for args, message in (
        (["trainer=ddp", "trainer.devices=2", "accelerator=cpu"], "written by 1 process(es) and this run has 2"),
        (["model.hidden=[64]"], "model.hidden: the checkpoint has [256], the config [64]"),
        (["data=fashion_mnist"], "data.name: the checkpoint has 'mnist', the config 'fashion_mnist'"),
        ([f"ckpt_path={tmp_path / 'nope.ckpt'}"], "nope.ckpt: no such file"),
    ):
        ckpt = [] if any(a.startswith("ckpt_path=") for a in args) else ["ckpt_path=last"]
        same = ["model=mlp", "data.batch_size=16", "trainer.max_epochs=2"]  # as the first run, but for one option
        proc = run(["src.train", *same, *args, *ckpt, f"paths.log_dir={tmp_path / 'logs'}"], subprocess_env, timeout=60)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert [p.name for p in (tmp_path / "logs" / "train" / "runs").iterdir()] == ["first"]  # no new run dir
