"""A browser session's chat: which conversation is open, and the agent that answers in it.

The store is the record. The user's message is saved before the provider is called and the reply after it
ends, is stopped or fails, so a refresh, a closed tab or a crash loses nothing that was shown. The agent's
memory is rebuilt from the stored messages before every turn, so it never drifts from what the user sees
(after a stop, a failure or a change in another tab).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from controller import context, grounding, json_mode, media, summaries, transcripts, voices
from controller.assistants import openai_errors, with_assistant
from controller.provider_errors import provider_errors, translate
from controller.providers import LOCAL, OPENAI, Connection, ProviderConfig, connect, provider
from controller.tools import Outcome, Running, Tool, web_search
from errors import (
    BnaGPTError,
    InvalidJsonReply,
    MediaUnavailable,
    NothingHeard,
    NothingToAnswer,
    ProviderMisconfigured,
    SandboxUnavailable,
    StoreError,
    UnreadableFile,
)
from model import tree
from model.assistant import GENERAL, Assistant, JsonMode
from model.attachment import Attachment, Source, clean_file_name
from model.conversation import Conversation, auto_name
from model.conversation_store import ConversationStore
from model.file_store import FileStore
from model.media import Media
from model.message import Context, Message, MessageStatus, Role, utc_now
from model.step import Step
from utils.local_server import LocalEngine
from utils.markdown import python_blocks

if TYPE_CHECKING:
    from controller.agent import Agent
    from controller.documents import Documents
    from controller.toolbox import Toolbox
    from controller.voices import Voices


class ChatSession:
    """One browser session's chat controller; never shared between sessions."""

    def __init__(
        self,
        store: ConversationStore,
        engine: LocalEngine | None = None,
        documents: Documents | None = None,
        toolbox: Toolbox | None = None,
        voices: Voices | None = None,
        files: FileStore | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.documents = documents
        self.toolbox = toolbox
        self.voices = voices
        self.files = files or (documents.store if documents is not None else None)
        self.conversation_id: str | None = None
        self._connection: Connection | None = None
        self._agent: Agent | None = None
        # Set while no reply is streaming. Streamlit stops a run and starts the next one at once (Stop,
        # or a new message mid-reply), so the next run waits here for the old one to save its partial.
        self._idle = threading.Event()
        self._idle.set()

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until a reply interrupted in another script run has saved what it had."""
        self._idle.wait(timeout)

    # -- conversations ---------------------------------------------------------------------------

    def conversation(self) -> Conversation | None:
        """The open conversation as stored now, or None for a new chat."""
        if self.conversation_id is None:
            return None
        self.settle()
        return self.store.get(self.conversation_id)

    def open(self, conversation_id: str) -> Conversation:
        """Switch to a saved conversation."""
        conversation = self.store.get(conversation_id)
        self.conversation_id = conversation.id
        return conversation

    def new(self) -> None:
        """Start a new, not yet saved, chat."""
        self.conversation_id = None

    def save_as(self, name: str) -> Conversation:
        """Save a copy of the open chat under a new name and switch to it."""
        current = self.conversation()
        messages = current.messages if current else []
        assistant = current.assistant if current else None
        chosen = current.chosen if current else None
        copy = self.store.create(name, messages, assistant=assistant, named_by_user=True, chosen=chosen)
        if current is not None and current.files:
            self.store.set_files(copy.id, current.files)
        self.conversation_id = copy.id
        return copy

    def rename(self, conversation_id: str, name: str, expected: str | None = None) -> str:
        """Rename a conversation (unless it is no longer named `expected`); return the name as stored."""
        return self.store.rename(conversation_id, name, expected)

    def trash(self, conversation_id: str) -> None:
        """Move a conversation to the trash (unpinned); if it is the open one, start a new chat."""
        self.store.place(conversation_id, trashed_at=utc_now(), pinned=False)
        if conversation_id == self.conversation_id:
            self.new()

    def restore(self, conversation_id: str) -> None:
        """Take a conversation out of the trash."""
        self.store.place(conversation_id, trashed_at=None)

    # -- files -----------------------------------------------------------------------------------

    def attach(
        self, uploads: Sequence[tuple[str, bytes]], assistant: Assistant | None = None, message: str = ""
    ) -> tuple[list[Attachment], list[UnreadableFile]]:
        """Attach files to the open chat (a new chat, with a copy of `assistant`, is made for them, named
        after the `message` they came with, or the first file): (the files attached, the errors of those
        that could not be read, each naming its file)."""
        if self.documents is None:
            raise UnreadableFile("Files cannot be attached in this app: it has no document store.")
        added: list[Attachment] = []
        failed: list[UnreadableFile] = []
        for name, data in uploads:
            try:
                added.append(self.documents.attach(name, data))
            except UnreadableFile as error:
                failed.append(error)
        if not added:
            return added, failed
        self.settle()
        if self.conversation_id is None:
            created = self.store.create(
                auto_name(message.strip() or added[0].name), rename_if_taken=True, assistant=assistant
            )
            self.conversation_id = created.id
        current = self.store.get(self.conversation_id)
        kept = {f.sha256 for f in current.files}
        fresh = [f for f in added if f.sha256 not in kept]
        self.store.set_files(self.conversation_id, (*current.files, *fresh))
        return added, failed

    def read_media(
        self,
        uploads: Sequence[tuple[str, bytes]],
        config: ProviderConfig | None = None,
        language: str = "",
        environment: Mapping[str, str] | None = None,
    ) -> tuple[list[Media], list[BnaGPTError], list[str]]:
        """Read images (cleaned, OCR) and sounds (transcribed) for the next message: (the media, the
        errors of those that could not be read, each naming its file, notices for the user)."""
        if self.files is None:
            raise UnreadableFile("Images and sounds cannot be attached in this app: it has no file store.")
        found: list[Media] = []
        failed: list[BnaGPTError] = []
        notices: list[str] = []
        for name, data in uploads:
            try:
                if transcripts.is_audio(name):
                    heard = transcripts.transcribe(name, data, language, config, dict(environment or {}))
                    if not transcripts.heard_words(heard.text):
                        raise NothingHeard(
                            f"Nothing was heard in “{clean_file_name(name)}” ({heard.seconds:.0f} s of sound "
                            "without words): check the microphone, or speak closer to it, and try again."
                        )
                    found.append(media.read_sound(name, data, self.files, heard))
                else:
                    item, notice = media.read_image(name, data, self.files)
                    found.append(item)
                    notices += [notice] if notice else []
            except (UnreadableFile, MediaUnavailable) as error:
                failed.append(error)
        return found, failed, notices

    def make_image(self, prompt: str, assistant: Assistant | None = None) -> Step:
        """The /image command: a picture made by the configured image server, saved as the reply to
        the request; raise MediaUnavailable (saving nothing) if there is no image server or it failed."""
        if self.toolbox is None:
            raise MediaUnavailable("Images cannot be made in this app: it has no tools.")
        problem = self.toolbox.problem("make_image")
        if problem:
            raise MediaUnavailable(problem)
        outcome = self.toolbox.make_image(prompt)
        if outcome.step.error:
            raise MediaUnavailable(f"No image was made: {outcome.step.error}")
        request = Message(Role.USER, f"/image {prompt}")
        reply = Message(Role.ASSISTANT, "", steps=(outcome.step,))
        self.settle()
        if self.conversation_id is None:
            created = self.store.create(
                auto_name(prompt), [request, reply], rename_if_taken=True, assistant=assistant
            )
            self.conversation_id = created.id
        else:
            self.store.append(self.conversation_id, request)
            self.store.append(self.conversation_id, reply)
        return outcome.step

    def speech(
        self, conversation_id: str, message_id: str, config: ProviderConfig | None = None
    ) -> tuple[bytes, str, str]:
        """A reply read aloud with its chat's voice (or `config`'s server's, if it has a speech model):
        (the audio, its MIME type, a note for the user); made once, then read from the cache."""
        if self.voices is None:
            raise MediaUnavailable("Replies cannot be read aloud in this app: it has no voices.")
        conversation = self.store.get(conversation_id)
        message = _find(conversation, message_id)
        assistant = conversation.assistant or GENERAL
        text, cut = voices.speakable(message.content)
        if not text:
            raise MediaUnavailable("This reply has no words to read aloud (only code or links).")
        server = (
            (config.base_url, config.api_key or "")
            if config and config.kind == OPENAI and not config.public_only  # a user's typed server: chat only
            else ("", "")
        )
        voice = self.voices.choose(assistant.voice, text, assistant.language, server[0])
        data, mime = self.voices.speak(text, voice, server)
        note = f"Read by {voice.label}" + (f"; only its first {voices.MAX_CHARS:,} characters" if cut else "")
        return data, mime, note

    def detach(self, conversation_id: str, sha256: str) -> None:
        """Take a file off a chat (its stored copy goes once nothing else refers to it)."""
        current = self.store.get(conversation_id)
        self.store.set_files(conversation_id, [f for f in current.files if f.sha256 != sha256])

    def use_whole(self, conversation_id: str, sha256: str, whole: bool) -> None:
        """Give the model a file whole with every question, or only the passages that match."""
        current = self.store.get(conversation_id)
        files = [replace(f, whole=whole) if f.sha256 == sha256 else f for f in current.files]
        self.store.set_files(conversation_id, files)

    # -- replies ---------------------------------------------------------------------------------

    def send(
        self,
        text: str,
        config: ProviderConfig,
        assistant: Assistant | None = None,
        search_first: bool = False,
        media: Sequence[Media] = (),
        run_code: bool = False,
    ) -> Reply:
        """Save the user's message with its images and sounds (a new chat keeps a copy of `assistant`),
        then return the reply; with `search_first`, the web is searched for the message and the results
        given to the model. With `run_code`, the reply's first Python block is run in the sandbox when it
        ends (a chart asked for offline), its step saved with the reply."""
        self.settle()
        message = Message(Role.USER, text, media=tuple(media))
        if self.conversation_id is None:
            title = text.strip() or (media[0].text if media else "") or (media[0].name if media else "")
            created = self.store.create(
                auto_name(title), [message], rename_if_taken=True, assistant=assistant
            )
            self.conversation_id = created.id
        else:
            first = not self.store.get(self.conversation_id).messages
            self.store.append(self.conversation_id, message)
            if first and text.strip():
                # A chat started by attaching files was named after the first of them: its first question
                # names it better (unless the user has named it).
                self.store.auto_rename(self.conversation_id, auto_name(text))
        return Reply(self, config, search_first, run_code)

    def retry(self, config: ProviderConfig, search_first: bool = False) -> Reply:
        """Answer the last user message again (after a failure or a stop): a new version of the reply."""
        return Reply(self, config, search_first)

    def edit(self, message_id: str, text: str, config: ProviderConfig, search_first: bool = False) -> Reply:
        """Send an edited question: a new version beside the old one (which keeps its answers), then
        its reply. Its images and sounds go with it."""
        self.settle()
        if self.conversation_id is None:
            raise NothingToAnswer("There is no message to edit: open a chat first.")
        old = _find(self.store.get(self.conversation_id), message_id)
        if old.role != Role.USER:
            raise NothingToAnswer("Only your own messages can be edited; regenerate a reply instead.")
        if not text.strip() and not old.media:
            raise NothingToAnswer("The edited message is empty: type something, or cancel the edit.")
        message = Message(Role.USER, text, media=old.media)
        self.store.add(self.conversation_id, old.parent, message)
        return Reply(self, config, search_first, question=message.id)

    def regenerate(
        self, message_id: str, config: ProviderConfig, model: str = "", search_first: bool = False
    ) -> Reply:
        """Answer a reply's question again (with `config`'s provider and `model`, if given): a new
        version beside the old reply, which stays."""
        self.settle()
        if self.conversation_id is None:
            raise NothingToAnswer("There is no reply to regenerate: open a chat first.")
        old = _find(self.store.get(self.conversation_id), message_id)
        if old.role != Role.ASSISTANT or old.parent is None:
            raise NothingToAnswer("Only a reply to a question can be regenerated.")
        return Reply(self, config, search_first, question=old.parent, model=model)

    def choose(self, message_id: str) -> None:
        """Show (and send) this version of a message, and below it the versions last shown there."""
        if self.conversation_id is not None:
            self.store.choose(self.conversation_id, message_id)

    def set_context(self, message_id: str, rule: Context) -> None:
        """Give the model a message always, never, or as the window allows."""
        if self.conversation_id is not None:
            self.store.set_context(self.conversation_id, message_id, rule)

    def window(self, conversation: Conversation, config: ProviderConfig) -> tuple[context.Window, bool]:
        """What the model would be given of this chat with the next question (for the context meter),
        and whether it was counted with the model's own tokenizer (else estimated, to never wait)."""
        assistant = conversation.assistant or GENERAL
        config = with_assistant(config, assistant)
        count, exact = self._counter(config)
        files = _passages(config) if (*assistant.files, *conversation.files) else 0
        return context.ahead(conversation, count, config.context_window, config.max_tokens, files), exact

    def _counter(self, config: ProviderConfig) -> tuple[Callable[[str], int], bool]:
        """The model's token counter if asking it cannot wait (the local engine running, or the
        connection already made), else an estimate of four characters a token."""
        if config.kind == LOCAL and self.engine is not None and self.engine.started:
            return self.engine.count_tokens, True
        connection = self._connection
        if config.kind != LOCAL and connection is not None and connection.config.kind == config.kind:
            return connection.count_tokens, False  # tiktoken with a margin: no remote tokenizer
        return _estimate, False

    def summarise_later(self, conversation_id: str, config: ProviderConfig) -> None:
        """After a reply: summarise, in the background, what the model's window now drops, so the next
        question has the summary ready (`summaries.update`)."""
        count = self.engine.count_tokens if config.kind == LOCAL and self.engine is not None else None
        threading.Thread(
            target=summaries.update,
            args=(self.store, conversation_id, config, count),
            name="bnagpt-summary",
            daemon=True,
        ).start()

    def run_code(self, conversation_id: str, message_id: str, code: str) -> Step:
        """Run a code block of a reply at the user's request; the step is saved with that reply."""
        if self.toolbox is None:
            raise SandboxUnavailable("Code cannot run in this app: it has no sandbox.")
        conversation = self.store.get(conversation_id)
        assistant = conversation.assistant or GENERAL
        step = self.toolbox.run_code(conversation_id, code, (*assistant.files, *conversation.files))
        self.store.add_step(conversation_id, message_id, step)
        return step

    def restart_code(self, conversation_id: str) -> None:
        """Forget the chat's code session (its variables); the next run starts afresh."""
        if self.toolbox is not None:
            self.toolbox.restart(conversation_id)

    def needs_reply(self, conversation: Conversation | None) -> bool:
        """Whether the conversation ends without a complete answer to its last message."""
        shown = conversation.path() if conversation is not None else []
        if not shown:
            return False
        last = shown[-1]
        return last.role == Role.USER or last.status in _UNANSWERED

    def _agent_for(self, config: ProviderConfig) -> tuple[Agent, Connection, str | None]:
        notice = None
        if config.kind == LOCAL:
            if self.engine is None:
                raise ProviderMisconfigured("The local engine is not available in this app.")
            notice = self.engine.ensure_running()
            config = config.with_changes(base_url=self.engine.base_url)
        if self._connection is None or self._connection.config != config:
            if self._connection is not None:
                self._connection.close()  # another provider or engine port: free its connections
            # The local model's own tokenizer: tiktoken counts 25 % fewer tokens than SmolLM2 in
            # Portuguese (bench/tokenizer_gap.py), enough to overflow a 2,048-token window.
            count = self.engine.count_tokens if config.kind == LOCAL and self.engine else None
            self._connection = connect(config, count)  # loads the agent stack if not yet loaded
            from controller.agent import Agent

            self._agent = Agent(
                self._connection.llm,
                config.context_window,
                config.max_tokens,
                self._connection.count_tokens,
            )
        assert self._agent is not None
        return self._agent, self._connection, notice


