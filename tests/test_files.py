"""Replacing the user's files: a crash part-way never loses the old file or folder.

Oracles: the bytes and tensors written before the crash, read back by plain tools (numpy,
safetensors, transformers, peft's loader) and compared with what the test wrote; a crash is
the writer's inner write monkeypatched to write part of its output and then raise (an
exception no ``except Exception`` catches), or a subprocess killed with SIGKILL mid-write, so
no clean-up code of ours runs. Every state the path passes through while a folder is swapped
is recorded after each file-system call and must be the old or the new complete folder.
"""

from __future__ import annotations

import os
import time
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.core import files
from test_results import _Example
from tiny_models import tiny_model, tiny_tokenizer

TESTS = str(Path(__file__).parent)
REPO = str(Path(__file__).parent.parent)


class _Killed(BaseException):
    """A crash: not an Exception, so no ``except Exception`` of the product handles it."""


def saved(values) -> _Example:
    """A result of the test kind ``test_results`` registers, holding ``values``."""
    return _Example(np.asarray(values, dtype=np.float64), ["files test"], {"note": "files test"})


def staging_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".nm-"))


def folder_contents(folder: Path) -> dict[str, bytes] | None:
    """Every file under ``folder`` with its bytes (None when nothing is at the path)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def dead_pid() -> int:
    """The pid of a process that has already exited."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    return int(child.stdout)


def run_and_kill(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter; it must end by SIGKILL (our clean-up never runs)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, TESTS]), "HF_HUB_OFFLINE": "1"}
    child = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    return child


# -- the helper in core ------------------------------------------------------------------------------


