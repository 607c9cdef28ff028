"""Seconds per epoch and samples/s of the project's training next to a bare LightningModule and a plain loop.

    python scripts/benchmark.py model=mlp data=fashion_mnist optim=sgd     # the seed MLP
    python scripts/benchmark.py experiment=mnist_fast accelerator=gpu     # the fast recipe on a GPU

All three train the same network with the same optimizer, schedule, batch
size, augmentation, precision and `compile`, on the configured accelerator, from the
project's in-memory training split (on the GPU: held on the GPU), in this one
process. The project side is `src.train.train` with the configured logger and
callbacks (progress bar, checkpoints, metrics, TensorBoard) on. The bare
LightningModule has the same network, loss, optimizer and schedule and the
project's DataModule, but no metrics, callbacks or logger, on a bare Trainer:
Lightning's own fixed cost per step. The plain loop is the textbook loop with
no logging at all. Each of the three runs `--repeats` times, alternated, and the first epoch
of every run is dropped as warm-up. Interference on a shared machine only ever adds time, so
the ratios compare the fastest epochs (medians are printed beside them).
Validation is timed apart. On a shared machine whose speed drifts, many short runs
(`--epochs 2 --repeats 10`) and the median of the alternated runs' ratios give the steadiest
figure. Prints one line `RESULT {json}` last, for scripts.
"""

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from time import perf_counter

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from src.data.augment import random_shift
from src.models.base import BaseModule, build_optimizer
from src.train import train
from src.utils.instantiate import instantiate_model
from src.utils.resolvers import PROJECT_ROOT


