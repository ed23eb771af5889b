"""Train a zoo model: ``python -m quant_models.train --model NAME --dataset mnist``.

Binary layers learn through the straight-through estimators Brevitas provides (clipped
sign for activations, clipped latent weights for binary weights). After every optimizer
step the hardware constraints are re-applied: PReLU slopes >= 0 (monotone, so the
compiler can absorb them into thresholds), Group-Net scalars >= 0, BNN-PYNQ latent
weights in [-1, 1]. A checkpoint (model + optimizer + scheduler + epoch) is written every
epoch so ``--resume`` can continue an interrupted run; the final weights (a plain
state_dict) go to ``--out``, by default where :func:`quant_models.zoo.get` looks for them.

Under ``torchrun --nproc_per_node N -m quant_models.train ...`` the same script trains with
DistributedDataParallel (gloo on CPU, nccl on GPUs): ``--batch-size`` stays the global batch
(each process takes ``batch_size / N`` images of it through a DistributedSampler), so a run
takes the same optimizer steps on the same images whatever N is; only rank 0 logs and
writes files. Every random stream (batch order, augmentation, dropout) is seeded from
(seed, epoch, rank) at the start of each epoch, so a resumed run continues exactly as the
uninterrupted run would have.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler, TensorDataset
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

    device = _device_of(model)
    batches = [batch.to(device) for batch in batches]
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


def _device_of(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def count_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> int:
    """How many of ``x`` ``model`` classifies as ``y`` (top-1, eval mode; restores the mode)."""
    was_training = model.training
    device = _device_of(model)
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start : start + batch_size].to(device))
        correct += int((logits.argmax(1).cpu() == y[start : start + batch_size]).sum())
    model.train(was_training)
    return correct


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy (0..1) of ``model`` in eval mode; restores the previous mode."""
    return count_correct(model, x, y, batch_size) / max(1, len(x))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m quant_models.train",
        description="Train a quant_models zoo model with checkpoints and resume; under torchrun "
                    "(torchrun --nproc_per_node N -m quant_models.train ...) with DistributedDataParallel.",
    )
    parser.add_argument("--model", required=True, help="zoo name, e.g. ftbnn_tiny")
    parser.add_argument(
        "--dataset", choices=TRAINABLE_DATASETS, default=None,
        help="default: the model's own dataset",
    )
    parser.add_argument("--epochs", type=int, default=20, help="total epochs (also with --resume)")
    parser.add_argument(
        "--epochs-this-run", type=int, default=None,
        help="stop after this many epochs in this invocation (a time-limited job slot); continue with --resume",
    )
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (cosine decay)")
    parser.add_argument(
        "--batch-size", type=int, default=64,
        help="global batch: under torchrun each of the N processes takes batch-size/N images of it",
    )
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
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch CPU threads per process (default: torch's; under torchrun the cores divided by N)",
    )
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


