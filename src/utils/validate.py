"""Check the values a user can set before anything heavy is imported or loaded.

Each rule names a config key, a test and what is allowed; keys a config does
not have (e.g. model.arch for model=mlp) are skipped.
"""

from omegaconf import DictConfig, OmegaConf

from src.utils.errors import ConfigError


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _integer(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


# key -> (test, what is allowed)
RULES = {
    "seed": (_integer, "an integer"),
    "optim.lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "optim.momentum": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "optim.weight_decay": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "scheduler.gamma": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "scheduler.step_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "scheduler.warmup_fraction": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "scheduler.interval": (lambda v: v in ("step", "epoch"), "one of: step, epoch"),
    "data.batch_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.eval_batch_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.val_fraction": (lambda v: _number(v) and 0 < v < 1, "a number in (0, 1), exclusive"),
    "data.num_workers": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "model.impl": (lambda v: v in ("scratch", "torch"), "one of: scratch, torch"),
    "model.arch": (lambda v: v in ("lenet", "convbn"), "one of: lenet, convbn"),
    "model.dropout": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "model.hidden": (lambda v: isinstance(v, list) and all(_integer(h) and h >= 1 for h in v), "a list of integers >= 1, e.g. [256]"),
    "model.z_dim": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "model.beta": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "n": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "n_images": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "trainer.max_epochs": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "trainer.devices": (lambda v: v == "auto" or (_integer(v) and v >= 1), "an integer >= 1 or auto"),
    "trainer.gradient_clip_val": (lambda v: v is None or (_number(v) and v > 0), "null or a number > 0"),
    "trainer.accelerator": (lambda v: v in ("cpu", "gpu", "cuda", "mps", "auto"), "one of: cpu, gpu, auto (or cuda, mps)"),
}


def validate(cfg: DictConfig) -> None:
    """Raise one ConfigError listing every bad value in `cfg`."""
    problems = []
    if OmegaConf.is_missing(cfg, "ckpt_path"):  # ("in" is False for a missing value)
        problems.append("ckpt_path is required: add ckpt_path=<path to a .ckpt file> to the command")
    for key, (ok, allowed) in RULES.items():
        node, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(cfg, node) if node else cfg
        if not isinstance(parent, DictConfig) or leaf not in parent:
            continue
        value = OmegaConf.to_object(parent[leaf]) if OmegaConf.is_config(parent[leaf]) else parent[leaf]
        if not ok(value):
            problems.append(f"{key}={value!r} is not allowed: must be {allowed}")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