_UNANSWERED = (MessageStatus.FAILED, MessageStatus.INVALID)


def _find(conversation: Conversation, message_id: str) -> Message:
    index = conversation.index_of(message_id)
    if index is None:
        raise NothingToAnswer("That message is no longer in this chat: reload the page.")
    return conversation.messages[index]


def _estimate(text: str) -> int:
    return (len(text) + 3) // 4


def _passages(config: ProviderConfig) -> int:
    """The most tokens of file passages sent with a question."""
    return grounding.budget_chars(config.context_window, config.max_tokens) // grounding.CHARS_PER_TOKEN


INDEX_WAIT = 300.0  # seconds a question waits for its files' indexing
# How often a streaming reply is saved as it arrives: a crash loses at most this much of what was shown.
DRAFT_SECONDS = 1.0


def _turn(messages: Sequence[Message]) -> tuple[list[Message], Message]:
    """The history before the last user message (failed replies left out), and that message."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == Role.USER:
            history = [m for m in messages[:index] if m.status not in _UNANSWERED]
            return history, messages[index]
    raise NothingToAnswer("There is no message to answer: type one first.")


class Reply:
    """A reply being streamed. Iterate it for text chunks; it saves itself when it ends.

    Call `close()` when done with it (in a `finally`): a reply abandoned midway, because the user pressed
    Stop or the page was rerun, is then saved as stopped with the text that had arrived.
    """

    def __init__(
        self,
        session: ChatSession,
        config: ProviderConfig,
        search_first: bool = False,
        run_code: bool = False,
        question: str | None = None,
        model: str = "",
    ) -> None:
        self._session = session
        self._config = config
        self._question_id = question  # the message answered (None: the last question shown)
        self._model = model  # a model chosen for this reply only (regenerate), over the assistant's
        self.window: context.Window | None = None  # what the model was given of the history
        self._search_first = search_first
        self._run_code = run_code
        self.steps: list[Step] = []  # the tools run so far
        self.running: Running | None = None  # the tool running now
        self.changes = 0  # grows with each step event, for the page to redraw
        self._conversation_id = session.conversation_id
        self._parts: list[str] = []
        self._iterator: Iterator[str] | None = None
        self._connection: Connection | None = None
        self.status: MessageStatus | None = None
        self.error: BnaGPTError | None = None
        self.notice: str | None = None
        self._first_question: str | None = None  # the first message, while answering it
        self.sources: list[Source] = []  # the file passages given to the model with the question
        self.waiting = ""  # what the reply waits for before it starts, for the user
        self._draft: str | None = None  # the id of the stored draft of this reply, once saved
        self._drafted_at = 0.0

    @property
    def question(self) -> str | None:
        """The id of the message it answers, where known before it starts (an edit, a regenerate)."""
        return self._question_id

    @property
    def text(self) -> str:
        """What has arrived so far."""
        return "".join(self._parts)

    def __iter__(self) -> Iterator[str]:
        if self._iterator is None:
            self._iterator = self._stream()
        return self._iterator

    def close(self) -> None:
        """End the reply; if it had not finished, keep what arrived as a stopped reply."""
        if self._iterator is not None:
            self._iterator.close()
        elif self.status is None:
            self.status = MessageStatus.STOPPED

    def _stream(self) -> Iterator[str]:
        started = False
        self._session.settle()
        self._session._idle.clear()
        try:
            if self._conversation_id is None:
                raise NothingToAnswer("There is no message to answer: type one first.")
            conversation = self._session.store.get(self._conversation_id)
            shown = (
                tree.path_to(conversation.messages, self._question_id)
                if self._question_id
                else conversation.path()
            )
            history, last = _turn(shown)
            self._question_id = last.id
            assistant = conversation.assistant or GENERAL
            self._config = with_assistant(self._config, assistant)
            if self._model:
                self._config = self._config.with_changes(model=self._model)
            images = self._images(last, assistant)
            text = media.with_notes(last, sees_images=bool(images))
            self._first_question = text if not history else None
            files = (*assistant.files, *conversation.files)
            yield from self._wait_for_files(files)
            question = last.content.strip() or text  # searched for as typed, without the OCR text
            text = self._grounded(text, files)
            if self._search_first:
                text = yield from self._searched(question, text)
            prompt = "\n\n".join(
                p
                for p in (
                    assistant.instructions,
                    json_mode.instructions(assistant.json_mode, assistant.schema()),
                )
                if p
            )
            history, prompt = self._window(history, conversation, prompt, text, len(images))
            if assistant.json_mode == JsonMode.OFF:
                yield from self._agent_reply(history, text, prompt, assistant, files, images)
            else:
                yield from self._json_reply(history, text, prompt, assistant)
                started = True
                if self.status == MessageStatus.INVALID:
                    self._finish(MessageStatus.INVALID)
                    return
        except GeneratorExit:
            if self._connection is not None:
                self._connection.stop()  # so the server stops generating too
            self._finish(MessageStatus.STOPPED)
            raise
        except provider_errors() as error:
            self.error = translate(error, self._config, streaming=started or bool(self.text))
            self._finish(MessageStatus.FAILED)
            raise self.error from error
        except BaseException:
            self._finish(MessageStatus.FAILED)  # a bug of ours: keep what arrived, then let it surface
            raise
        else:
            self._finish(MessageStatus.COMPLETE)
        finally:
            self._session._idle.set()

    def _window(
        self, history: list[Message], conversation: Conversation, prompt: str, text: str, images: int
    ) -> tuple[list[Message], str]:
        """What the model is given of the history (controller/context.py), and the system prompt with
        the summary of what the window dropped."""
        _, connection, notice = self._session._agent_for(self._config)
        self.notice = notice or self.notice
        self.window = context.plan(
            history,
            connection.count_tokens,
            self._config.context_window,
            self._config.max_tokens,
            system_prompt=prompt,
            question=text,
            attachments=context.IMAGE_TOKENS * images,
            keep_last=conversation.keep_last,
            digests=conversation.digests,
        )
        summary = self.window.summary
        return self.window.messages, "\n\n".join(p for p in (prompt, summary) if p)

    def _wait_for_files(self, files: Sequence[Attachment]) -> Iterator[str]:
        """Wait for files still being indexed (attached with this very question, say), yielding "" so
        that Stop still works; after INDEX_WAIT seconds the answer goes on without them."""
        documents = self._session.documents
        if not files or documents is None:
            return
        documents.index(files)  # an imported chat's files, say, are indexed on first use
        deadline = time.monotonic() + INDEX_WAIT
        while documents.busy(files) and time.monotonic() < deadline:
            busy = [f for f in files if documents.busy([f])]
            done = min(documents.status(f.sha256).progress for f in busy) if busy else 1.0
            names = ", ".join(f"“{f.name}”" for f in busy)
            self.waiting = f"Indexing {names} before answering… {done:.0%}"
            yield ""
            time.sleep(0.2)
        self.waiting = ""

    def _agent_reply(
        self,
        history: list[Message],
        text: str,
        prompt: str,
        assistant: Assistant,
        files: Sequence[Attachment],
        images: Sequence[tuple[bytes, str]] = (),
    ) -> Iterator[str]:
        """The agent's reply, tool steps recorded as they happen (each yields "" for the page to redraw)."""
        agent, self._connection, notice = self._session._agent_for(self._config)
        self.notice = notice or self.notice
        tools = [] if images else self._tools(assistant, self._conversation_id, files)
        for item in agent.stream(history, text, prompt, tools, images):
            if isinstance(item, str):
                self._parts.append(item)
                self._keep_draft()
                yield item
            else:
                self._step_event(item)
                yield ""

    def _images(self, message: Message, assistant: Assistant) -> list[tuple[bytes, str]]:
        """The message's images as image parts, for a model that sees them; else [] and the user is
        told the model reads their text only."""
        shown = media.images_of(message.media)
        if not shown:
            return []
        files = self._session.files
        if self._config.vision and assistant.json_mode == JsonMode.OFF and files is not None:
            return media.image_parts(message, files)
        self.notice = (
            f"{self._config.label} cannot see pictures: it was given the text read in the image with OCR "
            "(choose a provider with a vision model to ask about what an image shows)."
        )
        return []

    def _tools(self, assistant: Assistant, chat_id: str, files: Sequence[Attachment]) -> list[Tool]:
        """The tools offered to the model this turn: the chat's, where the provider calls tools."""
        toolbox = self._session.toolbox
        if toolbox is None or not provider(self._config.kind).capabilities.tools:
            return []
        return toolbox.tools(assistant.tools, chat_id, files, len(self.sources) + 1)

    def _step_event(self, event: Running | Outcome) -> None:
        if isinstance(event, Running):
            self.running = event
        else:
            self.running = None
            self.steps.append(event.step)
            self.sources.extend(event.sources)
        self.changes += 1

    def _searched(self, question: str, text: str) -> Iterator[str]:
        """Search the web for the question first (the toggle), in a thread so that Stop still works;
        return the user's turn with the results."""
        toolbox = self._session.toolbox
        if toolbox is None:
            return text
        self._step_event(Running("web_search", question))
        had_files = bool(self.sources)
        box: list[Outcome | BaseException] = []

        def search() -> None:
            try:
                box.append(toolbox.search(question, len(self.sources) + 1))
            except BaseException as error:  # a bug of ours: raised again below, in the page's thread
                box.append(error)

        worker = threading.Thread(target=search, name="web-search", daemon=True)
        worker.start()
        while worker.is_alive():
            yield ""
            worker.join(0.1)
        outcome = box[0]
        if isinstance(outcome, BaseException):
            raise outcome
        self._step_event(outcome)
        if not outcome.sources:
            self.notice = f"The web search gave nothing to answer from: {outcome.step.error or 'no results'}"
            return text
        block = web_search.prompt_block(list(outcome.sources))
        return f"{block}\n\n{text}" if had_files else f"{block}\n\nQuestion: {text}"

    def _grounded(self, text: str, files: Sequence[Attachment]) -> str:
        """The question with the passages of the chat's (and its assistant's) files that answer it."""
        documents = self._session.documents
        if not files or documents is None:
            return text
        budget = grounding.budget_chars(self._config.context_window, self._config.max_tokens)
        self.sources, pending = grounding.gather(documents, files, text, budget)
        notes = []
        for file in pending:
            status = documents.status(file.sha256)
            if status.state == "failed":
                why = f"“{file.name}” could not be indexed ({status.error})"
                notes.append(f"{why}; this answer does not use it.")
            else:
                notes.append(f"“{file.name}” is still being indexed; this answer does not use it yet.")
        if notes:
            self.notice = " ".join(notes)
        return grounding.prompt(text, self.sources) if self.sources else text

    def _json_reply(
        self, history: list[Message], text: str, prompt: str, assistant: Assistant
    ) -> Iterator[str]:
        """Collect a JSON reply and check it; one more try if it is not valid. Yields "" while collecting
        (so that Stop still works) and then the reply; sets `status` INVALID and `error` if both failed."""
        schema = assistant.schema()
        problem = None
        for attempt in range(2):
            agent, self._connection, notice = self._session._agent_for(self._config)
            self.notice = notice or self.notice
            parts: list[str] = []
            try:
                for chunk in agent.stream(history, text, prompt):
                    parts.append(chunk)
                    self._parts = parts
                    yield ""
            except openai_errors():
                if attempt or "json_schema" not in self._config.response_format:
                    raise
                # This server does not take a schema: ask for any JSON object and validate it ourselves.
                self._config = with_assistant(self._config, assistant, strict=False)
                continue
            _, problem = json_mode.check("".join(parts), assistant.json_mode, schema)
            if problem is None:
                break
        if problem is not None:
            self.status = MessageStatus.INVALID
            self.error = InvalidJsonReply(
                f"The reply is not the JSON this chat asks for, even after a second try: {problem}. "
                "It is kept as written; press Retry to ask again."
            )
        yield "".join(self._parts)

    def _keep_draft(self) -> None:
        """Save what has arrived, at most every DRAFT_SECONDS, as a failed reply: if the app is killed
        midway, the chat keeps what the user saw (with Retry); `_finish` replaces it with the end."""
        moment = time.monotonic()
        if moment - self._drafted_at < DRAFT_SECONDS or not self.text.strip():
            return
        self._drafted_at = moment
        draft = self._message(self.text, MessageStatus.FAILED, ())
        try:
            if self._draft is None:
                self._session.store.add(self._conversation_id, self._question_id, draft)
                self._draft = draft.id
            else:
                self._session.store.update_reply(self._conversation_id, replace(draft, id=self._draft))
        except StoreError:
            self._drafted_at = math.inf  # gone meanwhile (deleted in another tab): `_finish` says so

    def _message(self, text: str, status: MessageStatus, sources: tuple[Source, ...]) -> Message:
        return Message(
            Role.ASSISTANT,
            text,
            status=status,
            sources=sources,
            steps=tuple(self.steps),
            model=f"{self._config.label} · {self._config.model_label or self._config.model}",
        )

    def _finish(self, status: MessageStatus) -> None:
        self.status = status
        text = self.text
        if not text.strip() and not self.steps and status != MessageStatus.COMPLETE:
            return  # nothing arrived: the user's message stays unanswered, with a Retry
        if status == MessageStatus.COMPLETE and self._run_code:
            self._run_first_block(text)
        try:
            sources = grounding.check(text, self.sources) if self.sources else ()
            message = self._message(text, status, sources)
            if self._draft is None:
                self._session.store.add(self._conversation_id, self._question_id, message)
            else:
                self._session.store.update_reply(self._conversation_id, replace(message, id=self._draft))
        except StoreError as error:  # deleted in another tab, say: the text is still shown
            self.error = error
            return
        if status == MessageStatus.COMPLETE:
            self._session.summarise_later(self._conversation_id, self._config)
        if status in (MessageStatus.COMPLETE, MessageStatus.INVALID) and self._first_question is not None:
            self._title(self._first_question, text)

    def _run_first_block(self, text: str) -> None:
        """Run the reply's first Python block in the chat's sandbox, as its Run button would."""
        toolbox = self._session.toolbox
        blocks = python_blocks(text)
        if toolbox is None or not blocks:
            self.notice = "The reply has no Python code to draw the chart with: ask again."
            return
        conversation = self._session.store.get(self._conversation_id)
        assistant = conversation.assistant or GENERAL
        files = (*assistant.files, *conversation.files)
        step = toolbox.run_code(self._conversation_id, blocks[0], files)
        self.steps.append(step)
        if step.error:
            self.notice = (
                "The chart's code did not run to its end (its step says why): ask again for new code, or "
                "fix it and run it with the Run button."
            )

    def _title(self, question: str, answer: str) -> None:
        """After the first exchange, let a capable model name the chat (the first words stay otherwise)."""
        if not provider(self._config.kind).capabilities.titles or self._connection is None:
            return
        from controller.titles import propose_title

        try:
            title = propose_title(self._connection.llm, question, answer)
            if title:
                self._session.store.auto_rename(self._conversation_id, title)
        except provider_errors() as error:  # the chat keeps the first words of its first message
            self.notice = f"No title was made for this chat: {translate(error, self._config)}"
