"""Every magic example in the README runs as written on the real default model.

Examples are the README's ```python blocks (each run as one notebook cell) and the table's
inline `%magic ...` spans: optional ``[...]`` parts are dropped, ``a \\| b`` alternatives
each become an example, and spans that still hold a placeholder (``I:J``, ``TEXT``,
``PROMPT``, ``...``) are syntax, not examples. ``%unload_model`` runs last.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_SPAN = re.compile(r"`(%[^`]+)`")
_OPTIONAL = re.compile(r"\s*\[[^\]]*\]")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_PLACEHOLDER = re.compile(r"\.\.\.|\b[A-Z][A-Z0-9_]*\b")


def inline_examples(text: str) -> list[str]:
    """Runnable line-magic spans of the README's prose and tables."""
    examples = []
    for span in _SPAN.findall(_BLOCK.sub("", text)):
        if span.startswith("%%") or span.endswith("?"):
            continue  # a cell magic needs its cell (the code blocks show those); ? asks for help
        name, _, rest = _OPTIONAL.sub("", span).partition(" ")
        for alternative in rest.split("\\|") if rest else [""]:
            example = f"{name} {alternative.strip()}".strip()
            if not _PLACEHOLDER.search(_QUOTED.sub("", example)):
                examples.append(example)
    return examples


def readme_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    cells = [(match.start(), match[1]) for match in _BLOCK.finditer(text)]
    spans = [(text.find(f"`{example.split(' ')[0]}"), example) for example in inline_examples(text)]
    ordered = [code for _, code in sorted(cells + spans, key=lambda pair: pair[0])]
    last = [code for code in ordered if code.strip() == "%unload_model"]
    return [code for code in ordered if code not in last] + last


def test_the_extraction_finds_the_examples_and_skips_syntax():
    text = "| `%ablate --heads 9.6,9.9 \\| --layers 3 [--mode zero\\|mean]` | `%duplicate_layers I:J [--times N]` |"
    assert inline_examples(text) == ["%ablate --heads 9.6,9.9", "%ablate --layers 3"]
    assert inline_examples('`%steer --pos "I" --neg "Hate" --layer 6 --coef 5`, `%patch --clean TEXT`') == [
        '%steer --pos "I" --neg "Hate" --layer 6 --coef 5']


def test_every_readme_example_runs_on_the_default_model(shell):
    examples = readme_examples()
    shown = " ".join(examples)
    for magic in ("load_model", "model", "unload_model", "scan", "duplicate_layers", "drop_layers", "reset_layers",
                  "generate", "brainscan", "patch", "ablate", "steer", "attribute", "project", "probe"):
        assert re.search(rf"%%?{magic}\b", shown), f"the README has no runnable example of %{magic}"
    for code in examples:
        result = shell.run_cell(code, store_history=False)
        assert result.success, f"README example failed: {code!r}: {result.error_before_exec or result.error_in_exec!r}"
    assert shell.neuro_magics_session.subject is None  # %unload_model ran last
