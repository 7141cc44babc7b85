"""Closed-loop control for PIDNet: plants, a differentiable simulator, step-test
identification, classic tuning rules and the metrics a control engineer reads.
See docs/pidnet.md."""
