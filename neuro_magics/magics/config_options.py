"""A magic's options read off an analysis's config dataclass (``FinetuneConfig``,
``CheckupConfig``): one option per field, with the field's help and default, so the magic, its
help and the Python function cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.magic_arguments import argument

from .session import integer


def config_arguments(config_class: Any) -> Callable:
    """``@magic_arguments`` options for every field of ``config_class``. Each defaults to None
    (not given: the config's default applies); a ``--no-...`` flag turns a True field off."""
    kinds = {"int": {"type": integer}, "float": {"type": float}, "bool": {"action": "store_true"}}

    def decorate(function: Callable) -> Callable:
        for option in reversed(config_class.options()):
            flag = config_class.flag(option)
            number = isinstance(option.default, (int, float)) and not isinstance(option.default, bool)
            help = option.metadata["help"].rstrip(".") + (f" (default {option.default:g})." if number else ".")
            kind = kinds.get(option.type, {})
            if option.type == "bool" and flag.startswith("--no-"):
                kind = {"action": "store_false"}
            elif "action" not in kind:
                kind = {**kind, "metavar": flag.lstrip("-").replace("-", "_").upper()}
            function = argument(flag, dest=option.name, default=None, help=help, **kind)(function)
        return function

    return decorate


def given_config(config_class: Any, args: Any) -> Any:
    """The config of the options given on the line (the others at their defaults), checked."""
    return config_class(**{option.name: getattr(args, option.name) for option in config_class.options()
                           if getattr(args, option.name) is not None})
