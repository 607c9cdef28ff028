"""Every option of every config group composes and instantiates; experiments hold the seeds' recipes."""

import pytest
import torch
from hydra.utils import instantiate

from src.utils.instantiate import instantiate_each, instantiate_model
from src.utils.resolvers import PROJECT_ROOT

GROUPS = ("model", "data", "optim", "scheduler", "accelerator", "trainer", "logger", "callbacks", "experiment")
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((PROJECT_ROOT / "conf" / g).glob("*.yaml"))]


def test_the_groups_hold_what_the_readme_promises():
    have = {g: {o for gg, o in OPTIONS if gg == g} for g in GROUPS}
    assert have["model"] == {"softmax", "mlp", "cnn", "vae", "linreg", "logreg"}
    assert have["data"] == {"mnist", "fashion_mnist", "salary", "linear", "blobs", "clusters", "xor_clusters"}
    assert have["optim"] == {"sgd", "sgdm", "adam", "nadam", "adamw", "sgd_scratch"}
    assert have["scheduler"] == {"none", "step", "exponential", "warmup_cosine"}
    assert have["accelerator"] == {"cpu", "gpu", "auto"}
    assert have["trainer"] == {"default", "ddp", "slurm"}
    assert have["logger"] == {"tensorboard", "csv", "none"}
    assert {"seed000_lenet", "seed002_convbn", "seed004_mlp", "seed001_softmax", "seed000_vae", "vae_mnist"} <= have["experiment"]


@pytest.mark.parametrize("overrides,figures", [
    ((), {"test_figures"}),                                     # the default: LeNet on MNIST
    (("model=vae",), {"vae_figures"}),
    (("model=linreg", "data=salary"), {"small_data_figures"}),
    (("model=logreg", "data=blobs"), {"test_figures", "small_data_figures"}),
    (("model=mlp", "data=fashion_mnist", "callbacks=early_stopping"), {"test_figures", "early_stopping"}),
])
def test_models_and_data_bring_the_figures_that_apply_to_them(overrides, figures):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(PROJECT_ROOT / "conf")):
        cfg = compose("train", overrides=list(overrides))
    always = {"model_checkpoint", "last_checkpoint", "finite_loss", "lr_monitor", "progress_bar", "epoch_timer"}
    assert set(cfg.callbacks) == always | figures


# Options that need a partner from another group (a regression model needs regression data...).
PARTNER = {"model=linreg": "data=linear", "model=logreg": "data=blobs", "data=salary": "model=linreg",
           "data=linear": "model=linreg", "data=blobs": "model=logreg", "data=clusters": "model=softmax",
           "data=xor_clusters": "model=mlp"}


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(cfg_factory, group, option):
    override = f"{group}={option}"
    cfg = cfg_factory(override, *[PARTNER[override]] if override in PARTNER else [])
    datamodule = instantiate(cfg.data)
    model = instantiate_model(cfg, datamodule)
    optimizer = instantiate(cfg.optim, params=model.parameters())
    assert isinstance(optimizer, torch.optim.Optimizer)
    if cfg.scheduler:
        sched = {k: v for k, v in cfg.scheduler.items() if k != "interval"}
        if "total_steps" in sched:
            sched["total_steps"] = 100
        assert isinstance(instantiate(sched, optimizer=optimizer), torch.optim.lr_scheduler.LRScheduler)
    instantiate_each(cfg.logger)
    instantiate_each(cfg.callbacks)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        return  # composes; a Trainer for a GPU cannot be built on this machine
    instantiate(cfg.trainer, logger=False)


