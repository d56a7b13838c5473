"""How much history the agent sends, and how it is counted: all of it while it fits, then a window whose start
rarely moves."""

import httpx
import pytest

from controller.context import stable_window


@pytest.mark.parametrize(
    ("sizes", "budget", "start"),
    [
        ([], 100, 0),
        ([10, 10, 10], 100, 0),
        ([60, 60], 100, 1),  # over budget: drop to half of it
        ([30, 30, 30, 30], 100, 3),
        ([10, 10, 10, 90], 100, 3),  # the newest message fits alone: it stays
        ([200], 100, 1),  # a single message larger than the budget is dropped
    ],
)
def test_window_start(sizes, budget, start):
    """The start drops old messages only when the budget is exceeded, down to half of it."""
    assert stable_window(sizes, budget) == start


def test_start_stays_put_while_the_chat_grows():
    """Adding turns keeps the same start until the budget is exceeded again, then jumps forward."""
    sizes = [40] * 3  # 120 > 100: trimmed to <= 50, start 2
    starts = []
    for _ in range(9):
        starts.append(stable_window(sizes, 100))
        sizes.append(20)
    assert starts == [2, 2, 2, 2, 5, 5, 5, 5, 9]


def test_a_floor_leaves_room_for_the_summary():
    """With a summary ahead of it, the window drops further (to `floor`), so that summary and window
    together start as long as the window alone did."""
    assert stable_window([10] * 11, 100) == 6  # 110 > 100: down to 50
    assert stable_window([10] * 11, 100, floor=30) == 8  # down to 30


@pytest.mark.engine
def test_token_counts_are_what_the_model_reads(engine):
    """The history budget counts with the loaded model's own tokenizer: each text's count, plus the same
    template overhead whatever the text, is what the engine reports reading for a message holding it."""

    def prompt_tokens(text: str) -> int:
        body = {"model": "local", "messages": [{"role": "user", "content": text}], "max_tokens": 1}
        return httpx.post(f"{engine.base_url}/chat/completions", json=body, timeout=60).json()["usage"][
            "prompt_tokens"
        ]

    overhead = prompt_tokens("") - engine.count_tokens("")
    assert overhead > 0
    for text in ("Hello there!", "Conversamos sobre pão de queijo e açaí. 🌍", "<|im_start|>user\nhi"):
        assert engine.count_tokens(text) + overhead == prompt_tokens(text), text
