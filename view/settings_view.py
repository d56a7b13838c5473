"""The Settings page's sections: provider test, local engine status, data file."""

from __future__ import annotations

import streamlit as st

from controller.diagnostics import check_connection
from controller.providers import LOCAL, PROVIDERS, Provider, SettingField, provider
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
            st.dataframe({"model": report.models}, hide_index=True, use_container_width=True)


def _key_source(record: Provider, setting: SettingField) -> str:
    if st.session_state.get(record.field_key(setting), "").strip():
        return "typed in this tab (not saved)"
    return "from the environment or .env" if session.settings().environment.get(setting.env) else "not set"


def engine_section() -> None:
    """The bundled local engine: model, port, context, health."""
    st.subheader("Local engine")
    # Looking at Settings must not start an engine nobody chose; one already running is shown.
    engine = session.engine() if session.provider_kind() == LOCAL else session.chat().engine
    if engine is None:
        if session.local_model_path(session.settings()) is None:
            st.warning(
                "No local model was found. Install the bundled one with `make run`, or set "
                "BNAGPT_LOCAL_MODEL to a GGUF file."
            )
        else:
            st.caption("Not started: it starts when you choose the local provider in the sidebar.")
        return
    status = engine.status()
    health = "healthy" if status.healthy else ("starting or not answering" if status.running else "stopped")
    rows = {
        "Model file": str(status.model_path),
        "Port": str(status.port or "—"),
        "Context size": f"{status.context_size} tokens",
        "Health": health,
        "Restarts": str(status.restarts),
        "Log": str(status.log_path or "—"),
    }
    st.markdown("\n".join(f"- **{name}:** `{value}`" for name, value in rows.items()))
    if session.provider_kind() != LOCAL:
        st.caption("The local engine is not the provider in use.")
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


def data_section() -> None:
    """Where conversations are kept."""
    st.subheader("Data")
    store = session.chat().store
    path = store.location
    try:
        count = len(store.list())
    except BnaGPTError as error:
        session.show_error(error)
        count = None
    st.markdown(f"Conversations: `{path}` and the folder `{path.with_suffix('')}` beside it")
    if count is not None:
        st.caption(f"{count} conversations. Move them with BNAGPT_DATA_DIR.")
    aside = store.set_aside_files()
    if aside:
        st.warning(
            "These files could not be read and were set aside, untouched. Your chats from them are "
            "inside: fix them by hand, then put each back under its name without the .corrupt-… ending."
        )
        for file in aside:
            st.code(str(file), language=None)
