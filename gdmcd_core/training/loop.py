"""Training one model (paper eq. 2): Adam, batch 256, lr 0.01, early stopping on the validation MAE.

The loop sees `TrainRows` (fractions, one target in its task's unit, training and validation rows) and knows
nothing of Tc or formation energy beyond the model's output: a Tc model (`output_relu`) is trained with
`tc_loss`, a signed target (formation energy) with a plain Huber loss. The Tc loss is taken on the
pre-activation output so that no sample can die behind the ReLU: for a superconductor (Tc > 0) the raw output
is pulled to Tc from either side; for a non-superconductor (Tc = 0) only a raw output above -margin is penalised
(any value <= 0 is a correct "0 K" after the ReLU; the margin, TrainConfig.negative_margin_k, keeps them clear
of 0 K). At inference `TcResNet.forward` applies the ReLU.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F

from gdmcd_core.model.resnet import ModelConfig, TcResNet
from gdmcd_core.training.metrics import mean_absolute_error
from gdmcd_core.util import predict_array, resolve_device


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30  # upper bound; early stopping usually ends sooner
    batch_size: int = 256  # paper: 256
    lr: float = 0.01  # paper: 0.01 (Adam); cosine-decayed to lr_min over `epochs`
    lr_min: float = 1e-4
    weight_decay: float = 0.0
    huber_delta: float = 2.0  # the loss scale: Huber transition in the target's unit (K for Tc, eV/atom for E_f)
    negative_margin_k: float = 0.0  # Tc models: Tc = 0 rows are penalised for raw > -margin (K), keeping them off 0 K
    patience: int = 6  # epochs without a better validation MAE before stopping
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when present, else CPU
    threads: int = 0  # torch CPU threads; 0 leaves torch's default

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """From a card's "train_config": keys this version does not know are ignored; older cards name the loss
        scale `huber_delta_k`."""
        d = dict(d)
        if "huber_delta_k" in d:
            d.setdefault("huber_delta", d.pop("huber_delta_k"))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class TrainRows:
    """The rows one training run sees.

    x: (N, 118) float32 fractions; y: (N,) float32 target in the task's unit; train: indices of the training rows
    (repeats are replicated rows); val: indices of the rows early stopping scores (their MAE).
    """

    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    val: np.ndarray


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def tc_loss(raw: torch.Tensor, tc: torch.Tensor, delta: float, margin: float = 0.0) -> torch.Tensor:
    """Loss on the pre-activation. raw, tc: (B,) in K. Tc = 0 rows only penalise raw > -margin.

    Without a margin a non-superconductor's raw output settles anywhere just below or just above 0 K
    (a raw 0.1 K costs almost nothing), and every one above 0 is a false "superconductor" at Tc > 0 K.
    """
    target_side = torch.where(tc > 0, raw, torch.relu(raw + margin))
    return F.huber_loss(target_side, tc, delta=delta)


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ProgressFn = Callable[[dict], None]


def loss_for(model_config: ModelConfig, train_config: TrainConfig) -> LossFn:
    """(raw (B,), y (B,)) -> loss: `tc_loss` for a Tc model (ReLU output), plain Huber for a signed target."""
    delta = train_config.huber_delta
    if model_config.output_relu:
        return lambda raw, y: tc_loss(raw, y, delta, train_config.negative_margin_k)
    return lambda raw, y: F.huber_loss(raw, y, delta=delta)


def cosine_lr(step: int, total_steps: int, lr: float, lr_min: float) -> float:
    """Learning rate at `step`: cosine decay from lr to lr_min over total_steps, lr_min after."""
    t = min(step / max(total_steps, 1), 1.0)
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * t))


def _initial_model(model_config: ModelConfig, init_weights: dict | None) -> TcResNet:
    model = TcResNet(model_config)
    if init_weights is not None:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in init_weights.items()})
    return model


def _train_epoch(
    model: TcResNet,
    opt: torch.optim.Optimizer,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    loss_fn: LossFn,
    lr_at: Callable[[int], float],
    first_step: int,
    batch_size: int,
) -> list[float]:
    """One pass over the shuffled training rows `perm` of data = (x_all, y_all, perm); the batch losses."""
    x_all, y_all, perm = data
    model.train()
    losses = []
    for b in range(math.ceil(len(perm) / batch_size)):
        for g in opt.param_groups:
            g["lr"] = lr_at(first_step + b)
        idx = perm[b * batch_size : (b + 1) * batch_size]
        if len(idx) < 2:  # BatchNorm needs 2+ samples
            continue
        loss = loss_fn(model.forward_raw(x_all[idx]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _progress_bar(train_config: TrainConfig, start_epoch: int, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=train_config.epochs, initial=start_epoch, desc="train", unit="epoch")


def train_model(
    rows: TrainRows,
    model_config: ModelConfig = ModelConfig(),
    train_config: TrainConfig = TrainConfig(),
    progress: bool = True,
    on_epoch: ProgressFn | None = None,
    resume_state: dict | None = None,
    init_weights: dict | None = None,
) -> tuple[TcResNet, dict]:
    """Train one model; returns (the model at its best validation MAE, history dict).

    `init_weights`: a state dict to start from (warm start, e.g. a member of an earlier checkpoint
    fine-tuned on repaired data); the schedule and early stopping run as for a fresh model.

    `on_epoch` receives a dict after each epoch with keys epoch, train_loss, val_mae (the target's unit),
    seconds, best_epoch and `state` (a resumable snapshot: model, optimizer, epoch, best so far).
    history: {"epochs": [rows], "best_epoch", "best_val_mae", "train_seconds"}.
    """
    cfg = train_config
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    model = _initial_model(model_config, init_weights).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x_all, y_all = torch.as_tensor(rows.x, device=device), torch.as_tensor(rows.y, device=device)
    gen = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = math.ceil(len(rows.train) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    loss_fn = loss_for(model_config, cfg)

    def lr_at(step: int) -> float:
        return cosine_lr(step, total_steps, cfg.lr, cfg.lr_min)

    history: dict = {"epochs": [], "best_epoch": -1, "best_val_mae": float("inf")}
    best_state = copy.deepcopy(model.state_dict())
    start_epoch, bad_epochs = 0, 0
    if resume_state:
        model.load_state_dict(resume_state["model"])
        opt.load_state_dict(resume_state["optimizer"])
        best_state, history = resume_state["best_model"], resume_state["history"]
        start_epoch, bad_epochs = resume_state["epoch"] + 1, resume_state["bad_epochs"]
        gen.manual_seed(cfg.seed + start_epoch)
    t0 = time.time()
    bar = _progress_bar(cfg, start_epoch, progress)
    for epoch in range(start_epoch, cfg.epochs):
        perm = torch.as_tensor(rows.train)[torch.randperm(len(rows.train), generator=gen)].to(device)
        losses = _train_epoch(model, opt, (x_all, y_all, perm), loss_fn, lr_at, epoch * steps_per_epoch, cfg.batch_size)
        pred = predict_array(model, rows.x[rows.val])
        val_mae = mean_absolute_error(rows.y[rows.val], pred) if len(rows.val) else float(np.mean(losses))
        if val_mae < history["best_val_mae"]:
            history["best_val_mae"], history["best_epoch"] = val_mae, epoch
            best_state = copy.deepcopy(model.state_dict())
            bad_epochs = 0
        else:
            bad_epochs += 1
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_mae": val_mae, "seconds": time.time() - t0}
        history["epochs"].append(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                loss=f"{row['train_loss']:.3g}", val_mae=f"{val_mae:.3g}", best=f"{history['best_val_mae']:.3g}"
            )
        if on_epoch is not None:
            state = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "best_model": best_state,
                "history": history,
                "epoch": epoch,
                "bad_epochs": bad_epochs,
            }
            on_epoch({**row, "best_epoch": history["best_epoch"], "state": state})
        if bad_epochs >= cfg.patience:
            break
    if bar is not None:
        bar.close()
    history["train_seconds"] = time.time() - t0 + (resume_state or {}).get("history", {}).get("train_seconds", 0.0)
    model.load_state_dict(best_state)
    model.eval()
    return model, history
