"""Write a trained network as one file that runs without this project: ONNX, or torch.export's .pt2.

    python -m src.export ckpt_path=logs/train/runs/<time>/checkpoints/last.ckpt   # model.onnx
    python -m src.export ckpt_path=last format=pt2      # the newest last.ckpt under logs/train

The file maps raw inputs to answers in the data's units, the input normalisation included, for any
batch size: pixels in [0, 1] of shape (N, 1, 28, 28) (or feature rows) -> class probabilities, feature
rows -> the regression target, a VAE's latent codes z -> images. It is loaded back and compared with
the checkpoint on a test batch before the command succeeds. Written to logs/export/runs/<time>/, with
model.json, which says what its input and output are.
"""

from src.utils.program import preflight, program

preflight("export", __name__)  # a bad command line stops here, before the imports below take seconds

import inspect  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from hydra.utils import get_class  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from src.models.classifier import Classifier  # noqa: E402
from src.models.standalone import data_state, standalone  # noqa: E402
from src.models.vae import VAE  # noqa: E402
from src.utils.checkpoint import find_last, load_datamodule, load_model, read_checkpoint  # noqa: E402
from src.utils.errors import DataError, ExportError  # noqa: E402
from src.utils.resolvers import PROJECT_ROOT  # noqa: E402

TOLERANCE = 1e-4  # the largest difference from the checkpoint an export may show
ROWS = 256  # inputs in the check
# The example the network is traced with has 2 rows: torch.export treats a size of 1 as a constant.
BATCH = torch.export.Dim("batch")


