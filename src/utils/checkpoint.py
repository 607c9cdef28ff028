"""Loading checkpoints written by src.train, safely (weights_only) and with clear errors."""

import inspect
import pickle
import re
from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from src.utils.errors import CheckpointError, DataError
from src.utils.resolvers import PROJECT_ROOT

MACHINE_OPTIONS = ("device", "num_workers", "pin_memory")
LAYOUT = 2  # written by BaseModule.on_save_checkpoint; a checkpoint without it is upgraded on loading
# The model class of a checkpoint without `layout` -> the model config that replaced it.
EARLIER_MODELS = {
    "src.models.cnn.CNNClassifier": "cnn",
    "src.models.mlp.MLPClassifier": "mlp",
    "src.models.softmax.SoftmaxClassifier": "softmax",
    "src.models.logreg.LogisticRegression": "logreg",
    "src.models.linreg.LinearRegression": "linreg",
    "src.models.vae.VAE": "vae",
}


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict of a file written by src.train, or a CheckpointError saying what is wrong."""
    path = Path(path)
    if path.is_dir():
        inside = sorted(path.rglob("last.ckpt"))
        example = inside[-1] if inside else path / "checkpoints" / "last.ckpt"
        raise CheckpointError(f"ckpt_path={path} is a folder: give a .ckpt file, e.g. ckpt_path={example}")
    if not path.is_file():
        raise CheckpointError(f"ckpt_path={path}: no such file (a run's checkpoints are in logs/train/runs/<time>/checkpoints/)")
    try:
        # weights_only: a checkpoint is data; never execute code from it.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses a file that asks for any class or function not on its list of plain data.
        blocked = re.search(r"unsupported GLOBAL (\S+)|Unsupported global: GLOBAL (\S+)", str(e))
        if blocked is None:
            raise CheckpointError(f"ckpt_path={path} is not a readable checkpoint (truncated, or not a .ckpt file): "
                                  f"{_first_line(e)}") from e
        raise CheckpointError(
            f"ckpt_path={path} holds Python objects other than tensors and plain data (it asks for "
            f"{blocked.group(1) or blocked.group(2)}); they were not loaded, for safety: loading them could run any code. A checkpoint written by "
            "src.train holds none of them; if you trust this file and need its weights, copy them into one."
        ) from e
    except Exception as e:
        raise CheckpointError(f"ckpt_path={path} is not a readable checkpoint (truncated, or not a .ckpt file): "
                              f"{_first_line(e)}") from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "model_class" not in ckpt:
        raise CheckpointError(f"ckpt_path={path} is not a checkpoint written by src.train (no state_dict/model_class)")
    return upgrade(ckpt)


def upgrade(ckpt: dict) -> dict:
    """A checkpoint of an earlier layout (one LightningModule class per model family, the network
    chosen in Python) in today's (the model config's `net` node), in place: its model is rebuilt
    from today's model config with the options the checkpoint was trained with."""
    if ckpt.get("layout", 1) >= LAYOUT:
        return ckpt
    name = EARLIER_MODELS.get(ckpt.get("model_class"))
    if name is None:
        return ckpt
    old = dict(ckpt["hyper_parameters"])
    config = OmegaConf.load(PROJECT_ROOT / "conf" / "model" / f"{name}.yaml")
    model = config.model if "model" in config else config  # (linreg and vae set more than the model)
    model.pop("defaults", None)
    if name == "cnn":  # dropout was LeNet's alone (0.5 unless set); null now means each arch's own
        if old.get("arch") != "lenet" or old.get("dropout") == 0.5:
            old["dropout"] = None
    for key in model:
        if key in old and key != "net":
            model[key] = old[key]
    model = OmegaConf.to_container(OmegaConf.create({"model": model}), resolve=True)["model"]
    model_class = get_class(model.pop("_target_"))
    sizes = inspect.signature(model_class).parameters
    ckpt["hyper_parameters"] = {**model, **{k: old[k] for k in ("input_shape", "num_classes") if k in sizes},
                                "optim": old.get("optim"), "scheduler": old.get("scheduler")}
    ckpt["model_class"] = f"{model_class.__module__}.{model_class.__qualname__}"
    state = ckpt["state_dict"]
    if "metrics.val_acc_best.max_value" in state:
        state["val_acc_best.max_value"] = state.pop("metrics.val_acc_best.max_value")
    ckpt["layout"] = LAYOUT
    return ckpt


