"""A message's images and sounds: read in once when attached, and given to the model in the form it takes.

A model that sees images gets each as an image part of the message; any other gets the text OCR found in
it, marked as such (and the user is told). A sound is given as its transcript.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller import images, transcripts
from errors import MediaUnavailable, UnreadableFile
from model.attachment import clean_file_name, extension
from model.file_store import FileStore
from model.media import AUDIO_TYPES, Kind, Media, Reading
from model.message import Message

MAX_MEDIA_MB = 25  # an image or a sound; a phone photo is 3-8 MB, ten minutes of MP3 about 10 MB


def is_media(name: str) -> bool:
    """Whether a file is an image or a sound (else it is a document for the Files panel)."""
    return images.is_image(name) or transcripts.is_audio(name)


def read_image(name: str, data: bytes, files: FileStore) -> tuple[Media, str]:
    """An attached image cleaned, stored and read by OCR: (its media, a notice for the user or "")."""
    name = clean_file_name(name)
    _check_size(name, data)
    image = images.clean(name, data)
    sha = files.put(image.data)
    notice, text = "", ""
    try:
        text = images.ocr(image.data)
    except MediaUnavailable as error:
        notice = f"“{name}” was attached, but its text could not be read: {error}"
    media = Media(
        Kind.IMAGE,
        name,
        sha,
        len(image.data),
        image.mime,
        text=text,
        reading=Reading.OCR if text else Reading.NONE,
        width=image.width,
        height=image.height,
        note=image.note,
    )
    return media, notice


def read_sound(name: str, data: bytes, files: FileStore, transcript: transcripts.Transcript) -> Media:
    """A sound stored with what it says."""
    name = clean_file_name(name)
    return Media(
        Kind.AUDIO,
        name,
        files.put(data),
        len(data),
        AUDIO_TYPES.get(extension(name), "audio/wav"),
        text=transcript.text,
        reading=Reading.TRANSCRIPT,
        seconds=round(transcript.seconds, 2),
        note=f"transcribed by {transcript.engine}",
    )


def _check_size(name: str, data: bytes) -> None:
    if len(data) > MAX_MEDIA_MB * 2**20:
        raise UnreadableFile(
            f"“{name}” is {len(data) / 2**20:,.1f} MB; images and sounds may be up to {MAX_MEDIA_MB} MB."
        )
    if not data:
        raise UnreadableFile(f"“{name}” is empty.")


def notes(message: Message, sees_images: bool) -> str:
    """What the model reads of a message's images and sounds, before its text ("" if none). A model that
    sees images gets none of their OCR text (it gets the images)."""
    parts = []
    for media in message.media:
        if media.kind is Kind.IMAGE and not sees_images:
            if media.text:
                parts.append(
                    f"[Image “{media.name}”: its text, read with OCR:]\n{media.text}\n[End of the image]"
                )
            else:
                parts.append(
                    f"[Image “{media.name}”: no text found in it, and this model cannot see pictures. "
                    "Say so if the question is about what it shows.]"
                )
        elif media.kind is Kind.AUDIO and media.text and media.text not in message.content:
            parts.append(f"[Sound “{media.name}”, transcribed:]\n{media.text}\n[End of the sound]")
    return "\n\n".join(parts)


def with_notes(message: Message, sees_images: bool) -> str:
    """The message's text as the model reads it: its media's notes, then what the user typed."""
    found = notes(message, sees_images)
    return f"{found}\n\n{message.content}".strip() if found else message.content


def image_parts(message: Message, files: FileStore) -> list[tuple[bytes, str]]:
    """(bytes, MIME type) of the message's stored images, for a model that sees them."""
    return [
        (files.read(m.sha256), m.mime) for m in message.media if m.kind is Kind.IMAGE and files.has(m.sha256)
    ]


def images_of(media: Sequence[Media]) -> list[Media]:
    """The images among media."""
    return [m for m in media if m.kind is Kind.IMAGE]