def export(cfg: DictConfig) -> dict:
    """Write, reload and check the export of cfg.ckpt_path; return what model.json holds."""
    if cfg.ckpt_path == "last":  # every model src.train writes can be exported
        cfg.ckpt_path = str(find_last(cfg.paths.log_dir, "train"))
        print(f"ckpt_path=last: exporting {cfg.ckpt_path}")
    ckpt = read_checkpoint(cfg.ckpt_path)
    model = load_model(ckpt).eval()
    net = standalone(model, ckpt)
    inputs, expected, compared = check_batch(model, ckpt, cfg.paths)
    description = describe(model, ckpt)

    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"model.{cfg.format}"
    write, load = FORMATS[cfg.format]
    start = time.perf_counter()
    write(net, inputs[:2], path, description["input"]["name"], description["output"]["name"])
    seconds = time.perf_counter() - start
    run = load(path)
    # The whole batch and a single row: the batch dimension is not the traced example's 2.
    difference = max(largest_difference(run(x), y) for x, y in ((inputs, expected), (inputs[:1], expected[:1])))
    print(f"{path} written in {seconds:.1f} s; loaded back and compared with the checkpoint on {compared} "
          f"(and on its first row alone): largest difference {difference:.2g}")
    if difference > TOLERANCE:
        path.unlink()
        other = "pt2" if cfg.format == "onnx" else "onnx"
        raise ExportError(f"the {cfg.format} export of {cfg.ckpt_path} differs from the checkpoint by up to "
                          f"{difference:.2g} (more than {TOLERANCE:g}) on {compared}; it was removed. A fault of the "
                          f"exporter or of this project (please report it); format={other} may work")
    info = {"file": path.name, "format": cfg.format, "checkpoint": str(cfg.ckpt_path), **description,
            "largest_difference": difference, "compared_on": compared}
    (out / "model.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"what it takes and gives: {out / 'model.json'}")
    return info


def check_batch(model, ckpt: dict, paths: DictConfig) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(raw inputs, the checkpoint model's own answers to them, what they are). A classifier or a
    regression is run on its test split as its DataModule prepares it (normalised), the export on the
    same inputs in the data's units: the check covers the normalisation too."""
    g = torch.Generator().manual_seed(0)
    if isinstance(model, VAE):
        z = torch.randn(ROWS, model.z_dim, generator=g)
        with torch.no_grad():
            return z, model.decode(z).reshape(-1, *model.hparams.input_shape), f"{ROWS} latent codes z ~ N(0, I)"
    state = data_state(ckpt)
    mean, std = state["input_mean"].float(), state["input_std"].float()
    try:
        found = config_paths(ckpt, paths)  # e.g. Salary's csv_path, which the checkpoint does not keep
        if found:
            ckpt = {**ckpt, "datamodule_hyper_parameters": {**ckpt["datamodule_hyper_parameters"], **found}}
        datamodule = load_datamodule(ckpt, paths.data_dir)
        if "download" in datamodule.hparams:
            datamodule.hparams.download = False  # a check is not worth a download: random inputs do without
        datamodule.setup("test")
        seen = datamodule.data_test.x[:ROWS].float()
        compared = f"{len(seen)} rows of the test split" + "".join(f" of {v}" for v in found.values())
    except DataError as e:
        shape = ckpt["hyper_parameters"]["input_shape"]
        # Pixels in [0, 1]; feature rows spread as the training data was.
        raw = torch.rand(ROWS, *shape, generator=g) if len(shape) == 3 \
            else mean + std * torch.randn(ROWS, *shape, generator=g)
        seen = (raw - mean) / std
        compared = f"{ROWS} random inputs (the test data could not be loaded: {str(e).split('. ')[0]})"
    with torch.no_grad():
        if isinstance(model, Classifier):
            expected = model.probabilities(seen)
        else:
            expected = model(seen) * state["target_std"] + state["target_mean"]
    return seen * std + mean, expected, compared


def config_paths(ckpt: dict, paths: DictConfig) -> dict:
    """The files the checkpoint's DataModule needs and the checkpoint does not keep (Salary's csv_path: a
    path of the machine that trained it), where this project's data config puts them on this machine
    (conf/data/salary.yaml: under paths.root_dir), if they are there."""
    target = ckpt.get("datamodule_class")
    kept = ckpt.get("datamodule_hyper_parameters", {})
    for file in sorted((PROJECT_ROOT / "conf" / "data").glob("*.yaml")):
        data = OmegaConf.load(file)
        if data.get("_target_") != target:
            continue
        parameters = inspect.signature(get_class(target)).parameters
        needed = [n for n, p in parameters.items() if p.default is p.empty and n in data and n not in kept]
        # Resolved as the config is in a run: ${paths.root_dir} with this command's paths.
        data = OmegaConf.create({"paths": paths, "data": data}).data
        found = {n: data[n] for n in needed}
        # A file that is not there: load_datamodule's message says what the checkpoint does not keep.
        return found if all(Path(v).is_file() for v in found.values()) else {}
    return {}


def largest_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """The largest absolute difference, relative for outputs larger than 1: a regression in the data's
    units (salaries of 1e5) differs by float32's rounding, 1e-7 of its size, whatever runs it."""
    if actual.shape != expected.shape:
        raise ExportError(f"the export gives outputs of shape {tuple(actual.shape)}, the checkpoint {tuple(expected.shape)}")
    return float(((actual - expected).abs() / expected.abs().clamp(min=1)).max())


def describe(model, ckpt: dict) -> dict:
    """The input and output of the exported network, for someone who runs the file elsewhere."""
    shape = ["N", *ckpt["hyper_parameters"]["input_shape"]]
    if isinstance(model, VAE):
        return {"input": {"name": "z", "shape": ["N", model.z_dim], "dtype": "float32",
                          "meaning": "latent codes; z ~ N(0, I) gives new images"},
                "output": {"name": "images", "shape": shape, "dtype": "float32", "meaning": "pixels in [0, 1]"}}
    state = data_state(ckpt)
    if len(shape) == 4:
        given = {"name": "images", "shape": shape, "dtype": "float32",
                 "meaning": "pixels in [0, 1] (0 black, 1 white), not normalised"}
    else:
        given = {"name": "features", "shape": shape, "dtype": "float32",
                 "meaning": f"rows of {', '.join(state['feature_names'])}, in the data's units"}
    if isinstance(model, Classifier):
        return {"input": given, "classes": state["classes"],
                "output": {"name": "probabilities", "shape": ["N", len(state["classes"])], "dtype": "float32",
                           "meaning": "the probability of each class, in the order of classes"}}
    return {"input": given, "output": {"name": "prediction", "shape": ["N", 1], "dtype": "float32",
                                       "meaning": f"{state['target_name']}, in the data's units"}}


def write_onnx(net: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str) -> None:
    import onnx

    for name in ("onnxscript", "onnx_ir"):  # their optimiser logs each pass at INFO, which Hydra would print
        logging.getLogger(name).setLevel(logging.WARNING)
    # dynamo=True: torch's current exporter (through torch.export, written with onnxscript). The weights
    # inside the file (external_data=False): one file to hand on; the models here are far below ONNX's 2 GB.
    torch.onnx.export(net, (example,), path, dynamo=True, external_data=False, input_names=[input_name],
                      output_names=[output_name], dynamic_shapes=({0: BATCH},), verbose=False)
    onnx.checker.check_model(str(path), full_check=True)


def load_onnx(path: Path):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def write_pt2(net: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str) -> None:
    # (No names: a .pt2 module takes its input by position.)
    torch.export.save(torch.export.export(net, (example,), dynamic_shapes=({0: BATCH},)), path)


def load_pt2(path: Path):
    module = torch.export.load(path).module()

    def run(x):
        with torch.no_grad():
            return module(x)

    return run


FORMATS = {"onnx": (write_onnx, load_onnx), "pt2": (write_pt2, load_pt2)}


@program("export")
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
