"""Domain exceptions: each message tells the user what happened and what to do next.

Controllers and the store raise these; pages translate them to `st.error` once, at the edge.
"""


class BnaGPTError(Exception):
    """Base class: the message is shown to the user as is."""


class ProviderError(BnaGPTError):
    """An LLM provider failed; subclasses say how."""


class ProviderUnavailable(ProviderError):
    """The LLM server could not be reached; the message says which and how to fix it."""


class ProviderTimeout(ProviderError):
    """The LLM server took too long to answer."""


class AuthenticationFailed(ProviderError):
    """The server refused the API key."""


class ModelNotFound(ProviderError):
    """The server does not know the configured model."""


class RateLimited(ProviderError):
    """The provider asked us to slow down; `retry_after` is in seconds when it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ContextTooLong(ProviderError):
    """The message and history do not fit in the model's context window."""


class StreamInterrupted(ProviderError):
    """The reply stream broke off halfway; what arrived is kept."""


class ProviderMisconfigured(ProviderError):
    """A provider is missing a setting (key, base URL, model)."""


class EngineFailed(ProviderError):
    """The bundled local engine could not be started."""


class StoreError(BnaGPTError):
    """The conversations file could not be used."""


class ConversationNotFound(StoreError):
    """The conversation is not in the store (deleted in another tab, perhaps)."""


class InvalidName(StoreError):
    """A conversation name was refused; the message says why."""


class NameTaken(StoreError):
    """Another conversation already has this name."""


class ChangedMeanwhile(StoreError):
    """Another tab changed what this one was changing; nothing was saved over it."""


class UnsupportedDataFile(StoreError):
    """The data file was written by a newer bnaGPT; it is left untouched."""


class ImportRefused(BnaGPTError):
    """A file to import was not read (wrong kind, too big, malformed); nothing was changed."""


class InvalidAssistant(BnaGPTError):
    """An assistant's settings were refused (a bad schema, say); the message says what to change."""


class AssistantNotFound(BnaGPTError):
    """The assistant is not saved (deleted in another tab, perhaps), or is built in and cannot change."""


class NothingToAnswer(BnaGPTError):
    """A reply was asked for a chat whose last message is already answered, or that has none."""


class InvalidJsonReply(BnaGPTError):
    """A reply in JSON mode was not the JSON asked for, even after a second try; it is kept as written."""


class UnreadableFile(BnaGPTError):
    """An attached file could not be read (its kind, size, protection or damage); nothing was attached."""


class NothingHeard(UnreadableFile):
    """A sound's transcript holds no words (silence, noise, a muted microphone); nothing was sent."""


class SandboxUnavailable(BnaGPTError):
    """Code cannot run on this machine; the message says what to install."""


class FetchFailed(BnaGPTError):
    """A web page was refused (an unsafe address, not text) or could not be fetched; the message says why."""


class SearchUnavailable(BnaGPTError):
    """No web search back-end answered; the message says what to configure."""


class MediaUnavailable(BnaGPTError):
    """Reading images, speech or speaking needs something this machine lacks; the message says what."""


class AccountError(BnaGPTError):
    """An account could not be made or changed (a name taken, a weak password); the message says why."""


class LoginFailed(AccountError):
    """The name or password was wrong, or the account cannot log in: the message never says which."""


class TooManyAttempts(AccountError):
    """Logins under this name, or from this address, failed too often; `retry_after` is in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AccountsUnreadable(StoreError):
    """The accounts file could not be read; it is left untouched and nobody can log in until it is fixed."""
