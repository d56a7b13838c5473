"""How far tiktoken's token counts are from the bundled model's, for English and Portuguese chat text.

Run: .venv/bin/python -m bench.tokenizer_gap
Prints, per language, tiktoken's count and the local engine's (its `/tokenize`), and the gap.
"""

from llama_index.core.utils import get_tokenizer

from utils.local_server import LocalEngine, bundled_model_path

SAMPLES = {
    "English": "We talked about rivers, mountains, bread and the history of many small towns. " * 40,
    "Portuguese": "Conversamos sobre rios, montanhas, pão de queijo e a história de cidades pequenas. " * 40,
}


def main() -> None:
    tiktoken_count = get_tokenizer()
    engine = LocalEngine(bundled_model_path(), context_size=4096)
    engine.ensure_running()
    try:
        for language, text in SAMPLES.items():
            ours = len(tiktoken_count(text))
            model = engine.count_tokens(text)
            print(f"{language:<11} tiktoken {ours:5d}  SmolLM2 {model:5d}  gap {model / ours - 1:+.0%}")
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
