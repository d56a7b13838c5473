"""One lock for importing the heavy stacks (llama-index, the OpenAI client, PyTorch and
sentence-transformers) from background threads.

Two threads importing packages with circular imports at once see each other's half-initialised modules
("partially initialized module 'torch' has no attribute 'Tensor'", seen when a file was attached while the
start-up thread imported the agent stack); every such import takes this lock first.
"""

from __future__ import annotations

import threading

IMPORTS = threading.RLock()
