"""Check the values a user can set before anything heavy is imported or loaded.

Each rule names a config key, a test and what is allowed; keys a config does
not have (e.g. model.arch for model=mlp) are skipped.
"""

import importlib.util
import os

from omegaconf import DictConfig, OmegaConf

from src.utils.errors import ConfigError


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _integer(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _one_of(*allowed):
    return lambda v: v in allowed, "one of: " + ", ".join(map(str, allowed))


def _batches(v) -> bool:  # Lightning's limit_*_batches: a count, or a fraction of the batches
    return v is None or (_integer(v) and v >= 0) or (isinstance(v, float) and 0 <= v <= 1)


# The allowed values of the string options, in one place: a new choice (e.g. a CNN arch, a function
# of src/nets/cnn.py) is added here. The code behind them does not check them again.
CHOICES = {
    "model.impl": ("scratch", "torch"),
    "model.arch": ("lenet", "convbn", "fast"),
    "data.name": ("mnist", "fashion_mnist"),
    "model.grad": ("analytic", "autograd"),
    "model.loss": ("mse", "huber"),
    "scheduler.interval": ("step", "epoch"),
    "monitor.mode": ("min", "max"),
    "data.device": ("auto", "cpu"),
    "device": ("auto", "cpu", "cuda"),
    "format": ("onnx", "pt2"),
    "test_ckpt": ("best", "last"),
}

# The project's data sets of feature rows (conf/data/): not images.
ROW_DATA = ("src.data.synthetic.", "src.data.salary.")

# The values an entry point cannot go without (??? in its config) -> what to give.
REQUIRED = {"ckpt_path": "path to a .ckpt file", "inputs": "an image file, a folder of images, or a CSV file"}

# What `python -m src.export format=onnx` needs beyond torch: the optional extra `export`.
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")

# key -> (test, what is allowed)
RULES = {
    **{key: _one_of(*allowed) for key, allowed in CHOICES.items()},
    "seed": (_integer, "an integer"),
    "optim.lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "optim.momentum": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "optim.weight_decay": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "optim.fused": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
    "scheduler.gamma": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "scheduler.step_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "scheduler.warmup_fraction": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "data.batch_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.eval_batch_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.val_fraction": (lambda v: _number(v) and 0 < v < 1, "a number in (0, 1), exclusive"),
    "data.random_shift": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "model.dropout": (lambda v: v is None or (_number(v) and 0 <= v < 1), "null or a number in [0, 1)"),
    "model.hidden": (lambda v: isinstance(v, list) and all(_integer(h) and h >= 1 for h in v), "a list of integers >= 1, e.g. [256]"),
    "model.z_dim": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "model.beta": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "model.delta": (lambda v: _number(v) and v > 0, "a number > 0"),
    "data.standardize": (lambda v: isinstance(v, bool), "true or false"),
    "data.normalize": (lambda v: isinstance(v, bool), "true or false"),
    "data.download": (lambda v: isinstance(v, bool), "true or false"),
    "data.split_seed": (_integer, "an integer"),
    "data.repeat": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.data_seed": (_integer, "an integer"),
    "data.n": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.n_eval": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.n_train": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.n_per_class": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.n_clusters": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.merge": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.min_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.max_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.train_fraction": (lambda v: _number(v) and 0 < v < 1, "a number in (0, 1), exclusive"),
    "data.noise_std": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "data.std": (lambda v: _number(v) and v > 0, "a number > 0"),
    "data.width": (lambda v: _number(v) and v > 0, "a number > 0"),
    "data.center": (_number, "a number"),
    "data.true_b": (_number, "a number"),
    "data.true_w": (lambda v: isinstance(v, list) and len(v) >= 1 and all(_number(w) for w in v), "a list of numbers, e.g. [2, -3.4]"),
    "model.init_w": (lambda v: v is None or _number(v), "null (w ~ N(0, 0.01)) or a number"),
    "model.init_b": (_number, "a number"),
    "test": (lambda v: isinstance(v, bool), "true or false"),
    "compile": (lambda v: isinstance(v, bool), "true or false"),
    "n": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "n_images": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "nrow": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "callbacks.early_stopping.patience": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "hydra.sweeper.n_trials": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "inputs": (lambda v: isinstance(v, str) and os.path.exists(v), "an image file, a folder of them, or a CSV file, that exists"),
    "trainer.max_epochs": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "trainer.devices": (lambda v: v == "auto" or (_integer(v) and v >= 1), "an integer >= 1 or auto"),
    "trainer.num_nodes": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "trainer.min_epochs": (lambda v: v is None or (_integer(v) and v >= 0), "null or an integer >= 0"),
    "trainer.check_val_every_n_epoch": (lambda v: v is None or (_integer(v) and v >= 1), "null or an integer >= 1"),
    "trainer.log_every_n_steps": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "trainer.limit_train_batches": (lambda v: _batches(v) and v != 0, "null, an integer >= 1 or a fraction in (0, 1]"),
    "trainer.limit_val_batches": (_batches, "null, an integer >= 0 or a fraction in [0, 1]"),
    "trainer.limit_test_batches": (_batches, "null, an integer >= 0 or a fraction in [0, 1]"),
    "trainer.fast_dev_run": (lambda v: isinstance(v, bool) or (_integer(v) and v >= 0), "true, false or an integer >= 0"),
    "trainer.deterministic": (lambda v: isinstance(v, bool) or v == "warn", "true, false or warn"),
    "trainer.precision": (lambda v: str(v) in ("32-true", "16-mixed", "bf16-mixed", "64-true", "16-true", "bf16-true",
                                               "32", "16", "bf16", "64"),
                          "one of: 32-true, 16-mixed, bf16-mixed, 64-true, 16-true, bf16-true (or 32, 16, bf16, 64)"),
    "trainer.gradient_clip_val": (lambda v: v is None or (_number(v) and v > 0), "null or a number > 0"),
    "trainer.profiler": (lambda v: v is None or v in ("simple", "advanced", "pytorch"), "null, simple, advanced or pytorch"),
    "trainer.accelerator": (lambda v: v in ("cpu", "gpu", "cuda", "mps", "auto"), "one of: cpu, gpu, auto (or cuda, mps)"),
}


def validate(cfg: DictConfig) -> None:
    """Raise one ConfigError listing every bad value in `cfg`."""
    problems = []
    for key, example in REQUIRED.items():
        if OmegaConf.is_missing(cfg, key):  # ("in" is False for a missing value)
            problems.append(f"{key} is required: add {key}=<{example}> to the command")
    for key, (ok, allowed) in RULES.items():
        node, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(cfg, node) if node else cfg
        if not isinstance(parent, DictConfig) or leaf not in parent:
            continue
        value = OmegaConf.to_object(parent[leaf]) if OmegaConf.is_config(parent[leaf]) else parent[leaf]
        if not ok(value):
            problems.append(f"{key}={value!r} is not allowed: must be {allowed}")
    if not problems:
        problems += _vae_problems(cfg) + _precision_problems(cfg) + _search_problems(cfg) + _machine_problems(cfg)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _vae_problems(cfg: DictConfig) -> list[str]:
    """model=vae generates images: the small data sets are rows of numbers (and have no data.normalize,
    which its config turns off)."""
    data = str(OmegaConf.select(cfg, "data._target_", default=""))
    if OmegaConf.select(cfg, "model._target_") != "src.models.vae.VAE" or not data.startswith(ROW_DATA):
        return []
    name = OmegaConf.select(cfg, "hydra.runtime.choices.data", default=None) or data.rsplit(".", 1)[-1]
    return [f"model=vae generates 28x28 images: it needs data=mnist or data=fashion_mnist, and data={name} "
            f"is rows of numbers"]


def _precision_problems(cfg: DictConfig) -> list[str]:
    """Pairs with mixed precision that would fail, or train wrong, only once the run has started."""
    precision = str(OmegaConf.select(cfg, "trainer.precision", default=""))
    if precision not in ("16-mixed", "bf16-mixed", "16", "bf16"):
        return []
    problems = []
    # Lightning clips after unscaling the gradients itself; a fused optimizer unscales inside its step,
    # so Lightning refuses to clip for it (at the first step).
    clip = OmegaConf.select(cfg, "trainer.gradient_clip_val")
    if clip and OmegaConf.select(cfg, "optim.fused"):
        problems.append(f"trainer.gradient_clip_val={clip} cannot clip under trainer.precision={precision} with a "
                        f"fused optimizer (optim.fused=true: it unscales the gradients inside its step, where Lightning "
                        f"cannot clip them): add optim.fused=false, or train in trainer.precision=32-true")
    # 16-mixed's GradScaler unscales every gradient before the step: hand-written ones were never scaled.
    # (On the CPU Lightning runs 16-mixed as bf16-mixed, which has no scaler.)
    if (precision in ("16-mixed", "16") and OmegaConf.select(cfg, "trainer.accelerator") != "cpu"
            and OmegaConf.select(cfg, "model.grad") == "analytic"
            and OmegaConf.select(cfg, "model._target_") == "src.models.linreg.LinearRegression"):
        problems.append(f"trainer.precision={precision} would divide the gradients that model.grad=analytic writes by "
                        f"hand by its loss scale (65536 at first) on a GPU: use trainer.precision=bf16-mixed or 32-true "
                        f"(linear regression computes in float32 under either), or model.grad=autograd")
    return problems


def _search_problems(cfg: DictConfig) -> list[str]:
    """A search that prunes compares trials by monitor.metric after every validation: it must be a
    validation metric, and there must be validation."""
    sweeper = OmegaConf.select(cfg, "hydra.sweeper")
    if not isinstance(sweeper, DictConfig) or not sweeper.get("pruner") or "trial" not in sweeper:
        return []
    off = "or turn pruning off: hydra.sweeper.pruner=null"
    metric = OmegaConf.select(cfg, "monitor.metric", default="")
    if not str(metric).startswith("val/"):
        return [f"monitor.metric={metric!r} cannot be pruned on: the search's pruner compares trials after every "
                f"validation, by a val/ metric (e.g. val/acc, val/loss); {off}"]
    if OmegaConf.select(cfg, "trainer.limit_val_batches") == 0:
        return [f"trainer.limit_val_batches=0 leaves the search's pruner nothing to compare trials by (it reads "
                f"{metric} after every validation); {off}"]
    return []


def _machine_problems(cfg: DictConfig) -> list[str]:
    """What this machine cannot run: a GPU it does not have, more processes than it has devices, an
    export format whose packages are not installed (looked up, not imported).
    torch (seconds to import) is imported only when the command asks for a GPU or many processes."""
    problems = []
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None] \
        if cfg.get("format") == "onnx" else []
    if missing:
        problems.append(f"format=onnx needs {', '.join(missing)}, not installed here: pip install -e \".[export]\" "
                        f"(or format=pt2, which needs torch alone)")
    if cfg.get("compile") and OmegaConf.select(cfg, "model._target_") == "src.models.linreg.LinearRegression":
        problems.append("compile=true compiles the model's network; model=linreg has none (its w and b are "
                        "updated by hand): leave compile=false")
    trainer = cfg.get("trainer")
    if not isinstance(trainer, DictConfig) or "accelerator" not in trainer:
        return problems
    launcher = OmegaConf.select(cfg, "hydra.launcher._target_", default="") or ""
    if launcher.endswith(".SlurmLauncher"):  # the jobs run on the cluster's nodes, not on this machine
        return problems
    if launcher.endswith(".ParallelLauncher"):
        problems += _parallel_problems(cfg.hydra.launcher)
    processes = [f"trainer.{k}={trainer.get(k)}" for k in ("devices", "num_nodes") if _integer(trainer.get(k)) and trainer.get(k) > 1]
    if launcher.endswith(".ParallelLauncher") and processes:
        problems.append(f"{' '.join(processes)} cannot run under hydra/launcher=parallel: Lightning starts a DDP "
                        f"job's other processes by running its command line again, and there a job is a function "
                        f"sent to a worker process, with no command line of its own. Sweep DDP jobs with the default "
                        f"launcher (one job at a time)")
    accelerator, devices = trainer.accelerator, trainer.get("devices", 1)
    cores = os.cpu_count() or 1
    wants_gpu = accelerator in ("gpu", "cuda")
    several = _integer(devices) and devices > 1
    if not wants_gpu and not (accelerator == "auto" and several):  # auto with one device fits any machine
        if accelerator == "cpu" and _integer(devices) and devices > cores:
            problems.append(f"trainer.devices={devices} is not allowed with accelerator=cpu: this machine has "
                            f"{cores} CPU cores, so at most {cores} processes")
        return problems
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if wants_gpu and gpus == 0:
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU-only build")
        problems.append(f"trainer.accelerator={accelerator}: PyTorch sees no CUDA GPU on this machine ({build}); "
                        f"use accelerator=cpu, or accelerator=auto (a GPU where there is one)")
    elif several and devices > (gpus or cores):  # auto takes the GPUs where there are any
        what = f"{gpus} GPU" + ("s" if gpus != 1 else "") if gpus else f"{cores} CPU cores"
        problems.append(f"trainer.devices={devices} is more than this machine has ({what}); "
                        f"set trainer.devices to at most {gpus or cores}" + (", or accelerator=cpu" if gpus and not wants_gpu else ""))
    return problems


def _parallel_problems(launcher: DictConfig) -> list[str]:
    """hydra/launcher=parallel: whole numbers of jobs and threads, no more threads in all than cores."""
    cores = len(os.sched_getaffinity(0))
    jobs, threads = launcher.jobs, launcher.threads
    bad = [f"hydra.launcher.{k}={v!r} is not allowed: must be an integer >= 1" for k, v in (("jobs", jobs), ("threads", threads))
           if not (_integer(v) and v >= 1)]
    if not bad and jobs * threads > cores:
        bad.append(f"hydra.launcher.jobs={jobs} x hydra.launcher.threads={threads} = {jobs * threads} threads at once, "
                   f"more than the {cores} cores this process may use: the jobs would fight over them and all finish "
                   f"later. Ask for at most {cores} in all (e.g. hydra.launcher.jobs={max(1, cores // threads)})")
    return bad
