"""The command-line check that runs before Hydra creates any dir: every key and value of every job."""

import re

import pytest

from src.utils.errors import ConfigError
from src.utils.preflight import check_job, job_overrides
from src.utils.validate import CHOICES, RULES

# (overrides, fragments the one error message must hold: key, value given, what is allowed)
BAD = [
    ("optim.lr=-0.1", ["optim.lr=-0.1 is not allowed", "a number > 0"]),
    ("optim.lr=abc", ["optim.lr='abc' is not allowed", "a number > 0"]),
    ("optim=sgdm optim.momentum=1.0", ["optim.momentum=1.0 is not allowed", "a number in [0, 1)"]),
    ("optim.weight_decay=-1", ["optim.weight_decay=-1 is not allowed", "a number >= 0"]),
    ("data.batch_size=0", ["data.batch_size=0 is not allowed", "an integer >= 1"]),
    ("data.batch_size=1.5", ["data.batch_size=1.5 is not allowed", "an integer >= 1"]),
    ("data.val_fraction=0", ["data.val_fraction=0 is not allowed", "a number in (0, 1)"]),
    ("data.val_fraction=1.5", ["data.val_fraction=1.5 is not allowed", "a number in (0, 1)"]),
    ("data.normalize=maybe", ["data.normalize='maybe' is not allowed", "true or false"]),
    ("trainer.max_epochs=0", ["trainer.max_epochs=0 is not allowed", "an integer >= 1"]),
    ("model=vae data=blobs", ["model=vae generates 28x28 images: it needs data=mnist or data=fashion_mnist, and "
                              "data=blobs is rows of numbers"]),
    ("trainer.limit_train_batches=0", ["trainer.limit_train_batches=0 is not allowed", "an integer >= 1 or a fraction in (0, 1]"]),
    ("callbacks=early_stopping callbacks.early_stopping.patience=-1",
     ["callbacks.early_stopping.patience=-1 is not allowed", "an integer >= 0"]),
    ("hparams_search=cnn_optuna hydra.sweeper.n_trials=0", ["hydra.sweeper.n_trials=0 is not allowed", "an integer >= 1"]),
    ("trainer.devices=0", ["trainer.devices=0 is not allowed", "an integer >= 1 or auto"]),
    ("trainer.num_nodes=0", ["trainer.num_nodes=0 is not allowed", "an integer >= 1"]),
    ("trainer.precision=8", ["trainer.precision=8 is not allowed", "one of: 32-true, 16-mixed"]),
    ("optim.fused=maybe", ["optim.fused='maybe' is not allowed", "true, false or null"]),
    # Lightning would refuse it at the first step, after the run dir was made
    ("trainer.gradient_clip_val=1 trainer.precision=bf16-mixed",
     ["trainer.gradient_clip_val=1 cannot clip under trainer.precision=bf16-mixed", "add optim.fused=false"]),
    # 16-mixed has a GradScaler on a GPU (accelerator=auto may take one); on the CPU it is bf16-mixed: allowed below
    ("model=linreg data=salary trainer.precision=16-mixed",
     ["trainer.precision=16-mixed would divide the gradients that model.grad=analytic writes", "model.grad=autograd"]),
    ("trainer.profiler=fast", ["trainer.profiler='fast' is not allowed", "null, simple, advanced or pytorch"]),
    ("trainer.limit_train_batches=2.5", ["trainer.limit_train_batches=2.5 is not allowed", "a fraction in (0, 1]"]),
    ("model.arch=resnet", ["model.arch='resnet' is not allowed", "one of: lenet, convbn"]),
    ("model=mlp model.impl=numpy", ["model.impl='numpy' is not allowed", "one of: scratch, torch"]),
    ("model=mlp model.hidden=[0]", ["model.hidden=[0] is not allowed", "a list of integers >= 1"]),
    ("model=mlp model.dropout=1", ["model.dropout=1 is not allowed", "a number in [0, 1)"]),
    ("model=vae model.z_dim=0", ["model.z_dim=0 is not allowed", "an integer >= 1"]),
    ("scheduler=step scheduler.gamma=0", ["scheduler.gamma=0 is not allowed", "a number in (0, 1]"]),
    ("scheduler=warmup_cosine scheduler.warmup_fraction=1", ["scheduler.warmup_fraction=1 is not allowed", "[0, 1)"]),
    ("seed=abc", ["seed='abc' is not allowed", "an integer"]),
    ("monitor.mode=up", ["monitor.mode='up' is not allowed", "one of: min, max"]),
    # unknown keys: the nearest existing key is named
    ("optim.lrr=0.1", ["optim.lrr=0.1: unknown key optim.lrr", "did you mean optim.lr?", "+optim.lrr=0.1"]),
    ("trainer.max_epoch=3", ["unknown key trainer.max_epoch", "did you mean trainer.max_epochs?"]),
    ("optimm=adam", ["unknown key optimm", "did you mean optim?"]),
    ("lr=0.1", ["unknown key lr", "did you mean optim.lr?"]),
    # A key of a group's option that is not chosen: Hydra's own advice (+key) would add half a callback.
    ("callbacks.early_stopping.patience=3", ["callbacks.early_stopping is not in this run's config",
                                             "add callbacks=early_stopping to the command"]),
    ("data.foo.bar=1", ["unknown key data.foo.bar; the keys of data are: batch_size"]),
    ("optim=sgd optim.sgd.lr=0.1", ["unknown key optim.sgd.lr; did you mean optim.lr?"]),  # not "add optim=sgd"
    ("model=mlp model.arch=lenet", ["unknown key model.arch", "the keys of model are: hidden, dropout, impl"]),
    ("hydra.run.dirr=x", ["unknown key hydra.run.dirr", "did you mean hydra.run.dir?"]),
    ("optim=adamax", ["Could not find 'optim/adamax'", "adamw", "sgd_scratch"]),
    # where runs go
    ("paths.log_dir=/etc/hostname/logs", ["paths.log_dir='/etc/hostname/logs' cannot hold runs",
                                          "/etc/hostname is not a folder"]),
]