def _sync(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return perf_counter()


def _precision(cfg, device: torch.device) -> str:
    precision = str(cfg.trainer.precision)
    return "bf16-mixed" if device.type == "cpu" and precision in ("16-mixed", "16") else precision  # as Lightning does


def _autocast(precision: str, device: torch.device):
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16, "bf16": torch.bfloat16, "16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def tight_loop(cfg, datamodule, epochs: int, device: torch.device) -> list[dict[str, float]]:
    torch.manual_seed(cfg.seed)
    model = instantiate_model(cfg, datamodule)
    net, loss_fn = model.net.to(device), model.loss_fn
    if cfg.get("compile"):
        net.compile()
    x, y = datamodule.data_train.x.to(device), datamodule.data_train.y.to(device)
    xv, yv = datamodule.data_val.x.to(device), datamodule.data_val.y.to(device)
    bs, ebs = cfg.data.batch_size, cfg.data.eval_batch_size
    shift, fill = cfg.data.get("random_shift", 0), getattr(datamodule, "background", 0.0)
    optimizer = build_optimizer(OmegaConf.to_container(cfg.optim, resolve=True), net.parameters())
    scheduler, per_step = None, False
    if cfg.scheduler:
        sched_cfg = OmegaConf.to_container(cfg.scheduler, resolve=True)
        per_step = sched_cfg.pop("interval", "epoch") == "step"
        if sched_cfg.get("total_steps", 0) is None:
            sched_cfg["total_steps"] = epochs * -(-len(y) // bs)
        scheduler = instantiate(sched_cfg, optimizer=optimizer)
    precision = _precision(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision in ("16-mixed", "16"))  # as Lightning's
    history = []
    for _ in range(epochs):
        start = _sync(device)
        net.train()
        perm = torch.randperm(len(y), device=device)
        for i in range(0, len(y), bs):
            idx = perm[i : i + bs]
            xb = random_shift(x[idx], shift, fill) if shift else x[idx]
            with _autocast(precision, device):
                loss = loss_fn(net(xb), y[idx])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if per_step:
                scheduler.step()
        if scheduler is not None and not per_step:
            scheduler.step()
        train_s = _sync(device) - start
        start = perf_counter()
        net.eval()
        with torch.no_grad(), _autocast(precision, device):
            correct = sum(int((net(xv[i : i + ebs]).argmax(1) == yv[i : i + ebs]).sum()) for i in range(0, len(yv), ebs))
        history.append({"train_s": train_s, "val_s": _sync(device) - start, "samples": len(y), "val_acc": correct / len(yv)})
    return history


def bare_lightning(cfg, datamodule, epochs: int, trimmed: bool = False) -> list[dict[str, float]]:
    import lightning as L

    from src.callbacks.epoch_timer import EpochTimer
    from src.utils.profiler import NoProfiler

    torch.manual_seed(cfg.seed)
    model = instantiate_model(cfg, datamodule)
    if cfg.get("compile"):
        model.net.compile()

    class Bare(L.LightningModule):
        if trimmed:  # spared Lightning's slow set of the hook name, as the project's modules are
            __setattr__ = BaseModule.__setattr__

        def __init__(self):
            super().__init__()
            self.save_hyperparameters({"optim": model.hparams.optim, "scheduler": model.hparams.scheduler})
            self.net = model.net

        def training_step(self, batch, batch_idx):
            x, y = batch
            return model.loss_fn(self.net(x), y)

        configure_optimizers = BaseModule.configure_optimizers  # the same optimizer and schedule

    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=epochs, accelerator=cfg.trainer.accelerator, devices=1,
                        precision=cfg.trainer.precision, logger=False, callbacks=[timer], enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        profiler=NoProfiler() if trimmed else None)
    trainer.fit(Bare(), datamodule=datamodule)  # the project's batches, on the device, with its shifts
    return timer.history


def epochs(histories, key):
    return [h[key] for history in histories for h in (history[1:] or history)]  # drop warm-up epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each of the three, alternated")
    parser.add_argument("--trimmed-bare", action="store_true",
                        help="spare the bare LightningModule the two Lightning costs per hook call that the project "
                             "avoids (its do-nothing profiler, the hook name's slow attribute set): project / bare is "
                             "then what the project adds, not what it costs against Lightning as it comes")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for python -m src.train")
    args = parser.parse_args()

    with initialize_config_dir(version_base="1.3", config_dir=str(PROJECT_ROOT / "conf")):
        cfg = compose("train", overrides=[f"trainer.max_epochs={args.epochs}", "test=false", *args.overrides])
    if cfg.trainer.devices != 1 or cfg.trainer.num_nodes != 1:
        parser.error(f"trainer.devices={cfg.trainer.devices}, trainer.num_nodes={cfg.trainer.num_nodes}: the benchmark "
                     f"compares one process on one device; leave both at 1")
    out = Path(tempfile.mkdtemp(prefix="benchmark_"))

    def project_run(i: int):
        with open_dict(cfg):
            cfg.paths.output_dir = str(out / f"project_{i}")
        _, trainer = train(cfg)
        return trainer, next(c for c in trainer.callbacks if type(c).__name__ == "EpochTimer").history

    # The three alternate (project, loop, bare, project, loop, bare, ...): a machine whose speed drifts
    # (other jobs, clocks) then slows each about equally.
    trainer, first = project_run(0)  # first: it resolves the accelerator and loads the data reused below
    device, datamodule = trainer.strategy.root_device, trainer.datamodule
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "") + f"; output in {out}")
    project, loop, bare = [first], [], []
    for i in range(args.repeats):
        if i:
            project.append(project_run(i)[1])
        loop.append(tight_loop(cfg, datamodule, args.epochs, device))
        bare.append(bare_lightning(cfg, datamodule, args.epochs, args.trimmed_bare))

    samples = project[0][-1]["samples"]
    print(f"\n{cfg.model._target_.rsplit('.', 1)[-1]} on {cfg.data.get('name', cfg.data._target_)}: {samples} training "
          f"samples, batch {cfg.data.batch_size}, {args.epochs} epochs, precision {cfg.trainer.precision}, each run "
          f"{args.repeats}x, alternated; epoch 1 of each run dropped")
    print(f"{'':22}{'best s/epoch':>13}{'samples/s':>11}{'median s':>10}{'val s':>8}")
    runs = {"project": project, "bare": bare, "loop": loop}
    bare_label = "bare (trimmed)" if args.trimmed_bare else "bare LightningModule"
    for name, label in (("project", "project (src.train)"), ("bare", bare_label), ("loop", "plain PyTorch loop")):
        h = runs[name]
        t = min(epochs(h, "train_s"))
        print(f"{label:22}{t:13.3f}{samples / t:11.0f}{statistics.median(epochs(h, 'train_s')):10.3f}"
              f"{min(epochs(h, 'val_s')):8.3f}   epochs: {' '.join(f'{e:.3f}' for e in epochs(h, 'train_s'))}")
    best = {name: min(epochs(h, "train_s")) for name, h in runs.items()}
    medians = {name: statistics.median(epochs(h, "train_s")) for name, h in runs.items()}
    ratios = {"project/bare": best["project"] / best["bare"], "project/loop": best["project"] / best["loop"],
              "bare/loop": best["bare"] / best["loop"]}
    # Runs next to each other in time saw about the same machine: the median of their ratios is the
    # figure least moved by a machine whose speed drifts between runs.
    run_medians = {name: [statistics.median(e["train_s"] for e in (h[1:] or h)) for h in runs[name]] for name in runs}
    paired = {}
    for name, value in ratios.items():
        a, b = name.split("/")
        paired[name] = statistics.median(x / y for x, y in zip(run_medians[a], run_medians[b]))
        print(f"ratio {name}: {value:.3f} (best epochs), {medians[a] / medians[b]:.3f} (medians), "
              f"{paired[name]:.3f} (median of the {args.repeats} alternated runs' ratios)")
    print("RESULT " + json.dumps({"device": str(device), "samples": samples, "best_s": best, "median_s": medians,
                                  "ratios": ratios, "paired_ratios": paired}))


if __name__ == "__main__":
    main()