def test_file_replaced_only_when_complete(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_bytes(b"old content, 1234")
    with pytest.raises(_Killed):
        with files.replacing_file(target) as staging:
            staging.write_bytes(b"new, half wri")
            raise _Killed
    assert target.read_bytes() == b"old content, 1234" and staging_entries(tmp_path) == []
    files.replace_file_text(target, "new content \u00e9")
    assert target.read_bytes() == "new content \u00e9".encode() and staging_entries(tmp_path) == []


def test_a_symlinked_file_is_replaced_where_it_points(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    files.replace_file_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


_KILL_HELPER = """
import os, shutil, signal, sys
from pathlib import Path
from neuro_magics.core import files
kind, target, when = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
kill = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
if kind == "file":
    with files.replacing_file(target) as staging:
        with open(staging, "w") as handle:
            handle.write("new " * 5000)
            handle.flush()
            kill()
elif when == "writing":
    with files.replacing_folder(target) as staging:
        (staging / "a.txt").write_text("new a")
        kill()
else:  # after the swap, while the old folder is being removed
    shutil.rmtree = kill
    with files.replacing_folder(target) as staging:
        (staging / "a.txt").write_text("new a")
        (staging / "c.txt").write_text("new c")
"""


@pytest.mark.parametrize("kind, when", [("file", "writing"), ("folder", "writing"), ("folder", "removing the old")])
def test_kill_9_keeps_a_complete_file_or_folder_and_the_next_write_clears_its_staging(tmp_path, kind, when):
    target = tmp_path / ("report.html" if kind == "file" else "model")
    if kind == "file":
        target.write_text("old page")
        old = {"": b"old page"}
    else:
        target.mkdir()
        (target / "a.txt").write_text("old a")
        (target / "b.txt").write_text("old b")
        old = folder_contents(target)
    run_and_kill(_KILL_HELPER, kind, str(target), when)
    now = {"": target.read_bytes()} if kind == "file" else folder_contents(target)
    if when == "writing":
        assert now == old
    else:  # the new folder is in place, the old one lies at the staging name
        assert now == {"a.txt": b"new a", "c.txt": b"new c"}
    assert len(staging_entries(tmp_path)) == 1  # left by the killed process
    other = tmp_path / "other.txt"
    files.replace_file_text(other, "another save into the same folder")
    assert staging_entries(tmp_path) == []
    assert ({"": target.read_bytes()} if kind == "file" else folder_contents(target)) == now


def test_the_folder_path_always_holds_the_old_or_the_new_folder(tmp_path, monkeypatch):
    """After every rename and removal during the swap, the path holds one complete folder."""
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights.bin").write_bytes(b"old weights")
    (target / "config.json").write_text('{"old": true}')
    old = folder_contents(target)
    new = {"weights.bin": b"new weights!", "config.json": b'{"new": true}', "extra.txt": b"more"}
    seen = []

    def recording(function):
        def call(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            finally:
                seen.append(folder_contents(target))
        return call

    for name in ("rename", "replace"):
        monkeypatch.setattr(os, name, recording(getattr(os, name)))
    monkeypatch.setattr(shutil, "rmtree", recording(shutil.rmtree))
    monkeypatch.setattr(files, "_exchange", recording(files._exchange))
    with files.replacing_folder(target) as staging:
        for name, content in new.items():
            (staging / name).write_bytes(content)
    assert folder_contents(target) == new and staging_entries(tmp_path) == []
    assert seen and all(state in (old, new) for state in seen), seen
    assert seen[-1] == new


def test_without_the_exchange_the_two_renames_put_the_old_folder_back_on_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_exchange", lambda first, second: False)
    target = tmp_path / "model"
    target.mkdir()
    (target / "a.txt").write_text("old a")
    with files.replacing_folder(target) as staging:
        (staging / "a.txt").write_text("new a")
    assert folder_contents(target) == {"a.txt": b"new a"} and staging_entries(tmp_path) == []

    renames = []
    real_rename = os.rename

    def second_rename_fails(source, destination):
        renames.append((Path(source).name, Path(destination).name))
        if len(renames) == 2:
            raise OSError(28, "No space left on device")
        return real_rename(source, destination)

    monkeypatch.setattr(os, "rename", second_rename_fails)
    with pytest.raises(OSError, match="No space"):
        with files.replacing_folder(target) as staging:
            (staging / "a.txt").write_text("newer a")
    assert len(renames) == 3  # away, (fails), back
    assert folder_contents(target) == {"a.txt": b"new a"} and staging_entries(tmp_path) == []


def test_stale_staging_of_dead_processes_is_removed_and_a_cut_swap_is_undone(tmp_path):
    host, pid, live = files._HOST, dead_pid(), os.getppid()
    dead_folder = tmp_path / f".nm-partial-{pid}-{host}-0a1b2c3d-model"
    dead_folder.mkdir()
    (dead_folder / "model.safetensors").write_bytes(b"x" * 1000)
    dead_file = tmp_path / f".nm-partial-{pid}-{host}-0a1b2c3e-scan.npz"
    dead_file.write_bytes(b"half")
    alive = tmp_path / f".nm-partial-{live}-{host}-0a1b2c3f-model"
    alive.mkdir()
    other_machine = tmp_path / f".nm-partial-{pid}-{'f' * 8 if host != 'f' * 8 else '0' * 8}-0a1b2c40-model"
    other_machine.mkdir()
    users_own = tmp_path / ".nm-partial-notes"
    users_own.mkdir()
    # a swap without the exchange cut between its two renames: the old folder, its path empty
    cut = tmp_path / f".nm-old-{pid}-{host}-0a1b2c41-adapter"
    cut.mkdir()
    (cut / "adapter_config.json").write_text("{}")
    # the same, cut after the second rename: the new folder is in place
    done = tmp_path / f".nm-old-{pid}-{host}-0a1b2c42-sae"
    done.mkdir()
    (tmp_path / "sae").mkdir()

    handled = files.remove_stale_staging(tmp_path)
    assert sorted(p.name for p in handled) == sorted(p.name for p in (dead_folder, dead_file, cut, done))
    assert not dead_folder.exists() and not dead_file.exists() and not done.exists()
    assert alive.is_dir() and other_machine.is_dir() and users_own.is_dir()
    assert (tmp_path / "adapter" / "adapter_config.json").read_text() == "{}"


# -- every writer of the user's files ----------------------------------------------------------------


def _crash_after(monkeypatch, owner, name: str, damage) -> None:
    """Make ``owner.name`` run, then ``damage`` what it wrote (from its arguments), then crash."""
    original = getattr(owner, name)

    def crashing(*args, **kwargs):
        original(*args, **kwargs)
        damage(*args, **kwargs)
        raise _Killed

    monkeypatch.setattr(owner, name, crashing)


def _halve(path) -> None:
    path = Path(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_result_save_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = saved(np.arange(5.0) + 0.5).save(tmp_path / "result.npz")
    old_bytes = target.read_bytes()
    _crash_after(monkeypatch, np, "savez_compressed", lambda handle, **arrays: handle.truncate(handle.tell() // 2))
    with pytest.raises(_Killed):
        saved(np.full(300, -7.0)).save(target, overwrite=True)
    monkeypatch.undo()
    assert target.read_bytes() == old_bytes
    np.testing.assert_array_equal(nm.load_result(target).values, np.arange(5.0) + 0.5)
    assert staging_entries(tmp_path) == []
    saved(np.full(3, -7.0)).save(target, overwrite=True)
    np.testing.assert_array_equal(nm.load_result(target).values, [-7.0, -7.0, -7.0])


_KILL_WRITER = """
import os, signal, sys
import numpy as np
kill = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
writer, target = sys.argv[1], sys.argv[2]
if writer == "result":
    from test_files import saved
    original = np.savez_compressed
    def half_then_kill(handle, **arrays):
        original(handle, **arrays)
        handle.truncate(handle.tell() // 2)
        handle.flush()
        kill()
    np.savez_compressed = half_then_kill
    saved(np.full(300, -7.0)).save(target, overwrite=True)
else:
    import neuro_magics as nm
    from transformers import PreTrainedModel
    from tiny_models import tiny_model, tiny_tokenizer
    original = PreTrainedModel.save_pretrained
    def half_then_kill(self, folder, *args, **kwargs):
        original(self, folder, *args, **kwargs)
        weights = os.path.join(folder, "model.safetensors")
        with open(weights, "r+b") as handle:
            handle.truncate(os.path.getsize(weights) // 2)
        kill()
    PreTrainedModel.save_pretrained = half_then_kill
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    nm.save_materialized(subject, target, "0,1,2,1,2,3", overwrite=True)
"""


def test_kill_9_during_result_save_keeps_the_old_result(tmp_path):
    target = saved(np.arange(5.0) + 0.5).save(tmp_path / "scan.npz")
    run_and_kill(_KILL_WRITER, "result", str(target))
    np.testing.assert_array_equal(nm.load_result(target).values, np.arange(5.0) + 0.5)
    assert len(staging_entries(tmp_path)) == 1
    saved(np.full(2, 3.0)).save(tmp_path / "another.npz")
    assert staging_entries(tmp_path) == []


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def _check_materialized(folder: Path, subject: nm.Subject, steps: list[int], ids: torch.Tensor) -> None:
    """The folder loads plainly and gives the subject's logits under ``steps``."""
    import json

    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert loaded.config.num_hidden_layers == len(steps)
    assert json.loads((folder / "neuro_magics_program.json").read_text())["steps"] == steps
    with subject.program_applied(steps):
        expected = _logits(subject.model, ids)
    torch.testing.assert_close(_logits(loaded, ids), expected, atol=1e-5, rtol=1e-5)


def test_kill_9_during_save_materialized_keeps_the_old_model_and_the_next_save_clears_the_staging(tmp_path):
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    ids = torch.tensor([[5, 17, 3, 40, 9, 22]])
    target = nm.save_materialized(subject, tmp_path / "rys", [0, 1, 3])
    run_and_kill(_KILL_WRITER, "materialized", str(target))
    _check_materialized(target, subject, [0, 1, 3], ids)
    [staging] = staging_entries(tmp_path)
    assert (tmp_path / staging / "model.safetensors").is_file()  # the half-written copy, left by the kill
    nm.save_materialized(subject, target, [0, 1, 2, 1, 2, 3], overwrite=True)
    _check_materialized(target, subject, [0, 1, 2, 1, 2, 3], ids)
    assert staging_entries(tmp_path) == []


def test_save_materialized_and_mergekit_keep_the_old_files_when_interrupted(tmp_path, monkeypatch):
    from transformers import PreTrainedModel

    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    ids = torch.tensor([[5, 17, 3, 40, 9, 22], [8, 8, 30, 2, 61, 7]])
    target = nm.save_materialized(subject, tmp_path / "model", [0, 1, 3])
    config = nm.mergekit_yaml(subject, [0, 1, 3], path=tmp_path / "merge.yaml")
    _crash_after(monkeypatch, PreTrainedModel, "save_pretrained",
                 lambda self, folder, *a, **k: _halve(Path(folder) / "model.safetensors"))
    with pytest.raises(_Killed):
        nm.save_materialized(subject, target, [0, 1, 2, 1, 2, 3], overwrite=True)
    _crash_after(monkeypatch, Path, "write_text", lambda path, text, *a, **k: _halve(path))
    with pytest.raises(_Killed):
        nm.mergekit_yaml(subject, [0, 1, 2, 1, 2, 3], path=tmp_path / "merge.yaml", overwrite=True)
    monkeypatch.undo()
    _check_materialized(target, subject, [0, 1, 3], ids)
    assert (tmp_path / "merge.yaml").read_text() == config and staging_entries(tmp_path) == []
    nm.save_materialized(subject, target, [0, 1, 2, 1, 2, 3], overwrite=True)
    _check_materialized(target, subject, [0, 1, 2, 1, 2, 3], ids)
    nm.mergekit_yaml(subject, [0, 1, 2, 1, 2, 3], path=tmp_path / "merge.yaml", overwrite=True)
    written = (tmp_path / "merge.yaml").read_text()
    assert "layer_range: [0, 3]" in written and "layer_range: [1, 4]" in written and "[0, 2]" not in written


def _random_adapter(subject: nm.Subject, seed: int):
    from neuro_magics.analyses import finetune as ft

    generator = torch.Generator().manual_seed(seed)
    modules = subject.block_matrices()
    A, B = {}, {}
    for name in ft.resolve_targets(subject, None):
        out_features, in_features = ft.weight_matrix(modules[name]).shape
        A[name] = torch.randn(2, in_features, generator=generator)
        B[name] = torch.randn(out_features, 2, generator=generator)
    return ft.LoraAdapter(rank=2, alpha=4.0, A=A, B=B, base_model=subject.name)


def test_finetune_save_overwrite_keeps_the_old_adapter_when_interrupted(shell, tiny_in_shell, tmp_path, monkeypatch):
    """%finetune --save DIR --overwrite: the old folder stays whole until the new one replaces it."""
    import safetensors.torch

    from neuro_magics.analyses import finetune as ft

    old, new = _random_adapter(tiny_in_shell, 1), _random_adapter(tiny_in_shell, 2)
    ft.adapter_intervention(tiny_in_shell, old).install(tiny_in_shell)
    folder = tmp_path / "adapter"
    shell.run_line_magic("finetune", f"--save {folder}")
    nm.remove_adapters(tiny_in_shell)
    ft.adapter_intervention(tiny_in_shell, new).install(tiny_in_shell)
    _crash_after(monkeypatch, safetensors.torch, "save_file", lambda tensors, path, **k: _halve(path))
    with pytest.raises(_Killed):
        shell.run_line_magic("finetune", f"--save {folder} --overwrite")
    monkeypatch.undo()
    assert staging_entries(tmp_path) == []
    loaded = ft.LoraAdapter.load(tiny_in_shell, folder)
    for name in old.targets:
        torch.testing.assert_close(loaded.A[name], old.A[name], atol=0, rtol=0)
        torch.testing.assert_close(loaded.B[name], old.B[name], atol=0, rtol=0)
    shell.run_line_magic("finetune", f"--save {folder} --overwrite")
    loaded = ft.LoraAdapter.load(tiny_in_shell, folder)
    for name in new.targets:
        torch.testing.assert_close(loaded.B[name], new.B[name], atol=0, rtol=0)


TEXTS = ["The cat sat on the mat and looked at the dog.", "Two plus three is five, and five plus five is ten.",
         "The river runs north past the mill, then east.", "The code compiles, but the tests fail again."] * 3


def test_save_saelens_refuses_to_replace_unasked_and_keeps_the_old_sae_when_interrupted(tmp_path, monkeypatch):
    import json

    import safetensors.numpy

    from neuro_magics.analyses.sae.formats import read_folder

    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    old, new = (nm.train_sae(subject, layer=1, texts=TEXTS, expansion=1, k=2, steps=3, batch_size=32, seed=seed,
                             progress=False) for seed in (0, 1))
    folder = old.save_saelens(tmp_path / "sae")
    old_files = folder_contents(folder)
    with pytest.raises(nm.NeuroMagicsError, match=r"already exists .*overwrite=True") as refused:
        new.save_saelens(folder)
    assert "\n" not in str(refused.value) and folder_contents(folder) == old_files
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(nm.NeuroMagicsError, match="is a file") as refused:
        new.save_saelens(tmp_path / "a_file")
    assert "\n" not in str(refused.value) and (tmp_path / "a_file").read_text() == "mine"

    # today's failure: the new weights land, then the crash comes before cfg.json
    _crash_after(monkeypatch, safetensors.numpy, "save_file", lambda *a, **k: None)
    with pytest.raises(_Killed):
        new.save_saelens(folder, overwrite=True)
    monkeypatch.undo()
    assert folder_contents(folder) == old_files and staging_entries(tmp_path) == []
    weights = read_folder(folder)
    np.testing.assert_allclose(weights.W_enc, old.W_enc * old.scale, rtol=1e-6)
    assert json.loads((folder / "cfg.json").read_text())["d_sae"] == old.width
    new.save_saelens(folder, overwrite=True)
    np.testing.assert_allclose(read_folder(folder).W_enc, new.W_enc * new.scale, rtol=1e-6)
    assert not np.allclose(new.W_enc, old.W_enc)


def test_checkup_html_overwrite_keeps_the_old_page_when_interrupted(shell, tmp_path, monkeypatch):
    """%checkup --html P --overwrite: the old page stays whole until the new one replaces it."""
    shell.neuro_magics_session.subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    corpus = tmp_path / "texts.txt"
    corpus.write_text("\n".join(TEXTS[:4]))
    page = tmp_path / "report.html"
    page.write_text("<html>the old report</html>")
    _crash_after(monkeypatch, Path, "write_text", lambda path, text, *a, **k: _halve(path))
    with pytest.raises(_Killed):
        shell.run_line_magic("checkup", f"--corpus {corpus} --max-texts 2 --no-spectra --html {page} --overwrite")
    monkeypatch.undo()
    assert page.read_text() == "<html>the old report</html>" and staging_entries(tmp_path) == []
    shell.run_line_magic("checkup", f"--corpus {corpus} --max-texts 2 --no-spectra --html {page} --overwrite")
    assert page.read_text().count("nm-esm") >= 1 and page.read_text().rstrip().endswith("</html>")


def test_staging_left_by_earlier_versions_is_removed_once_an_hour_old(tmp_path):
    """A killed save of an earlier version left a hidden ``.materializing-XXXXXXXX`` folder (517 MB
    for the default model) with no process id in its name: the next save removes it once it is
    an hour old; a young one (maybe still being written) and the user's look-alikes stay."""
    hour_ago = time.time() - 3700
    old = [tmp_path / ".materializing-ab12cd_9", tmp_path / ".adapter-q1w2e3r4", tmp_path / ".converting-zz00yy11"]
    for folder in old:
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x" * 100)
        os.utime(folder, (hour_ago, hour_ago))
    old_checkpoint = tmp_path / ".scan.partial.npz"
    old_checkpoint.write_bytes(b"partial")
    os.utime(old_checkpoint, (hour_ago, hour_ago))
    young = tmp_path / ".materializing-young123"
    young.mkdir()
    lookalikes = [tmp_path / ".materializing-notes", tmp_path / "materializing-ab12cd_9"]
    for path in lookalikes:
        path.mkdir()
        os.utime(path, (hour_ago, hour_ago))
    removed = files.remove_stale_staging(tmp_path)
    assert sorted(removed) == sorted([*old, old_checkpoint])
    assert young.is_dir() and all(path.is_dir() for path in lookalikes)
    assert not any(path.exists() for path in [*old, old_checkpoint])
