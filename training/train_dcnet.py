"""Train DCNet on the cached same-identity pairs of the training media.

    python -m jr2net.training.dcnet_pairs                    # once: pairs, conditions, true crops
    python -m jr2net.training.train_dcnet --set steps=3000   # then train (CPU or CUDA)

Settings are :class:`DCNetTrainConfig` fields, changed with ``--set NAME=VALUE`` (nested:
``weights.l1=5``, ``network.generator_widths=64,32,16``). The generator learns L1 on the crop
and inside the face, plus, from ``adversarial_start`` on, hinge adversarial and feature-matching
terms of a PatchGAN discriminator, and a VGG-19 perceptual term when ``vgg=FILE`` gives its
weights. The run writes ``<out>/log.jsonl`` (training terms, validation PSNR on the held-out
people beside the warped and the static source), sample grids ``<out>/samples/step_N.png``
(source | warped | generated | true | mask), a resumable ``<out>/checkpoint.pt``
(``--set resume=true``) and the fp16 EMA weights ``<out>/dcnet.pt`` that ``--refiner dcnet`` reads;
``--set init=FILE`` starts a new run from such weights (one without ``network.moved_background``
may start a run with it: the second mask's share starts at a half).
``--set ablation=dense|no_light|rendered`` trains a Table 5 variant that leaves the warped image
or the light maps out, or takes the rendered face in place of the light and normal maps
(:data:`jr2net.training.dcnet_data.ABLATIONS`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from tqdm import tqdm

from jr2net.nets.dcnet import DCNet, DCNetConfig, background
from jr2net.nets.dcnet_checkpoint import dcnet_provenance, save_dcnet, starting_state
from jr2net.provenance import checkout_commit
from jr2net.training import settings
from jr2net.training.dcnet_data import ABLATIONS, WITHOUT_WARPED_IMAGE, PairBatch, PairDataset
from jr2net.training.dcnet_losses import (
    DCNetLossWeights,
    PatchDiscriminator,
    VGG19Features,
    composite,
    discriminator_loss,
    generator_terms,
)
from jr2net.training.dcnet_pairs import DEFAULT_PAIRS
from jr2net.training.optimisation import parameter_groups, pick_device, warmup_cosine, weight_average
from jr2net.training.run_files import append_record, resume_or_start, run_origin, write_checkpoint


@dataclass(frozen=True)
class DCNetTrainConfig:
    """Everything a DCNet training run depends on."""

    pairs: Path = DEFAULT_PAIRS
    out: Path = Path("out/train_dcnet")
    network: DCNetConfig = dataclasses.field(default_factory=DCNetConfig)
    weights: DCNetLossWeights = dataclasses.field(default_factory=DCNetLossWeights)
    steps: int = 3000
    batch_size: int = 8
    learning_rate: float = 5e-4
    discriminator_learning_rate: float = 2e-4
    learning_rate_floor: float = 0.1  # where the cosine decay ends, as a fraction of the peak
    warmup_steps: int = 100
    weight_decay: float = 1e-4  # on the conv weights only
    gradient_clip: float = 5.0
    adversarial_start: int = 1000  # steps of L1 alone before the discriminator joins
    ema_decay: float = 0.999
    vgg: Path | None = None
    ablation: str = "none"  # a Table 5 variant (jr2net.training.dcnet_data.ABLATIONS)
    mirror: bool = True
    seed: int = 0
    log_every: int = 25
    validate_every: int = 250
    validation_pairs: int = 96
    sample_every: int = 500
    checkpoint_every: int = 250
    device: str = "auto"
    threads: int = 0
    resume: bool = False
    init: Path | None = None  # start from these weights (a dcnet.pt), not from scratch
    exclude: tuple[str, ...] = ()  # collections (file-name prefixes) no split holds: a decision set
    keep_shown_mouth: bool = False  # the warped source where the source showed the mouth open, as rendered


def psnr(output: Tensor, truth: Tensor, mask: Tensor | None = None) -> Tensor:
    """(B,) PSNR in dB of images in [0, 1], over the whole image or inside ``mask`` (B, 1, H, W)."""
    error = (output - truth) ** 2
    if mask is None:
        mse = error.mean(dim=(1, 2, 3))
    else:
        mse = (error * mask).sum(dim=(1, 2, 3)) / (3 * mask.sum(dim=(1, 2, 3))).clamp(min=1)
    return -10 * torch.log10(mse.clamp(min=1e-10))


def generate(net: nn.Module, batch: PairBatch, keep_shown_mouth: bool = False) -> tuple[Tensor, Tensor]:
    """``(composited crop, alpha (B, 1, S, S))``: the generated crop over the source crop (or over
    its share of the warped source, :func:`jr2net.nets.dcnet.background`); with
    ``keep_shown_mouth``, the warped source where the source showed the target's mouth open
    (:attr:`PairBatch.shown_mouth`), as :class:`jr2net.dcnet_renderer.DCNetRenderer` renders it."""
    image, masks = net(batch.texture, batch.conditions, batch.grid)
    if keep_shown_mouth:
        kept = batch.shown_mouth
        image = image * (1 - kept) + batch.conditions[:, :3] * kept
    alpha = masks[:, :1]
    under = background(masks, batch.conditions[:, :3], batch.source_image)
    return composite(image, alpha, under), alpha


@torch.no_grad()
def validate(net: nn.Module, data: PairDataset, config: DCNetTrainConfig, device: torch.device) -> dict:
    """Mean crop and face PSNR of DCNet, the warped source and the static source on held-out pairs."""
    net.eval()
    count = min(len(data), config.validation_pairs)
    scores: dict[str, list[Tensor]] = {}
    for start in range(0, count, config.batch_size):
        batch = data.batch(np.arange(start, min(start + config.batch_size, count))).to(device)
        output, _ = generate(net, batch.ablated(config.ablation), config.keep_shown_mouth)
        candidates = {"dcnet": output, "warped": batch.conditions[:, :3], "static": batch.source_image}
        for name, image in candidates.items():
            scores.setdefault(f"{name}_psnr", []).append(psnr(image, batch.truth))
            scores.setdefault(f"{name}_face_psnr", []).append(psnr(image, batch.truth, batch.mask))
    net.train()
    return {name: round(float(torch.cat(values).mean()), 3) for name, values in scores.items()}


@torch.no_grad()
def save_samples(net: nn.Module, batch: PairBatch, path: Path, keep_shown_mouth: bool = False) -> None:
    """A PNG grid, a row per pair: source | warped | generated | true | blending mask."""
    net.eval()
    output, alpha = generate(net, batch, keep_shown_mouth)
    net.train()
    columns = [batch.source_image, batch.conditions[:, :3], output, batch.truth, alpha.expand(-1, 3, -1, -1)]
    rows = torch.cat([torch.cat(list(column), dim=-2) for column in columns], dim=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rows.clamp(0, 1) * 255 + 0.5).byte().permute(1, 2, 0).cpu().numpy()).save(path)


def train(config: DCNetTrainConfig, command: str = "") -> Path:
    """Run training; returns the path of the fp16 EMA weights."""
    commit = checkout_commit()  # the code that trains, before anyone edits the checkout during the run
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    if device.type == "cpu":
        torch.set_flush_denormal(True)
    if config.ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {config.ablation!r}; choose from {sorted(ABLATIONS)}")
    if config.ablation in WITHOUT_WARPED_IMAGE and config.network.keep_seen_source:
        raise ValueError(
            f"the {config.ablation!r} ablation has no warped image to keep where the source saw the "
            "target: add --set network.keep_seen_source=false"
        )
    if config.ablation in WITHOUT_WARPED_IMAGE and config.network.moved_background:
        raise ValueError(f"the {config.ablation!r} ablation has no warped image to show under the blend")
    if config.ablation in WITHOUT_WARPED_IMAGE and config.keep_shown_mouth:
        raise ValueError(f"the {config.ablation!r} ablation has no warped image to keep in the mouth")
    train_data = PairDataset(config.pairs, "train", config.exclude)
    validation_data = PairDataset(config.pairs, "validation", config.exclude)
    if not len(train_data) or not len(validation_data):
        raise ValueError(
            f"{config.pairs}: {len(train_data)} training and {len(validation_data)} validation pairs"
        )
    net = DCNet(config.network).to(device)
    discriminator = PatchDiscriminator().to(device)
    vgg = None if config.vgg is None else VGG19Features(config.vgg).to(device)
    optimizer = torch.optim.AdamW(
        parameter_groups(net, config.weight_decay), lr=config.learning_rate, betas=(0.5, 0.999)
    )
    discriminator_optimizer = torch.optim.AdamW(
        discriminator.parameters(), lr=config.discriminator_learning_rate, betas=(0.5, 0.999)
    )
    sample_indices = np.arange(min(4, len(validation_data)))
    sample_batch = validation_data.batch(sample_indices).ablated(config.ablation).to(device)
    config.out.mkdir(parents=True, exist_ok=True)
    checkpoint_path, log_path = config.out / "checkpoint.pt", config.out / "log.jsonl"
    step = 0
    saved = resume_or_start(checkpoint_path, log_path, config.resume, device)
    origin = run_origin(saved, config.init, dcnet_provenance)
    if saved is None and config.init is not None:
        net.load_state_dict(starting_state(config.init, config.network))
    average = weight_average(net, config.ema_decay)
    if saved is not None:
        net.load_state_dict(saved["net"])
        discriminator.load_state_dict(saved["discriminator"])
        optimizer.load_state_dict(saved["optimizer"])
        discriminator_optimizer.load_state_dict(saved["discriminator_optimizer"])
        if average is not None:
            average.load_state_dict(saved["average"])
        step, rng = saved["step"], saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
    evaluated = net if average is None else average.module

    def save_checkpoint() -> None:
        state = {
            "net": net.state_dict(),
            "discriminator": discriminator.state_dict(),
            "optimizer": optimizer.state_dict(),
            "discriminator_optimizer": discriminator_optimizer.state_dict(),
            "step": step,
            "rng": rng,
            "torch_rng": torch.get_rng_state(),
            "config": dataclasses.asdict(config),
            "init": origin,
        }
        if average is not None:
            state["average"] = average.state_dict()
        write_checkpoint(state, checkpoint_path)

    def log(record: dict) -> None:
        append_record(log_path, record)

    log(
        {
            "event": "start",
            "step": step,
            "config": dataclasses.asdict(config),
            "command": command,
            "commit": commit,
            "init": origin,
            "train_pairs": len(train_data),
            "validation_pairs": len(validation_data),
            "device": str(device),
        }
    )
    started = time.perf_counter()
    net.train()
    with tqdm(total=config.steps, initial=step, desc="train dcnet") as bar:
        while step < config.steps:
            rate = warmup_cosine(1.0, config.learning_rate_floor, config.warmup_steps, config.steps, step)
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate * rate
            for group in discriminator_optimizer.param_groups:
                group["lr"] = config.discriminator_learning_rate * rate
            batch = (
                train_data.sample(rng, config.batch_size, config.mirror).ablated(config.ablation).to(device)
            )
            output, alpha = generate(net, batch, config.keep_shown_mouth)
            fake = real_features = None
            terms: dict[str, Tensor] = {}
            if step >= config.adversarial_start:
                real_logits, real_features = discriminator(batch.truth, batch.conditions)
                fake_logits, _ = discriminator(output.detach(), batch.conditions)
                loss = discriminator_loss(real_logits, fake_logits)
                discriminator_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                discriminator_optimizer.step()
                real_features = [feature.detach() for feature in real_features]
                fake = discriminator(output, batch.conditions)
                terms["discriminator"] = loss.detach()
            terms |= generator_terms(
                output, alpha, batch.truth, batch.mask, fake, real_features, config.weights, vgg, batch.mouth
            )
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            nn.utils.clip_grad_norm_(net.parameters(), config.gradient_clip)
            optimizer.step()
            if average is not None:
                average.update_parameters(net)
            step += 1
            bar.update()
            if step % config.log_every == 0 or step == config.steps:
                values = {name: round(float(value.detach()), 5) for name, value in terms.items()}
                bar.set_postfix(total=values["total"], l1=values["l1"])
                seconds = round(time.perf_counter() - started, 1)
                log(
                    {
                        "event": "train",
                        "step": step,
                        "lr": config.learning_rate * rate,
                        "seconds": seconds,
                        **values,
                    }
                )
            if step % config.validate_every == 0 or step == config.steps:
                log(
                    {
                        "event": "validation",
                        "step": step,
                        **validate(evaluated, validation_data, config, device),
                    }
                )
            if step % config.sample_every == 0 or step == config.steps:
                save_samples(
                    evaluated,
                    sample_batch,
                    config.out / "samples" / f"step_{step:06d}.png",
                    config.keep_shown_mouth,
                )
            if step % config.checkpoint_every == 0 or step == config.steps:
                save_checkpoint()
    weights = config.out / "dcnet.pt"
    save_dcnet(
        evaluated.cpu(),
        weights,
        {
            "command": command,
            "commit": commit,
            "steps": step,
            "train_pairs": len(train_data),
            "pairs": str(config.pairs),
            "torch": str(torch.__version__),
            "python": platform.python_version(),
            "device": str(device),
            "hours": round((time.perf_counter() - started) / 3600, 2),
            "init": origin,
        },
    )
    return weights


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="change a DCNetTrainConfig field"
    )
    args = parser.parse_args(argv)
    try:
        config = settings.configure(DCNetTrainConfig(), args.set)
    except ValueError as error:
        parser.error(str(error))
    if not math.isfinite(config.learning_rate) or config.learning_rate <= 0:
        parser.error(f"learning_rate must be positive, got {config.learning_rate}")
    command = " ".join(["python -m jr2net.training.train_dcnet", *(sys.argv[1:] if argv is None else argv)])
    print(f"wrote {train(config, command)}")


if __name__ == "__main__":
    main()
