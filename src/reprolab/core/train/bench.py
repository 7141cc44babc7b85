"""The one training loop (core.train.loop.Loop: cadence, early stopping with kept weights,
metric averaging, the guard, the progress bar) against a bare PyTorch loop doing the same
steps and evaluations on the same model and batch: what the shared loop costs per step."""

from __future__ import annotations

from reprolab.core.bench import Entry

STEPS, EVAL_EVERY = 40, 10


def _variants() -> dict:
    import torch
    import torch.nn.functional as F

    from reprolab.core.train.loop import Loop

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.BatchNorm2d(16),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 1, 1),
    )
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x, y = torch.randn(8, 3, 64, 64), (torch.rand(8, 1, 64, 64) > 0.5).float()
    xv = torch.randn(8, 3, 64, 64)

    def step(_: int = 0) -> dict[str, float]:
        net.train()
        loss = F.binary_cross_entropy_with_logits(net(x), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        return {"train_loss": loss.item()}

    def evaluate() -> dict[str, float]:
        net.eval()
        with torch.no_grad():
            return {"valid_score": float(net(xv).mean())}

    def bare() -> None:
        losses = []
        for i in range(1, STEPS + 1):
            losses.append(step()["train_loss"])
            if i % EVAL_EVERY == 0:
                evaluate()
                losses.clear()

    def loop() -> None:
        plan = Loop("bench", steps=STEPS, eval_every=EVAL_EVERY, monitor="valid_score")
        plan.quiet = True
        plan.run(step, evaluate, keep=net)

    return {"baseline": bare, "candidate": loop}


ENTRY = Entry(
    name="train-loop",
    unit=f"{STEPS} steps",
    setup=_variants,
    claim="the one training loop runs at >= 0.95x a bare torch loop's steps/s",
)
