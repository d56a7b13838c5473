"""A generated corpus for the documents benchmark: over 200 pages in PDF, DOCX, PPTX, XLSX, HTML, Markdown
and text, half English and half Portuguese, with planted facts and a labelled question for each.

Every fact names a unique made-up entity and a value; near-identical "distractor" facts about other
entities are spread through the other files, so that finding the right passage takes the entity's name
(what BM25 is good at) and the question's meaning (what embeddings are good at): questions paraphrase
the fact rather than repeat it. Deterministic: the same seed makes the same corpus.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from tests import make_files

PAGE_CHARS = 2_400  # a "page" of the formats that have none (DOCX, HTML, Markdown, text)

# (fact, question) templates by language: {e} is the entity, {v} the value.
TEMPLATES = {
    "en": [
        ("The access code for the {e} archive room is {v}.", "Which code opens the archive room of {e}?"),
        (
            "The {e} warehouse received {v} pallets of copper wire in March.",
            "How many pallets of copper wire went to the {e} warehouse?",
        ),
        (
            "Dr. {e} was appointed head of the cardiology ward with a salary of {v} euros.",
            "What is Dr. {e}'s pay as cardiology lead?",
        ),
        (
            "The ferry to {e} island leaves from pier {v} every morning.",
            "From which pier does the boat to {e} island depart?",
        ),
        (
            "Project {e} ran over budget by {v} thousand dollars.",
            "By how much did project {e} exceed its budget?",
        ),
        (
            "The {e} bakery sells {v} loaves of sourdough on an ordinary Saturday.",
            "How much sourdough bread does the {e} bakery sell on Saturdays?",
        ),
    ],
    "pt": [
        ("O código de acesso da sala de arquivo {e} é {v}.", "Qual código abre a sala de arquivo {e}?"),
        (
            "O armazém {e} recebeu {v} paletes de fio de cobre em março.",
            "Quantas paletes de fio de cobre chegaram ao armazém {e}?",
        ),
        (
            "A doutora {e} foi nomeada chefe da cardiologia com salário de {v} euros.",
            "Quanto ganha a doutora {e} como chefe da cardiologia?",
        ),
        (
            "A balsa para a ilha {e} sai do cais {v} todas as manhãs.",
            "De qual cais parte o barco para a ilha {e}?",
        ),
        (
            "O projeto {e} estourou o orçamento em {v} mil reais.",
            "Em quanto o projeto {e} ultrapassou o orçamento?",
        ),
        (
            "A padaria {e} vende {v} pães de fermentação natural num sábado comum.",
            "Quantos pães de fermentação natural a padaria {e} vende aos sábados?",
        ),
    ],
}

FILLER = {
    "en": [
        "The quarterly review covered staffing, suppliers and the maintenance schedule for the coming months.",
        "Several departments reported delays caused by late deliveries and by the winter storms.",
        "The committee agreed to revisit the travel policy once the new accounting system is in place.",
        "Training sessions on data protection will continue for all new employees in the autumn.",
        "Customer satisfaction remained stable, although response times grew slightly in the north.",
        "The board thanked the volunteers who organised the summer festival and the charity run.",
        "Energy costs fell after the installation of solar panels on the roofs of two buildings.",
        "A working group will study options for remote work and flexible hours next year.",
    ],
    "pt": [
        "A revisão trimestral tratou de pessoal, fornecedores e do calendário de manutenção dos próximos meses.",
        "Vários departamentos relataram atrasos causados por entregas tardias e pelas tempestades de inverno.",
        "A comissão decidiu rever a política de viagens quando o novo sistema de contabilidade estiver pronto.",
        "As formações sobre proteção de dados continuam para todos os novos funcionários no outono.",
        "A satisfação dos clientes manteve-se estável, embora o tempo de resposta tenha crescido no norte.",
        "A direção agradeceu aos voluntários que organizaram a festa de verão e a corrida solidária.",
        "Os custos de energia caíram depois da instalação de painéis solares no telhado de dois prédios.",
        "Um grupo de trabalho vai estudar opções de teletrabalho e horário flexível no próximo ano.",
    ],
}

_SYLLABLES = ["ka", "lo", "mi", "ra", "ven", "tor", "sa", "qui", "ber", "nel", "do", "fa", "zu", "mar", "tel"]


@dataclass(frozen=True, slots=True)
class Question:
    """A labelled question: the file and location (page, slide, or "" where a file has none) holding the
    answer, and the fact's own words to recognise the passage by."""

    text: str
    language: str
    file: str
    location: str
    fact: str


@dataclass(frozen=True, slots=True)
class Corpus:
    """Files (name -> bytes), their page count, and the questions."""

    files: dict[str, bytes]
    pages: int
    questions: list[Question]


