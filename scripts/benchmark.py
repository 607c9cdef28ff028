"""Seconds per epoch and samples/s of the project's training next to a plain-PyTorch loop.

    python scripts/benchmark.py model=mlp data=fashion_mnist        # the seed MLP
    python scripts/benchmark.py model=cnn --epochs 2                # LeNet on MNIST

Both train the same network with the same optimizer, batch size and data
(the project's in-memory training split), in this one process. The project
side is `src.train.train` with the configured logger and callbacks (progress
bar, checkpoints, metrics, TensorBoard) on; the loop side is the textbook loop
with no logging at all. Between them, a bare LightningModule (the same network,
loss and optimizer, no metrics, callbacks or logger) on a bare Trainer shows
Lightning's own fixed cost per step. The loop runs before and after the project (a second
pass is faster: warm caches and allocator), and the first epoch of every run
is dropped as warm-up. Interference on a shared machine only ever adds time,
so the ratio compares the fastest epochs (medians are printed beside them).
Validation is timed apart.
"""

import argparse
import statistics
import tempfile
from pathlib import Path
from time import perf_counter

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import open_dict

from src.train import train
from src.utils.instantiate import build_model
from src.utils.resolvers import PROJECT_ROOT


def tight_loop(cfg, datamodule, epochs: int) -> list[dict[str, float]]:
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, datamodule)
    net, loss_fn = model.net, model.loss_fn
    optimizer = instantiate(cfg.optim, params=net.parameters())
    x, y = datamodule.data_train.x, datamodule.data_train.y
    xv, yv = datamodule.data_val.x, datamodule.data_val.y
    bs, ebs = cfg.data.batch_size, cfg.data.eval_batch_size
    history = []
    for _ in range(epochs):
        start = perf_counter()
        net.train()
        perm = torch.randperm(len(y))
        for i in range(0, len(y), bs):
            idx = perm[i : i + bs]
            loss = loss_fn(net(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        train_s = perf_counter() - start
        start = perf_counter()
        net.eval()
        with torch.no_grad():
            correct = sum(int((net(xv[i : i + ebs]).argmax(1) == yv[i : i + ebs]).sum()) for i in range(0, len(yv), ebs))
        history.append({"train_s": train_s, "val_s": perf_counter() - start, "samples": len(y), "val_acc": correct / len(yv)})
    return history


def bare_lightning(cfg, datamodule, epochs: int) -> list[dict[str, float]]:
    import lightning as L

    from src.callbacks.epoch_timer import EpochTimer

    torch.manual_seed(cfg.seed)
    model = build_model(cfg, datamodule)

    class Bare(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = model.net

        def training_step(self, batch, batch_idx):
            x, y = batch
            return model.loss_fn(self.net(x), y)

        def configure_optimizers(self):
            return instantiate(cfg.optim, params=self.parameters())

    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, callbacks=[timer],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0)
    trainer.fit(Bare(), train_dataloaders=datamodule.train_dataloader())
    return timer.history


def epochs(histories, key):
    return [h[key] for history in histories for h in (history[1:] or history)]  # drop warm-up epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for python -m src.train")
    args = parser.parse_args()

    with initialize_config_dir(version_base="1.3", config_dir=str(PROJECT_ROOT / "conf")):
        cfg = compose("train", overrides=[f"trainer.max_epochs={args.epochs}", "test=false", *args.overrides])
    out = Path(tempfile.mkdtemp(prefix="benchmark_"))
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; output in {out}")
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loop_before = tight_loop(cfg, datamodule, args.epochs)
    _, trainer = train(cfg)
    timer = next(c for c in trainer.callbacks if type(c).__name__ == "EpochTimer")
    bare = [bare_lightning(cfg, datamodule, args.epochs)]
    project, loop = [timer.history], [loop_before, tight_loop(cfg, datamodule, args.epochs)]

    samples = project[0][-1]["samples"]
    print(f"\n{cfg.model._target_.rsplit('.', 1)[-1]} on {cfg.data.name}: {samples} training samples, "
          f"batch {cfg.data.batch_size}, {args.epochs} epochs, loop run twice; epoch 1 of each run dropped")
    print(f"{'':22}{'best s/epoch':>13}{'samples/s':>11}{'median s':>10}{'val s':>8}")
    for name, h in (("project (src.train)", project), ("bare LightningModule", bare), ("plain PyTorch loop", loop)):
        t = min(epochs(h, "train_s"))
        print(f"{name:22}{t:13.3f}{samples / t:11.0f}{statistics.median(epochs(h, 'train_s')):10.3f}"
              f"{min(epochs(h, 'val_s')):8.3f}")
    best = {name: min(epochs(h, "train_s")) for name, h in (("project", project), ("loop", loop))}
    medians = {name: statistics.median(epochs(h, "train_s")) for name, h in (("project", project), ("loop", loop))}
    print(f"ratio project/loop: {best['project'] / best['loop']:.3f} (best epochs), "
          f"{medians['project'] / medians['loop']:.3f} (medians)")
    print(f"ratio bare LightningModule/loop: {min(epochs(bare, 'train_s')) / best['loop']:.3f} (best epochs)")


if __name__ == "__main__":
    main()
