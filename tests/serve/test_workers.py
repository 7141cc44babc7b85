"""`reprolab serve --workers 2`: the two workers share one set of Prometheus metrics, so
every scrape (answered by either worker) shows totals over both, and they only grow."""

from __future__ import annotations

import re

import httpx
import pytest

from reprolab.ops.bench_serve import WINE_ROW
from tests.serve.conftest import start_server

pytestmark = pytest.mark.slow

ROUTE = "/v1/tasks/wine-quality/predict"


def predictions_counted(text: str) -> float:
    pattern = r'reprolab_http_requests_total\{route="%s",status="200",task="wine-quality"\} (\S+)'
    found = re.search(pattern % re.escape(ROUTE), text)
    return float(found.group(1)) if found else 0.0


def test_every_scrape_shows_the_total_over_both_workers(served_store, params_file):
    args = ("--workers", "2", "--no-ui", "--task", "wine-quality", "--reload-interval", "0")
    with start_server(served_store, params_file, *args) as server:
        # the first ready answer came from one worker; a cold one takes no connection
        ready = [httpx.get(server.url + "/ready").status_code for _ in range(12)]
        assert ready == [200] * 12, ready
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
            seen = []
            for sent in range(1, 41):
                client.post(ROUTE, json={"rows": [WINE_ROW]}).raise_for_status()
                if sent % 10 == 0:  # new connections: the kernel deals them across workers
                    for _ in range(4):
                        scrape = httpx.get(server.url + "/metrics", headers=server.headers)
                        seen.append((sent, predictions_counted(scrape.text)))
        assert all(count == sent for sent, count in seen), seen
        text = httpx.get(server.url + "/metrics", headers=server.headers).text
        assert 'reprolab_model_info{alias="champion",task="wine-quality",version="1"} 1.0' in text
