"""Report section of a control task (PIDNet): the learned tuner against Ziegler–Nichols and
SIMC on the same test plants and step tests, per kind of plant, and step responses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from reprolab.core.document import Document
from reprolab.core.layout import eval_dir, registry_file
from reprolab.core.summary import champion_sentence

if TYPE_CHECKING:
    from reprolab.params import Params

METRICS = [
    ("iae", "IAE", "{:.2f}"),
    ("ise", "ISE", "{:.2f}"),
    ("overshoot", "overshoot %", "{:.1f}"),
    ("settling_time", "settling s", "{:.1f}"),
    ("effort", "effort Σ|Δu|", "{:.1f}"),
]
BASELINES = {"zn": "Ziegler–Nichols", "simc": "SIMC (PI)"}


def task_section(doc: Document, task: str, params: Params, figdir: Path) -> None:
    from reprolab.workloads.control.data import loop_of

    names = params.models_of_task(task)
    registry = json.loads(registry_file(task).read_text())
    doc.heading(f"Task `{task}`")
    doc.text(champion_sentence(registry, params.registry[task].metric, None))
    header = ["controller", *[label for _, label, _ in METRICS]]
    rows, first = [], None
    for name in names:
        m = json.loads((eval_dir(task, name) / "metrics.json").read_text())
        first = first or (name, m)
        rows.append([f"**{name}**", *[fmt.format(m[k]) for k, _, fmt in METRICS]])
    if first:
        for key, label in BASELINES.items():
            base = first[1][key]
            rows.append([label, *[fmt.format(base[k]) for k, _, fmt in METRICS]])
    doc.table(header, rows)
    if first:
        m = first[1]
        kinds = sorted(k for k, v in m.items() if isinstance(v, dict) and k not in BASELINES)
        doc.text(
            f"Means over the test plants (setpoint step at 0 s, load step at "
            f"{loop_of(params.datasets[params.model(first[0]).dataset]).disturbance_time:g} s, "
            f"measurement noise). {first[0]} IAE vs Ziegler–Nichols: {m['iae_vs_zn']:+.1%}, vs "
            f"SIMC: {m['iae_vs_simc']:+.1%}. Per kind of plant (IAE): "
            + ", ".join(f"{k} {m[k]['iae']:.2f}" for k in kinds)
            + "."
        )
        frame = pd.read_csv(eval_dir(task, first[0]) / "predictions.csv")
        doc.table(*by_kind(frame, first[0]))
        doc.text(
            "Mean IAE and overshoot per kind of test plant. A learned setpoint weight b "
            "(u = Kp (b r - y) + I + D) lets integrating plants follow the step without the "
            "overshoot that b = 1 forces on them; Ziegler–Nichols and SIMC use b = 1."
        )
        spec = params.datasets[params.model(first[0]).dataset]
        path = step_responses(frame, loop_of(spec), figdir / f"{task}-step-responses.png")
        doc.figure(
            path, f"Closed-loop responses of one test plant per kind: {first[0]} vs baselines"
        )


def by_kind(frame: pd.DataFrame, name: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows): per plant kind, the learned tuner's and Ziegler–Nichols' mean IAE and
    overshoot, and the mean setpoint weight where the model predicts one."""
    header = ["plant kind", "plants", f"{name} IAE", f"{name} overshoot %"]
    header += ["Ziegler–Nichols IAE", "Ziegler–Nichols overshoot %"]
    weight = "b" in frame.columns
    header += ["mean b"] if weight else []
    rows = []
    for kind, part in frame.groupby("kind", sort=True):
        row = [str(kind), str(len(part)), f"{part['iae'].mean():.2f}"]
        row += [f"{part['overshoot'].mean():.1f}", f"{part['zn_iae'].mean():.2f}"]
        row += [f"{part['zn_overshoot'].mean():.1f}"]
        rows.append(row + ([f"{part['b'].mean():.2f}"] if weight else []))
    return header, rows


def step_responses(frame: pd.DataFrame, loop, path: Path) -> Path:
    """One panel per plant kind (its first test plant): output y(t) under each tuner."""
    import torch

    from reprolab.core.figures import grid, save
    from reprolab.workloads.control import simulate, tuning
    from reprolab.workloads.control.data import features_of, weighted
    from reprolab.workloads.control.plants import Plant

    picks = frame.groupby("kind", sort=True).head(1)
    fields = [f for f in Plant.__dataclass_fields__ if f in picks.columns]
    plants = [Plant(**{f: row[f] for f in fields}) for _, row in picks.iterrows()]
    feats = features_of(plants, loop)
    gains = {
        "learned": weighted(picks),
        "Ziegler–Nichols": tuning.ziegler_nichols(feats),
        "SIMC": tuning.simc(feats),
    }
    fig, axes = grid(len(plants), size=4.0)
    batch = simulate.batch(plants, loop)
    for label, g in gains.items():
        with torch.no_grad():
            traj = simulate.closed_loop(batch, torch.tensor(np.asarray(g)))
        for ax, y in zip(axes, traj.y.numpy(), strict=True):
            ax.plot(traj.t.numpy(), y, lw=1.2, label=label)
    for ax, p in zip(axes, plants, strict=True):
        ax.axhline(1.0, c="k", lw=0.6, ls="--")
        ax.axvline(loop.disturbance_time, c="grey", lw=0.6, ls=":")
        ax.set_title(f"{p.kind}: K={p.gain:.2f}, delay={p.delay:.2f}s", fontsize=9)
        ax.set_xlabel("t (s)")
        ax.set_ylim(-0.2, 2.2)
    axes[0].set_ylabel("y")
    axes[0].legend(fontsize=8)
    return save(fig, path)
