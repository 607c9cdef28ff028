"""Check a command line before Hydra acts on it: no run or sweep dir for a config that cannot run.

Hydra creates the run dir (a sweep dir in a multirun) before it calls the
task, and rejects a misspelt key without saying which key was meant. So the
entry points first compose every job's config the way Hydra will (Hydra's own
argument parser, override parser and sweep expansion), and check it with
`validate`, in about 0.1 s per job and without importing torch.
"""

import difflib
import os
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf

from src.utils.errors import ConfigError, UserError
from src.utils.resolvers import PROJECT_ROOT
from src.utils.sweep_dir import check_sweep_dir
from src.utils.validate import validate

CONF_DIR = PROJECT_ROOT / "conf"


def check_command_line(config_name: str, argv: list[str] | None = None) -> None:
    """Exit with one clear message if a job of this command line has a bad key or value."""
    argv = sys.argv[1:] if argv is None else argv
    in_sweep = get_args_parser().parse_known_args(argv)[0].multirun
    try:
        for overrides in job_overrides(argv):
            check_job(config_name, overrides, in_sweep)
    except UserError as e:
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(1)


def job_overrides(argv: list[str]) -> list[list[str]]:
    """The overrides of each job the command line runs: one list, or one per job of a -m sweep.

    Empty when there is nothing to check here: --help/--info, another config dir, or a
    command Hydra cannot parse (Hydra then reports it in its own words).
    """
    args, _ = get_args_parser().parse_known_args(argv)
    if args.help or args.hydra_help or args.info or args.shell_completion or args.config_path \
            or args.config_dir or args.experimental_rerun:
        return []
    try:
        # With a config loader, group sweeps such as optim=glob(*) expand to the group's options.
        parsed = OverridesParser.create(config_loader=_config_loader()).parse_overrides(args.overrides)
    except HydraException:
        return []
    if not args.multirun:
        return [list(args.overrides)]
    # Ranges and intervals (for sweepers such as Optuna) are not expanded: their values are
    # chosen by the sweeper; the rest of each job's config is still checked.
    discrete = [o for o in parsed if not o.is_sweep_override() or o.is_discrete_sweep()]
    return BasicSweeper.split_arguments(discrete, max_batch_size=None)[0]


def _config_loader():
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path

    return ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF_DIR)))


