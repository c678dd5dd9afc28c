"""%load_model, %model, %unload_model."""

from __future__ import annotations

import gc
import time

import torch
from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..core.loading import DEFAULT_MODEL, check_load_options, load_model
from ..core.subject import Subject
from .session import SessionMagics, one_line_errors, parse_arguments, split_line


@magics_class
class ModelMagics(SessionMagics):
    @magic_arguments()
    @argument("name", nargs="?", default=None,
              help=f"HF hub id or local folder; omit for the built-in {DEFAULT_MODEL}.")
    @argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.")
    @argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16.")
    @argument("--device-map", default=None, help="'auto' lets accelerate spread a large model over devices.")
    @argument("--offload-folder", default=None, help="Where --device-map auto keeps blocks that go to disk.")
    @argument("--trust-remote-code", action="store_true", help="Allow the model's own Python code to run.")
    @argument("--replace", action="store_true", help="Replace the model that is loaded now.")
    @line_magic
    @one_line_errors
    def load_model(self, line: str) -> Subject:
        """Load a causal LM to study; the result's repr summarises it."""
        args = parse_arguments(self.load_model, line)
        if args.name is not None and not args.name.strip():
            raise UsageError("The model name is empty: give a hub id or folder, or nothing for the built-in model.")
        name = args.name
        check_load_options(args.device, args.dtype, args.device_map, args.offload_folder)
        current = self.session.subject
        if current is not None and not args.replace:
            wanted = name or DEFAULT_MODEL
            if wanted == current.name:
                print(f"{current.name} is already loaded; add --replace to load it again.")
                return current
            raise UsageError(
                f"{current.name} is loaded; run %unload_model first, or add --replace to swap it for {wanted}."
            )
        started = time.perf_counter()
        subject = load_model(
            name,
            device=args.device,
            dtype=args.dtype,
            device_map=args.device_map,
            offload_folder=args.offload_folder,
            trust_remote_code=args.trust_remote_code,
        )
        self.session.subject = subject
        if current is not None:
            current.release()
        del current
        _free_memory()
        print(f"Loaded {subject.name} in {time.perf_counter() - started:.1f} s; {subject.fidelity.line()}.")
        return subject

    @line_magic
    @one_line_errors
    def model(self, line: str) -> Subject:
        """Show the loaded model, its layer program and every active intervention; ``m = %model``
        gives it to Python (m.model, m.tokenizer, m.program, m.interventions)."""
        if split_line(line):
            raise UsageError("%model takes no arguments; use %load_model NAME to load another model.")
        return self.session.require_subject()

    @magic_arguments()
    @line_magic
    @one_line_errors
    def unload_model(self, line: str) -> None:
        """Forget the loaded model and free its memory."""
        parse_arguments(self.unload_model, line)
        subject = self.session.require_subject()
        self.session.subject = None
        subject.release()  # old outputs and widgets may still hold the Subject, not the model
        print(f"Unloaded {subject.name}.")
        del subject
        _free_memory()


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


MAGICS = (ModelMagics,)
