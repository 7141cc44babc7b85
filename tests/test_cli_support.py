"""How a command ends on a user error or a stop: one red line, the right exit code."""

from __future__ import annotations

import pytest

from reprolab import cli_support
from reprolab.core import interrupts


@pytest.fixture(autouse=True)
def _no_parent_death_signal(monkeypatch):
    monkeypatch.setattr(interrupts, "die_with_parent", lambda: None)


def test_ctrl_c_says_interrupted_not_an_empty_reason(capsys):
    with pytest.raises(SystemExit) as stop, cli_support.user_errors():
        raise KeyboardInterrupt
    assert stop.value.code == 130
    assert capsys.readouterr().err.strip() == "stopped: interrupted (Ctrl-C)"


def test_a_stop_signal_gives_its_reason(capsys):
    with pytest.raises(SystemExit) as stop, cli_support.user_errors():
        raise interrupts.Stopped("SIGTERM")
    assert stop.value.code == 143
    assert capsys.readouterr().err.strip() == "stopped: SIGTERM"
