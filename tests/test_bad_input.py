"""Bad input and the user's files (issue 9): each case is one line (a plain UsageError from a
magic, a NeuroMagicsError from Python), leaves the model exactly as it was (program, active
interventions, logits bit-identical), and never loses or misplaces a file."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from IPython.core.error import UsageError

import neuro_magics as nm
from neuro_magics.analyses.brain_scan import BrainScanResult
from tiny_models import tiny_model, tiny_tokenizer

TOKENS = torch.tensor([[5, 17, 33, 8, 61, 9, 40]])
ITEMS = '{"prompt": "ab", "answer": "cd"}\n{"prompt": "The cat sat on the", "answer": "mat"}\n'


def state(subject):
    with torch.no_grad():
        logits = subject.model(TOKENS, use_cache=False).logits
    return logits, subject.program, [repr(i) for i in subject.interventions]


def assert_unchanged(subject, before):
    logits, program, active = state(subject)
    assert torch.equal(logits, before[0]) and program == before[1] and active == before[2]


def one_line(shell, subject, match, magic, line, cell=None, *, runs_nothing=False):
    """Run a magic that must fail with one plain UsageError line and change nothing
    (``runs_nothing``: without calling a single block first)."""
    before = state(subject)
    with pytest.raises(UsageError, match=match) as info, CountForwards(subject) as forwards:
        if cell is None:
            shell.run_line_magic(magic, line)
        else:
            shell.run_cell_magic(magic, line, cell)
    assert forwards.calls == 0 or not runs_nothing
    assert type(info.value) is UsageError and "\n" not in str(info.value)
    assert_unchanged(subject, before)
    return str(info.value)


class CountForwards:
    """Counts block calls: a refused line must not run the model at all."""

    def __init__(self, subject):
        self.calls = 0
        self.handles = [b.register_forward_pre_hook(self._count) for b in subject.blocks]

    def _count(self, module, args):
        self.calls += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def unwritable_folder(tmp_path):
    """A folder this process cannot write into, even as root (sysfs refuses new files)."""
    import tempfile

    try:
        tempfile.TemporaryFile(dir="/sys").close()
    except OSError:
        return "/sys"
    pytest.skip("no unwritable folder here")


# -- reading a magic line ----------------------------------------------------------------------


def test_quotes_group_a_path_and_are_removed(shell, tiny_in_shell, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "my dir" / "merge.yaml"
    shell.run_line_magic("duplicate_layers", f'1:3 --no-diff --mergekit "{target}"')
    assert target.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my dir"]  # no folder named '"' or "'"
    shell.run_line_magic("reset_layers", "")
    single = tmp_path / "other dir" / "m.yaml"
    shell.run_line_magic("drop_layers", f"'1' --no-diff --mergekit '{single}'")
    assert single.is_file()


@pytest.mark.parametrize("magic, line", [
    ("duplicate_layers", "1:3 --no-diff --save ''"),
    ("duplicate_layers", '1:3 --no-diff --mergekit ""'),
    ("brainscan", "--layers 2:4 --save ''"),
    ("brainscan", "--layers 2:4 --resume ''"),
])
def test_an_empty_path_is_refused(shell, tiny_in_shell, tmp_path, monkeypatch, magic, line):
    monkeypatch.chdir(tmp_path)
    one_line(shell, tiny_in_shell, "path is empty", magic, line, ITEMS if magic == "brainscan" else None)
    assert list(tmp_path.iterdir()) == []


def test_an_unclosed_quote_is_one_line(shell, tiny_in_shell):
    one_line(shell, tiny_in_shell, "close every quote", "duplicate_layers", "1:3 --prompt 'oops")


def test_a_trailing_semicolon_is_output_suppression_not_argument(shell, tiny_in_shell):
    assert shell.run_line_magic("generate", "--max-new-tokens 3 hi;") == tiny_in_shell.generate("hi", max_new_tokens=3)
    shell.run_line_magic("duplicate_layers", "1:3 --no-diff;")
    assert tiny_in_shell.program.steps == (0, 1, 2, 1, 2, 3)
    assert shell.run_line_magic("model", ";") is tiny_in_shell


@pytest.mark.parametrize("line", ["--dry-run", "now", "--force"])
def test_unload_model_refuses_any_argument(shell, tiny_in_shell, line):
    one_line(shell, tiny_in_shell, "unrecognized arguments", "unload_model", line)
    assert shell.neuro_magics_session.subject is tiny_in_shell
    shell.run_line_magic("unload_model", ";")
    assert shell.neuro_magics_session.subject is None


def test_load_model_checks_the_device_even_when_a_model_is_loaded(shell, tiny_in_shell, capsys):
    for line in ("--device nowhere", "tiny-llama --dtype float8", "--device-map everywhere"):
        one_line(shell, tiny_in_shell, "device|dtype", "load_model", line)
    assert "already loaded" not in capsys.readouterr().out
    assert shell.neuro_magics_session.subject is tiny_in_shell


def test_load_model_refuses_an_empty_name(shell):
    with pytest.raises(UsageError, match="name is empty"):
        shell.run_line_magic("load_model", "''")
    with pytest.raises(nm.NeuroMagicsError, match="name is empty"):
        nm.load_model("")


# -- files are never overwritten unasked ------------------------------------------------------


def test_result_save_refuses_an_existing_file(tmp_path):
    result = BrainScanResult.empty(2, 1, {"model": "x"})
    target = tmp_path / "r.npz"
    target.write_bytes(b"precious")
    with pytest.raises(nm.NeuroMagicsError, match="already exists") as info:
        result.save(target)
    assert "\n" not in str(info.value) and target.read_bytes() == b"precious"
    result.save(target, overwrite=True)
    assert nm.load_result(target).n_layers == 2
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises(nm.NeuroMagicsError, match="is a folder"):
        result.save(tmp_path / "folder.npz")
    with pytest.raises(nm.NeuroMagicsError, match="under the file"):
        result.save(target / "inside.npz")


def test_mergekit_refuses_an_existing_file_unless_overwrite(shell, tiny_in_shell, tmp_path):
    target = tmp_path / "merge.yaml"
    target.write_text("mine")
    one_line(shell, tiny_in_shell, "already exists", "duplicate_layers", f"1:3 --no-diff --mergekit {target}")
    assert target.read_text() == "mine"
    shell.run_line_magic("duplicate_layers", f"1:3 --no-diff --mergekit {target} --overwrite")
    assert "passthrough" in target.read_text()
    with pytest.raises(nm.NeuroMagicsError, match="already exists"):
        nm.mergekit_yaml(tiny_in_shell, path=target)


@pytest.mark.parametrize("where", ["unwritable", "under_a_file"])
def test_an_export_that_cannot_be_written_is_refused_before_the_change(shell, tiny_in_shell, tmp_path, where):
    if where == "unwritable":
        base = unwritable_folder(tmp_path)
        match = "cannot write"
    else:
        (tmp_path / "file").write_text("x")
        base = tmp_path / "file"
        match = "under the file"
    one_line(shell, tiny_in_shell, match, "duplicate_layers", f"1:3 --no-diff --save {base}/model")
    one_line(shell, tiny_in_shell, match, "duplicate_layers", f"1:3 --no-diff --mergekit {base}/m.yaml")


def test_an_export_that_fails_while_writing_rolls_the_program_back(shell, tiny_in_shell, tmp_path, monkeypatch):
    from neuro_magics.analyses import surgery

    def fails(*args, **kwargs):
        raise nm.NeuroMagicsError("--save: could not write the model (No space left on device).")

    monkeypatch.setattr(surgery, "save_materialized", fails)
    one_line(shell, tiny_in_shell, "No space left", "duplicate_layers", f"1:3 --no-diff --save {tmp_path / 'model'}")
    assert tiny_in_shell.program.is_identity


def _scan(shell, line, cell=ITEMS):
    return shell.run_cell_magic("brainscan", line, cell)


def test_brainscan_save_refuses_another_file_and_keeps_it(shell, tiny_in_shell, tmp_path):
    unrelated = tmp_path / "data.npz"
    np.savez(unrelated, x=np.arange(3))
    content = unrelated.read_bytes()
    one_line(shell, tiny_in_shell, "not a saved brain scan", "brainscan", f"--layers 2:4 --save {unrelated}", ITEMS)
    assert unrelated.read_bytes() == content

    other = tmp_path / "facts.npz"
    shell.run_line_magic("brainscan", f"--probe facts --limit 1 --layers 3:4 --save {other}")
    content = other.read_bytes()
    one_line(shell, tiny_in_shell, "different probe", "brainscan", f"--layers 2:4 --save {other}", ITEMS)
    assert other.read_bytes() == content

    same = tmp_path / "same.npz"
    _scan(shell, f"--layers 2:4 --save {same}")
    content = same.read_bytes()
    one_line(shell, tiny_in_shell, "same scan: continue it with --resume", "brainscan", f"--layers 2:4 --save {same}", ITEMS)
    assert same.read_bytes() == content
    # resuming updates the same sweep's checkpoint; --overwrite replaces anything
    assert _scan(shell, f"--layers 1:4 --resume {same}").complete
    assert BrainScanResult.load(same).n_finished == 6
    assert _scan(shell, f"--layers 3:4 --save {unrelated} --overwrite").complete
    assert BrainScanResult.load(unrelated).n_finished == 1


@pytest.mark.parametrize("where, match", [
    ("folder", "is a folder"), ("under_a_file", "under the file"), ("unwritable", "cannot write"),
])
def test_brainscan_save_path_is_checked_before_the_sweep(shell, tiny_in_shell, tmp_path, where, match):
    (tmp_path / "file").write_text("x")
    path = {"folder": tmp_path, "under_a_file": tmp_path / "file" / "scan.npz",
            "unwritable": f"{unwritable_folder(tmp_path) if where == 'unwritable' else ''}/scan.npz"}[where]
    one_line(shell, tiny_in_shell, match, "brainscan", f"--layers 2:4 --save {path}", ITEMS, runs_nothing=True)


def test_a_checkpoint_that_fails_later_keeps_the_result_in_memory(shell, tiny_in_shell, tmp_path, monkeypatch, capsys):
    writes = []

    def save_atomic(self, path):
        writes.append(path)
        raise nm.NeuroMagicsError(f"Could not write {str(path)!r}: No space left on device.")

    monkeypatch.setattr(BrainScanResult, "save_atomic", save_atomic)
    result = _scan(shell, f"--layers 1:4 --save {tmp_path / 'scan.npz'} -o kept")
    assert result.complete and shell.user_ns["kept"] is result
    assert len(writes) == 1  # one failed write, then the sweep went on in memory
    lines = [line for line in capsys.readouterr().out.splitlines() if "No space left" in line]
    assert len(lines) == 1 and "kept in memory" in lines[0]


def _truncated(path):
    whole = path.read_bytes()
    return whole[: len(whole) // 2]


@pytest.fixture
def saved_scan(tiny_in_shell, tmp_path):
    path = tmp_path / "good.npz"
    nm.brainscan(tiny_in_shell, items=ITEMS, layers="3:4", progress=False).save(path)
    return path


def _bad_files(tmp_path, saved_scan):
    """name -> a file that is not a usable saved result."""
    files = {}
    files["empty"] = tmp_path / "empty.npz"
    files["empty"].write_bytes(b"")
    files["truncated"] = tmp_path / "truncated.npz"
    files["truncated"].write_bytes(_truncated(saved_scan))
    files["random"] = tmp_path / "random.npz"
    files["random"].write_bytes(np.random.default_rng(0).bytes(4096))
    files["no_header"] = tmp_path / "no_header.npz"
    with zipfile.ZipFile(files["no_header"], "w") as archive:
        archive.writestr("something.txt", "hello")
    files["npy"] = tmp_path / "plain.npy"
    np.save(files["npy"], np.arange(4))
    files["header_not_object"] = tmp_path / "list.npz"
    np.savez(files["header_not_object"], __header__=np.array(json.dumps([1, 2])))
    with np.load(saved_scan) as data:
        header = json.loads(str(data["__header__"]))
        arrays = {key: data[key] for key in data.files if key != "__header__"}
    files["no_fields"] = tmp_path / "no_fields.npz"
    np.savez(files["no_fields"], __header__=np.array(json.dumps({"kind": "brainscan"})), **arrays)
    files["no_arrays"] = tmp_path / "no_arrays.npz"
    np.savez(files["no_arrays"], __header__=np.array(json.dumps(header)))
    return files


BAD_FILES = ["empty", "truncated", "random", "no_header", "npy", "header_not_object", "no_fields", "no_arrays"]


@pytest.mark.parametrize("name", BAD_FILES)
def test_load_result_of_a_bad_file_is_one_line(tmp_path, saved_scan, name):
    path = _bad_files(tmp_path, saved_scan)[name]
    with pytest.raises(nm.NeuroMagicsError, match="^not a neuro_magics result: ") as info:
        nm.load_result(path)
    assert "\n" not in str(info.value)


def test_load_result_of_none_is_one_line():
    with pytest.raises(nm.NeuroMagicsError, match="^not a neuro_magics result: "):
        nm.load_result(None)


@pytest.mark.parametrize("name", ["empty", "truncated", "random", "no_header", "no_fields", "no_arrays"])
def test_brainscan_resume_of_a_bad_file_is_one_line(shell, tiny_in_shell, tmp_path, saved_scan, name):
    path = _bad_files(tmp_path, saved_scan)[name]
    content = path.read_bytes()
    one_line(shell, tiny_in_shell, "not a neuro_magics result", "brainscan", f"--layers 3:4 --resume {path}", ITEMS)
    assert path.read_bytes() == content


# -- bad values -------------------------------------------------------------------------------


def test_files_that_are_not_utf8_are_one_line(shell, tiny_in_shell, tmp_path):
    probe = tmp_path / "probe.jsonl"
    probe.write_bytes('{"prompt": "caf\u00e9", "answer": "x"}\n'.encode("latin-1"))
    one_line(shell, tiny_in_shell, "not UTF-8", "brainscan", f"--probe {probe} --layers 3:4")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes('{"positive": "caf\u00e9", "negative": "tea"}\n'.encode("latin-1"))
    one_line(shell, tiny_in_shell, "not UTF-8", "steer", f"--pairs {pairs} --layer 1 --coef 2 --no-diff")


def test_a_corrupt_weights_file_is_one_line(shell, tmp_path):
    tiny_model("llama").save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(UsageError, match="Could not load .*header") as info:
        shell.run_line_magic("load_model", f"{tmp_path} --device cpu")
    assert type(info.value) is UsageError and "\n" not in str(info.value)
    assert shell.neuro_magics_session.subject is None


@pytest.mark.parametrize("line, match", [
    ("--seed 18446744073709551616 --sample --max-new-tokens 2 hi", "--seed must be a whole number between"),
    ("--seed -1 --sample --max-new-tokens 2 hi", "--seed must be a whole number between"),
])
def test_generate_seed_outside_64_bits(shell, tiny_in_shell, line, match):
    one_line(shell, tiny_in_shell, match, "generate", line)


@pytest.mark.parametrize("seed", [2**64, -1, 1.5, True])
def test_generate_seed_is_checked_in_python_too(tiny_in_shell, seed):
    with pytest.raises(nm.NeuroMagicsError, match="--seed must be a whole number"):
        nm.generate(tiny_in_shell, "hi", max_new_tokens=2, sample=True, seed=seed)


@pytest.mark.parametrize("line", ["--heads \u00b2.1 --no-diff", "--neurons \u2460:5 --no-diff", "--heads 1.\u00b9 --no-diff"])
def test_digits_that_int_rejects_are_one_line(shell, tiny_in_shell, line):
    one_line(shell, tiny_in_shell, "Cannot read", "ablate", line)


@pytest.mark.parametrize("line, match", [
    ("--method trace --clean 'a b c' --subject b --top-k 100000", "more than the 128 tokens"),
    ("--method trace --clean 'a b c' --subject b --top 129", "more than the 128 tokens"),
    ("--method trace --clean 'a b c' --subject b --top-k 0", "--top-k must be at least 1"),
    ("--clean 'a b' --corrupt 'a c' --answers b c --batch-size 0", "--batch-size must be at least 1"),
    ("--clean 'a b' --corrupt 'a c' --answers b c --site everywhere", "Unknown site"),
    ("--clean 'a b' --corrupt 'a c' --answers b c --method guess", "invalid choice"),
    ("--method trace --clean 'a b c'", "needs --subject"),
    ("--method trace --clean 'a b c' --subject b --metric prob", "drop them"),
])
def test_patch_options_are_checked_before_any_work(shell, tiny_in_shell, line, match):
    one_line(shell, tiny_in_shell, match, "patch", line, runs_nothing=True)


@pytest.mark.parametrize("coef", ["--coef nan", "--coef inf", "--coef=-inf", "--coef 1e308"])
def test_steering_with_a_coefficient_that_breaks_the_logits_is_refused(shell, tiny_in_shell, coef):
    # a non-finite number is refused before the contrast vector is computed
    one_line(shell, tiny_in_shell, "--coef", "steer", f"--pos abc --neg xyz --layer 1 {coef} --no-diff",
             runs_nothing=coef != "--coef 1e308")


def test_steering_that_dwarfs_the_stream_is_installed_with_a_warning(shell, tiny_in_shell, capsys):
    shell.run_line_magic("steer", "--pos abc --neg xyz --layer 1 --coef 1e6 --no-diff")
    warning = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1 and "typical stream norm" in warning[0]
    with torch.no_grad():
        assert torch.isfinite(tiny_in_shell.model(TOKENS, use_cache=False).logits).all()
    shell.run_line_magic("steer", "--reset")
    shell.run_line_magic("steer", "--pos abc --neg xyz --layer 1 --coef 2 --no-diff")
    assert "Warning" not in capsys.readouterr().out


def test_a_scan_that_will_not_fit_is_refused_up_front(shell, tiny_in_shell, monkeypatch):
    from neuro_magics.core import memory as scanning  # where every analysis reads free memory

    monkeypatch.setattr(scanning, "available_memory", lambda: 2**16)
    message = one_line(shell, tiny_in_shell, "needs about", "scan", "--sites resid,attn,mlp,neurons", "word " * 20,
                       runs_nothing=True)
    assert "--sites resid" in message and "--steps" in message
    monkeypatch.setattr(scanning, "available_memory", lambda: 2**30)
    assert shell.run_cell_magic("scan", "--sites resid,attn,mlp,neurons", "word " * 20) is not None


def test_scan_memory_estimate_covers_what_a_scan_holds(tiny_in_shell):
    """The estimate counts every captured float twice (list + stack) plus attention scores:
    it must be at least the captures the result really keeps."""
    from neuro_magics.core import memory as scanning  # where every analysis reads free memory

    seen = []
    original = scanning.available_memory
    try:
        scanning.available_memory = lambda: seen.append(1) or 2**40
        result = nm.scan(tiny_in_shell, "word " * 8, sites="resid,attn,mlp,neurons", progress=False)
    finally:
        scanning.available_memory = original
    kept = sum(array.nbytes for array in result.captures.values())
    assert seen and kept > 0
    with pytest.raises(nm.NeuroMagicsError, match="needs about"):
        scanning.available_memory = lambda: kept  # 0.8 x kept cannot hold 2 x kept
        try:
            nm.scan(tiny_in_shell, "word " * 8, sites="resid,attn,mlp,neurons", progress=False)
        finally:
            scanning.available_memory = original
