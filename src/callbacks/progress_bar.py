"""Lightning's rich progress bar, with the training bar updated only as often as it is redrawn."""

from time import perf_counter

from lightning.pytorch.callbacks import RichProgressBar


class ThrottledRichProgressBar(RichProgressBar):
    """Lightning's RichProgressBar redraws at most `refresh_rate` times a second, in a thread of its
    own, but re-reads the metrics and updates the training bar after every batch: about 0.1 ms, which
    a small network's step notices. Here the training bar is updated at most `refresh_rate` times a
    second, and after the epoch's last batch.

    A redraw takes about 3 ms of Python here, during which training waits for the GIL: at 10 redraws
    a second a small network trained 3% slower in a terminal, hence the default of 4 (conf/callbacks)."""

    _next_update = 0.0  # (a run resumed mid-epoch skips on_train_epoch_start)

    def on_train_epoch_start(self, trainer, pl_module):
        super().on_train_epoch_start(trainer, pl_module)
        self._next_update = 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not self.is_enabled:  # (refresh_rate=0 turns the bar off)
            return
        now = perf_counter()
        if now >= self._next_update or batch_idx + 1 == self.total_train_batches:
            self._next_update = now + 1 / self.refresh_rate
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
