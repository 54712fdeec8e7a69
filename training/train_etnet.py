"""Train ETNet on the synthesised expression pairs.

    python -m jr2net.training.synth_expressions --out out/cache/expression_pairs                 # once
    python -m jr2net.training.synth_expressions --split validation --out out/cache/expression_pairs_val
    python -m jr2net.training.train_etnet --set steps=3000                                      # then train

Settings are :class:`ETNetTrainConfig` fields, changed with ``--set NAME=VALUE``. Each step draws a
batch of training pairs, mirrors half of them left to right (the expression's left and right
weights swapped: :class:`jr2net.mirror.FaceMirror`), jitters brightness and contrast, and takes an
AdamW step on the activation loss (:func:`jr2net.nets.etnet.activation_loss`). The run writes
``<out>/log.jsonl`` (the loss; on the validation people's pairs, the mean absolute expression
error over all, large and ordinary expressions), a resumable ``<out>/checkpoint.pt``
(``--set resume=true``) and the fp16 EMA weights ``<out>/etnet.pt``. ``--set
architecture=recnet_head --set input_size=224`` trains a head on RecNet's frozen backbone
(``--set recnet=FILE``, default the shipped RecNet), which RecAugNet runs at RecNet's cost.

With ``--set landmark_weight=W`` (a ``recnet_head`` only) each step also draws real training crops
(``--set crops=FILE``, RecNet's crop cache: ``python -m jr2net.training.crop_cache``), augmented as
RecNet's training augments them, and adds W times RecNet's landmark term on RecAugNet's output for
them: RecNet's identity and pose with the head's expression against MediaPipe's landmarks. Without
it the head learns the synthesised pairs' expressions at the cost of the landmarks of real faces.
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
from torch import Tensor
from tqdm import tqdm

from jr2net.face_model import FaceModel
from jr2net.mirror import FaceMirror
from jr2net.nets.checkpoint import load_weights
from jr2net.nets.etnet import ETNet, activation_loss, check_head_input, save_etnet
from jr2net.nets.recaugnet import RecAugNet
from jr2net.nets.recnet import RecNet, albedo_basis
from jr2net.params import ParamLayout
from jr2net.provenance import checkout_commit
from jr2net.training import settings
from jr2net.training.crop_cache import DEFAULT_CACHE
from jr2net.training.crop_dataset import CropDataset
from jr2net.training.expression_pairs import PairSet
from jr2net.training.optimisation import parameter_groups, pick_device, warmup_cosine, weight_average
from jr2net.training.recnet_losses import LossWeights, RecNetLosses
from jr2net.training.run_files import append_record, resume_or_start, write_checkpoint
from jr2net.training.synth_expressions import DEFAULT_OUT


@dataclass(frozen=True)
class ETNetTrainConfig:
    """Everything an ETNet training run depends on."""

    pairs: Path = DEFAULT_OUT
    validation_pairs: Path = Path(f"{DEFAULT_OUT}_val")
    out: Path = Path("out/train_etnet")
    architecture: str = "small"
    input_size: int = 160  # crops are resized to this (the pairs are stored at 224; 224 for recnet_head)
    recnet: Path | None = (
        None  # the RecNet a recnet_head ETNet is a head on (default: $JR2NET_RECNET or shipped)
    )
    steps: int = 3000
    batch_size: int = 32
    learning_rate: float = 1e-3
    learning_rate_floor: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    ema_decay: float = 0.995
    brightness: float = 0.15
    contrast: float = 0.15
    seed: int = 0
    log_every: int = 25
    validate_every: int = 250
    device: str = "auto"
    threads: int = 0
    resume: bool = False
    landmark_weight: float = 0.0  # RecNet's landmark term on real crops (a recnet_head only; 0: off)
    crops: Path = DEFAULT_CACHE
    landmark_batch: int = 32


class RealCropLandmarks:
    """RecNet's landmark term on real training crops, for a ``recnet_head`` ETNet: RecAugNet (the
    head's RecNet with the head) decodes each crop, and :meth:`RecNetLosses.landmark` scores it."""

    def __init__(
        self, model: FaceModel, mirror: FaceMirror, recnet: RecNet, head: ETNet, config: ETNetTrainConfig
    ) -> None:
        self.crops = CropDataset(config.crops, "train", mirror=mirror)
        self.recaugnet = RecAugNet(recnet.eval().requires_grad_(False), head, config.input_size)
        self.losses = RecNetLosses(model, albedo_basis(model.neutral), LossWeights(), render_size=1)
        self.batch_size = config.landmark_batch

    def term(self, rng: np.random.Generator, device: torch.device) -> Tensor:
        """The term on a batch of augmented crops drawn with ``rng`` (a scalar)."""
        batch = self.crops.batch(self.crops.draw(rng, self.batch_size), rng=rng)
        predicted = self.recaugnet.decode(self.recaugnet(batch.images.to(device)))
        return self.losses.landmark(predicted, batch)


