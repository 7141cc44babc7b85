"""U-Net training step (depth 4, width 16, batch 8 of 128x128 crops, BCE + Dice, AdamW):
fp32 against bf16 autocast + channels_last, the setting params.yaml uses by default."""

from __future__ import annotations

from reprolab.core.bench import Entry


def _variants() -> dict:
    import torch
    import torch.nn.functional as F

    from reprolab.core.train.setup import autocast
    from reprolab.workloads.nuclei.unet import dice_loss
    from reprolab.workloads.nuclei.unet_net import NetConfig, build

    torch.manual_seed(0)
    x = torch.randn(8, 3, 128, 128)
    y = (torch.rand(8, 1, 128, 128) > 0.8).float()

    def make(fast: bool):
        config = NetConfig(4, 16, "batch", 0.0, True, fast, fast, 0.5, 1024, 64)
        net = build(config).train()
        optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3)
        inputs = x.contiguous(memory_format=torch.channels_last) if fast else x

        def step() -> None:
            with autocast("cpu", fast):
                logits = net(inputs)
            logits = logits.float()
            loss = F.binary_cross_entropy_with_logits(logits, y) + dice_loss(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()

        return step

    return {"baseline": make(False), "candidate": make(True)}


ENTRY = Entry(
    name="unet-bf16",
    unit="training step",
    setup=_variants,
    claim="bf16 autocast + channels_last vs fp32 (about 2.2x on AVX512-BF16 CPUs)",
)