@pytest.mark.parametrize(
    "experiment,expected",
    [
        ("seed000_lenet", {"seed": 1, "model.arch": "lenet", "optim._target_": "torch.optim.SGD",
                           "optim.lr": 0.01, "optim.momentum": 0.5,
                           "data.batch_size": 64, "trainer.max_epochs": 3}),
        ("seed002_convbn", {"model.arch": "convbn", "optim._target_": "torch.optim.Adam", "optim.lr": 3e-4,
                            "optim.weight_decay": 1e-5, "scheduler.step_size": 2, "scheduler.gamma": 0.9,
                            "data.batch_size": 16, "data.val_fraction": 0.167, "trainer.gradient_clip_val": 10,
                            "callbacks.early_stopping.patience": 48, "trainer.max_epochs": 64}),
        ("seed000_vae", {"model.hidden": [512, 256], "model.z_dim": 2, "optim._target_": "torch.optim.Adam",
                         "optim.lr": 1e-3, "data.batch_size": 100, "data.normalize": False,
                         "monitor.metric": "val/elbo", "monitor.mode": "min"}),
        ("seed004_mlp", {"data.name": "fashion_mnist", "model.hidden": [256], "model.impl": "scratch",
                         "data.normalize": False, "optim._target_": "torch.optim.SGD",
                         "optim.lr": 0.1, "data.batch_size": 256, "trainer.max_epochs": 10}),
        ("seed001_softmax", {"data.name": "fashion_mnist", "model.impl": "scratch", "data.normalize": False,
                             "optim._target_": "src.optim.sgd_scratch.ScratchSGD", "optim.lr": 0.1,
                             "data.batch_size": 256, "trainer.max_epochs": 10}),
        ("seed000_salary_gd", {"model.grad": "analytic", "model.init_w": 1.0, "model.init_b": 1.0,
                               "optim._target_": "src.optim.sgd_scratch.ScratchSGD", "optim.lr": 2e-4,
                               "data.batch_size": 20, "data.n_train": 20, "data.standardize": False,
                               "data.repeat": 1000, "trainer.max_epochs": 100}),  # 100,000 full-batch steps
        ("seed003_linear_scratch", {"data.true_w": [2.0, -3.4], "data.true_b": 4.2, "data.n": 1000,
                                    "data.noise_std": 0.01, "model.grad": "autograd", "model.init_w": None,
                                    "optim._target_": "src.optim.sgd_scratch.ScratchSGD", "optim.lr": 0.015,
                                    "data.batch_size": 10, "trainer.max_epochs": 3}),
        ("seed003_linear_concise", {"optim._target_": "torch.optim.SGD", "optim.lr": 0.03, "data.batch_size": 10}),
        ("seed001_logreg", {"data.n_per_class": 50, "data.center": 2.0, "data.std": 1.0,
                            "optim._target_": "src.optim.sgd_scratch.ScratchSGD", "optim.lr": 0.001,
                            "data.batch_size": 10, "trainer.max_epochs": 20}),
        ("seed004_clusters_softmax", {"data.n_clusters": 10, "data.width": 30.0, "data.std": 3.0,
                                      "data.data_seed": 9603602, "model.impl": "scratch", "optim.lr": 0.1,
                                      "optim._target_": "src.optim.sgd_scratch.ScratchSGD",
                                      "data.batch_size": 20, "trainer.max_epochs": 10}),
        ("seed004_xor_softmax", {"data.n_clusters": 16, "data.merge": 2, "data.batch_size": 32, "optim.lr": 0.1}),
        ("seed004_xor_mlp", {"data.n_clusters": 16, "data.merge": 2, "model.hidden": [128], "model.impl": "scratch",
                             "optim._target_": "torch.optim.SGD", "optim.lr": 0.1, "data.batch_size": 32,
                             "trainer.max_epochs": 10}),
    ],
)
def test_experiments_reproduce_the_seed_recipes(experiment, expected):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(version_base="1.3", config_dir=str(PROJECT_ROOT / "conf")):
        cfg = compose("train", overrides=[f"experiment={experiment}"])
    for key, value in expected.items():
        got = OmegaConf.select(cfg, key)
        got = OmegaConf.to_object(got) if OmegaConf.is_config(got) else got
        assert got == value, f"{experiment}: {key}={got!r}, expected {value!r}"


def test_data_dir_env_var_overrides_the_shipped_copy(monkeypatch):
    from hydra import compose, initialize_config_dir

    monkeypatch.setenv("DATA_DIR", "/somewhere/else")
    with initialize_config_dir(version_base="1.3", config_dir=str(PROJECT_ROOT / "conf")):
        cfg = compose("train")
    assert cfg.paths.data_dir == "/somewhere/else"
    monkeypatch.delenv("DATA_DIR")
    with initialize_config_dir(version_base="1.3", config_dir=str(PROJECT_ROOT / "conf")):
        cfg = compose("train")
    assert cfg.paths.data_dir == str(PROJECT_ROOT / "data")


def test_the_optimizer_study_runs_three_seeds_of_nine_configurations_and_one_seed_on_request(tmp_path):
    """The jobs the sweeper makes of experiment=optim_study: its own sweep, or a seed given on the command line."""
    from hydra import initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    def jobs(*args):
        GlobalHydra.instance().clear()
        with initialize_config_dir(version_base="1.3", config_dir=str(PROJECT_ROOT / "conf")):
            loader = GlobalHydra.instance().config_loader()
            cfg = loader.load_configuration("train", ["experiment=optim_study", *args], RunMode.MULTIRUN)
            params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()] + ["experiment=optim_study", *args]
            overrides = OverridesParser.create(config_loader=loader).parse_overrides(params)
        return [sorted(job) for job in BasicSweeper.split_arguments(overrides, None)[0]]

    study = jobs()
    assert len(study) == 27 and study[0] == sorted(["optim=adam", "scheduler=none", "seed=0", "experiment=optim_study"])
    assert {tuple(j for j in job if j.startswith("seed")) for job in study} == {("seed=0",), ("seed=1",), ("seed=2",)}
    one_seed = jobs("seed=7")
    assert len(one_seed) == 9 and all("seed=7" in job for job in one_seed)
