"""The service's parts without a server: settings, error paths, the micro-batcher, stop
strings and the shared/exclusive lock of a language model."""

from __future__ import annotations

import asyncio
import threading
import time

import pandas as pd
import pytest

from reprolab.serve.errors import field_path
from reprolab.serve.metrics import Metrics, _task_of
from reprolab.serve.settings import ServeError, ServeSettings, parse_lms, read_token


def test_settings_refuse_a_public_host_without_token():
    with pytest.raises(ServeError, match="REPROLAB_API_TOKEN"):
        ServeSettings(host="0.0.0.0").check()
    ServeSettings(host="0.0.0.0", token="t").check()
    ServeSettings(host="0.0.0.0", insecure=True).check()
    ServeSettings(host="::1").check()
    with pytest.raises(ServeError, match="--max-batch"):
        ServeSettings(max_batch=0).check()


def test_token_from_file_or_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REPROLAB_API_TOKEN", " env-token ")
    assert read_token(None) == "env-token"
    path = tmp_path / "token"
    path.write_text("file-token\n")
    assert read_token(path) == "file-token"
    path.write_text("")
    with pytest.raises(ServeError, match="empty"):
        read_token(path)
    with pytest.raises(ServeError, match="cannot read"):
        read_token(tmp_path / "missing")


def test_lm_pairs(tmp_path):
    assert parse_lms((f"minit={tmp_path}",)) == {"minit": str(tmp_path.resolve())}
    assert parse_lms(("x=models:/llm-sft@champion",)) == {"x": "models:/llm-sft@champion"}
    with pytest.raises(ServeError, match="NAME=DIRECTORY"):
        parse_lms(("minit",))
    with pytest.raises(ServeError, match="no such model directory"):
        parse_lms((f"m={tmp_path / 'nope'}",))


def test_field_paths_and_route_tasks():
    assert field_path(("body", "rows", 0, "fixed acidity")) == "rows[0].fixed acidity"
    assert field_path(("query", "task")) == "task"
    assert _task_of("/v1/tasks/wine-quality/predict") == "wine-quality"
    assert _task_of("/v1/tasks/{task}/predict") == ""
    assert _task_of("/metrics") == ""


