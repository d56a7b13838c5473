"""Session state for one browser tab, and the few resources the whole app process shares.

`st.cache_resource` holds only the local engine (one child process per app process, thread-safe). The chat
controller, its agent and memory, and the provider keys the user types live in `st.session_state`: one per
tab, thrown away on refresh; the JSON store is the record.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import streamlit as st

from controller import library, local_models, providers, startup
from controller.accounts import Accounts
from controller.chat import ChatSession
from controller.chat_search import MeaningSearch
from controller.documents import Documents
from controller.local_models import LocalModel
from controller.providers import LOCAL, PROVIDERS, Provider, ProviderConfig, provider
from controller.sandbox import Limits, Sandbox
from controller.toolbox import SEARCH_ENGINE, Toolbox
from controller.voices import Voices
from errors import BnaGPTError
from model.account import Account
from model.assistant import Assistant
from model.assistant_store import AssistantStore, PostgresAssistantStore
from model.backups import Backups
from model.conversation import Conversation
from model.conversation_store import ConversationStore
from model.database import Database
from model.file_store import FileStore
from model.json_store import JsonConversationStore
from model.postgres_store import PostgresConversationStore
from model.preferences import Preferences
from model.search import SearchCache
from settings import Settings, load_settings
from utils.local_server import MODEL_ALIAS, LocalEngine
from utils.markdown import escape

T = TypeVar("T")

# The app's icon inline: a Material icon as favicon is fetched from a font host online, and a file path is
# read and registered again on every rerun.
FAVICON = "data:image/png;base64," + base64.b64encode(
    (Path(__file__).resolve().parent.parent / "assets" / "icon.png").read_bytes()
).decode("ascii")


@st.cache_resource(show_spinner=False)
def local_engine(
    context_size: int, parallel: int, threads: int | None, chat_template: str | None, _model_path: str
) -> LocalEngine:
    """The app process's local engine, warmed up in the background so the first reply is quick.

    Its model is not part of the cache key: choosing another model switches this engine's, so the process
    never runs two."""
    engine = LocalEngine(Path(_model_path), context_size, parallel, threads, chat_template)

    def warm_up() -> None:
        # If it fails, the first reply starts it again and shows the user why.
        with contextlib.suppress(BnaGPTError):
            engine.ensure_running()
            engine.count_tokens("")  # loads the tokenizer too

    threading.Thread(target=warm_up, name="bnagpt-engine-warm-up", daemon=True).start()
    return engine


def after_page() -> None:
    """Start-up work after the first page is drawn, in the background: once per app process and data
    folder, and again on a new day for its backup and purge (controller/startup.py)."""
    s = settings()
    _start_up(str(s.data_dir), now().date().isoformat(), chat().store, chat().engine, backups(), assistants())


# Caches of per-data-folder things hold one entry per account in use.
PER_FOLDER = 256
COOKIE = "bnagpt_session"


@st.cache_resource(show_spinner=False, max_entries=PER_FOLDER)
def _start_up(
    data_dir: str,
    day: str,
    _store: ConversationStore,
    _engine: LocalEngine | None,
    _backups: Backups,
    _assistants: AssistantStore,
) -> threading.Thread:
    return startup.start(_store, _engine, _backups, file_store(), _assistants.list)


@st.cache_resource(show_spinner=False, max_entries=PER_FOLDER)
def _documents(data_dir: str, max_file_mb: int) -> Documents:
    """One keeper of attached files per data folder for the whole app process: one indexing queue."""
    return Documents(FileStore(Path(data_dir)), max_file_mb=max_file_mb)


def documents() -> Documents:
    """The attached files of the data in use: stored, indexed, searched."""
    s = settings()
    return _documents(str(s.data_dir), s.max_file_mb)


@st.cache_resource(show_spinner=False, max_entries=PER_FOLDER)
def _meaning_search(data_dir: str) -> MeaningSearch:
    return MeaningSearch(Path(data_dir) / "chat-vectors")


def meaning_search() -> MeaningSearch:
    """The search of chats by meaning for the data in use (one per data folder and app process)."""
    return _meaning_search(str(settings().data_dir))


def file_store() -> FileStore:
    """Where attached files' bytes and indexes are kept."""
    return documents().store


def forget_unused_files() -> None:
    """Remove attached files nothing refers to any more (after a delete), quietly: the next one retries."""
    with contextlib.suppress(BnaGPTError, OSError):
        library.forget_unused_files(chat().store, assistants().list(), file_store())
        meaning_search().forget({s.id for s in chat().store.list()})


@st.cache_resource(show_spinner=False, max_entries=PER_FOLDER)
def _search_cache(data_dir: str) -> SearchCache:
    """One search cache per data folder for the whole app process: every tab's store shares it."""
    return SearchCache()


