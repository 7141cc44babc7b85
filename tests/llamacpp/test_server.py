"""A managed llama-server: concurrent requests batched in its slots give what each gives
alone (a KV cache per slot), and the process goes with its owner."""

from __future__ import annotations

import concurrent.futures

from reprolab.llamacpp.server import LlamaServer, ServerOptions

PROMPTS = ["How do I reproduce", "The quick brown", "def add(a, b):", "Below is an"]


def _body(prompt: str, seed: int) -> dict:
    return {
        "prompt": prompt,
        "n_predict": 24,
        "temperature": 0.9,
        "top_k": 0,
        "top_p": 1.0,
        "min_p": 0.0,
        "seed": seed,
        "cache_prompt": False,
        "ignore_eos": True,
    }


def test_seeded_requests_give_the_same_text_alone_and_side_by_side(tiny_gguf):
    server = LlamaServer(tiny_gguf, ServerOptions(slots=4, context=128, threads=2))
    try:
        jobs = [(p, seed) for seed in (1, 2) for p in PROMPTS]
        alone = [server.completion(_body(p, s))["content"] for p, s in jobs]
        with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
            together = list(pool.map(lambda job: server.completion(_body(*job))["content"], jobs))
        assert together == alone
        assert len(set(alone)) > 1  # the seeds and prompts do change the text
    finally:
        server.close()


def test_closing_stops_the_process(tiny_gguf):
    server = LlamaServer(tiny_gguf, ServerOptions(slots=1, context=64))
    proc = server.proc
    assert server.tokenize("The quick brown")
    server.close()
    assert proc.poll() is not None


def test_only_a_newline_ends_an_event_line():
    """Generated text carries U+2028 and U+0085 raw inside its JSON; they split no line."""
    import json

    from reprolab.llamacpp.server import Events

    text = "a\u2028b\x85c\x1cd"
    stream = ("data: " + json.dumps({"content": text}, ensure_ascii=False) + "\n\n").encode()
    events = Events()
    assert events.feed(stream[:10]) == []
    assert events.feed(stream[10:]) == [{"content": text}] and events.rest == b""