class Doubling:
    """A per-row adapter whose model doubles `x`; rows with x < 0 make it fail."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def run(self, model, frame: pd.DataFrame) -> list[float]:
        self.calls.append(len(frame))
        if (frame["x"] < 0).any():
            raise ValueError("negative")
        return (frame["x"] * model).tolist()


def test_micro_batches_join_requests_and_keep_failures_apart():
    from reprolab.serve.batching import MicroBatcher

    adapter = Doubling()

    async def scenario():
        batcher = MicroBatcher("t", adapter, max_batch=8, max_wait_s=0.05, metrics=Metrics())
        frames = [pd.DataFrame({"x": [float(i), float(i)]}) for i in range(4)]
        bad = pd.DataFrame({"x": [-1.0]})
        results = await asyncio.gather(
            *(batcher.run(2, f) for f in frames), batcher.run(2, bad), return_exceptions=True
        )
        other = await batcher.run(3, frames[1])  # another model version: its own batch
        await batcher.close()
        return results, other

    results, other = asyncio.run(scenario())
    assert results[:4] == [[0.0, 0.0], [2.0, 2.0], [4.0, 4.0], [6.0, 6.0]]
    assert isinstance(results[4], ValueError)
    assert adapter.calls[0] == 9  # all five requests in one call, then each alone
    assert other == [3.0, 3.0]


class FakeLM:
    """A LanguageModel whose 'generation' yields fixed pieces."""

    def __init__(self, pieces: list[str]) -> None:
        from reprolab.serve.lm_engine import LanguageModel

        self.lm = LanguageModel.__new__(LanguageModel)
        self.lm._pieces = self._pieces  # type: ignore[method-assign]
        self.pieces = pieces

    def _pieces(self, job):
        for piece in self.pieces:
            if job.cancel.is_set():
                return
            job.generated += 1
            yield piece


@pytest.mark.parametrize(
    ("stops", "text", "reason"),
    [
        ([], "Hello world. Bye", "length"),
        (["."], "Hello world", "stop"),
        (["wor", "Bye"], "Hello ", "stop"),
        (["ld. B"], "Hello wor", "stop"),  # a stop that spans pieces
        (["zzz"], "Hello world. Bye", "length"),
    ],
)
def test_stop_strings_cut_the_text(stops, text, reason):
    from reprolab.lm.generation import Sampling
    from reprolab.serve.lm_engine import Job

    fake = FakeLM(["Hel", "lo ", "wor", "ld.", " By", "e"])
    job = Job(ids=[1, 2], sampling=Sampling(max_new_tokens=6), stops=stops)
    pieces = list(fake.lm.stream(job))
    assert "".join(pieces) == text and job.finish_reason == reason


def test_seeded_streams_run_side_by_side_and_each_keeps_its_text(tmp_path):
    """Four seeded sampling streams at once, beside unseeded ones that draw from torch's
    global generator: each seed gives the text it gives alone, and all run concurrently (a
    seeded stream no longer holds the model alone)."""
    from concurrent.futures import ThreadPoolExecutor

    from reprolab.serve.lm_engine import LanguageModel
    from reprolab.serve.tasks import load_pyfunc
    from tests.tiny_models import minit

    lm = LanguageModel.from_pyfunc("minit", load_pyfunc(minit(tmp_path).dir))

    def text(seed: int | None) -> str:
        job = lm.job("the ", 24, 1.0, 0.95, seed, None)
        return lm.complete(job)

    alone = {seed: text(seed) for seed in (1, 2, 3, 4)}
    assert len(set(alone.values())) > 1  # the seeds do differ
    inside, peak, guard = [0], [0], threading.Lock()
    original = lm.model.forward

    def counted(*args, **kwargs):  # how many generations are inside the model at once
        with guard:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        try:
            time.sleep(0.002)
            return original(*args, **kwargs)
        finally:
            with guard:
                inside[0] -= 1

    lm.model.forward = counted
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(text, alone)) == list(alone.values())
    assert peak[0] >= 2  # the seeded streams were inside the model together
    with ThreadPoolExecutor(8) as pool:
        seeds = [1, None, 2, None, 3, None, 4, None]
        together = list(pool.map(text, seeds))
    assert together[::2] == list(alone.values())


def test_a_vanishing_temperature_samples_greedily(tmp_path):
    """A temperature of 5e-324 (which JSON and the schema allow) would make the logits inf
    and the draw fail; under 1e-5 it is greedy, the text temperature 0 gives."""
    from reprolab.serve.lm_engine import LanguageModel
    from reprolab.serve.tasks import load_pyfunc
    from tests.tiny_models import minit

    lm = LanguageModel.from_pyfunc("minit", load_pyfunc(minit(tmp_path).dir))
    greedy = lm.complete(lm.job("the ", 8, 0.0, None, None, None))
    for seed in (None, 7):
        job = lm.job("the ", 8, 5e-324, 5e-324, seed, None)
        assert job.sampling.temperature == 0.0
        assert lm.complete(job) == greedy


def test_the_dashboard_reads_the_metrics_the_service_exports():
    from tests.project.test_deploy_compose import METRICS

    exported = {}
    for family in Metrics().registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        exported[name] = family.type
    assert exported == METRICS


def test_an_image_over_the_pixel_cap_is_413_before_any_decoding():
    """The header's size decides: a 4096x4096 PNG is refused at once, naming the limit, and
    never reaches the model (that took 87 s on two cores)."""
    import io

    from PIL import Image

    from reprolab.serve.errors import ApiError
    from reprolab.serve.tasks.nuclei import NucleiAdapter

    assert ServeSettings().max_image_pixels == 2048 * 2048
    buf = io.BytesIO()
    Image.new("RGB", (4096, 4096)).save(buf, format="PNG")
    with pytest.raises(ApiError) as refused:
        NucleiAdapter(ServeSettings().max_image_pixels).check(buf.getvalue())
    assert refused.value.status == 413
    assert "4096x4096 pixels, more than the limit of 4194304" in str(refused.value)
    small = io.BytesIO()
    Image.new("RGB", (64, 48)).save(small, format="PNG")
    assert NucleiAdapter(2048 * 2048).check(small.getvalue()).shape == (48, 64, 3)
    with pytest.raises(ServeError, match="--max-image-pixels: must be >= 1, got 0"):
        ServeSettings(max_image_pixels=0).check()


def test_a_generation_request_is_waiting_then_running_then_counted_once():
    from reprolab.serve.metrics import TokenClock

    metrics = Metrics()

    def value(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, {"model_name": "m", **labels}) or 0.0

    clock = TokenClock(metrics, "m")
    assert value("reprolab_num_requests_waiting") == 1
    clock.token()
    assert value("reprolab_num_requests_waiting") == 0
    assert value("reprolab_num_requests_running") == 1
    clock.token()
    clock.done(prompt_tokens=5, generated=2, reason="length")
    clock.close()  # the route's `finally` after a finished request changes nothing
    assert value("reprolab_num_requests_running") == 0
    assert value("reprolab_request_success_total", finished_reason="length") == 1
    assert value("reprolab_request_success_total", finished_reason="abort") == 0
    assert value("reprolab_time_per_output_token_seconds_count") == 1

    gone = TokenClock(metrics, "m")  # the client left before the first token
    gone.close()
    assert value("reprolab_num_requests_waiting") == 0
    assert value("reprolab_request_success_total", finished_reason="abort") == 1
