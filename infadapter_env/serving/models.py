"""The models a profile measures: ResNet18..152 with random weights (the compute of torchvision's
architectures, written here because torchvision's wheels do not import beside this project's CPU
torch), a tiny ResNet for smoke tests, or the user's own model file (a torch.export program, ONNX
or TorchScript).

Top-1 accuracies are those torchvision publishes for its ``IMAGENET1K_V1`` weights, the ones the
InfAdapter paper's variants table holds (``profiles/variants.csv``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

# name: (block, blocks per stage, width of the first stage, input side in pixels)
ARCHITECTURES: dict[str, tuple[str, tuple[int, int, int, int], int, int]] = {
    "resnet18": ("basic", (2, 2, 2, 2), 64, 224),
    "resnet34": ("basic", (3, 4, 6, 3), 64, 224),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 64, 224),
    "resnet101": ("bottleneck", (3, 4, 23, 3), 64, 224),
    "resnet152": ("bottleneck", (3, 8, 36, 3), 64, 224),
    "resnet-tiny": ("basic", (1, 1, 1, 1), 8, 64),  # for smoke tests: a few ms on one core
}
MODEL_FILES = (".pt2", ".onnx", ".pt")  # torch.export, ONNX, TorchScript
PUBLISHED_TOP1 = {  # torchvision IMAGENET1K_V1
    "resnet18": 0.69758,
    "resnet34": 0.73314,
    "resnet50": 0.76130,
    "resnet101": 0.77374,
    "resnet152": 0.78312,
}


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (ResNet18 and 34)."""

    expansion = 1

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(inputs, width, 3, stride, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
        )
        self.shortcut = _shortcut(inputs, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 down, 3x3 (carrying the stride, as torchvision's v1.5), 1x1 up to 4x the width."""

    expansion = 4

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        out = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(inputs, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, out, 1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.shortcut = _shortcut(inputs, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def _shortcut(inputs: int, outputs: int, stride: int) -> nn.Module:
    if stride == 1 and inputs == outputs:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))


def resnet(name: str, classes: int = 1000) -> nn.Module:
    """ResNet ``name`` (a key of ``ARCHITECTURES``) with random weights, in eval mode."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}: one of {sorted(ARCHITECTURES)}, or a model file (.pt, .pt2)")
    kind, blocks, width, _ = ARCHITECTURES[name]
    block: type[BasicBlock] | type[Bottleneck] = BasicBlock if kind == "basic" else Bottleneck
    layers: list[nn.Module] = [
        nn.Conv2d(3, width, 7, 2, 3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    inputs = width
    for stage, count in enumerate(blocks):
        stage_width = width * 2**stage
        for index in range(count):
            stride = 2 if stage > 0 and index == 0 else 1
            layers.append(block(inputs, stage_width, stride))
            inputs = stage_width * block.expansion
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(inputs, classes)]
    return nn.Sequential(*layers).eval()


@dataclass(frozen=True)
class ModelSpec:
    """What a server loads: an architecture name or a model file, and its input side."""

    name: str  # the variant's name in the profile
    source: str  # an ARCHITECTURES key or a path to a model file
    input_side: int

    def check_loads(self) -> None:
        """Load a model file once here, so that one that cannot be read fails with its reason before
        any server starts (a ``ValueError`` naming the file)."""
        if self.source in ARCHITECTURES:
            return
        try:
            self.load()
        except Exception as error:  # torch and onnxruntime raise many kinds
            raise ValueError(f"model {self.name!r}: {self.source} cannot be loaded: {error}") from None

    def load(self) -> nn.Module | OnnxModel:
        """The model in eval mode: built, or read from a ``torch.export`` program (``.pt2``), an ONNX
        file (``.onnx``: run by onnxruntime on one thread per call) or a TorchScript file (any other name)."""
        if self.source in ARCHITECTURES:
            return resnet(self.source)
        if self.source.endswith(".onnx"):
            return OnnxModel(self.source)
        if self.source.endswith(".pt2"):
            return torch.export.load(self.source).module()
        with warnings.catch_warnings():  # torch deprecates TorchScript; it still reads it
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(self.source, map_location="cpu")
        return module.eval()

    @property
    def arch(self) -> str:
        """The profile's ``ARCH`` value: 18 for resnet18 (as the paper's profile has it), else the name."""
        digits = self.name.removeprefix("resnet")
        return digits if self.name in PUBLISHED_TOP1 else self.name


class OnnxModel:
    """An ONNX model run by onnxruntime, called like a torch module (a tensor in, a tensor out);
    one thread per call, so that a server's workers each take one core."""

    def __init__(self, path: str) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise RuntimeError("ONNX models need onnxruntime: pip install 'infadapter-gym[serve]'") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]

    @property
    def input_side(self) -> int | None:
        """The input's side in pixels where the file fixes it (N, 3, H, W)."""
        shape = self.input.shape
        return shape[-1] if len(shape) == 4 and isinstance(shape[-1], int) else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input.name: x.numpy()})[0])

    def eval(self) -> OnnxModel:
        return self


def model_spec(text: str, input_side: int | None = None) -> ModelSpec:
    """A ``--models`` entry: an architecture name, or ``name=path`` / ``path`` for a model file
    (``.pt``: TorchScript; ``.pt2``: a ``torch.export`` program; ``.onnx``: ONNX)."""
    name, _, path = text.partition("=")
    if not path and text.endswith((".pt", ".pt2", ".onnx")):
        name, path = Path(text).stem, text
    if path:
        if not Path(path).is_file():
            raise ValueError(f"model {name!r}: no model file at {path}")
        if not path.endswith(MODEL_FILES):
            raise ValueError(f"model {name!r}: {path} is not a model file ({', '.join(MODEL_FILES)})")
        if input_side is None and path.endswith(".onnx"):
            input_side = OnnxModel(path).input_side
        return ModelSpec(name, path, input_side or 224)
    if name not in ARCHITECTURES:
        raise ValueError(
            f"unknown model {name!r}: one of {sorted(ARCHITECTURES)}, or name=path (a model file: .pt2, .onnx or .pt)"
        )
    return ModelSpec(name, name, input_side or ARCHITECTURES[name][3])
