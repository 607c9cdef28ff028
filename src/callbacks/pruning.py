"""A search trial that reports to its Optuna study after every validation, and stops when pruned.

Added by src.train to each job of hparams_search=... when the search has a pruner (conf/hydra/sweeper/
search.yaml); the sweeper (hydra_plugins/dlcourse/search_sweeper.py) names the trial. Rank 0 alone
talks to the study; under DDP every rank gets its decision, so all stop at the same epoch.
"""

import optuna
from lightning.pytorch import Callback

from src.utils.errors import ConfigError


class TrialPruned(optuna.TrialPruned):
    """This trial was stopped by the search's pruner (not an error)."""

    def __init__(self, message: str, epoch: int):
        super().__init__(message)
        self.epoch = epoch

    def __reduce__(self):  # sent back from a launcher's worker process (hydra/launcher=parallel, SLURM)
        return type(self), (str(self), self.epoch)


class Pruning(Callback):
    def __init__(self, storage: str, study_name: str, trial: int, pruner: optuna.pruners.BasePruner, monitor: str):
        self.storage, self.study_name, self.number, self.pruner, self.monitor = storage, study_name, trial, pruner, monitor
        self.trial: optuna.trial.Trial | None = None
        self.pruned: TrialPruned | None = None

    def setup(self, trainer, pl_module, stage):
        if stage == "fit" and trainer.is_global_zero and self.trial is None:
            study = optuna.load_study(study_name=self.study_name, storage=self.storage, pruner=self.pruner)
            trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, self.number)
            self.trial = optuna.trial.Trial(study, trial_id)

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            logged = sorted(k for k in trainer.callback_metrics if k.startswith("val/"))
            raise ConfigError(f"the search's pruner compares trials by monitor.metric={self.monitor} after every "
                              f"validation, and this model does not log it (it logs {', '.join(logged) or 'nothing'} "
                              f"there): set monitor.metric to one of those, or hydra.sweeper.pruner=null")
        decision = "go on"
        if trainer.is_global_zero:
            try:
                self.trial.report(float(value), step=trainer.current_epoch)
                # After its last epoch a trial has cost all it will: it ends complete, and is tested.
                last = trainer.max_epochs is not None and 0 <= trainer.max_epochs <= trainer.current_epoch + 1
                decision = "prune" if not last and self.trial.should_prune() else "go on"
            except Exception as e:  # (the storage): every rank must hear of it, or the others wait for rank 0
                trainer.strategy.broadcast(f"{type(e).__name__}: {e}", src=0)
                raise
        decision = trainer.strategy.broadcast(decision, src=0)
        if decision not in ("go on", "prune"):
            raise RuntimeError(f"rank 0 could not report to the study: {decision}")
        if decision == "prune":
            trainer.should_stop = True
            self.pruned = TrialPruned(f"trial {self.number} pruned after epoch {trainer.current_epoch} by "
                                      f"{type(self.pruner).__name__} ({self.monitor}={float(value):.4g})",
                                      trainer.current_epoch)