def backups() -> Backups:
    """The backups folder of the data in use."""
    s = settings()
    return Backups(s.backups_dir, s.backups_kept)


def _beside_data(key: str, file_name: str, make: Callable[[Path], T]) -> T:
    """This tab's keeper of a file in the data folder, made again if the folder changed."""
    path = settings().data_dir / file_name
    kept = st.session_state.get(key)
    if kept is None or kept.path != path:
        kept = st.session_state[key] = make(path)
    return kept


@st.cache_resource(show_spinner=False, max_entries=2)
def _sandbox(directory: str, python: str, run_seconds: float) -> Sandbox:
    """One code sandbox per app process: its sessions (one per chat) are shared by the chat's tabs."""
    return Sandbox(Path(directory), python, Limits(run_seconds=run_seconds))


def sandbox() -> Sandbox:
    """The code sandbox."""
    s = settings()
    return _sandbox(str(s.sandbox_dir), s.sandbox_python, s.sandbox_run_seconds)


def _toolbox(settings: Settings, files: FileStore, scope: str) -> Toolbox:
    code = _sandbox(str(settings.sandbox_dir), settings.sandbox_python, settings.sandbox_run_seconds)
    prefs = Preferences(settings.shared_dir / "preferences.json")
    return Toolbox(code, files, settings.environment, lambda: prefs.get(SEARCH_ENGINE), scope=scope)


@st.cache_resource(show_spinner=False, max_entries=4)
def _voices(data_dir: str, _environment: Mapping[str, str]) -> Voices:
    """One set of voices per data folder for the app process: the Piper model is loaded once."""
    return Voices(Path(data_dir), dict(_environment))


def preferences() -> Preferences:
    """The choices saved in Settings for the whole app (with accounts, an admin's to make)."""
    path = settings().shared_dir / "preferences.json"
    kept = st.session_state.get("preferences")
    if kept is None or kept.path != path:
        kept = st.session_state["preferences"] = Preferences(path)
    return kept


def local_model() -> LocalModel | None:
    """The model the local engine runs (chosen in Settings), or None if none is installed."""
    return local_models.chosen(settings(), preferences())


@st.cache_resource(show_spinner=False, max_entries=2)
def database(url: str) -> Database:
    """The process's pool of connections to BNAGPT_DATABASE_URL (opened when first used)."""
    return Database(url)


@st.cache_resource(show_spinner=False, max_entries=4)
def _accounts(root: str, session_hours: float, database_url: str) -> Accounts:
    return Accounts(Path(root), session_hours, database=database(database_url) if database_url else None)


def accounts() -> Accounts:
    """The accounts of the data folder (with BNAGPT_ACCOUNTS on)."""
    s = settings()
    return _accounts(str(s.shared_dir), s.session_hours, s.database_url)


def account() -> Account | None:
    """Who is logged in to this tab; None without accounts, or before logging in."""
    return st.session_state.get("account")


def is_admin() -> bool:
    """Whether this tab may change what the whole app shares (always, without accounts)."""
    person = account()
    return not settings().accounts or (person is not None and person.admin)


def logged_out() -> bool:
    """Whether accounts are on and nobody is logged in to this tab: it gets only the login page."""
    return bool(settings().accounts) and account() is None


def _who(settings: Settings) -> Account | None:
    """The active account this tab belongs to, from its session (or Streamlit's identity), or None."""
    ss = st.session_state
    ss["account"] = ss["waiting"] = None
    if not settings.accounts:
        return None
    keeper = _accounts(str(settings.shared_dir), settings.session_hours, settings.database_url)
    if settings.accounts == "sso":
        if not st.user.is_logged_in:
            return None
        issued = st.user.get("iat")
        if isinstance(issued, int | float) and now().timestamp() - issued > settings.session_hours * 3600:
            st.logout()  # expired: the identity provider is asked again
            return None
        person = keeper.sso(
            str(st.user.get("iss") or ""),
            str(st.user.get("sub") or ""),
            str(st.user.get("email") or ""),
            str(st.user.get("name") or ""),
        )
        if not person.active:
            ss["waiting"] = person
            return None
        return person
    cookie = st.context.cookies.get(COOKIE)
    cookie = cookie if isinstance(cookie, str) else ""  # AppTest has no browser, and no cookies
    token = ss.get("session_token") or cookie
    person = keeper.session(token)
    if person is None and token:
        ss.pop("session_token", None)
        if cookie:
            ss["cookie"] = ""  # forget the dead one in the browser too
    elif person is not None:
        ss["session_token"] = token
    return person


def remember(token: str) -> None:
    """Keep this tab logged in: the session token, and a cookie so that a reload or new tab stays in."""
    st.session_state["session_token"] = token
    st.session_state["cookie"] = token


