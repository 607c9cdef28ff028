"""The SLURM setup (hydra-submitit-launcher) composes, and a sweep's dir survives being sent to SLURM tasks."""

import pickle

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.utils import resolvers
from src.utils.preflight import check_job


def _compose(overrides):
    with initialize_config_dir(version_base="1.3", config_dir=str(resolvers.PROJECT_ROOT / "conf")):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_slurm_launcher_asks_for_the_trainers_nodes_and_devices(tmp_path):
    overrides = ["hydra/launcher=slurm", "trainer=slurm", "trainer.num_nodes=3", "trainer.devices=2",
                 "hydra.launcher.partition=gpu", f"paths.log_dir={tmp_path}"]
    check_job("train", overrides)  # and passes the command-line check
    cfg = _compose(overrides)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (3, 2, 2)
    assert launcher.partition == "gpu" and launcher.timeout_min > 0
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.num_nodes == 3 and cfg.trainer.devices == 2
    assert OmegaConf.select(_compose(["trainer=slurm"]), "trainer.num_nodes") == 2  # the defaults: 2 nodes x 4 GPUs


def test_a_pickled_config_names_the_same_sweep_dir(tmp_path):
    # submitit pickles the launcher's config to every SLURM task, and Hydra copies its resolver
    # cache into each job's config: ${new_dir:} must not create a second sweep dir there.
    cfg = _compose(["hydra/launcher=slurm", f"paths.log_dir={tmp_path}"])
    sweep_dir = str(cfg.hydra.sweep.dir)
    resolvers.new_dir.cache_clear()  # as in a new process
    remote = pickle.loads(pickle.dumps(cfg))
    job = _compose([f"paths.log_dir={tmp_path}"])
    OmegaConf.copy_cache(from_config=remote, to_config=job)
    assert str(remote.hydra.sweep.dir) == str(job.hydra.sweep.dir) == sweep_dir
    assert [p.name for p in (tmp_path / "train" / "multiruns").iterdir()] == [sweep_dir.rsplit("/", 1)[-1]]
