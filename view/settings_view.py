"""The Settings page's sections: provider test, local engine status, tools, data file."""

from __future__ import annotations

import streamlit as st

from controller import images, local_models, transcripts, voices
from controller.diagnostics import check_connection
from controller.providers import LOCAL, PROVIDERS, Provider, SettingField, provider
from controller.search_engines import WHAT_TO_CONFIGURE, available
from controller.toolbox import SEARCH_ENGINE
from controller.tools import make_image
from errors import BnaGPTError
from utils.markdown import escape
from view import session


def provider_section() -> None:
    """The provider chosen in the sidebar, and a connection test."""
    st.header("Settings")
    st.subheader("Model provider")
    config = session.provider_config()
    record = provider(config.kind)
    rows = {"Provider": record.label, "Model": config.model or "not set"}
    for setting in record.fields:
        if setting.secret:
            rows[setting.label] = _key_source(record, setting)
        elif setting.name != "model":
            rows[setting.label] = getattr(config, setting.name) or "not set"
    st.markdown("\n".join(f"- **{name}:** {escape(value)}" for name, value in rows.items()))
    keys = [f.env for p in PROVIDERS for f in p.fields if f.secret]
    st.caption(
        "Change these in the sidebar. Keys typed there stay in this browser tab; to keep them, put "
        f"{' or '.join(keys)} in the .env file next to app.py."
    )
    if st.button("Test connection", icon=":material/network_check:", key="test_connection"):
        with st.spinner("Connecting…"):
            try:
                report = check_connection(config, session.chat().engine)
            except BnaGPTError as error:
                session.show_error(error)
                return
        st.success(
            f"Connected to {escape(report.base_url)} in {report.milliseconds:.0f} ms; "
            f"{len(report.models)} model{'s' if len(report.models) != 1 else ''} available."
        )
        if report.models:
            st.dataframe({"model": report.models}, hide_index=True, width="stretch")


def _key_source(record: Provider, setting: SettingField) -> str:
    if st.session_state.get(record.field_key(setting), "").strip():
        return "typed in this tab (not saved)"
    return "from the environment or .env" if session.settings().environment.get(setting.env) else "not set"


def engine_section() -> None:
    """The bundled local engine: its model (chosen here), health, speed and memory, and its log."""
    st.subheader("Local engine")
    current = session.local_model()
    if session.is_admin():  # the engine is the whole app's: with accounts, an admin's to change
        _model_choice(current)
    # Looking at Settings must not start an engine nobody chose; one already running is shown.
    engine = session.engine() if session.provider_kind() == LOCAL else session.chat().engine
    if engine is None:
        if current is None:
            st.warning(
                "No local model was found. Install the bundled one with `make run`, or set "
                "BNAGPT_LOCAL_MODEL to a GGUF file."
            )
        else:
            st.caption("Not started: it starts when you choose the local provider in the sidebar.")
        return
    status = engine.status()
    health = "healthy" if status.healthy else ("starting or not answering" if status.running else "stopped")
    speed = status.tokens_per_second
    rows = {
        "Model file": str(status.model_path),
        "Port": str(status.port or "—"),
        "Context": f"{status.context_size} tokens per chat, {status.parallel} replies at once",
        "Threads": str(status.threads),
        "Memory": _size(status.memory_bytes),
        "Speed": f"{speed:.0f} tokens/s (average since it started)" if speed else "no reply yet",
        "Health": health,
        "Restarts": str(status.restarts),
        "Log": str(status.log_path or "—"),
    }
    if not session.is_admin():
        rows = {name: rows[name] for name in ("Context", "Speed", "Health")}
    st.markdown("\n".join(f"- **{name}:** `{value}`" for name, value in rows.items()))
    if not session.is_admin():
        return
    if session.provider_kind() != LOCAL:
        st.caption("The local engine is not the provider in use.")
    with st.expander("Engine log (last lines)"):
        st.code(engine.log_tail(40) or "(empty)", language=None)
    label = "Restart engine" if status.running else "Start engine"
    if st.button(label, icon=":material/restart_alt:", key="restart_engine"):
        with st.spinner("Starting the local engine…"):
            try:
                engine.stop()
                engine.ensure_running()
            except BnaGPTError as error:
                session.show_error(error)
                return
        st.rerun()


