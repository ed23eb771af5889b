"""Train a zoo model on CPU: ``python -m quant_models.train --model NAME --dataset mnist``.

Binary layers learn through the straight-through estimators Brevitas provides (clipped
sign for activations, clipped latent weights for binary weights). After every optimizer
step the hardware constraints are re-applied: PReLU slopes >= 0 (monotone, so the
compiler can absorb them into thresholds), Group-Net scalars >= 0, BNN-PYNQ latent
weights in [-1, 1]. A checkpoint (model + optimizer + scheduler + epoch) is written every
epoch so ``--resume`` can continue an interrupted run; the final weights (a plain
state_dict) go to ``--out``, by default where :func:`quant_models.zoo.get` looks for them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from quant_models import data, zoo

TRAINABLE_DATASETS = ("mnist", "digits", "cifar10")


def fit_to_input(x: torch.Tensor, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Resize/replicate images to the model's input shape (e.g. 8x8 digits -> 28x28).

    This lets any MNIST-shaped model be trained or smoke-tested on the tiny digits set
    while its weights still match the zoo's ``input_shape``.
    """
    _, channels, height, width = input_shape
    if x.shape[1] != channels:
        if x.shape[1] != 1:
            raise ValueError(f"cannot map {x.shape[1]} input channels to {channels}")
        x = x.repeat(1, channels, 1, 1)
    if tuple(x.shape[2:]) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        x = x.clamp(0.0, 1.0)
    return x.contiguous()


def augment(x: torch.Tensor, generator: torch.Generator, max_shift: int, flip: bool) -> torch.Tensor:
    """Cheap augmentation: random shifts by up to ``max_shift`` pixels (zero fill), optional flips."""
    if max_shift > 0:
        height, width = x.shape[2:]
        padded = F.pad(x, (max_shift,) * 4, value=0.0)
        offsets = torch.randint(0, 2 * max_shift + 1, (x.shape[0], 2), generator=generator)
        x = torch.stack(
            [
                padded[i, :, dy : dy + height, dx : dx + width]
                for i, (dy, dx) in enumerate(offsets.tolist())
            ]
        )
    if flip:
        mask = torch.rand(x.shape[0], generator=generator) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


