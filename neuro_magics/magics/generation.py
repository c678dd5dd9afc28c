"""%generate / %%generate: a thin shell over ``nm.generate``."""

from __future__ import annotations

import re

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..analyses.generation import GenerationResult, generate
from .session import SessionMagics, integer, magic_line, one_line_errors


@magics_class
class GenerationMagics(SessionMagics):
    @magic_arguments()
    @argument("prompt", nargs="*", help="The prompt (everything after the options); with %%generate, the cell.")
    @argument("--max-new-tokens", type=integer, default=64, metavar="N", help="Tokens to generate (default 64).")
    @argument("--sample", action="store_true", help="Sample instead of greedy decoding.")
    @argument("--temperature", type=float, default=None, metavar="T", help="Sampling temperature (default 1.0).")
    @argument("--seed", type=integer, default=None, metavar="S", help="Seed for reproducible sampling.")
    @argument("--chat", action="store_true", help="Wrap the prompt in the model's chat template as a user turn.")
    @line_cell_magic
    @one_line_errors
    def generate(self, line: str, cell: str | None = None) -> GenerationResult:
        """Generate a continuation under the current layer program (KV cache on); returns the text.

        ``%generate The capital of France is`` or ``%%generate --chat`` with the prompt in the
        cell. Options come first; ``--`` ends them (for a prompt that starts with ``--``).
        """
        options, line_prompt = _split_options(magic_line(line), takes_value={"--max-new-tokens", "--temperature", "--seed"})
        args = self.generate.parser.parse_args(options)
        if cell is not None and line_prompt:
            raise UsageError("Give the prompt either on the %%generate line or in the cell, not both.")
        prompt = cell.strip("\n") if cell is not None else line_prompt
        subject = self.session.require_subject()
        return generate(subject, prompt, max_new_tokens=args.max_new_tokens, sample=args.sample,
                        temperature=args.temperature, seed=args.seed, chat=args.chat)


_OPTION = re.compile(r"\s*(--[A-Za-z][\w-]*)(=\S*)?(?=\s|$)")
_END_OF_OPTIONS = re.compile(r"\s*--(?=\s|$)")


def _split_options(line: str, takes_value: set[str]) -> tuple[list[str], str]:
    """Leading ``--options`` (with their values) and the raw rest of the line, untouched by
    shell-style quoting so a prompt keeps its apostrophes and spacing; ``--`` ends the options."""
    options: list[str] = []
    rest = line
    while True:
        end = _END_OF_OPTIONS.match(rest)
        if end:
            rest = rest[end.end():]
            break
        match = _OPTION.match(rest)
        if not match:
            break
        rest = rest[match.end():]
        options.append(match[1] + (match[2] or ""))
        if match[1] in takes_value and match[2] is None:
            value = re.match(r"\s*(\S+)", rest)
            if value:
                options.append(value[1])
                rest = rest[value.end():]
    return options, rest.strip()


MAGICS = (GenerationMagics,)