def forget() -> None:
    """Log this tab out (its session ends for every tab and process; SSO logs out of Streamlit too)."""
    ss = st.session_state
    token = ss.pop("session_token", "")
    if token:
        with contextlib.suppress(BnaGPTError):
            accounts().log_out(token)
    ss["cookie"] = ""
    for key in ("store", "store_where", "chat", "account"):
        ss.pop(key, None)


def write_cookie() -> None:
    """Set or clear the session cookie in the browser if this run changed it (a script in the page:
    Streamlit has no call for it; the token is random and the page shows nothing else unescaped)."""
    token = st.session_state.pop("cookie", None)
    if token is None:
        return
    age = int(settings().session_hours * 3600) if token else 0
    # The script removes itself once run, so the token is not left in the page.
    script = (
        f"document.cookie = {json.dumps(COOKIE)} + '=' + {json.dumps(token)} + "
        f"'; Path=/; SameSite=Strict; Max-Age={age}' + (location.protocol === 'https:' ? '; Secure' : '');"
        "if (document.currentScript) document.currentScript.remove();"
    )
    st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)


# Pictures, sounds and connections only from the app itself (and data:/blob: URLs it makes): the second
# layer under utils/markdown.for_display, should a reply or a name still smuggle in an image or a fetch.
# blob: in connect-src: the chat box's recorder reads its own recording back through a blob: address.
CONTENT_POLICY = "img-src 'self' data: blob:; media-src 'self' data: blob:; connect-src 'self' blob: {socket}"


def protect_page() -> None:
    """Give the page a Content-Security-Policy (as a <meta> element: Streamlit sets no response headers for
    us). Added once per page load; a policy once in force cannot be loosened by anything that runs later."""
    policy = json.dumps(CONTENT_POLICY)
    script = (
        "if (!document.querySelector('meta[data-bnagpt-policy]')) {"
        " const socket = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;"
        " const meta = document.createElement('meta');"
        " meta.httpEquiv = 'Content-Security-Policy';"
        f" meta.content = {policy}.replace('{{socket}}', socket);"
        " meta.dataset.bnagptPolicy = '1';"
        " document.head.prepend(meta); }"
        "if (document.currentScript) document.currentScript.remove();"
    )
    st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)


def allowed_providers() -> list[Provider]:
    """The providers this tab may use: all of them, or with accounts those an admin allowed users."""
    if is_admin():
        return list(PROVIDERS)
    with contextlib.suppress(BnaGPTError):
        kinds = accounts().providers()
        if kinds is not None:
            return [p for p in PROVIDERS if p.kind in kinds] or list(PROVIDERS[:1])
    return list(PROVIDERS)


def init() -> None:
    """Set this tab's defaults; cheap to call on every rerun."""
    settings = load_settings()
    ss = st.session_state
    ss["settings"] = settings
    ss.setdefault("flash", [])
    if settings.accounts:
        try:
            person = _who(settings)
        except BnaGPTError as error:  # the accounts file cannot be read: nobody gets in
            flash("error", str(error))
            person = None
        if person is None:
            return
        ss["account"] = person
        settings = ss["settings"] = settings.for_account(accounts().folder(person.id))
    owner = ss["account"].id if settings.accounts else ""
    where = (settings.database_url or str(settings.conversations_file), owner)
    if ss.get("store") is None or ss.get("store_where") != where:
        store: ConversationStore
        if settings.database_url:
            store = PostgresConversationStore(database(settings.database_url), owner)
        else:
            store = JsonConversationStore(
                settings.conversations_file, search_cache=_search_cache(str(settings.data_dir))
            )
        ss["store"], ss["store_where"] = store, where
        documents = _documents(str(settings.data_dir), settings.max_file_mb)
        ss["chat"] = ChatSession(
            store,
            documents=documents,
            toolbox=_toolbox(settings, documents.store, scope=owner),
            voices=_voices(str(settings.shared_dir), settings.environment),
        )
    if "provider_label" not in ss:
        kind = settings.provider or providers.default_kind(settings.environment)
        if kind not in providers.kinds():
            known = ", ".join(providers.kinds())
            flash("warning", f"BNAGPT_PROVIDER={kind} is not a provider ({known}); using local.")
            kind = LOCAL
        ss["provider_label"] = provider(kind).label
    allowed = allowed_providers()
    if ss["provider_label"] not in {p.label for p in allowed}:
        ss["provider_label"] = allowed[0].label
    for record in PROVIDERS:
        for setting in record.fields:
            # A configured key is used, never shown: the sidebar field is for typing one in.
            preset = "" if setting.secret else settings.environment.get(setting.env, setting.default)
            ss.setdefault(record.field_key(setting), preset)
    if provider_kind() == LOCAL:
        engine()  # start it now, in the background, so the first reply does not wait for it


