"""K frozen TcResNet members evaluated as one network: the ensemble at (nearly) the price of one call.

For inference and for gradients to the input (the design loop), an eval-mode ensemble of K members is
rewritten once into a single network:

- every BatchNorm is folded into the convolution before it (eval mode uses fixed statistics, so
  BN(conv(h)) = conv'(h) + b' exactly up to float rounding);
- the stems of all members read the same image, so they become one convolution with K·w output channels;
- every later convolution becomes a grouped convolution with groups = K (member k sees only its own
  channels), and the K linear heads one batched contraction;
- with an element-statistics branch (`ModelConfig.features`), the statistics are computed once and the
  K branch MLPs run as batched contractions.

The result equals `torch.stack([m.forward_raw(x) for m in members])` to float32 rounding (checked in
tests/test_fused.py), but it issues ~1/(2K) as many operator calls, which is what costs at interactive batch
sizes on a CPU. It holds no trainable parameters: rebuild it (`fuse_members`) after the weights change.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gdmcd_core.chem.elements import BLOCKS
from gdmcd_core.model.element_branch import element_statistics
from gdmcd_core.model.resnet import BasicBlock, TcResNet


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of conv followed by an eval-mode BatchNorm."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = conv.weight * scale.reshape(-1, 1, 1, 1)
    b = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        b = b + conv.bias * scale
    return w.detach(), b.detach()


def _stacked(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([w for w, _ in pairs]), torch.cat([b for _, b in pairs])


class _FusedConv(nn.Module):
    """One (grouped) convolution with folded BN; stride/padding copied from the members' conv."""

    def __init__(self, convs: list[nn.Conv2d], bns: list[nn.BatchNorm2d], groups: int) -> None:
        super().__init__()
        w, b = _stacked([_fold(c, n) for c, n in zip(convs, bns, strict=True)])
        self.register_buffer("weight", w)
        self.register_buffer("bias", b)
        self.stride, self.padding, self.groups = convs[0].stride, convs[0].padding, groups

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.conv2d(h, self.weight, self.bias, self.stride, self.padding, groups=self.groups)


class _FusedBlock(nn.Module):
    def __init__(self, blocks: list[BasicBlock]) -> None:
        super().__init__()
        k = len(blocks)
        self.conv1 = _FusedConv([b.conv1 for b in blocks], [b.bn1 for b in blocks], k)
        self.conv2 = _FusedConv([b.conv2 for b in blocks], [b.bn2 for b in blocks], k)
        proj = not isinstance(blocks[0].shortcut, nn.Identity)
        self.shortcut = (
            _FusedConv([b.shortcut[0] for b in blocks], [b.shortcut[1] for b in blocks], k) if proj else None
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(h)))
        return F.relu(out + (h if self.shortcut is None else self.shortcut(h)))


class FusedEnsemble(nn.Module):
    """x (B, 118) -> (K, B) pre-activation outputs of K frozen members, in one network."""

    def __init__(self, members: list[TcResNet]) -> None:
        super().__init__()
        if not members:
            raise ValueError("nothing to fuse: no members")
        if any(m.training for m in members):
            raise ValueError("fuse eval-mode members only (BatchNorm must use its running statistics)")
        cfg = members[0].config
        if any(m.config != cfg for m in members):
            raise ValueError("members must share one ModelConfig to be fused")
        self.k, self.config = len(members), cfg
        self.register_buffer("atoms", members[0].atoms.detach().clone(), persistent=False)
        stem_conv, stem_bn = [m.stem[0] for m in members], [m.stem[1] for m in members]
        self.stem = _FusedConv(stem_conv, stem_bn, groups=1)  # every member reads the same image
        self.pool = cfg.stem == "stock"
        self.blocks = nn.ModuleList(
            _FusedBlock([m.stages[s][i] for m in members])
            for s in range(len(cfg.layers))
            for i in range(len(members[0].stages[s]))
        )
        if cfg.features:
            self.register_buffer("props", members[0].branch.props.detach().clone(), persistent=False)
            for i, name in ((0, "1"), (2, "2")):  # the MLP's two Linear layers: (K, out, in) and (K, out)
                self.register_buffer(f"branch_w{name}", torch.stack([m.branch.mlp[i].weight.detach() for m in members]))
                self.register_buffer(f"branch_b{name}", torch.stack([m.branch.mlp[i].bias.detach() for m in members]))
        self.register_buffer("head_w", torch.stack([m.head.weight.detach()[0] for m in members]))  # (K, C [+ F])
        self.register_buffer("head_b", torch.stack([m.head.bias.detach()[0] for m in members]))  # (K,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        img = (x @ self.atoms).reshape(B, len(BLOCKS), 7, 32)
        h = F.relu(self.stem(img))
        if self.pool:
            h = F.max_pool2d(h, 3, stride=2, padding=1)
        for block in self.blocks:
            h = block(h)
        h = h.mean((2, 3)).reshape(B, self.k, -1)  # (B, K, C)
        if self.config.features:
            f = torch.einsum("bp,kfp->bkf", element_statistics(x, self.props), self.branch_w1) + self.branch_b1
            f = torch.einsum("bkf,kgf->bkg", F.relu(f), self.branch_w2) + self.branch_b2
            h = torch.cat([h, F.relu(f)], dim=2)  # (B, K, C + F)
        return (torch.einsum("bkc,kc->kb", h, self.head_w) + self.head_b[:, None]).contiguous()


def fuse_members(members: list[TcResNet]) -> FusedEnsemble:
    """A FusedEnsemble of eval-mode members, on their device, frozen."""
    with torch.no_grad():
        fused = FusedEnsemble(list(members))
    return fused.to(members[0].atoms.device).eval().requires_grad_(False)


__all__ = ["FusedEnsemble", "fuse_members"]