@dataclass(frozen=True)
class Processes:
    """This process's place in the run: one process, or one rank of a torchrun job."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def print(self, *args: object, error: bool = False) -> None:
        """Print from rank 0 only (every rank would print the same)."""
        if self.is_main:
            print(*args, file=sys.stderr if error else sys.stdout, flush=True)

    def sum(self, *values: float) -> list[float]:
        """Sum ``values`` over all ranks (identity on one process)."""
        if not self.distributed:
            return list(values)
        # float64 keeps integer counts exact; nccl reduces on the GPU, gloo on the CPU
        total = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.tolist()


def start_processes(threads: int | None) -> Processes:
    """Join the torchrun job when launched by torchrun (WORLD_SIZE set), else run alone.

    nccl on GPUs (one per local rank), gloo on CPUs.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if threads:
        torch.set_num_threads(threads)
    elif world_size > 1 and not cuda:
        # the processes on this node share its cores; oversubscribing them slows every rank
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if world_size == 1:
        return Processes(0, 1, device)
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Processes(dist.get_rank(), dist.get_world_size(), device)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one rank's random streams in one epoch.

    Rank 0 gets ``seed * 1000 + epoch`` (the seed single-process runs have always used, so
    the shipped weights' commands still reproduce them); other ranks are offset far
    beyond any realistic seed so no two (seed, epoch, rank) share a stream.
    """
    return seed * 1000 + epoch + (rank << 40)


def _error(processes: Processes, message: str) -> int:
    processes.print(f"error: {message}", error=True)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    processes = start_processes(args.threads)
    try:
        return _train(args, processes)
    finally:
        if processes.distributed:
            dist.destroy_process_group()


def _train(args: argparse.Namespace, processes: Processes) -> int:
    try:
        zoo.entry(args.model)
    except zoo.UnknownModelError as error:
        return _error(processes, str(error))
    model = zoo.build(args.model, seed=args.seed)
    dataset = args.dataset or model.dataset
    if dataset not in TRAINABLE_DATASETS:
        return _error(
            processes,
            f"{args.model} is an {dataset} model; training here supports {', '.join(TRAINABLE_DATASETS)} "
            "(pass --dataset)",
        )
    if args.batch_size % processes.world_size:
        return _error(
            processes,
            f"--batch-size {args.batch_size} (the global batch) must be divisible by the "
            f"{processes.world_size} processes",
        )
    out = Path(args.out) if args.out else zoo.weights_path(args.model)
    checkpoint_path = Path(args.checkpoint) if args.checkpoint else out.with_suffix(".ckpt")
    try:
        x_train, y_train = _load_split(dataset, "train", args.data_dir, model.input_shape, args.limit_train)
        x_test, y_test = _load_split(dataset, "test", args.data_dir, model.input_shape, args.limit_test)
    except data.DatasetNotFoundError as error:
        return _error(processes, str(error))

    model.to(processes.device)
    start_epoch = 0
    checkpoint = None
    if args.resume:
        try:
            checkpoint = torch.load(args.resume, map_location=processes.device, weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError) as error:
            return _error(processes, f"cannot read checkpoint {args.resume}: {error}")
        if not isinstance(checkpoint, dict) or "optimizer" not in checkpoint:
            return _error(
                processes,
                f"{args.resume} is not a training checkpoint (it has no optimizer state); --resume takes the "
                "per-epoch .ckpt file quant_models.train writes, not the final weights",
            )
        if checkpoint.get("model_name") != args.model:
            return _error(processes, f"checkpoint {args.resume} is for {checkpoint.get('model_name')!r}, not {args.model!r}")
        model.load_state_dict(checkpoint["model"])
        start_epoch = checkpoint["epoch"] + 1
        saved_world = checkpoint.get("world_size", 1)
        processes.print(f"resumed from {args.resume}: {start_epoch} epoch(s) done, continuing to {args.epochs}")
        if saved_world != processes.world_size:
            processes.print(
                f"note: the checkpoint was written by a {saved_world}-process run, this one has "
                f"{processes.world_size}: the same global batches, other augmentation/dropout streams"
            )

    # only now: Brevitas replaces some parameters (learned activation scales) when a state_dict
    # is loaded, and an optimizer made before would keep updating the replaced ones
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, args.epochs))
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scheduler.T_max = max(1, args.epochs)  # --epochs may extend the original run

    # one process: the module itself; torchrun: DDP averages the gradients over the ranks
    network: nn.Module = model
    if processes.distributed:
        network = DistributedDataParallel(
            model, device_ids=[processes.device.index] if processes.device.type == "cuda" else None
        )
    max_shift = args.max_shift if args.max_shift is not None else (0 if dataset == "digits" else 2)
    flip = dataset == "cifar10"
    loss_fn = nn.CrossEntropyLoss()
    # rank r takes images r, r + N, ... of each epoch's permutation, so the ranks' batch b
    # together are exactly batch b of a single-process run (seed * 1000 + epoch: see _epoch_seed)
    sampler = DistributedSampler(
        TensorDataset(x_train, y_train), num_replicas=processes.world_size, rank=processes.rank,
        shuffle=True, seed=args.seed * 1000, drop_last=True,
    )
    local_batch = args.batch_size // processes.world_size
    batches = len(sampler) // local_batch  # drop the ragged last batch (BN needs > 1 sample)
    if batches == 0:
        return _error(processes, f"batch size {args.batch_size} exceeds the {len(x_train)} training images")
    last_epoch = args.epochs
    if args.epochs_this_run is not None:
        last_epoch = min(args.epochs, start_epoch + max(0, args.epochs_this_run))
    processes.print(
        f"training {args.model} on {dataset}: {len(x_train)} train / {len(x_test)} test images, "
        f"epochs {start_epoch + 1}..{last_epoch} of {args.epochs}, batch {args.batch_size}"
        + (f" ({processes.world_size} processes x {local_batch}, DDP {dist.get_backend()})" if processes.distributed else "")
        + f", lr {args.lr}"
    )

    def test_accuracy() -> float:
        # each rank scores its share of the test images; the counts are summed
        mine = slice(processes.rank, None, processes.world_size)
        correct, total = processes.sum(count_correct(model, x_test[mine], y_test[mine]), len(x_test[mine]))
        return correct / max(1.0, total)

    accuracy = test_accuracy() if start_epoch >= last_epoch else float("nan")
    for epoch in range(start_epoch, last_epoch):
        network.train()
        epoch_seed = _epoch_seed(args.seed, epoch, processes.rank)
        torch.manual_seed(epoch_seed)  # dropout (BNN-PYNQ models) draws from the global stream
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        generator = torch.Generator().manual_seed(epoch_seed)
        # runs before DDP drew the epoch's order from this generator first, then the shifts
        torch.randperm(len(x_train), generator=generator)
        started = time.time()
        total_loss, total_correct, seen = 0.0, 0, 0
        progress = tqdm(
            range(batches), desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, file=sys.stderr,
            disable=not processes.is_main,
        )
        for batch in progress:
            index = order[batch * local_batch : (batch + 1) * local_batch]
            inputs = augment(x_train[index], generator, max_shift, flip).to(processes.device)
            targets = y_train[index].to(processes.device)
            logits = network(inputs)
            loss = loss_fn(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            apply_constraints(model)  # the same on every rank: the replicas stay identical
            total_loss += loss.item() * len(index)
            total_correct += int((logits.argmax(1) == targets).sum())
            seen += len(index)
            progress.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{total_correct / seen:.3f}")
        progress.close()
        scheduler.step()
        if not args.no_recalibrate:
            # deterministic, on every rank's own copy: the statistics stay identical everywhere
            recalibrate_batchnorm(model, x_train)
        accuracy = test_accuracy()
        total_loss, total_correct, seen = processes.sum(total_loss, total_correct, seen)
        processes.print(
            f"epoch {epoch + 1}/{args.epochs}: loss {total_loss / seen:.4f}, "
            f"train acc {100 * total_correct / seen:.2f}%, test acc {100 * accuracy:.2f}%, "
            f"{time.time() - started:.1f} s"
        )
        if processes.is_main:
            checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "model_name": args.model,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "test_accuracy": accuracy,
                    "world_size": processes.world_size,
                    "args": vars(args),
                },
                checkpoint_path,
            )
    if last_epoch < args.epochs:
        processes.print(
            f"stopped after epoch {last_epoch} of {args.epochs} (--epochs-this-run); continue with "
            f"--resume {checkpoint_path}"
        )
        return 0
    if processes.is_main:
        out.parent.mkdir(parents=True, exist_ok=True)
        model.eval()
        torch.save(zoo.compact_state_dict(model.cpu()), out)
    processes.print(f"final test accuracy {100 * accuracy:.2f}% on {len(x_test)} {dataset} test images")
    processes.print(f"weights written to {out}; checkpoint at {checkpoint_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