def augment(
    images: Tensor, betas: Tensor, mirror: FaceMirror, config: ETNetTrainConfig, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Half the batch mirrored (left and right expressions swapped), brightness and contrast jittered."""
    flip = torch.rand(len(images), generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    betas = torch.where(flip[:, None], mirror.mirror_expression(betas), betas)
    gain = 1 + config.contrast * (2 * torch.rand(len(images), 1, 1, 1, generator=generator) - 1)
    shift = config.brightness * (2 * torch.rand(len(images), 1, 1, 1, generator=generator) - 1)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return ((images - mean) * gain + mean + shift).clamp(0, 1), betas


@torch.no_grad()
def expression_errors(
    net: torch.nn.Module, pairs: PairSet, size: int, device: torch.device, batch_size: int = 64
) -> dict[str, float]:
    """Mean absolute expression error (over the E weights) on every pair: all, large and ordinary."""
    net.eval()
    errors = []
    for start in range(0, len(pairs), batch_size):
        images, betas = pairs.batch(np.arange(start, min(start + batch_size, len(pairs))), size)
        errors.append((net(images.to(device)).cpu() - betas).abs().mean(dim=1))
    net.train()
    error = torch.cat(errors).numpy()
    return {
        "expression_mae": float(error.mean()),
        "expression_mae_large": float(error[pairs.large].mean()) if pairs.large.any() else float("nan"),
        "expression_mae_ordinary": float(error[~pairs.large].mean())
        if (~pairs.large).any()
        else float("nan"),
    }


def train(config: ETNetTrainConfig, command: str = "") -> Path:
    """Run training; returns the path of the fp16 weights."""
    commit = checkout_commit()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    model = FaceModel.load()
    mirror = FaceMirror.of(model)
    train_pairs, validation_pairs = PairSet(config.pairs), PairSet(config.validation_pairs)
    net = ETNet(model.expression_count, config.architecture)
    recnet = None
    if net.shares_recnet_backbone:
        check_head_input(config.input_size)
        recnet = load_weights(config.recnet, ParamLayout.of(model))
        net.adopt_recnet(recnet)
    elif config.landmark_weight:
        raise ValueError(
            "landmark_weight needs architecture=recnet_head: the term decodes RecNet's identity and "
            "pose with the head's expression"
        )
    net = net.to(device)
    landmarks = None
    if config.landmark_weight and recnet is not None:
        landmarks = RealCropLandmarks(model, mirror, recnet.to(device), net, config)
    optimiser = torch.optim.AdamW(parameter_groups(net, config.weight_decay), lr=config.learning_rate)
    average = weight_average(net, config.ema_decay)
    config.out.mkdir(parents=True, exist_ok=True)
    checkpoint, log = config.out / "checkpoint.pt", config.out / "log.jsonl"
    first = 0
    saved = resume_or_start(checkpoint, log, config.resume, device)
    if saved is not None:
        net.load_state_dict(saved["net"])
        optimiser.load_state_dict(saved["optimiser"])
        if average is not None:
            average.load_state_dict(saved["average"])
        rng.bit_generator.state, first = saved["rng"], saved["step"]
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
    evaluated = average.module if average is not None else net
    started = time.monotonic()
    for step in tqdm(range(first, config.steps), initial=first, total=config.steps, desc="ETNet"):
        for group in optimiser.param_groups:
            group["lr"] = warmup_cosine(
                config.learning_rate, config.learning_rate_floor, config.warmup_steps, config.steps, step
            )
        images, betas = train_pairs.batch(
            rng.choice(len(train_pairs), config.batch_size, replace=False), config.input_size
        )
        images, betas = augment(images, betas, mirror, config, generator)
        loss = activation_loss(net(images.to(device)), betas.to(device))
        terms = {"activation": loss.item()}
        if landmarks is not None:
            landmark = landmarks.term(rng, device)
            terms["landmark"] = landmark.item()
            loss = loss + config.landmark_weight * landmark
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if average is not None:
            average.update_parameters(net)
        last = step + 1 == config.steps
        if step % config.log_every == 0 or last:
            record = {
                "step": step,
                "loss": loss.item(),
                **terms,
                "lr": optimiser.param_groups[0]["lr"],
                "seconds": time.monotonic() - started,
            }
            if step % config.validate_every == 0 or last:
                record |= expression_errors(evaluated, validation_pairs, config.input_size, device)
            append_record(log, record)
        if (step + 1) % config.validate_every == 0 or last:
            state = {
                "net": net.state_dict(),
                "optimiser": optimiser.state_dict(),
                "rng": rng.bit_generator.state,
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "step": step + 1,
            }
            if average is not None:
                state["average"] = average.state_dict()
            write_checkpoint(state, checkpoint)
    weights = config.out / "etnet.pt"
    provenance = {
        "command": command,
        "commit": commit,
        "config": {k: str(v) for k, v in dataclasses.asdict(config).items()},
        "train_pairs": len(train_pairs),
        "validation_pairs": len(validation_pairs),
        "torch": str(torch.__version__),
        "machine": platform.machine(),
        "seconds": time.monotonic() - started,
        "validation": expression_errors(evaluated, validation_pairs, config.input_size, device),
    }
    save_etnet(evaluated, weights, provenance)
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="change a setting")
    args = parser.parse_args()
    config = settings.configure(ETNetTrainConfig(), args.set)
    weights = train(config, " ".join(sys.argv))
    print(f"wrote {weights}")


if __name__ == "__main__":
    main()
