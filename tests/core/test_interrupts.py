"""Stop signals and the tracking store: a write is never cut in the middle."""

from __future__ import annotations

import os
import signal

import pytest

from reprolab.core import interrupts


def test_a_stop_signal_waits_for_a_shielded_tracking_write_to_finish():
    """A signal inside a write to the tracking store raises only once the write is done."""
    done = []
    stopped = pytest.raises(interrupts.Stopped, match="stopped by SIGTERM")
    with stopped, interrupts.stop_on_signals(), interrupts.shielded():
        os.kill(os.getpid(), signal.SIGTERM)
        done.append("write finished")
    assert done == ["write finished"]
    with pytest.raises(KeyboardInterrupt), interrupts.stop_on_signals():
        os.kill(os.getpid(), signal.SIGINT)
        signal.pause()  # not reached: the signal raises at once outside a shield