@torch.no_grad()
def apply_constraints(model: nn.Module) -> None:
    """Re-impose what the hardware needs after an optimizer step."""
    if hasattr(model, "constrain_"):
        model.constrain_()
    for module in model.modules():
        if isinstance(module, nn.PReLU):
            module.weight.clamp_(min=0.0)
    if hasattr(model, "clip_weights"):  # BNN-PYNQ models keep latent weights in [-1, 1]
        model.clip_weights(-1.0, 1.0)


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the layer being calibrated has run."""


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, x: torch.Tensor, batch_size: int = 500, max_images: int = 2000, seed: int = 0
) -> None:
    """Re-estimate BatchNorm running statistics, one layer at a time, in eval mode.

    Binary weights keep flipping while training, so the exponential running averages lag
    behind the weights and eval-mode accuracy swings from epoch to epoch. Recomputing the
    averages in train mode is not enough either: every upstream layer then normalises with
    noisy batch statistics, and a binary net amplifies that noise (integer pre-activations
    with tiny variance flip whole channels), so the statistics depend on the batch size.
    Instead each BN layer, in forward order, collects the exact average of the inputs it
    sees when everything before it runs in eval mode with already-calibrated statistics,
    which is what inference (and the hardware) computes. Forward passes stop right after
    the layer being calibrated. The images are a seeded random subset (our splits are
    sorted by class).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    was_training = model.training
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_images]
    batches = [x[order[start : start + batch_size]] for start in range(0, len(order), batch_size)]

    def stop(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        raise _StopForward

    model.eval()
    for norm in norms:
        momentum = norm.momentum
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration batches
        norm.train()
        handle = norm.register_forward_hook(stop)
        try:
            for batch in batches:
                try:
                    model(batch)
                except _StopForward:
                    pass
        finally:
            handle.remove()
            norm.momentum = momentum
            norm.eval()
    model.train(was_training)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy (0..1) of ``model`` in eval mode; restores the previous mode."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start : start + batch_size])
        correct += int((logits.argmax(1) == y[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / max(1, len(x))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m quant_models.train",
        description="Train a quant_models zoo model on CPU with checkpoints and resume.",
    )
    parser.add_argument("--model", required=True, help="zoo name, e.g. ftbnn_tiny")
    parser.add_argument(
        "--dataset", choices=TRAINABLE_DATASETS, default=None,
        help="default: the model's own dataset",
    )
    parser.add_argument("--epochs", type=int, default=20, help="total epochs (also with --resume)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (cosine decay)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", default=None, help="CIFAR-10 folder (else $CIFAR10_DIR)")
    parser.add_argument("--out", default=None, help="final state_dict (default quant_models/weights/<model>.pt)")
    parser.add_argument("--checkpoint", default=None, help="per-epoch checkpoint (default <out>.ckpt)")
    parser.add_argument("--resume", default=None, help="checkpoint to continue from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-shift", type=int, default=None, help="augmentation shift in pixels (default 2, 0 for digits)")
    parser.add_argument(
        "--no-recalibrate", action="store_true",
        help="skip re-estimating BatchNorm statistics on the train set after each epoch",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--limit-test", type=int, default=None, help="use only the first N test images")
    return parser.parse_args(argv)


def _load_split(
    dataset: str, split: str, data_dir: str | None, input_shape: tuple[int, ...], limit: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = data.load(dataset, split, data_dir)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return fit_to_input(torch.from_numpy(x), input_shape), torch.from_numpy(y)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        zoo.entry(args.model)
    except zoo.UnknownModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = zoo.build(args.model, seed=args.seed)
    dataset = args.dataset or model.dataset
    if dataset not in TRAINABLE_DATASETS:
        print(
            f"error: {args.model} is an {dataset} model; training here supports "
            f"{', '.join(TRAINABLE_DATASETS)} (pass --dataset)",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out) if args.out else zoo.weights_path(args.model)
    checkpoint_path = Path(args.checkpoint) if args.checkpoint else out.with_suffix(".ckpt")
    try:
        x_train, y_train = _load_split(dataset, "train", args.data_dir, model.input_shape, args.limit_train)
        x_test, y_test = _load_split(dataset, "test", args.data_dir, model.input_shape, args.limit_test)
    except data.DatasetNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, args.epochs))
    start_epoch = 0
    if args.resume:
        checkpoint = torch.load(args.resume, map_location="cpu", weights_only=False)
        if checkpoint.get("model_name") != args.model:
            print(
                f"error: checkpoint {args.resume} is for {checkpoint.get('model_name')!r}, "
                f"not {args.model!r}",
                file=sys.stderr,
            )
            return 2
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scheduler.T_max = max(1, args.epochs)  # --epochs may extend the original run
        start_epoch = checkpoint["epoch"] + 1
        print(f"resumed from {args.resume}: {start_epoch} epoch(s) done, continuing to {args.epochs}")

    max_shift = args.max_shift if args.max_shift is not None else (0 if dataset == "digits" else 2)
    flip = dataset == "cifar10"
    loss_fn = nn.CrossEntropyLoss()
    batches = len(x_train) // args.batch_size  # drop the ragged last batch (BN needs > 1 sample)
    if batches == 0:
        print(f"error: batch size {args.batch_size} exceeds the {len(x_train)} training images", file=sys.stderr)
        return 2
    print(
        f"training {args.model} on {dataset}: {len(x_train)} train / {len(x_test)} test images, "
        f"epochs {start_epoch + 1}..{args.epochs}, batch {args.batch_size}, lr {args.lr}"
    )
    test_accuracy = evaluate(model, x_test, y_test) if start_epoch >= args.epochs else float("nan")
    for epoch in range(start_epoch, args.epochs):
        model.train()
        # one generator per epoch: the same seed and epoch give the same batches after a resume
        generator = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        order = torch.randperm(len(x_train), generator=generator)
        started = time.time()
        total_loss, total_correct, seen = 0.0, 0, 0
        progress = tqdm(range(batches), desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, file=sys.stderr)
        for batch in progress:
            index = order[batch * args.batch_size : (batch + 1) * args.batch_size]
            inputs = augment(x_train[index], generator, max_shift, flip)
            targets = y_train[index]
            logits = model(inputs)
            loss = loss_fn(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            apply_constraints(model)
            total_loss += loss.item() * len(index)
            total_correct += int((logits.argmax(1) == targets).sum())
            seen += len(index)
            progress.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{total_correct / seen:.3f}")
        progress.close()
        scheduler.step()
        if not args.no_recalibrate:
            recalibrate_batchnorm(model, x_train)
        test_accuracy = evaluate(model, x_test, y_test)
        print(
            f"epoch {epoch + 1}/{args.epochs}: loss {total_loss / seen:.4f}, "
            f"train acc {100 * total_correct / seen:.2f}%, test acc {100 * test_accuracy:.2f}%, "
            f"{time.time() - started:.1f} s",
            flush=True,
        )
        checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "model_name": args.model,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "test_accuracy": test_accuracy,
                "args": vars(args),
            },
            checkpoint_path,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    torch.save(zoo.compact_state_dict(model), out)
    print(f"final test accuracy {100 * test_accuracy:.2f}% on {len(x_test)} {dataset} test images")
    print(f"weights written to {out}; checkpoint at {checkpoint_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
