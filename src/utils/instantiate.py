"""Building objects from config nodes."""

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from src.utils.errors import ConfigError


def instantiate_each(group: DictConfig | None) -> list:
    """Instantiate every entry of a dict-like group (callbacks, logger); null entries are skipped."""
    return [instantiate(node) for node in (group or {}).values() if node is not None]


def build_model(cfg: DictConfig, datamodule):
    """The model of `cfg.model`, sized for `datamodule`, with the optim and scheduler configs as plain dicts."""
    kwargs = OmegaConf.to_container(cfg.model, resolve=True)
    model_class = get_class(kwargs.pop("_target_"))
    regression = datamodule.num_classes is None  # regression data sets have float targets, no classes
    if getattr(model_class, "regression", False) != regression:
        data = cfg.data.get("name") or cfg.data._target_.rsplit(".", 1)[-1]
        wants = "a regression data set (data=salary or data=linear)" if not regression else "a data set with classes"
        raise ConfigError(f"{model_class.__name__} needs {wants}; data {data!r} is "
                          f"{'a regression' if regression else 'a classification'} set")
    return model_class(
        input_shape=list(datamodule.input_shape),
        num_classes=datamodule.num_classes,
        optim=OmegaConf.to_container(cfg.optim, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True) or None,
        **kwargs,
    )