def _model_choice(current: local_models.LocalModel | None) -> None:
    """The local models, installed or not, and the choice of the one the engine runs."""
    models = local_models.catalogue(session.settings())
    st.dataframe(
        {
            "Model": [m.label for m in models],
            "Installed": ["in use" if m == current else ("yes" if m.installed else "no") for m in models],
            "Size": [_size(m.size_bytes) for m in models],
            "Measured on a 2-core machine": [m.measured for m in models],
            "Good for": [m.about for m in models],
        },
        hide_index=True,
        width="stretch",
    )
    for model in models:
        if not model.installed:
            st.caption(f"{escape(model.label)} is not installed. {escape(model.install)}")
        elif model.licence is not None:
            st.caption(f"{escape(model.label)} is licensed under Apache-2.0: see `{model.licence}`.")
    installed = {m.key: m for m in models if m.installed}
    if len(installed) < 2:
        return
    keys = list(installed)
    with st.form("choose_model", border=False):
        key = st.radio(
            "Model the local engine runs, for every tab",
            keys,
            index=keys.index(current.key) if current is not None and current.key in installed else 0,
            format_func=lambda k: installed[k].label,
            key="local_model_choice",
        )
        submitted = st.form_submit_button("Use this model", icon=":material/swap_horiz:")
    picked = installed[key]
    if not submitted or picked == current:
        return
    engine = session.engine()
    if engine is None:
        return
    with st.spinner(f"Loading {picked.label}… replies being written in other tabs stop."):
        try:
            local_models.choose(engine, session.preferences(), picked)
        except BnaGPTError as error:
            session.show_error(error)
            return
    session.flash("success", f"The local engine now runs {picked.label}.")
    st.rerun()


def _size(count: int | None) -> str:
    if count is None:
        return "—"
    return f"{count / 2**30:.2f} GB" if count >= 2**30 else f"{count / 2**20:.0f} MB"


def data_section() -> None:
    """Where conversations are kept."""
    st.subheader("Data")
    store = session.chat().store
    try:
        count = len(store.list())
    except BnaGPTError as error:
        session.show_error(error)
        count = None
    if session.account() is None:
        st.markdown(f"Conversations: {store.describe()}")
    if count is not None:
        moved = " Move them with BNAGPT_DATA_DIR." if session.account() is None else ""
        st.caption(f"{count} conversations.{moved}")
    aside = store.set_aside_files()
    if aside:
        st.warning(
            "These files could not be read and were set aside, untouched. Your chats from them are "
            "inside: fix them by hand, then put each back under its name without the .corrupt-… ending."
        )
        for file in aside:
            st.code(str(file), language=None)


def tools_section() -> None:
    """The tools: whether code can run here (and why not), and which web search back-end answers."""
    st.subheader("Tools")
    toolbox = session.chat().toolbox
    if toolbox is None:
        st.caption("Tools are not available in this app.")
        return
    problem = toolbox.problem("run_python")
    if problem:
        st.warning(escape(f"Running code is off: {problem}"), icon=":material/block:")
    else:
        box = toolbox.sandbox
        st.success(
            f"Running code: on, in a bubblewrap sandbox (no network, {box.limits.run_seconds:g} s per run, "
            f"{box.limits.work_mb} MB of files; {box.sessions()} of at most {box.max_sessions} session(s) "
            f"open). Limits enforced: {box.enforced}.",
            icon=":material/terminal:",
        )
    engines = available(session.settings().environment)
    current = toolbox.engine().name
    st.radio(
        "Web search back-end",
        list(engines),
        index=list(engines).index(current),
        format_func=lambda name: engines[name].label,
        key="search_engine_choice",
        on_change=_choose_engine,
        disabled=not session.is_admin(),
        help="SearXNG needs BNAGPT_SEARXNG_URL, Brave BRAVE_API_KEY and Tavily TAVILY_API_KEY in the "
        "environment or .env; DuckDuckGo needs no key but reaches the public internet.",
    )
    st.caption(escape(WHAT_TO_CONFIGURE))


def media_section() -> None:
    """Images and voice: what reads text in images, hears speech, speaks replies and makes pictures here."""
    st.subheader("Images and voice")
    config = session.provider_config()
    environment = session.settings().environment
    rows = []
    ocr = images.ocr_problem()
    rows.append(("Text in images (OCR)", ocr or "Tesseract, English and Portuguese, on this computer"))
    seeing = "sees images itself" if config.vision else "reads their text (OCR)"
    rows.append(("This provider's model", seeing))
    heard = transcripts.transcriber(config, dict(environment))
    rows.append(("Speech to text", heard.label))
    voices_here = session.chat().voices
    speakers = voices_here.available() if voices_here is not None else []
    rows.append(("Voices", ", ".join(v.label for v in speakers) or (voices.espeak_problem() or "none")))
    made = (
        "the server at BNAGPT_IMAGES_URL"
        if make_image.configured(environment)
        else make_image.WHAT_TO_CONFIGURE
    )
    rows.append(("Making images", made))
    st.markdown("\n".join(f"- **{name}:** {escape(value)}" for name, value in rows))
    for problem in (ocr, voices.espeak_problem(), voices.piper_problem()):
        if problem:
            st.warning(escape(problem), icon=":material/build:")


def _choose_engine() -> None:
    try:
        session.preferences().set(SEARCH_ENGINE, st.session_state["search_engine_choice"])
    except BnaGPTError as error:
        session.flash("error", str(error))