def _first_line(e: Exception) -> str:
    return (str(e).strip() or type(e).__name__).splitlines()[0].split(". ")[0]


def find_last(log_dir: str | Path, task_name: str, model_base: type | tuple[type, ...] | None = None) -> Path:
    """`ckpt_path=last`: the newest `last.ckpt` of the task's runs and sweep jobs (of a `model_base`
    model, or one of a tuple of them, if given)."""
    task_dir = Path(log_dir) / task_name
    candidates = [*task_dir.glob("runs/*/checkpoints/last.ckpt"), *task_dir.glob("multiruns/*/*/checkpoints/last.ckpt")]
    # A resumed run writes into the checkpoints/ of the run it resumes: the newest file is the latest state.
    candidates.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if model_base is None or _holds(path, model_base):
            return path
    bases = model_base if isinstance(model_base, tuple) else (model_base,) if model_base else ()
    kind = f" of a {' or '.join(b.__name__ for b in bases)} model" if bases else ""
    raise CheckpointError(f"ckpt_path=last: no run under {task_dir} has a checkpoints/last.ckpt{kind} yet; "
                          f"give the file itself: ckpt_path=<run dir>/checkpoints/last.ckpt")


def _holds(path: Path, model_base: type | tuple[type, ...]) -> bool:
    try:
        model_class = get_class(read_checkpoint(path)["model_class"])
    except Exception:  # unreadable, or a class that no longer exists: not a candidate
        return False
    return isinstance(model_class, type) and issubclass(model_class, model_base)


def check_world_size(ckpt: dict, world_size: int, path) -> None:
    """Resuming needs as many processes as wrote the checkpoint: each takes its share of every batch."""
    written_by = ckpt.get("world_size")  # (checkpoints from before it was recorded: not checked)
    if written_by is not None and written_by != world_size:
        raise CheckpointError(
            f"cannot resume from {path}: it was written by {written_by} process(es) and this run has {world_size}. "
            f"The global batch and the steps per epoch would change, and with them a schedule sized from them "
            f"(warm-up, one-cycle). Resume with the trainer.devices and trainer.num_nodes of the run that wrote it; "
            f"to evaluate it, any number works: python -m src.eval ckpt_path={path}")


def check_resumable(ckpt: dict, cfg: dict, path) -> None:
    """Resuming continues the checkpoint's run: `cfg` (the run's config as a dict) must describe its
    model, optimizer, schedule and data (the optimizer's and the schedule's state come back from the
    checkpoint and would override new values), and leave epochs to train."""
    stored = ckpt["hyper_parameters"]
    held, built = _describe(ckpt["model_class"], stored), _describe(cfg["model"]["_target_"], cfg["model"])
    if held != built:
        problems = [f"model: the checkpoint holds {held}, the config builds {built}"]
    else:
        differ = _differences("model", stored, cfg["model"])
        # The model's own keys (model.hidden) first; `net`'s (model.net.hidden) are filled from them.
        problems = [p for p in differ if not p.startswith("model.net.")] or differ
    for group in ("optim", "scheduler"):
        if group in stored:  # (checkpoints from before they were kept: not checked)
            problems += _differences(group, stored[group], cfg[group] or None)
    if "datamodule_class" in ckpt:
        data = {"_target_": ckpt["datamodule_class"], **ckpt.get("datamodule_hyper_parameters", {})}
        problems += _differences("data", data, cfg["data"])
    if problems:
        raise CheckpointError(
            f"cannot resume from {path}: " + "; ".join(problems)
            + ". Resume with the options of the run that wrote it (its .hydra/overrides.yaml lists them)."
        )
    done = ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] if "loops" in ckpt else ckpt["epoch"] + 1
    max_epochs = cfg["trainer"].get("max_epochs")
    if max_epochs is not None and done >= max_epochs:
        raise CheckpointError(
            f"cannot resume from {path}: it has trained {done} epoch(s) and trainer.max_epochs={max_epochs} leaves "
            f"none to train. To train on, give trainer.max_epochs above {done} (a schedule sized from the "
            f"run's steps, such as one-cycle, cannot be lengthened); to evaluate it: python -m src.eval ckpt_path={path}")


