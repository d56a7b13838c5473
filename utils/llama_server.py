"""The local engine's process: llama.cpp's own HTTP server (`llama-server`'s code) from the xllamacpp wheel.

Started by `utils/local_server.py` as `python utils/llama_server.py '<json options>'`; serves the OpenAI
API on 127.0.0.1 until it is killed. A script, not a package module, so it imports nothing of the app.
"""

from __future__ import annotations

import json
import signal
import sys


def main(options: dict) -> None:
    """Start the server with these options and wait to be killed."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = options["model"]
    params.model_alias = {options["alias"]}
    params.hostnames = ["127.0.0.1"]
    params.port = options["port"]
    # Slots share one KV cache of n_ctx cells split evenly: each slot gets the context a chat is sized for.
    params.n_parallel = options["parallel"]
    params.n_ctx = options["context"] * options["parallel"]
    params.cont_batching = True
    # Prompts of chats that left a slot are kept in RAM so going back to one does not read it again; the
    # default cap (8 GB) would let a long-running app grow far past the model's size.
    params.cache_ram_mib = 512
    params.cpuparams.n_threads = options["threads"]
    params.cpuparams_batch.n_threads = options["threads"]
    # The GGUF's own Jinja chat template: how current llama.cpp formats tool calls for each model.
    params.use_jinja = True
    if options.get("chat_template"):
        params.chat_template = options["chat_template"]
    params.ui = False  # the app is the only client; no web page served on the engine's port
    params.offline = True  # never fetch a model or anything else
    params.fit_params = False  # keep the context asked for instead of shrinking it to free memory
    params.endpoint_metrics = True  # Settings shows the measured speed
    server = xllamacpp.Server(params)  # serves from its own threads while referenced
    print("bnagpt-engine: serving", flush=True)
    while server is not None:
        signal.pause()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
