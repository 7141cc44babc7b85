"""The LLM backend benchmark's own logic: what counts as an answer that loops, the held-out
instructions it asks, and the ratios it prints against the goals."""

from __future__ import annotations

import json

from reprolab.ops.bench_serve.llm_backends import held_out, looped, text


def test_an_answer_ending_in_a_repeated_stretch_loops():
    assert looped("Here is a list: " + "&feature=published" * 3)
    assert looped("Title\n" + "The Great Book\n" * 10)
    assert looped("ok " + "🙂" * 5)
    assert not looped("def reverse(s):\n    return s[::-1]\n")
    assert not looped("a b c d e f g")


def test_held_out_instructions_keep_their_input(tmp_path):
    rows = [
        {"instruction": "Add.", "input": "1 and 2"},
        {"instruction": "Say hi.", "input": ""},
        {"instruction": "Third.", "input": ""},
    ]
    split = tmp_path / "valid.jsonl"
    split.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert held_out(split, 2) == ["Add.\n\n1 and 2", "Say hi."]


def _run(backend: str, streams: int, total: float) -> dict:
    return {
        "backend": backend,
        "connections": streams,
        "ttft_p50_ms": 10.0,
        "ttft_p99_ms": 20.0,
        "tokens_per_request": 100.0,
        "tokens_per_s_stream": total / streams,
        "tokens_per_s_total": total,
        "errors": 0,
    }


def test_the_report_states_each_goal_and_whether_it_holds():
    runs = [_run("transformers", 1, 20.0), _run("transformers", 8, 30.0)]
    runs += [_run("llama.cpp", 1, 120.0), _run("llama.cpp", 8, 150.0)]
    runs[-1]["loops"] = {
        "answers": 40,
        "max_tokens": 256,
        "defaults": {"at_limit": 3, "looped": 0},
        "off": {"at_limit": 9, "looped": 6},
    }
    out = text({"version": "3", "max_tokens": 128, "streams": [1, 8], "runs": runs})
    assert "tok/s x6.00 (goal: at least x5) holds" in out
    assert "total tok/s x1.25 (goal: at least x1.4) missed" in out
    assert "repetition controls off: 6 looped to the limit (15%)" in out
    assert "repetition controls defaults: 0 looped" in out