class _Writer:
    """Makes the corpus's files, planting facts and distractors as it goes."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.entities = _entities(self.rng, 1_500)
        self.files: dict[str, bytes] = {}
        self.questions: list[Question] = []
        self.pages = 0

    def paragraph(self, language: str, sentences: int = 5) -> str:
        """Filler, and half the time a distractor: the same kind of fact about an entity nobody asks about."""
        text = " ".join(self.rng.choice(FILLER[language]) for _ in range(sentences))
        if self.rng.random() < 0.5:
            fact, _ = self.rng.choice(TEMPLATES[language])
            text += " " + fact.format(e=self.entities.pop(), v=self.rng.randint(10, 9999))
        return text

    def plant(self, language: str, file: str, location: str) -> str:
        """A fact and its labelled question."""
        fact, question = self.rng.choice(TEMPLATES[language])
        entity, value = self.entities.pop(), self.rng.randint(10, 9999)
        sentence = fact.format(e=entity, v=value)
        self.questions.append(Question(question.format(e=entity), language, file, location, sentence))
        return sentence

    def pdfs(self) -> None:
        """4 PDFs of 20 pages, a fact on every other page."""
        for n, language in enumerate(["en", "pt", "en", "pt"]):
            name = f"report-{n}-{language}.pdf"
            texts = []
            for page in range(1, 21):
                body = [self.paragraph(language) for _ in range(4)]
                if page % 2 == 0:
                    body.insert(self.rng.randint(0, 4), self.plant(language, name, f"page {page}"))
                texts.append("\n\n".join(body))
            self.files[name] = make_files.pdf(texts)
            self.pages += 20

    def word(self) -> None:
        """4 Word files of about 10 pages."""
        for n, language in enumerate(["en", "pt", "en", "pt"]):
            name = f"minutes-{n}-{language}.docx"
            paragraphs: list[str] = []
            for page in range(10):
                paragraphs += [self.paragraph(language) for _ in range(5)]
                if page % 2 == 1:
                    at = self.rng.randint(len(paragraphs) - 5, len(paragraphs))
                    paragraphs.insert(at, self.plant(language, name, ""))
            self.files[name] = make_files.docx(paragraphs)
            self.pages += _pages("\n".join(paragraphs))

    def decks(self) -> None:
        """2 decks of 15 slides."""
        for n, language in enumerate(["en", "pt"]):
            name = f"deck-{n}-{language}.pptx"
            slides = []
            for slide in range(1, 16):
                text = self.paragraph(language, 3)
                if slide % 3 == 0:
                    text += "\n" + self.plant(language, name, f"slide {slide}")
                slides.append(text)
            self.files[name] = make_files.pptx(slides)
            self.pages += 15

    def workbooks(self) -> None:
        """2 workbooks of 2 sheets of 60 rows."""
        for n, language in enumerate(["en", "pt"]):
            name = f"ledger-{n}-{language}.xlsx"
            sheets = {}
            for sheet in ("Sites", "Notes"):
                rows: list[list[object]] = [["id", "region", "note"]]
                for row in range(2, 62):
                    if row % 15 == 0:
                        note = self.plant(language, name, sheet)
                    else:
                        note = self.rng.choice(FILLER[language])
                    rows.append([row - 1, self.rng.choice(["north", "south", "east", "west"]), note])
                sheets[sheet] = rows
            self.files[name] = make_files.xlsx(sheets)
            self.pages += 2 * 60 // 40  # 40 rows to a printed page

    def texts(self) -> None:
        """4 HTML, 4 Markdown and 4 text files of about 8 pages."""
        for kind in ("html", "md", "txt"):
            for n, language in enumerate(["en", "pt", "en", "pt"]):
                name = f"notes-{n}-{language}.{kind}"
                blocks = []
                for block in range(24):
                    blocks.append(self.paragraph(language))
                    if block % 6 == 3:
                        blocks.append(self.plant(language, name, ""))
                self.files[name] = _text_file(kind, name, blocks)
                self.pages += _pages("\n".join(blocks))


def build(seed: int = 7) -> Corpus:
    """The corpus: 24 files, over 200 pages, about 100 planted facts."""
    writer = _Writer(seed)
    for part in (writer.pdfs, writer.word, writer.decks, writer.workbooks, writer.texts):
        part()
    return Corpus(writer.files, writer.pages, writer.questions)


def _text_file(kind: str, title: str, blocks: list[str]) -> bytes:
    if kind == "html":
        body = "".join(f"<p>{b}</p>" for b in blocks)
        script = "<script>var tracking = 'do not index me';</script><style>p {margin: 0}</style>"
        return f"<html><head><title>{title}</title>{script}</head><body>{body}</body></html>".encode()
    if kind == "md":
        return "\n\n".join([f"# {title}", *blocks]).encode()
    return "\n\n".join(blocks).encode()


def _pages(text: str) -> int:
    return max(1, round(len(text) / PAGE_CHARS))


def _entities(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(_SYLLABLES) for _ in range(3)).capitalize())
    ordered = sorted(names)
    rng.shuffle(ordered)
    return ordered


if __name__ == "__main__":
    corpus = build()
    print(json.dumps({"files": len(corpus.files), "pages": corpus.pages, "questions": len(corpus.questions)}))