# What a resumed run may change: where and how fast it runs, not what it trains.
FREE_OPTIONS = {"optim": ("fused",), "data": (*MACHINE_OPTIONS, "data_dir", "download", "eval_batch_size")}


def _differences(group: str, stored: dict | None, config: dict | None) -> list[str]:
    """`group.key: the checkpoint has a, the config b` for each key both have whose values differ."""
    if stored is None or config is None:
        name = lambda d: "none" if d is None else repr(d.get("_target_", d))  # noqa: E731
        return [] if stored is config else [f"{group}: the checkpoint has {name(stored)}, the config {name(config)}"]
    problems = []
    if group != "model" and stored.get("_target_") != config.get("_target_"):  # (the model's: compared above)
        problems.append(f"{group}._target_: the checkpoint has {stored.get('_target_')!r}, "
                        f"the config {config.get('_target_')!r}")
    free = FREE_OPTIONS.get(group, ())
    # data.seed is the run's seed (conf/data/base/loader.yaml: seed: ${seed}): named as it was given.
    name = lambda k: "seed" if (group, k) == ("data", "seed") else f"{group}.{k}"  # noqa: E731
    problems += [f"{name(k)}: the checkpoint has {a!r}, the config {b!r}" for k, (a, b) in _pairs(stored, config).items()
                 if k not in free and _plain(a) != _plain(b)]
    return problems


def _describe(model_class: str, options: dict) -> str:
    net = options.get("net")
    name = model_class.rsplit(".", 1)[-1]
    return f"{name} of {net['_target_'].rsplit('.', 1)[-1]}" if isinstance(net, dict) and "_target_" in net else name


def _pairs(stored: dict, config: dict, prefix: str = "") -> dict:
    """(stored, configured) value of each key both have, nested dicts flattened to dotted keys."""
    pairs = {}
    for key, value in config.items():
        if key not in stored or key == "_target_":
            continue
        if isinstance(value, dict) and isinstance(stored[key], dict):
            pairs.update(_pairs(stored[key], value, f"{prefix}{key}."))
        else:
            pairs[f"{prefix}{key}"] = (stored[key], value)
    return pairs


def _plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def load_model(ckpt: dict, expected_base: type | None = None):
    """Rebuild the LightningModule stored in `ckpt`; optionally require it to subclass `expected_base`.

    (Not `load_from_checkpoint`: it would read the file again, which `read_checkpoint` has already
    read, checked and upgraded.)"""
    model_class = get_class(ckpt["model_class"])
    if expected_base is not None and not issubclass(model_class, expected_base):
        raise CheckpointError(
            f"the checkpoint holds a {model_class.__name__} model; this command needs a {expected_base.__name__} "
            f"(e.g. src.sample needs one trained with model=vae, src.eval a classifier)"
        )
    model = model_class(**ckpt["hyper_parameters"])
    model.load_state_dict(ckpt["state_dict"])
    return model


def load_datamodule(ckpt: dict, data_dir: str):
    """The DataModule the checkpoint was trained with, reading from this machine's `data_dir`."""
    if "datamodule_class" not in ckpt:
        raise CheckpointError("the checkpoint does not say which data it was trained on (no datamodule_class)")
    datamodule_class = get_class(ckpt["datamodule_class"])
    parameters = inspect.signature(datamodule_class).parameters
    paths = {"data_dir": data_dir} if "data_dir" in parameters else {}  # synthetic sets have none
    # Not data: where the writing machine cut its batches, and DataLoader options of older checkpoints.
    hparams = {k: v for k, v in ckpt["datamodule_hyper_parameters"].items() if k not in MACHINE_OPTIONS}
    unknown = [name for name, p in parameters.items() if p.default is p.empty and p.kind == p.POSITIONAL_OR_KEYWORD
               and name not in paths and name not in hparams]
    if unknown:  # e.g. Salary's csv_path: a path of the machine that trained it, not kept
        raise DataError(f"the checkpoint's data ({datamodule_class.__name__}) cannot be loaded from it: it does not "
                        f"keep {', '.join(unknown)} (a path on the machine that trained it)")
    return datamodule_class(**paths, **hparams)