@pytest.mark.parametrize("overrides,fragments", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gives_one_clear_error(overrides, fragments):
    with pytest.raises(ConfigError) as err:
        check_job("train", overrides.split())
    for fragment in fragments:
        assert fragment in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        check_job("train", ["optim.lr=0", "data.batch_size=0", "optim.lrr=1", "trainer.max_epoch=1"])
    message = str(err.value)
    # unknown keys first (the values of a config that does not compose cannot be checked)
    assert "optim.lrr" in message and "trainer.max_epoch" in message


@pytest.mark.parametrize("overrides", [
    [], ["model=mlp", "model.hidden=[32,16]", "optim=sgdm", "optim.momentum=0"], ["model=vae"],
    ["trainer=ddp", "accelerator=cpu"], ["+trainer.max_time=00:00:05:00"], ["data.val_fraction=0.5"],
    ["model=linreg", "data=salary", "trainer.precision=16-mixed", "accelerator=cpu"],
])
def test_good_input_passes(overrides):
    check_job("train", overrides)


def test_eval_and_sample_need_a_checkpoint():
    for name in ("eval", "sample"):
        with pytest.raises(ConfigError, match="ckpt_path is required"):
            check_job(name, [])
    from src.utils.errors import CheckpointError

    with pytest.raises(CheckpointError, match="ckpt_path=x.ckpt: no such file"):  # read before any dir is made
        check_job("sample", ["ckpt_path=x.ckpt", "n=4"])
    with pytest.raises(ConfigError, match="n=0 is not allowed"):
        check_job("sample", ["ckpt_path=x.ckpt", "n=0"])
    with pytest.raises(ConfigError, match=re.escape("nrow=0 is not allowed: must be an integer >= 1")):
        check_job("sample", ["ckpt_path=x.ckpt", "nrow=0"])  # (the grid would divide by it)


def test_a_sweep_is_checked_job_by_job():
    jobs = job_overrides(["-m", "optim.lr=0.1,-1", "model=mlp,cnn", "seed=1"])
    assert sorted(jobs) == sorted([[f"optim.lr={lr}", f"model={m}", "seed=1"] for lr in ("0.1", "-1")
                                   for m in ("mlp", "cnn")])
    assert job_overrides(["optim.lr=0.1"]) == [["optim.lr=0.1"]]
    assert job_overrides(["--help"]) == [] and job_overrides(["-m", "optim.lr=interval(0.1,1)"]) == [[]]


def test_choices_have_rules():
    for key, allowed in CHOICES.items():
        ok, message = RULES[key]
        assert all(ok(v) for v in allowed) and not ok("nonsense") and all(str(v) in message for v in allowed)


def test_a_sweep_resume_without_multirun_is_refused(capsys):
    from src.utils.preflight import check_command_line

    with pytest.raises(SystemExit):  # else Hydra would start a fresh single run, ignoring the resume
        check_command_line("train", ["optim=adam", "hydra.sweep.dir=x", "hydra.sweeper.resume=true"])
    assert "hydra.sweeper.resume=true resumes a sweep, and this command is a single run: add -m" in capsys.readouterr().err
