"""Train RecNet on the cached crops of the training media.

    python -m jr2net.training.crop_cache                      # once: crops, landmarks, fitter targets
    python -m jr2net.training.train_recnet --set steps=3000   # then train (CPU or CUDA)

Settings are :class:`TrainConfig` fields, changed with ``--set NAME=VALUE`` (repeatable). The run
writes ``<out>/log.jsonl`` (one JSON line per logged step and per validation), a resumable
``<out>/checkpoint.pt`` every ``checkpoint_every`` steps and at the end, and the fp16 weights
``<out>/recnet_<architecture>.pt`` that ``jr2net reconstruct --method recnet`` reads.
``--set resume=true`` continues from the checkpoint; ``--set init=FILE`` starts a new run from
those weights (a file written by a run, its provenance is kept) instead of a random
initialisation. Seeds are fixed; AMP (bf16) is used on CUDA. With ``ema_decay`` above 0 the
validated and saved network is an exponential moving average of the trained one's weights.
``--set swaps=FILE[,FILE...]`` adds the identity swaps of :mod:`jr2net.training.identity_swap`
to the training crops, ``swap_share`` of the draws. ``--set expression_pairs=FOLDER`` adds a batch
of ``expression_pairs_batch`` synthesised expression pairs (:mod:`jr2net.training.synth_expressions`,
training people only) to every step, their decoded expression supervised by their β_gt with the
activation loss (``expression_pairs_weight``): the paper's semi-supervised baseline of Table 4.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from jr2net.face_model import FaceModel
from jr2net.mirror import FaceMirror
from jr2net.nets.checkpoint import load_weights, provenance, save_weights
from jr2net.nets.etnet import activation_loss
from jr2net.nets.recnet import CROP_SIZE, RecNet, albedo_basis
from jr2net.params import ParamLayout
from jr2net.provenance import checkout_commit
from jr2net.training import settings
from jr2net.training.crop_augmentation import Augmentation
from jr2net.training.crop_cache import DEFAULT_CACHE
from jr2net.training.crop_dataset import CropDataset
from jr2net.training.expression_pairs import PairSet
from jr2net.training.optimisation import parameter_groups, pick_device, warmup_cosine, weight_average
from jr2net.training.recnet_losses import LossWeights, RecNetLosses
from jr2net.training.run_files import append_record, resume_or_start, run_origin, write_checkpoint


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on."""

    cache: Path = DEFAULT_CACHE
    out: Path = Path("out/train_recnet")
    architecture: str = "small"
    steps: int = 3000
    batch_size: int = 16
    learning_rate: float = 2e-3
    learning_rate_floor: float = 0.05  # where the cosine decay ends, as a fraction of learning_rate
    weight_decay: float = 1e-4  # on the conv and linear weights only (:func:`parameter_groups`)
    warmup_steps: int = 100
    gradient_clip: float = 5.0  # the largest global norm of the gradients
    render_size: int = 112
    weights: LossWeights = dataclasses.field(default_factory=LossWeights)
    seed: int = 0
    log_every: int = 25
    validate_every: int = 250
    validation_crops: int = 256
    checkpoint_every: int = 250
    device: str = "auto"
    threads: int = 0
    resume: bool = False
    init: Path | None = None
    mirror: bool = True
    group_balance: float = 0.5
    augmentation: Augmentation = dataclasses.field(default_factory=Augmentation)
    ema_decay: float = 0.0
    swaps: tuple[Path, ...] = ()
    swap_share: float = 0.5
    expression_pairs: Path | None = None  # synthesised pairs supervised on their β_gt (Table 4's baseline)
    expression_pairs_batch: int = 8
    expression_pairs_weight: float = 1.0


def configure(overrides: list[str], base: TrainConfig = TrainConfig()) -> TrainConfig:
    """``base`` with ``NAME=VALUE`` overrides; loss weights as ``weights.NAME=VALUE``, augmentation
    strengths as ``augmentation.NAME=VALUE``."""
    return settings.configure(base, overrides)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to ``learning_rate_floor`` of the peak."""
    return warmup_cosine(
        config.learning_rate, config.learning_rate_floor, config.warmup_steps, config.steps, step
    )


def _to(batch: object, device: torch.device) -> object:
    return type(batch)(**{f.name: getattr(batch, f.name).to(device) for f in dataclasses.fields(batch)})


def _expression_pair_loss(
    net: RecNet, pairs: PairSet, count: int, rng: np.random.Generator, device: torch.device
) -> torch.Tensor:
    """The activation loss of RecNet's decoded expression against β_gt on ``count`` random pairs."""
    images, betas = pairs.batch(rng.choice(len(pairs), count, replace=False), CROP_SIZE)
    return activation_loss(net.decode(net(images.to(device)).float()).expression, betas.to(device))


@torch.no_grad()
def validate(
    net: RecNet, losses: RecNetLosses, data: CropDataset, config: TrainConfig, device: torch.device
) -> dict:
    """Mean loss terms over up to ``validation_crops`` validation crops (eval mode)."""
    net.eval()
    count = min(len(data), config.validation_crops)
    sums: dict[str, float] = {}
    for start in range(0, count, config.batch_size):
        batch = _to(data.batch(np.arange(start, min(start + config.batch_size, count))), device)
        terms = losses(net.decode(net(batch.images)), batch, net.base_light)
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value) * len(batch.images)
    net.train()
    return {name: value / count for name, value in sums.items()}


