"""What every model shares: the train/val/test loop, metrics logged once per epoch, the optimizer
and schedule from config, and checkpoints that name their own class and data."""

import inspect

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from torchmetrics import Metric, MetricCollection

from src.models.metrics import Mean
from src.utils.checkpoint import LAYOUT, upgrade
from src.utils.errors import CheckpointError

STAGES = ("train", "val", "test")
FOLD_EVERY = 1024  # steps: bounds the values kept, e.g. over the 100,000 steps of a full-batch regression


def build_optimizer(optim: dict, params) -> torch.optim.Optimizer:
    """The optimizer of an `optim` config. Its `fused` (conf/optim/) only picks PyTorch's faster kernel:
    it is dropped for a class that has none, so `optim._target_` can name any torch.optim class."""
    optim = dict(optim)
    if "fused" in optim and "fused" not in inspect.signature(get_class(optim["_target_"])).parameters:
        del optim["fused"]
    return instantiate(optim, params=params)


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(x, y, n): the first n samples are real. Under DDP a validation batch says n itself: its last
    samples can be padding (another rank's samples, repeated so that every rank runs as many batches)."""
    x, y, *rest = batch
    return x, y, (rest[0] if rest else len(y))


class BaseModule(L.LightningModule):
    """A subclass builds its network, computes its loss in `step` and names what it averages in `terms`.

    Every `__init__` argument of the subclass is saved as a hyper-parameter. `optim` and `scheduler`
    are the plain-dict configs of those Hydra groups, instantiated in `configure_optimizers`; keeping
    them as dicts keeps the checkpoint loadable with `weights_only=True`.

    Each term is averaged over the epoch (weighted by batch size) and logged once at its end as
    `<stage>/<term>`: a `self.log` per step would cost as much as a small network's whole step.
    A step only appends its values to a list; the metrics take them in one update per epoch.
    """

    terms: tuple[str, ...] = ("loss",)

    def __init__(self, optim: dict | None = None, scheduler: dict | None = None):
        super().__init__()
        self.save_hyperparameters(logger=False)
        for stage in STAGES:  # self.train_metrics, self.val_metrics, self.test_metrics
            metrics = MetricCollection(self.make_metrics(stage), prefix=f"{stage}/", compute_groups=False)
            setattr(self, f"{stage}_metrics", metrics)
        # The metrics' names, read once: MetricCollection.items() would cost a step ~10 us.
        self._names = {stage: list(getattr(self, f"{stage}_metrics").keys(keep_base=True)) for stage in STAGES}
        self._pending: dict[str, list[tuple[list[torch.Tensor], int]]] = {stage: [] for stage in STAGES}

    def __setattr__(self, name: str, value) -> None:
        # Lightning sets `_current_fx_name` before and after every hook call, 42 times a step.
        # nn.Module's __setattr__ first checks the value against Parameter, Module and Buffer (Python
        # isinstance hooks): 1.8 us a call, where a plain attribute costs 0.3. The name is just a str.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:  # (LightningModule has no __setattr__ of its own)
            torch.nn.Module.__setattr__(self, name, value)

    def make_metrics(self, stage: str) -> dict[str, Metric]:
        """The metrics of a stage: by default the mean of each term; updated from `step`'s values."""
        return {term: Mean() for term in self.terms}

    def step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """`loss` (what is minimised) and the other terms' per-batch means; more outputs may follow."""
        raise NotImplementedError

    def record(self, stage: str, values: dict[str, torch.Tensor], n: int) -> None:
        """Keeps a step's values (weighted by its n samples) for the epoch's metrics."""
        if n == 0:  # an empty batch (all padding under DDP): its mean is NaN and counts for nothing
            return
        pending = self._pending[stage]
        pending.append(([values[name].detach() for name in self._names[stage]], n))
        if len(pending) >= FOLD_EVERY:
            self._fold(stage)

    def _fold(self, stage: str) -> None:
        """Hands the kept values to the stage's metrics, in one update each."""
        pending, self._pending[stage] = self._pending[stage], []
        if not pending:
            return
        metrics = dict(getattr(self, f"{stage}_metrics").items(keep_base=True, copy_state=False))
        weights = torch.tensor([n for _, n in pending]).to(pending[0][0][0].device, non_blocking=True)
        for i, name in enumerate(self._names[stage]):
            metrics[name].update(torch.stack([step[i] for step, _ in pending]), weights)

    def _run(self, batch, stage: str) -> dict[str, torch.Tensor]:
        x, y, n = split_batch(batch)
        if n < len(y):  # padding (DDP validation): not counted
            x, y = x[:n], y[:n]
        values = self.step(x, y)
        self.record(stage, values, n)
        return values

    def training_step(self, batch, batch_idx):
        loss = self._run(batch, "train")["loss"]
        self.log_step_loss(loss)
        return loss

    def log_step_loss(self, loss: torch.Tensor) -> None:
        """`train/loss_step` at the steps where Lightning writes to the loggers (every
        trainer.log_every_n_steps), written as Lightning writes its own: at its step, with the epoch,
        then saved. Handed to the loggers directly: a `self.log` call costs about 0.6 ms on a CPU, and
        once a value is logged per step Lightning re-reads it after every step, logging step or not."""
        trainer = self.trainer
        every, step = trainer.log_every_n_steps, trainer.fit_loop.epoch_loop._batches_that_stepped
        # Lightning's own test of a logging step (its `should_update_logs`, slower: it is generic), and
        # one write per optimizer step where gradients accumulate over batches.
        if not self.loggers or not every or not ((step + 1) % every == 0 or trainer.should_stop):
            return
        if self.automatic_optimization and trainer.fit_loop._should_accumulate():
            return
        metrics = {"train/loss_step": loss.item(), "epoch": trainer.current_epoch}  # the epoch: src.report reads it
        for logger in self.loggers:
            logger.log_metrics(metrics, step)
            logger.save()

    def validation_step(self, batch, batch_idx):
        self._run(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._run(batch, "test")  # the outputs, for callbacks (e.g. the test figures' predictions)

    def log_epoch(self, stage: str) -> dict[str, torch.Tensor]:
        # compute() reduces across DDP ranks; reset() readies the next epoch.
        self._fold(stage)
        metrics = getattr(self, f"{stage}_metrics")
        values = metrics.compute()
        metrics.reset()
        self.log_dict(values, prog_bar=True)
        return values

    def on_train_epoch_end(self):
        self.log_epoch("train")

    def on_validation_epoch_end(self):
        self.log_epoch("val")

    def on_test_epoch_end(self):
        self.log_epoch("test")

    def configure_optimizers(self):
        optimizer = build_optimizer(self.hparams.optim, self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        cfg = dict(self.hparams.scheduler)
        interval = cfg.pop("interval", "epoch")
        if "total_steps" in cfg and cfg["total_steps"] is None:  # e.g. warmup_cosine, OneCycleLR
            cfg["total_steps"] = self._schedule_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = instantiate(cfg, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    def on_train_start(self):
        # A schedule sized from the run's steps (one-cycle, warm-up + cosine) comes back from the checkpoint
        # with its old length: one-cycle would fail past its end, cosine would climb again.
        resumed, steps = getattr(self, "_resumed_schedule_steps", None), getattr(self, "_schedule_steps", None)
        if resumed and steps and resumed != steps:
            raise CheckpointError(
                f"cannot resume: the checkpoint's learning-rate schedule spans {resumed} steps (its run's whole "
                f"length) and this run has {steps}. A schedule sized from the run (one-cycle, warm-up + cosine) "
                f"cannot change length: resume with the trainer.max_epochs, trainer.limit_train_batches and "
                f"trainer.accumulate_grad_batches of the run that wrote it")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Lets `src.eval` and `src.sample` rebuild the model and its data from the checkpoint alone.
        checkpoint["layout"] = LAYOUT
        checkpoint["model_class"] = f"{type(self).__module__}.{type(self).__qualname__}"
        datamodule = self.trainer.datamodule
        if datamodule is not None:
            checkpoint["datamodule_class"] = f"{type(datamodule).__module__}.{type(datamodule).__qualname__}"
        checkpoint["world_size"] = self.trainer.world_size  # resuming needs as many processes
        if getattr(self, "_schedule_steps", None):  # a resumed run must span as many
            checkpoint["schedule_steps"] = self._schedule_steps
        # Lightning does not keep the random state: a resumed run would draw other dropout masks.
        checkpoint["rng_state"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_state"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        upgrade(checkpoint)  # an earlier layout: before Lightning loads the state_dict
        if self._trainer is None or self.trainer.state.fn != "fit":  # testing a checkpoint draws afresh
            return
        # The saved param groups replace the new ones, `fused` included: a state saved unfused (before
        # conf/optim had it) would turn the configured fused optimizer back into an unfused one, to
        # which a GradScaler (16-mixed) still hands the fused step's arguments.
        fused = (self.hparams.optim or {}).get("fused")
        for state in checkpoint.get("optimizer_states", []):
            for group in state.get("param_groups", []):
                if "fused" in group:
                    group["fused"] = fused
        schedulers = checkpoint.get("lr_schedulers") or [{}]
        self._resumed_schedule_steps = checkpoint.get("schedule_steps", schedulers[0].get("total_steps"))
        state = checkpoint.get("rng_state") or checkpoint.get("callbacks", {}).get("RNGState")
        if state is not None:
            torch.set_rng_state(state["torch"])
            if "cuda" in state and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda"])

