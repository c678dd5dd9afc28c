"""Probe sets for the brain scan: what a layer program is scored on, and how.

Three sets ship with the package (``neuro_magics/probes/brainscan_*``): ``math``
(integer answers: large products, roots, powers), ``facts`` (short factual
completions) and ``text`` (plain passages). Users bring their own as JSON lines with
``prompt``, ``answer`` and an optional ``scorer``.

Two ways to score an item. ``logprob`` teacher-forces the answer and takes the mean
log-probability of its tokens (for ``text``, of every passage token after the first):
one forward, no decoding. ``generate`` decodes greedily and grades the text with the
item's scorer: ``number`` gives RYS-style partial credit for how close the first
integer is to the answer, ``match`` gives 1 when the answer appears in the first line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import StoppingCriteria

from .errors import NeuroMagicsError
from .paths import read_user_text
from .subject import Subject, with_lock

_DATA = Path(__file__).parent.parent / "probes"

#: Built-in probe name -> (data file, scorer of its items).
BUILTIN_PROBES = {
    "math": ("brainscan_math.jsonl", "number"),
    "facts": ("brainscan_facts.jsonl", "match"),
    "text": ("brainscan_text.txt", "text"),
}
#: How ``generate`` grades a continuation; ``text`` items are scored by likelihood only.
SCORERS = ("number", "match", "text")

_INTEGER = re.compile(r"-?\d[\d,]*")


@dataclass(frozen=True)
class ProbeItem:
    prompt: str
    answer: str
    scorer: str


@dataclass(frozen=True)
class Probe:
    """A named list of items; ``name`` is a built-in name, a file name, or ``"custom"``."""

    name: str
    items: tuple[ProbeItem, ...]

    @property
    def prompts(self) -> list[str]:
        return [item.prompt for item in self.items]

    @property
    def is_text(self) -> bool:
        return any(item.scorer == "text" for item in self.items)

    def records(self) -> list[list[str]]:
        """The items as JSON-friendly triples, stored with a result to check a resume."""
        return [[item.prompt, item.answer, item.scorer] for item in self.items]


def load_probe(
    probe: str = "math", items: str | Sequence[Mapping] | None = None, limit: int | None = None
) -> Probe:
    """The probe to scan with.

    ``probe`` is a built-in name or a path to a ``.jsonl`` file. ``items`` replaces the
    built-in items: JSON lines (or dicts) with ``prompt``/``answer``/``scorer``, or plain
    passages separated by blank lines when ``probe`` is ``text``; items without a scorer
    get the built-in probe's. ``limit`` keeps the first N items.
    """
    if limit is not None and limit < 1:
        raise NeuroMagicsError(f"--limit must be at least 1 (got {limit}).")
    has_items = items is not None and (not isinstance(items, str) or items.strip())
    if probe in BUILTIN_PROBES:
        filename, scorer = BUILTIN_PROBES[probe]
        if has_items:
            name = "custom"
            source = "the cell"
        else:
            name, source, items = probe, filename, (_DATA / filename).read_text(encoding="utf-8")
        if scorer == "text" and isinstance(items, str):
            parsed = parse_passages(items)
        else:
            parsed = parse_items(items, source, default_scorer=scorer)
    else:
        path = Path(probe).expanduser()
        if path.suffix != ".jsonl":
            raise NeuroMagicsError(
                f"Unknown probe {probe!r}: use math, facts, text, or a path to a .jsonl file of "
                f'{{"prompt": ..., "answer": ...}} lines.'
            )
        if has_items:
            raise NeuroMagicsError("Give probe items either in a .jsonl file or in the cell, not both.")
        if not path.is_file():
            raise NeuroMagicsError(f"No probe file {str(path)!r}: check the path.")
        name = path.name
        text = read_user_text(path, "UTF-8 JSON lines")
        parsed = parse_items(text, path.name, default_scorer=None)
    if not parsed:
        raise NeuroMagicsError(f"The probe {name!r} has no items: give at least one.")
    return Probe(name, tuple(parsed[:limit]))


def parse_items(
    items: str | Sequence[Mapping], source: str, default_scorer: str | None
) -> list[ProbeItem]:
    """Read probe items from JSON lines (or dicts); errors name the offending line."""
    if isinstance(items, str):
        records = []
        for number, line in enumerate(items.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise NeuroMagicsError(
                    f"Line {number} of {source} is not valid JSON ({error.msg}): write one "
                    f'{{"prompt": ..., "answer": ...}} object per line.'
                ) from None
            records.append((number, record))
    else:
        records = list(enumerate(items, start=1))
    return [_item(record, f"Line {number} of {source}", default_scorer) for number, record in records]


def _item(record, where: str, default_scorer: str | None) -> ProbeItem:
    if not isinstance(record, Mapping):
        raise NeuroMagicsError(f'{where} is not a JSON object: write {{"prompt": ..., "answer": ...}}.')
    missing = [key for key, kinds in (("prompt", str), ("answer", (str, int)))
               if not isinstance(record.get(key), kinds) or isinstance(record.get(key), bool)]
    if missing:
        raise NeuroMagicsError(f"{where} needs a {missing[0]!r} (text); it has {sorted(record)}.")
    prompt, answer = str(record["prompt"]), str(record["answer"])
    if not prompt.strip() or not answer.strip():
        raise NeuroMagicsError(f"{where} has an empty prompt or answer.")
    is_integer = re.fullmatch(r"-?\d+", answer.strip().replace(",", "")) is not None
    scorer = record.get("scorer")
    if scorer is None:
        scorer = "number" if is_integer and default_scorer in (None, "number") else "match"
    if scorer not in ("number", "match"):
        raise NeuroMagicsError(f"{where} has scorer {scorer!r}: use number or match.")
    if scorer == "number" and not is_integer:
        raise NeuroMagicsError(f"{where} has scorer number but its answer {answer!r} is not an integer.")
    return ProbeItem(prompt, answer, scorer)


def parse_passages(text: str) -> list[ProbeItem]:
    """Plain text: passages separated by blank lines, each scored by its own likelihood."""
    passages = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text)]
    return [ProbeItem("", passage, "text") for passage in passages if passage]


# -- grading generated text ---------------------------------------------------------------


def first_line(output: str) -> str:
    """The answer a model gives: its continuation up to the first line break."""
    return output.strip().split("\n", 1)[0].strip()


def number_credit(output: str, answer: str) -> float:
    """RYS-style partial credit: 1 for the exact integer, else 1 - relative error (floor 0)."""
    match = _INTEGER.search(first_line(output))
    if match is None:
        return 0.0
    digits = match.group().replace(",", "")
    if digits in ("", "-"):
        return 0.0
    predicted, expected = int(digits), int(answer.replace(",", "").strip())
    if predicted == expected:
        return 1.0
    return max(0.0, 1.0 - abs(predicted - expected) / max(abs(expected), 1))


def match_credit(output: str, answer: str) -> float:
    """1 when the answer appears (case-insensitive, as a word) in the first line, else 0."""
    pattern = r"(?<!\w)" + re.escape(answer.strip().lower()) + r"(?!\w)"
    return 1.0 if re.search(pattern, first_line(output).lower()) else 0.0


def credit(item: ProbeItem, output: str) -> float:
    return number_credit(output, item.answer) if item.scorer == "number" else match_credit(output, item.answer)


# -- tokenized batches ----------------------------------------------------------------------


@dataclass
class TeacherForcedBatch:
    """Prompt + answer, left-padded; ``positions[b, k]`` is where the logits that predict
    ``targets[b, k]`` sit, ``valid`` masks the padding of items with shorter answers."""

    input_ids: torch.Tensor  # [N, T]
    attention_mask: torch.Tensor  # [N, T]
    positions: torch.Tensor  # [N, K]
    targets: torch.Tensor  # [N, K]
    valid: torch.Tensor  # [N, K] bool

    @property
    def n_items(self) -> int:
        return self.input_ids.shape[0]

    @property
    def n_tokens(self) -> int:
        return self.input_ids.shape[1]

    def by_length(self) -> list[tuple[torch.Tensor, TeacherForcedBatch]]:
        """The items grouped by length, each group without padding, with their indices:
        a sweep that stacks many copies of a batch then spends nothing on pad tokens."""
        lengths = self.attention_mask.sum(-1)
        groups = []
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero()[:, 0]
            offset = self.n_tokens - int(length)
            groups.append((rows, TeacherForcedBatch(
                self.input_ids[rows, offset:], self.attention_mask[rows, offset:],
                (self.positions[rows] - offset).clamp(min=0), self.targets[rows], self.valid[rows],
            )))
        return groups


def teacher_forced_batch(subject, probe: Probe) -> TeacherForcedBatch:
    """Tokenize every item as prompt tokens + answer tokens (the answer's last token is
    only a target, never an input). The answer is tokenized on its own, after a space
    when the prompt does not end in one, so its tokens are the ones scored."""
    tokenizer = _tokenizer(subject)
    sequences, scored = [], []
    for item in probe.items:
        prompt_ids = tokenizer(item.prompt)["input_ids"] if item.prompt else tokenizer("")["input_ids"]
        answer = item.answer
        if not answer:
            raise NeuroMagicsError(f"The item {item.prompt[:40]!r} has nothing to score: its answer is empty.")
        if item.prompt and not item.prompt[-1].isspace() and not answer[0].isspace():
            answer = " " + answer
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        ids = list(prompt_ids) + list(answer_ids)
        first_target = max(len(prompt_ids), 1)
        if len(ids) <= first_target:
            raise NeuroMagicsError(f"The item {item.prompt or item.answer[:40]!r} has nothing to score: its answer is empty.")
        sequences.append(ids[:-1])
        scored.append((first_target, ids[first_target:]))
    input_ids, attention_mask = subject.left_padded(sequences, what="A probe item", advice="Shorten the items.")
    width, n_scored = input_ids.shape[1], max(len(targets) for _, targets in scored)
    positions = torch.zeros((len(sequences), n_scored), dtype=torch.long)
    targets = torch.zeros((len(sequences), n_scored), dtype=torch.long)
    valid = torch.zeros((len(sequences), n_scored), dtype=torch.bool)
    for row, (ids, (first_target, answer_targets)) in enumerate(zip(sequences, scored)):
        k = len(answer_targets)
        positions[row, :k] = width - len(ids) + first_target - 1 + torch.arange(k)
        targets[row, :k] = torch.tensor(answer_targets)
        valid[row, :k] = True
    device = subject.device
    return TeacherForcedBatch(input_ids, attention_mask, positions.to(device), targets.to(device), valid.to(device))


def prompt_batch(subject, probe: Probe, max_new_tokens: int) -> dict[str, torch.Tensor]:
    """The prompts alone, left-padded, for greedy decoding."""
    rows = [_tokenizer(subject)(item.prompt)["input_ids"] for item in probe.items]
    input_ids, attention_mask = subject.left_padded(rows, room=max_new_tokens, what="A probe prompt",
                                                    advice="Shorten the items (or --max-new-tokens).")
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def answer_logprobs(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean log-probability of the valid targets per row, from logits ``[R, K, V]``,
    without materialising a log-softmax over the vocabulary."""
    logits = logits.float()
    chosen = logits.gather(-1, targets[..., None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    valid = valid.to(chosen.dtype)
    return (chosen * valid).sum(-1) / valid.sum(-1)


@with_lock
def teacher_forced_logprobs(subject: Subject, batch: TeacherForcedBatch) -> torch.Tensor:
    """Mean log p(answer token) per item under the subject as it is now (HF's own forward,
    whatever program and interventions are active), unembedding only the scored positions."""
    from .runner import position_ids_for

    body = subject.adapter.body_module(subject.model)
    hidden = body(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                  position_ids=position_ids_for(batch.attention_mask), use_cache=False).last_hidden_state
    rows = hidden[torch.arange(batch.n_items, device=hidden.device)[:, None], batch.positions]
    return answer_logprobs(subject.adapter.unembed(subject.model, rows), batch.targets, batch.valid)


def _tokenizer(subject):
    if subject.tokenizer is None:
        raise NeuroMagicsError("This subject has no tokenizer; a brain scan needs one to read its probe.")
    return subject.tokenizer


# -- stopping greedy decoding at the end of the answer ------------------------------------


def _token_classes(subject) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token id: does its text contain a line break; does it contain anything visible.
    Cached on the subject (its tokenizer never changes)."""
    return subject.cache("probe_sets.token_classes", None, lambda: _classify_tokens(_tokenizer(subject),
                         subject.vocab_size), model_state=False, entries=1)


def _classify_tokens(tokenizer, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = min(vocab_size, len(tokenizer))
    texts = tokenizer.batch_decode([[i] for i in range(n)])
    newline = torch.zeros(vocab_size, dtype=torch.bool)
    visible = torch.zeros(vocab_size, dtype=torch.bool)
    newline[:n] = torch.tensor(["\n" in text for text in texts])
    visible[:n] = torch.tensor([bool(text.strip()) for text in texts])
    return newline, visible


class StopAtAnswerEnd(StoppingCriteria):
    """A stopping criterion: a row is done at its first line break after visible text,
    so decoding costs the answer's length, not ``max_new_tokens``."""

    def __init__(self, subject, prompt_length: int):
        newline, visible = _token_classes(subject)
        self.newline, self.visible = newline.to(subject.device), visible.to(subject.device)
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        generated = input_ids[:, self.prompt_length:]
        seen_text = self.visible[generated].long().cumsum(-1) > 0
        return (self.newline[generated] & seen_text).any(-1)


# -- the answer sets every weight change reports ------------------------------------------

#: Probes scored before and after (mean log p(answer), teacher-forced).
SCORED_PROBES = ("facts", "math")


@with_lock
@torch.no_grad()
def answer_set_scores(subject: Subject) -> dict[str, float]:
    """Mean log p(answer) of each built-in probe set in ``SCORED_PROBES``, teacher-forced (the
    brain scan's answer sets, not %probe's linear probes)."""
    return {name: float(teacher_forced_logprobs(subject, teacher_forced_batch(subject, load_probe(name))).mean())
            for name in SCORED_PROBES}
