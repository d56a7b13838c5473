"""Short titles for new conversations, proposed by the model after the first exchange.

Only capable providers are asked (the bundled 135M-parameter model writes poor titles; its chats keep the
first words of the first message), and a name the user gave is never replaced (see `auto_rename`).
"""

from __future__ import annotations

import re

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms import LLM

from model.conversation import AUTO_NAME_LENGTH

TITLE_PROMPT = (
    "Write a title of at most six words for the conversation below, in its language. Reply with the title "
    "only: no quotes, no final punctuation."
)
_LABEL = re.compile(r"^(title|título|titre)\s*:\s*", re.IGNORECASE)


def propose_title(llm: LLM, question: str, answer: str) -> str | None:
    """A short title for a conversation that starts with `question` and `answer`, or None."""
    short = llm.model_copy(update={"max_tokens": 24})  # the same client, a shorter reply
    prompt = f"User: {question[:2000]}\n\nAssistant: {answer[:2000]}"
    system = ChatMessage(role=MessageRole.SYSTEM, content=TITLE_PROMPT)
    response = short.chat([system, ChatMessage(role=MessageRole.USER, content=prompt)])
    return clean_title(response.message.content or "")


def clean_title(text: str) -> str | None:
    """The first line of a model's answer as a title: labels, quotes and Markdown stripped, kept short."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    quotes = "\"'“”«»#*_` "
    line = _LABEL.sub("", line.strip(quotes)).strip(quotes).rstrip(".!?:;,")
    line = " ".join(line.split())
    if not line:
        return None
    if len(line) > AUTO_NAME_LENGTH:
        line = line[:AUTO_NAME_LENGTH].rsplit(" ", 1)[0].rstrip(" ,.;:-") + "…"
    return line