def check_job(config_name: str, overrides: list[str], in_sweep: bool = False) -> DictConfig:
    """Compose one job's config, reject unknown keys (naming the nearest one) and bad values."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = _compose(config_name, overrides)
    try:
        validate(cfg)
    except ConfigError as e:
        if in_sweep:
            raise ConfigError(f"{e} (in the job {' '.join(overrides)})") from None
        raise
    if OmegaConf.select(cfg, "hydra.sweeper.resume"):
        mode = OmegaConf.select(cfg, "hydra.mode")  # (a search sets MULTIRUN itself)
        if not in_sweep and getattr(mode, "name", mode) != "MULTIRUN":
            raise ConfigError("hydra.sweeper.resume=true resumes a sweep, and this command is a single run: "
                              "add -m (the sweep's command as it was, with hydra.sweep.dir=<its dir>)")
        check_sweep_dir(cfg)
    try:
        log_dir = Path(cfg.paths.log_dir) / cfg.task_name
    except Exception:  # e.g. a log_dir that depends on ${hydra:...}, known only once Hydra runs
        return cfg
    check_writable(log_dir)
    if cfg.get("ckpt_path"):
        check_checkpoint(cfg, resume=config_name == "train")
    return cfg


def check_checkpoint(cfg: DictConfig, resume: bool) -> None:
    """The checkpoint must be readable, and one to resume must fit this run: its model, optimizer,
    schedule and data options, epochs left to train and its number of processes. torch (seconds) is
    imported only for a command that names a checkpoint.
    (`ckpt_path=last` of src.eval and src.sample picks by model class: checked in the task.)"""
    from src.utils.checkpoint import check_resumable, check_world_size, find_last, read_checkpoint

    if cfg.ckpt_path == "last" and not resume:
        return
    path = find_last(cfg.paths.log_dir, cfg.task_name) if cfg.ckpt_path == "last" else cfg.ckpt_path
    ckpt = read_checkpoint(path)
    if not resume:
        return
    groups = {g: OmegaConf.to_container(cfg[g], resolve=True) for g in ("model", "optim", "scheduler", "data")}
    check_resumable(ckpt, {**groups, "trainer": {"max_epochs": cfg.trainer.get("max_epochs")}}, path)
    devices, nodes = cfg.trainer.get("devices", 1), cfg.trainer.get("num_nodes", 1)
    if isinstance(devices, int) and isinstance(nodes, int):  # ("auto": known once the Trainer is built)
        check_world_size(ckpt, devices * nodes, path)


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    unknown = []
    remaining = list(overrides)
    while True:
        try:
            cfg = compose(config_name, overrides=remaining, return_hydra_config=True)
            break
        except MissingConfigException as e:  # an unknown option of a group: Hydra lists the options
            raise ConfigError(str(e).split("\nConfig search path")[0]) from None
        except ConfigCompositionException as e:
            key = getattr(e.__cause__, "full_key", None)
            bad = [o for o in remaining if _key(o) == key or _key(o).startswith(f"{key}.")]  # (or a key under it)
            if not key or not bad:
                raise ConfigError(str(e)) from None
            unknown += bad
            remaining = [o for o in remaining if o not in bad]
    if unknown:
        raise ConfigError("unknown key" + ("s" if len(unknown) > 1 else "") + ":\n  "
                          + "\n  ".join(_suggest(o, cfg) for o in unknown))
    return cfg


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _suggest(override: str, cfg: DictConfig) -> str:
    key = _key(override)
    parent, _, name = key.rpartition(".")
    keys = [k for k in _all_keys(cfg, hydra=key.startswith("hydra")) if not k.rpartition(".")[2].startswith("_")]
    group, _, rest = key.partition(".")
    option = rest.split(".", 1)[0]
    option_file = CONF_DIR / group / f"{option}.yaml"
    # An option whose file puts its keys under <group>.<option> (callbacks.early_stopping), not chosen.
    if parent and parent not in keys and option and option_file.is_file() and option in OmegaConf.load(option_file):
        return (f"{override}: {group}.{option} is not in this run's config; it comes with the option "
                f"{group}={option}: add {group}={option} to the command")
    leaf = name
    while parent and parent not in keys:  # data.foo.bar: the nearest node there is (data), and its key foo
        parent, _, name = parent.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in keys if k.rpartition(".")[0] == parent}
    # A misspelling within the same node first (trainer.max_epoch), then the same name elsewhere (lr -> optim.lr,
    # optim.sgd.lr -> optim.lr).
    close = difflib.get_close_matches(name, siblings, n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {siblings[close[0]]}?"
    elif elsewhere := [k for k in keys if k.rpartition(".")[2] in (name, leaf)]:
        hint = f"did you mean {' or '.join(elsewhere)}?"
    else:
        hint = f"the keys of {parent or 'the config'} are: {', '.join(siblings)}"
    return f"{override}: unknown key {key}; {hint} (to add a key on purpose: +{override.lstrip('+')})"


def _all_keys(node: DictConfig, prefix: str = "", hydra: bool = False):
    for k in node.keys():
        if not prefix and k == "hydra" and not hydra:
            continue
        path = f"{prefix}{k}"
        yield path
        child = node._get_node(k)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            yield from _all_keys(child, f"{path}.", hydra)


def check_writable(folder: Path) -> None:
    """Runs are written under `folder`: it, or the nearest folder above it that exists, must be writable."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        what = "is not a folder" if not existing.is_dir() else "is not writable"
        raise ConfigError(f"paths.log_dir={str(folder.parent)!r} cannot hold runs: {existing} {what}; "
                          f"set paths.log_dir to a writable folder")
