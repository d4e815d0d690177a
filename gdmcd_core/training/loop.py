"""Training the Tc regressor (paper eq. 2): Adam, batch 256, lr 0.01, early stopping on val MAE.

The loss is taken on the pre-activation output so that no sample can die behind the ReLU:
for a superconductor (Tc > 0) the raw output is pulled to Tc from either side; for a
non-superconductor (Tc = 0) only a raw output above -margin is penalised (any value <= 0 is a correct
"0 K" after the ReLU; the margin, TrainConfig.negative_margin_k, keeps them clear of 0 K). At inference `TcResNet.forward` applies the ReLU.
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

from gdmcd_core.data.dataset import VAL, Dataset
from gdmcd_core.model.resnet import ModelConfig, TcResNet
from gdmcd_core.util import code_version, predict_array, resolve_device  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30  # upper bound; early stopping usually ends sooner
    batch_size: int = 256  # paper: 256
    lr: float = 0.01  # paper: 0.01 (Adam); cosine-decayed to lr_min over `epochs`
    lr_min: float = 1e-4
    weight_decay: float = 0.0
    huber_delta_k: float = 2.0  # Huber loss transition in K: quadratic for small errors, linear for outliers
    negative_margin_k: float = 0.0  # Tc = 0 rows are penalised for raw > -margin (K): a margin keeps them off 0 K
    patience: int = 6  # epochs without a better val MAE before stopping
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when present, else CPU
    threads: int = 0  # torch CPU threads; 0 leaves torch's default

    def to_dict(self) -> dict:
        return asdict(self)


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


ProgressFn = Callable[[dict], None]


def cosine_lr(step: int, total_steps: int, lr: float, lr_min: float) -> float:
    """Learning rate at `step`: cosine decay from lr to lr_min over total_steps, lr_min after."""
    t = min(step / max(total_steps, 1), 1.0)
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * t))


def train_model(
    ds: Dataset,
    model_config: ModelConfig = ModelConfig(),
    train_config: TrainConfig = TrainConfig(),
    progress: bool = True,
    on_epoch: ProgressFn | None = None,
    resume_state: dict | None = None,
    init_weights: dict | None = None,
) -> tuple[TcResNet, dict]:
    """Train one model; returns (best model by SuperCon val MAE, history dict).

    `init_weights`: a state dict to start from (warm start, e.g. a member of an earlier checkpoint
    fine-tuned on repaired data); the schedule and early stopping run as for a fresh model.

    `on_epoch` receives a dict after each epoch with keys epoch, train_loss, val_mae_supercon,
    best_epoch and `state` (a resumable snapshot: model, optimizer, epoch, best so far).
    """
    if train_config.threads:
        torch.set_num_threads(train_config.threads)
    device = resolve_device(train_config.device)
    seed_everything(train_config.seed)
    model = TcResNet(model_config)
    if init_weights is not None:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in init_weights.items()})
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay)
    x_all = torch.as_tensor(ds.x, device=device)
    y_all = torch.as_tensor(ds.tc_k, device=device)
    train_idx = ds.train_indices()
    val_sc = ds.indices(VAL)
    val_sc = val_sc[ds.is_supercon[val_sc]]
    gen = torch.Generator().manual_seed(train_config.seed)
    steps_per_epoch = math.ceil(len(train_idx) / train_config.batch_size)
    total_steps = steps_per_epoch * train_config.epochs

    def lr_at(step: int) -> float:
        return cosine_lr(step, total_steps, train_config.lr, train_config.lr_min)

    history: dict = {"epochs": [], "best_epoch": -1, "best_val_mae_supercon": float("inf")}
    best_state = copy.deepcopy(model.state_dict())
    start_epoch, bad_epochs = 0, 0
    if resume_state:
        model.load_state_dict(resume_state["model"])
        opt.load_state_dict(resume_state["optimizer"])
        best_state = resume_state["best_model"]
        history = resume_state["history"]
        start_epoch = resume_state["epoch"] + 1
        bad_epochs = resume_state["bad_epochs"]
        gen.manual_seed(train_config.seed + start_epoch)
    t0 = time.time()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=train_config.epochs, initial=start_epoch, desc="train", unit="epoch")
    for epoch in range(start_epoch, train_config.epochs):
        model.train()
        perm = torch.as_tensor(train_idx)[torch.randperm(len(train_idx), generator=gen)].to(device)
        losses = []
        for b in range(steps_per_epoch):
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch * steps_per_epoch + b)
            idx = perm[b * train_config.batch_size : (b + 1) * train_config.batch_size]
            if len(idx) < 2:  # BatchNorm needs 2+ samples
                continue
            raw = model.forward_raw(x_all[idx])
            if model_config.output_relu:
                loss = tc_loss(raw, y_all[idx], train_config.huber_delta_k, train_config.negative_margin_k)
            else:  # signed target (e.g. formation energy): plain Huber on the output
                loss = F.huber_loss(raw, y_all[idx], delta=train_config.huber_delta_k)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        pred = predict_array(model, ds.x[val_sc])
        val_mae = float(np.abs(pred - ds.tc_k[val_sc]).mean()) if len(val_sc) else float(np.mean(losses))
        improved = val_mae < history["best_val_mae_supercon"]
        if improved:
            history["best_val_mae_supercon"], history["best_epoch"] = val_mae, epoch
            best_state = copy.deepcopy(model.state_dict())
            bad_epochs = 0
        else:
            bad_epochs += 1
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "val_mae_supercon": val_mae,
            "seconds": time.time() - t0,
        }
        history["epochs"].append(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                loss=f"{row['train_loss']:.2f}",
                val_mae=f"{val_mae:.2f}K",
                best=f"{history['best_val_mae_supercon']:.2f}K",
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
        if bad_epochs >= train_config.patience:
            break
    if bar is not None:
        bar.close()
    history["train_seconds"] = time.time() - t0 + (resume_state or {}).get("history", {}).get("train_seconds", 0.0)
    model.load_state_dict(best_state)
    model.eval()
    return model, history
