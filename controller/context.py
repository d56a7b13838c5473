"""What the model is given of a conversation: the window of recent messages, the messages the user pinned,
a summary of what the window dropped, nothing the user left out; and the meter that shows it.

Plain Python over stored messages (no llama-index), so the page can show the meter without the agent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from controller import media
from model.assistant import GENERAL
from model.conversation import Conversation, Digest
from model.message import Context, Message

_PROMPT_RESERVE = 256  # room kept free for the system prompt and the user's new message
MESSAGE_OVERHEAD = 6  # the chat template around each message: <|im_start|>role\n … <|im_end|>\n
IMAGE_TOKENS = 1_000  # room kept for each image part (vision models count 500-1,600 for one)
STEP_NOTE_CHARS = 600  # of each earlier tool run's output the model reads again
SUMMARY_SHARE = 6  # once the history outgrows the window, a sixth of it is kept for the summary…
SUMMARY_MAX = 400  # … up to this many tokens
SUMMARY_HEADING = "Summary of the earlier part of this conversation (its messages are not shown to you):"


def stable_window(token_counts: Sequence[int], budget: int, floor: int | None = None) -> int:
    """Where the history sent to the model starts, given each message's size in tokens.

    When the history outgrows the budget we drop the oldest messages down to half of it (or `floor`), not
    just enough to fit, and keep that start until the budget is exceeded again. The prompt then begins the
    same way for many turns, so llama.cpp reuses its cache of it instead of reading the whole window again
    every turn (about 5 s for 1,000 tokens with the bundled model on 2 cores, against 0.1 s when cached).
    The start depends only on the messages before it, so turns that add messages never move it back.
    """
    floor = budget // 2 if floor is None else floor
    start, size = 0, 0
    for end, tokens in enumerate(token_counts):
        size += tokens
        if size > budget:
            while start < end and size > floor:  # the newest message stays if it fits alone
                size -= token_counts[start]
                start += 1
            if size > budget:
                size, start = 0, end + 1
    return start


def memory_token_limit(context_window: int, max_reply_tokens: int) -> int:
    """How many tokens of history fit beside the reply and the new message."""
    return max(256, context_window - max_reply_tokens - _PROMPT_RESERVE)


def summary_room(limit: int) -> int:
    """Tokens kept for the summary once the history outgrows the window."""
    return min(SUMMARY_MAX, limit // SUMMARY_SHARE)


def model_text(message: Message) -> str:
    """What the model reads of a stored message: a reply with the outputs of its tool runs (the Run
    button's among them) noted after it, so a later question can refer to them."""
    notes = []
    text = media.with_notes(message, sees_images=False)  # earlier turns' images: their text only
    for step in message.steps:
        result = step.error or step.output or "(no output)"
        if len(result) > STEP_NOTE_CHARS:
            result = result[:STEP_NOTE_CHARS] + "…"
        notes.append(f"[{step.tool} ran: {step.input[:STEP_NOTE_CHARS]}\nResult: {result}]")
    return "\n\n".join([text, *notes]) if notes else text


@dataclass(frozen=True, slots=True)
class Meter:
    """How the next request fills the model's window, in tokens."""

    window: int  # what the whole prompt may take (the context window less the reply's room)
    system: int = 0
    summary: int = 0
    pinned: int = 0
    history: int = 0
    attachments: int = 0  # file passages and images sent with the question
    question: int = 0

    @property
    def used(self) -> int:
        """All of it."""
        return self.system + self.summary + self.pinned + self.history + self.attachments + self.question


@dataclass(frozen=True, slots=True)
class Window:
    """What the model is given of the history before a question, and what it is not."""

    messages: list[Message]  # pinned ones the window would drop, then the window, in order
    summary: str  # sent ahead of them ("" for none)
    dropped: list[Message]  # what the window dropped, oldest first
    digest: Digest | None  # the stored summary used (it covers the first `digest.count` of `dropped`)
    left_out: int  # marked "leave out"
    beyond_last: int  # before the chat's "only the last N messages"
    meter: Meter

    @property
    def unsummarised(self) -> list[Message]:
        """Dropped messages the stored summary does not cover yet."""
        return self.dropped[self.digest.count :] if self.digest else self.dropped


def plan(
    history: Sequence[Message],
    count: Callable[[str], int],
    context_window: int,
    max_reply_tokens: int,
    *,
    system_prompt: str = "",
    question: str = "",
    attachments: int = 0,
    keep_last: int = 0,
    digests: Sequence[Digest] = (),
) -> Window:
    """Choose what the model is given of `history` (the messages before the question).

    Messages left out are never sent; pinned ones always are. Of the others (the last `keep_last`, if
    set), the window keeps the newest by `stable_window`, in what remains of the budget once the pinned
    ones and the summary's room are taken; what it drops is summarised. `attachments` are the tokens of
    file passages and images sent with the question.
    """
    limit = memory_token_limit(context_window, max_reply_tokens)
    room = context_window - max_reply_tokens
    left_out = sum(m.context is Context.NEVER for m in history)
    given = [m for m in history if m.context is not Context.NEVER]
    pinned = [m for m in given if m.context is Context.ALWAYS]
    rest = [m for m in given if m.context is not Context.ALWAYS]
    beyond = max(0, len(rest) - keep_last) if keep_last else 0
    rest = rest[beyond:]
    size = {m.id: count(model_text(m)) + MESSAGE_OVERHEAD for m in (*pinned, *rest)}
    sizes = [size[m.id] for m in rest]
    pinned_tokens = sum(size[m.id] for m in pinned)
    budget = max(0, limit - pinned_tokens)
    floor = budget // 2
    if sum(sizes) > budget:
        # The summary takes its room from the window, so that summary and window together are as long
        # as the window alone was: no longer to read when the window moves, nor on each turn after.
        budget = max(0, budget - summary_room(limit))
        floor = max(0, floor - summary_room(limit))
    start = stable_window(sizes, budget, floor)
    fixed = count(system_prompt) + count(question) + 2 * MESSAGE_OVERHEAD + attachments + pinned_tokens
    digest, summary, summary_tokens = _summary(rest[:start], digests, count, summary_room(limit))
    # A new message longer than the room kept for it pushes out more history, this turn only.
    while start < len(sizes) and sum(sizes[start:]) + fixed + summary_tokens > room:
        start += 1
        digest, summary, summary_tokens = _summary(rest[:start], digests, count, summary_room(limit))
    window = set(id(m) for m in rest[start:])
    sent = [m for m in given if id(m) in window or m.context is Context.ALWAYS]
    meter = Meter(
        window=room,
        system=count(system_prompt) + (MESSAGE_OVERHEAD if system_prompt else 0),
        summary=summary_tokens,
        pinned=pinned_tokens,
        history=sum(sizes[start:]),
        attachments=attachments,
        question=count(question) + MESSAGE_OVERHEAD if question else 0,
    )
    return Window(sent, summary, rest[:start], digest, left_out, beyond, meter)


def ahead(
    conversation: Conversation,
    count: Callable[[str], int],
    context_window: int,
    max_reply_tokens: int,
    attachments: int = 0,
) -> Window:
    """What the model would be given of a conversation with its next question (not yet typed)."""
    assistant = conversation.assistant or GENERAL
    return plan(
        conversation.path(),
        count,
        context_window,
        max_reply_tokens,
        system_prompt=assistant.instructions,
        attachments=attachments,
        keep_last=conversation.keep_last,
        digests=conversation.digests,
    )


def _summary(
    dropped: Sequence[Message], digests: Sequence[Digest], count: Callable[[str], int], room: int
) -> tuple[Digest | None, str, int]:
    """(the stored summary that covers the most of `dropped`, the text sent, its tokens). Messages it
    does not cover yet (its update runs after the reply) are added as sentences picked from them, so
    nothing dropped goes unmentioned."""
    if not dropped:
        return None, "", 0
    position = {m.id: n for n, m in enumerate(dropped, 1)}
    usable = [d for d in digests if position.get(d.through) == d.count]
    digest = max(usable, key=lambda d: d.count, default=None)
    covered = digest.count if digest else 0
    text = fold(digest.text if digest else "", dropped[covered:], count, room)
    return digest, f"{SUMMARY_HEADING}\n{text}", count(text) + count(SUMMARY_HEADING) + MESSAGE_OVERHEAD


_SPEAKERS = {"user": "The user", "assistant": "The assistant", "system": "The system"}
SENTENCE_WORDS = 40


def extract(message: Message) -> str:
    """One line for a message in an extractive summary: who, and its first sentences up to 40 words."""
    words = model_text(message).split()
    shown = []
    for word in words:
        shown.append(word)
        if len(shown) >= SENTENCE_WORDS or (len(shown) >= 8 and word.endswith((".", "?", "!"))):
            break
    ending = "" if len(shown) == len(words) else " …"
    speaker = _SPEAKERS.get(message.role.value, message.role.value)
    return f"- {speaker}: {' '.join(shown)}{ending}"


def fold(summary: str, messages: Sequence[Message], count: Callable[[str], int], room: int) -> str:
    """A summary with the opening of each message added (extractive); the oldest lines go first when it
    outgrows `room` tokens."""
    lines = [line for line in summary.splitlines() if line.strip()] + [extract(m) for m in messages]
    sizes = [count(line) + 1 for line in lines]  # lines are counted apart: each count is cached
    total = sum(sizes)
    while len(lines) > 1 and total > room:
        lines.pop(0)
        total -= sizes.pop(0)
    return "\n".join(lines)