def provider_kind() -> str:
    """The kind of provider chosen in the sidebar."""
    label = st.session_state["provider_label"]
    return next(p.kind for p in PROVIDERS if p.label == label)


def settings() -> Settings:
    """The settings read at the start of this rerun."""
    return st.session_state["settings"]


def assistants() -> AssistantStore:
    """The assistants saved beside the conversations."""
    s = settings()
    if not s.database_url:
        return _beside_data("assistant_store", "assistants.json", AssistantStore)
    person = account()
    owner = person.id if person is not None else ""
    kept = st.session_state.get("assistant_store")
    if not isinstance(kept, PostgresAssistantStore) or kept.owner != owner:
        kept = st.session_state["assistant_store"] = PostgresAssistantStore(database(s.database_url), owner)
    return kept


def chat() -> ChatSession:
    """This tab's chat controller."""
    return st.session_state["chat"]


def engine() -> LocalEngine | None:
    """The local engine, starting its process lazily if the app had none yet, on the chosen model."""
    session = chat()
    model = local_model()
    if model is None or model.path is None:
        return session.engine
    s = settings()
    shared = local_engine(
        s.local_context_size, s.local_parallel, s.local_threads, s.local_chat_template, str(model.path)
    )
    # The choice is app-wide and Settings switches the engine when it is made; the two differ only when
    # the saved choice changed outside this process. A failed switch is said once, not retried every run.
    if shared.model_path != model.path and st.session_state.get("switch_failed") != model.path:
        try:
            shared.switch(model.path)
        except BnaGPTError as error:
            st.session_state["switch_failed"] = model.path
            flash("error", str(error))
    session.engine = shared
    return shared


def provider_config(kind: str = "") -> ProviderConfig:
    """A provider's settings: `kind` (an assistant's choice), or the one chosen in the sidebar (a key from
    the environment only with the address it came with: `providers.field_values`)."""
    s = settings()
    allowed = {p.kind for p in allowed_providers()}
    record = provider(kind if kind in allowed else provider_kind())
    typed = {f.name: st.session_state.get(record.field_key(f), "") for f in record.fields}
    # With accounts, users use the servers the admin configured; a typed address only if the admin lets
    # them, and then only a public one (ProviderConfig.public_only).
    guarded = bool(s.accounts) and not is_admin()
    if guarded and not s.user_endpoints:
        typed.pop("base_url", None)
    values = providers.field_values(record, typed, s.environment)
    context = record.context_window
    shown = ""
    if record.local:
        engine()  # the local engine is needed now
        values["model"], context = MODEL_ALIAS, s.local_context_size
        running = local_model()
        shown = running.label if running is not None else ""
    return ProviderConfig(
        kind=record.kind,
        vision=providers.sees_images(record.kind, values.get("model", ""), s.environment),
        context_window=context or s.local_context_size,
        max_tokens=s.max_reply_tokens,
        temperature=s.temperature,
        timeout=s.request_timeout,
        public_only=guarded and bool(typed.get("base_url", "").strip()),
        model_label=shown,
        **values,
    )


def now() -> datetime:
    """Now in the browser's time zone (UTC if the browser did not say), for Today/Yesterday headings."""
    zone = None
    with contextlib.suppress(Exception):  # an unknown or missing zone name falls back to UTC
        zone = ZoneInfo(st.context.timezone)
    return datetime.now(zone or UTC)


def flash(kind: str, text: str) -> None:
    """Queue a message to show at the top of the next page run."""
    st.session_state["flash"].append((kind, text))


def show_flashes() -> None:
    """Show and forget queued messages, and the store's recovery notices."""
    store = st.session_state["chat"].store if "chat" in st.session_state else None
    for notice in store.notices if store is not None else []:
        st.warning(escape(notice), icon=":material/warning:")
    if store is not None:
        store.notices.clear()
    for kind, text in st.session_state["flash"]:
        getattr(st, kind)(escape(text))
    st.session_state["flash"] = []


def show_error(error: BaseException | str) -> None:
    """An error message, shown as plain text (it may quote names the user typed)."""
    st.error(escape(str(error)), icon=":material/error:")


def assistant_config(assistant: Assistant | None) -> ProviderConfig:
    """The settings of the provider an assistant (or, for None, the sidebar's choice) answers with."""
    return provider_config(assistant.provider if assistant else "")


def context_window(conversation: Conversation) -> tuple[int, int]:
    """(context window, longest reply) of the model that answers in this chat, in tokens."""
    assistant = conversation.assistant
    config = assistant_config(assistant)
    max_tokens = assistant.max_tokens if assistant and assistant.max_tokens else config.max_tokens
    return config.context_window, max_tokens