def train(config: TrainConfig, command: str = "") -> Path:
    """Run training; returns the path of the fp16 weights."""
    commit = checkout_commit()  # the code that trains, before anyone edits the checkout during the run
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # denormal gradients once slowed a resumed CPU run six-fold
    model = FaceModel.load().to(device)
    mirror = FaceMirror.of(model) if config.mirror else None
    train_data = CropDataset(
        config.cache,
        "train",
        config.render_size,
        mirror,
        config.augmentation,
        config.swaps,
        config.swap_share if config.swaps else 0.0,
    )
    validation_data = CropDataset(config.cache, "validation", config.render_size)
    expression_pairs = None if config.expression_pairs is None else PairSet(config.expression_pairs)
    net = RecNet(ParamLayout.of(model), config.architecture).to(device)
    losses = RecNetLosses(model, albedo_basis(model.neutral), config.weights, config.render_size)
    optimizer = torch.optim.AdamW(parameter_groups(net, config.weight_decay), lr=config.learning_rate)
    config.out.mkdir(parents=True, exist_ok=True)
    checkpoint_path, log_path = config.out / "checkpoint.pt", config.out / "log.jsonl"
    step = 0
    saved = resume_or_start(checkpoint_path, log_path, config.resume, device)
    origin = run_origin(saved, config.init, provenance)
    if saved is not None:
        net.load_state_dict(saved["net"])
        optimizer.load_state_dict(saved["optimizer"])
        step, rng = saved["step"], saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
    elif config.init is not None:
        start = load_weights(config.init, ParamLayout.of(model))
        if start.architecture != config.architecture:
            raise ValueError(
                f"init={config.init} holds a {start.architecture} RecNet; "
                f"this run trains {config.architecture}"
            )
        net.load_state_dict(start.state_dict())
    average = weight_average(net, config.ema_decay)
    if config.resume and average is not None:
        if "average" not in saved:
            raise ValueError(f"{checkpoint_path} holds no weight average; resume it with ema_decay=0")
        average.load_state_dict(saved["average"])
    evaluated = net if average is None else average.module

    def save_checkpoint() -> None:
        state = {"net": net.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
        if average is not None:
            state["average"] = average.state_dict()
        state |= {
            "rng": rng,
            "torch_rng": torch.get_rng_state(),
            "config": dataclasses.asdict(config),
            "init": origin,
        }
        write_checkpoint(state, checkpoint_path)

    def log(record: dict) -> None:
        append_record(log_path, record)

    log(
        {
            "event": "start",
            "step": step,
            "config": dataclasses.asdict(config),
            "command": command,
            "init": origin,
            "train_crops": len(train_data),
            "validation_crops": len(validation_data),
            "device": str(device),
        }
    )
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    net.train()
    started = time.perf_counter()
    with tqdm(total=config.steps, initial=step, desc="train recnet") as bar:
        while step < config.steps:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            batch = _to(train_data.sample(rng, config.batch_size, config.group_balance), device)
            with amp:
                raw = net(batch.images)
            terms = losses(net.decode(raw.float()), batch, net.base_light)
            if expression_pairs is not None:
                terms["expression_pairs"] = config.expression_pairs_weight * _expression_pair_loss(
                    net, expression_pairs, config.expression_pairs_batch, rng, device
                )
                terms["total"] = terms["total"] + terms["expression_pairs"]
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            nn.utils.clip_grad_norm_(net.parameters(), config.gradient_clip)
            optimizer.step()
            if average is not None:
                average.update_parameters(net)
            step += 1
            bar.update()
            if step % config.log_every == 0 or step == config.steps:
                values = {name: round(value.item(), 6) for name, value in terms.items()}
                bar.set_postfix(loss=values["total"], landmark=values["landmark"])
                log(
                    {
                        "event": "train",
                        "step": step,
                        "lr": learning_rate(config, step - 1),
                        "seconds": round(time.perf_counter() - started, 1),
                        **values,
                    }
                )
            if step % config.validate_every == 0 or step == config.steps:
                log(
                    {
                        "event": "validation",
                        "step": step,
                        **validate(evaluated, losses, validation_data, config, device),
                    }
                )
            if step % config.checkpoint_every == 0 or step == config.steps:
                save_checkpoint()
    weights = config.out / f"recnet_{config.architecture}.pt"
    save_weights(
        evaluated.cpu(),
        weights,
        {
            "command": command,
            "commit": commit,
            "steps": step,
            "train_crops": len(train_data),
            "torch": str(torch.__version__),
            "python": platform.python_version(),
            "device": str(device),
            "init": origin,
        },
    )
    return weights


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="change a TrainConfig field"
    )
    args = parser.parse_args(argv)
    try:
        config = configure(args.set)
    except ValueError as error:
        parser.error(str(error))
    command = " ".join(["python -m jr2net.training.train_recnet", *sys.argv[1:]] if argv is None else argv)
    print(f"wrote {train(config, command)}")


if __name__ == "__main__":
    main()
