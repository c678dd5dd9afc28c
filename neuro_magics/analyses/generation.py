"""Text generation under the current layer program (what %generate runs).

HF's own ``generate`` with the KV cache on: every occurrence of a block in the program has
its own cache slot, so cached generation equals full forwards under any program.
"""

from __future__ import annotations

import contextlib

import torch

from ..core.errors import NeuroMagicsError
from ..core.subject import Subject, with_lock


class GenerationResult(str):
    """The generated continuation (a ``str``), plus how it was made.

    ``.text`` is the continuation, ``.prompt`` what the model saw (after the chat template,
    if one was used), ``.program`` the layer program it ran, ``.interventions`` the active
    interventions, ``.n_new_tokens`` how many tokens were generated and ``.stopped`` whether
    it ended on an end-of-sequence token.
    """

    prompt: str
    program: str
    interventions: tuple[str, ...]
    n_new_tokens: int
    stopped: bool
    settings: dict

    def __new__(cls, text: str, *, prompt: str, program: str, interventions: tuple[str, ...], n_new_tokens: int,
                stopped: bool, settings: dict):
        result = super().__new__(cls, text)
        result.prompt = prompt
        result.program = program
        result.interventions = interventions
        result.n_new_tokens = n_new_tokens
        result.stopped = stopped
        result.settings = settings
        return result

    @property
    def text(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle) -> None:
        """Notebooks show the text itself, not a quoted repr with escaped newlines."""
        printer.text(str(self))


@with_lock
def generate(
    subject: Subject,
    prompt: str,
    *,
    max_new_tokens: int = 64,
    sample: bool = False,
    temperature: float | None = None,
    seed: int | None = None,
    chat: bool = False,
) -> GenerationResult:
    """Continue ``prompt`` under the current program: greedy by default; ``sample=True`` draws
    with ``temperature`` (default 1.0) and, with ``seed``, reproducibly without touching the
    global random state. ``chat=True`` wraps the prompt in the tokenizer's chat template."""
    if subject.tokenizer is None:
        raise NeuroMagicsError("This subject has no tokenizer, so it cannot generate text.")
    if not isinstance(prompt, str) or not prompt.strip():
        raise NeuroMagicsError("Empty prompt: give text after %generate, or in the cell under %%generate.")
    if max_new_tokens < 1:
        raise NeuroMagicsError(f"--max-new-tokens must be at least 1 (got {max_new_tokens}).")
    if not sample and (temperature is not None or seed is not None):
        raise NeuroMagicsError("--temperature and --seed only apply when sampling: add --sample.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
        raise NeuroMagicsError(f"--seed must be a whole number between 0 and 2**64 - 1 (got {seed!r}).")
    if temperature is not None and not temperature > 0:
        raise NeuroMagicsError(f"--temperature must be above 0 (got {temperature}); for greedy decoding drop --sample.")

    tokenizer = subject.tokenizer
    text = prompt
    if chat:
        if not getattr(tokenizer, "chat_template", None):
            raise NeuroMagicsError(f"{subject.name}'s tokenizer has no chat template: drop --chat.")
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        encoded = {key: value.to(subject.device) for key, value in encoded.items()}
    else:
        encoded = subject.encode(prompt)
    n_prompt = encoded["input_ids"].shape[1]
    context = subject.context_length
    if context is not None and n_prompt + max_new_tokens > context:
        raise NeuroMagicsError(
            f"The prompt ({n_prompt} tokens) plus {max_new_tokens} new tokens exceed the {context}-token context: "
            "shorten the prompt or lower --max-new-tokens."
        )
    options = {"do_sample": sample}
    if sample:
        options["temperature"] = 1.0 if temperature is None else float(temperature)
    rng = contextlib.nullcontext()
    if seed is not None:
        rng = torch.random.fork_rng(devices=[subject.device] if subject.device.type == "cuda" else [])
    with rng, torch.no_grad():
        if seed is not None:
            torch.manual_seed(seed)
        output = subject.model.generate(
            **encoded, max_new_tokens=max_new_tokens, pad_token_id=subject.pad_token_id, use_cache=True, **options
        )
    new_tokens = output[0, n_prompt:]
    return GenerationResult(
        tokenizer.decode(new_tokens, skip_special_tokens=True),
        prompt=text,
        program=str(subject.program),
        interventions=tuple(repr(i) for i in subject.interventions),
        n_new_tokens=int(new_tokens.shape[0]),
        stopped=bool(new_tokens.numel()) and int(new_tokens[-1]) in subject.eos_token_ids,
        settings={"max_new_tokens": max_new_tokens, "sample": sample, "temperature": options.get("temperature"),
                  "seed": seed, "chat": chat},
    )
