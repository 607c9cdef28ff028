import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from src.callbacks.progress_bar import ThrottledRichProgressBar


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_the_training_bar_is_updated_at_most_refresh_rate_times_a_second_and_at_the_end(monkeypatch):
    class Counting(ThrottledRichProgressBar):
        updates: list[int] = []

        def _update(self, progress_bar_id, current, *args, **kwargs):
            if progress_bar_id == self.train_progress_bar_id:
                self.updates.append(current)  # batches done, as drawn on the bar
            super()._update(progress_bar_id, current, *args, **kwargs)

    clock = iter(0.125 * i for i in range(1, 1000))  # each batch ends 1/8 s after the one before
    monkeypatch.setattr("src.callbacks.progress_bar.perf_counter", lambda: next(clock))
    bar = Counting(refresh_rate=2)  # at most every 1/2 s: every 4 batches
    trainer = L.Trainer(max_epochs=1, callbacks=[bar], logger=False, enable_checkpointing=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(Tiny(), DataLoader(TensorDataset(torch.randn(26, 2)), batch_size=1))
    assert bar.updates == [1, 5, 9, 13, 17, 21, 25, 26]


def test_a_run_resumed_mid_epoch_updates_its_bar(tmp_path):
    # Lightning skips on_train_epoch_start when it resumes mid-epoch (here from a checkpoint of step 5).
    from lightning.pytorch.callbacks import ModelCheckpoint

    data = DataLoader(TensorDataset(torch.randn(12, 2)), batch_size=1)
    common = dict(max_epochs=1, logger=False, enable_model_summary=False, accelerator="cpu")
    every_5 = ModelCheckpoint(dirpath=tmp_path, filename="{step}", every_n_train_steps=5, save_top_k=-1)
    L.Trainer(**common, callbacks=[every_5], enable_progress_bar=False).fit(Tiny(), data)
    bar = ThrottledRichProgressBar(refresh_rate=4)
    trainer = L.Trainer(**common, callbacks=[bar], enable_checkpointing=False)
    trainer.fit(Tiny(), data, ckpt_path=tmp_path / "step=5.ckpt")
    assert trainer.global_step == 12  # (it raised AttributeError at the first batch)


def test_refresh_rate_0_turns_the_bar_off():
    bar = ThrottledRichProgressBar(refresh_rate=0)
    trainer = L.Trainer(max_epochs=1, callbacks=[bar], logger=False, enable_checkpointing=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(Tiny(), DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=1))
    assert trainer.global_step == 4 and bar.is_disabled
