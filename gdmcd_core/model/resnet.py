"""The Tc regressor f(x): a ResNet over the 4x7x32 composition image.

The model takes fractions x (B, 118) directly (the image is built inside, so gradients reach x)
and returns Tc in K. `forward` applies ReLU (Tc >= 0, as in the paper); training uses
`forward_raw`, the pre-activation, so that no sample sits at 0 with no gradient (see training/loop.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from gdmcd_core.chem.elements import BLOCKS, N_ELEMENTS
from gdmcd_core.chem.embeddings import EMBEDDINGS
from gdmcd_core.chem.featurize import atom_tensor
from gdmcd_core.model.element_branch import ElementStatsBranch


@dataclass(frozen=True)
class ModelConfig:
    width: int = 32  # channels of the first stage; stage k has width * 2**k
    layers: tuple[int, ...] = (1, 1, 1, 1)  # BasicBlocks per stage; (2, 2, 2, 2) is ResNet18
    stem: str = "stock"  # "stock": torchvision's 7x7/2 conv + max-pool (3.4x cheaper, as accurate); "keep": 3x3/1
    head_bias: float = 10.0  # initial output bias (target units): starts Tc predictions positive, off the ReLU kink
    output_relu: bool = True  # ReLU at the output (Tc >= 0); False for signed targets such as formation energy
    features: int = 0  # hidden width of the element-statistics branch (model/element_branch.py); 0: image only
    # the branch's element vectors: "" the 7 hand-picked properties, or an embedding of chem/embeddings.py
    branch_embedding: str = ""

    def __post_init__(self) -> None:
        if self.stem not in ("keep", "stock"):
            raise ValueError(f"stem must be 'keep' or 'stock', got {self.stem!r}")
        if self.width < 1 or not self.layers or any(n < 1 for n in self.layers):
            raise ValueError(f"width and every entry of layers must be >= 1, got {self.width}, {self.layers}")
        if self.features < 0:
            raise ValueError(f"features must be >= 0, got {self.features}")
        if self.branch_embedding and self.branch_embedding not in EMBEDDINGS:
            raise ValueError(
                f"branch_embedding must be '' or one of {', '.join(EMBEDDINGS)}, got {self.branch_embedding!r}"
            )

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        d["layers"] = tuple(d.get("layers", cls.layers))
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = list(self.layers)
        if not self.branch_embedding:  # cards of models without it stay as they were
            del d["branch_embedding"]
        return d


RESNET18 = ModelConfig(width=64, layers=(2, 2, 2, 2), stem="stock")


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a shortcut; a 1x1 projection only when the shape changes (as torchvision)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (
            nn.Sequential(conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(h)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(h))


class TcResNet(nn.Module):
    """f: (B, 118) fractions -> (B,) Tc in K."""

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.width
        # a is fixed data, rebuilt from the element table, so it is not stored in checkpoints.
        self.register_buffer("atoms", atom_tensor().reshape(N_ELEMENTS, -1), persistent=False)
        c_in = len(BLOCKS)
        if config.stem == "stock":
            self.stem = nn.Sequential(
                nn.Conv2d(c_in, w, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(conv3x3(c_in, w), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        stages, cin = [], w
        for k, n_blocks in enumerate(config.layers):
            cout = w * 2**k
            blocks = [BasicBlock(cin, cout, stride=1 if k == 0 else 2)]
            blocks += [BasicBlock(cout, cout) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.branch = ElementStatsBranch(config.features, config.branch_embedding) if config.features else None
        self.head = nn.Linear(cin + config.features, 1)
        # He init for convs and BN at identity, as torchvision does for ReLU networks.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.head.bias, config.head_bias)

    def forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 118) -> (B,) pre-activation output in K (may be negative)."""
        B = x.shape[0]
        img = (x @ self.atoms).reshape(B, len(BLOCKS), 7, 32)  # (B, 4, 7, 32)
        h = self.stages(self.stem(img))  # (B, C, h, w)
        h = torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1)  # (B, C)
        if self.branch is not None:
            h = torch.cat([h, self.branch(x)], dim=1)  # (B, C + features)
        return self.head(h).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 118) fractions -> (B,) Tc in K, >= 0 (or the signed target if output_relu is False)."""
        raw = self.forward_raw(x)
        return torch.relu(raw) if self.config.output_relu else raw


def build_model(config: ModelConfig) -> TcResNet:
    return TcResNet(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
