"""Use Snake in your own model: a conv encoder (B, C, T) and a channels-last MLP (B, T, C), dim=-1.

Runs on a CPU in seconds (CUDA if present): builds both models with the Kaiming-snake init,
trains each a few steps on a toy task, and prints what the fused op keeps for backward compared
with the eager formula.
"""

import torch
from torch import nn

from vocoder.layers import Snake, SnakeBeta, snake_kaiming_normal_

device = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(0)


class ConvEncoder(nn.Module):
    """Conv1d → Snake blocks; each conv after a Snake gets the Kaiming-snake init for that α."""

    def __init__(self, channels: int = 32, depth: int = 6, alpha: float = 1.0):
        super().__init__()
        self.inp = nn.Conv1d(1, channels, 7, padding=3)
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            conv = nn.Conv1d(channels, channels, 3, padding=1)
            snake_kaiming_normal_(conv.weight, alpha=alpha)  # its inputs are Snake(alpha) outputs
            nn.init.zeros_(conv.bias)
            self.blocks.append(nn.Sequential(Snake(channels, alpha=alpha), conv))
        self.out = nn.Conv1d(channels, 1, 7, padding=3)

    def forward(self, x):
        x = self.inp(x)
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)


class ChannelsLastMLP(nn.Module):
    """(B, T, C) features, as in a transformer: SnakeBeta over the last axis."""

    def __init__(self, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, width), SnakeBeta(width, dim=-1, logscale=True),
                                 nn.Linear(width, 16))

    def forward(self, x):
        return self.net(x)


def train(model: nn.Module, make_batch, steps: int = 30) -> tuple[float, float]:
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        x, target = make_batch()
        loss = nn.functional.mse_loss(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


def saved_bytes(fn) -> int:
    """Bytes autograd keeps for backward while `fn` runs."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


def audio_batch():
    t = torch.linspace(0, 1, 2048, device=device)
    freq = 50 + 200 * torch.rand(8, 1, 1, device=device)
    clean = torch.sin(2 * torch.pi * freq * t)
    return clean + 0.3 * torch.randn_like(clean), clean


def feature_batch():
    x = torch.randn(8, 100, 16, device=device)
    return x, torch.sin(3 * x)


if __name__ == "__main__":
    encoder = ConvEncoder().to(device)
    first, last = train(encoder, audio_batch)
    print(f"conv encoder (B, C, T), denoising toy task: loss {first:.4f} -> {last:.4f}")
    mlp = ChannelsLastMLP().to(device)
    first, last = train(mlp, feature_batch)
    print(f"channels-last MLP (B, T, C), dim=-1: loss {first:.4f} -> {last:.4f}")

    x = torch.randn(4, 32, 65536, device=device, requires_grad=True)
    fused = saved_bytes(lambda: SnakeBeta(32).to(device)(x))
    eager = saved_bytes(lambda: SnakeBeta(32, impl="eager").to(device)(x))
    mib = x.numel() * x.element_size() / 2**20
    print(f"saved for backward on a {mib:.0f} MiB input: fused SnakeBeta {fused / 2**20:.0f} MiB, "
          f"eager formula {eager / 2**20:.0f} MiB")
