"""The SAE package's structure (issue 24), against independent computations: the training config
(validated once, JSON, metadata, the magic's help, the fit it drives recomputed by hand), steps
and blocks told apart, the coder built once per device and rebuilt when a weight is replaced,
AuxK written out in numpy, the content-addressed cache, and a result saved before the split."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.analyses.sae import HOLDOUT, SaeTrainingConfig, SparseAutoencoder, auxk_loss, fit_topk
from neuro_magics.analyses.sae import result as sae_result
from neuro_magics.analyses.sae.coder import SparseCoder
from neuro_magics.core import content_cache
from neuro_magics.core.errors import NeuroMagicsError
from neuro_magics.core.reading import CONTRAST_PREFIX
from sae_oracle import arrays_of, hand_decode, hand_encode, hand_topk_codes
from tiny_models import tiny_model, tiny_tokenizer

TEXTS = [f"the cat {i} sat on the mat while {i * 7} dogs ran home" for i in range(30)]
OLD_RESULT = Path(__file__).parent / "data" / "sae_saved_before_the_split.npz"


@pytest.fixture
def llama():
    return nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")


# -- the training config -------------------------------------------------------------------------


@pytest.mark.parametrize("options, words", [
    ({}, "--step N .* or --block N"),
    ({"step": -1}, "--step must be a whole number"),
    ({"step": 1, "block": 1.0}, "--block must be a whole number"),
    ({"step": 1, "site": "embeddings"}, "Unknown site"),
    ({"step": 1, "expansion": 0}, "--expansion must be a positive"),
    ({"step": 1, "k": True}, "--k must be a positive"),
    ({"step": 1, "steps": 2.5}, "--steps must be a positive"),
    ({"step": 1, "batch_size": 0}, "--batch must be a positive"),
    ({"step": 1, "lr": float("nan")}, "--lr must be a positive"),
    ({"step": 1, "lr": 0}, "--lr must be a positive"),
    ({"step": 1, "seed": -1}, "--seed must be a whole number"),
])
def test_a_bad_config_is_one_line_that_names_the_option(options, words):
    with pytest.raises(NeuroMagicsError, match=words) as caught:
        SaeTrainingConfig(**options)
    assert "\n" not in str(caught.value)


def test_a_config_round_trips_through_json_and_refuses_unknown_keys():
    config = SaeTrainingConfig(block=np.int64(2), site="mlp_out", expansion=3, k=5, steps=7, batch_size=33, lr=2.5e-3,
                               seed=11)
    text = config.to_json()
    assert json.loads(text) == {"step": None, "block": 2, "site": "mlp_out", "expansion": 3, "k": 5, "steps": 7,
                                "batch_size": 33, "lr": 2.5e-3, "seed": 11}
    assert SaeTrainingConfig.from_json(text) == config
    with pytest.raises(NeuroMagicsError, match="'width'") as caught:
        SaeTrainingConfig.from_dict({**config.to_dict(), "width": 4})
    assert "\n" not in str(caught.value)


def _hand_training_data(subject: nm.Subject, texts: list[str], block: int) -> torch.Tensor:
    """Block ``block``'s output on each training text's own tokens (one text at a time, unpadded,
    after the one-token prefix), scaled so that the mean squared norm is d_model."""
    seen = []
    handle = subject.blocks[block].register_forward_hook(
        lambda module, args, output: seen.append((output[0] if isinstance(output, tuple) else output)[0, 1:]))
    try:
        with torch.no_grad():
            for text in [t for i, t in enumerate(texts) if i % HOLDOUT]:
                subject.model(subject.tokenizer(CONTRAST_PREFIX + text, return_tensors="pt")["input_ids"])
    finally:
        handle.remove()
    data = torch.cat(seen).double()
    return (data * np.sqrt(subject.d_model / float(data.pow(2).sum(1).mean()))).float()


def test_the_config_drives_the_fit_and_is_what_the_metadata_records(llama, tmp_path):
    """Oracle: the fit run here on activations captured by a hook written here, with every
    option of the config passed by hand; a config given as ``config=``, as keywords and with the
    old ``layer=`` keyword train the same SAE (fails with any option dropped on the way to the
    fit, e.g. the seed or the learning rate left at its default)."""
    config = SaeTrainingConfig(block=2, expansion=1, k=3, steps=4, batch_size=40, lr=7e-3, seed=9)
    sae = nm.train_sae(llama, texts=TEXTS, config=config, progress=False)
    data = _hand_training_data(llama, TEXTS, block=2)
    coder, _ = fit_topk(data, llama.d_model, 3, steps=4, batch_size=40, lr=7e-3, seed=9)
    np.testing.assert_allclose(sae.W_dec, coder.W_dec.detach().numpy(), atol=2e-4)
    np.testing.assert_allclose(sae.W_enc, coder.W_enc.detach().numpy(), atol=2e-4)
    assert (sae.step, sae.block) == (2, 2)
    assert sae.metadata["config"] == {**config.to_dict(), "step": 2}
    by_keywords = nm.train_sae(llama, texts=TEXTS, step=2, expansion=1, k=3, steps=4, batch_size=40, lr=7e-3, seed=9,
                               progress=False)
    by_old_keyword = nm.train_sae(llama, texts=TEXTS, layer=2, expansion=1, k=3, steps=4, batch_size=40, lr=7e-3,
                                  seed=9, progress=False)
    for other in (by_keywords, by_old_keyword):
        np.testing.assert_array_equal(other.W_dec, sae.W_dec)
        assert other.metadata["config"] == sae.metadata["config"]
    loaded = nm.load_result(sae.save(tmp_path / "sae.npz"))
    assert loaded.training_config == SaeTrainingConfig(step=2, block=2, expansion=1, k=3, steps=4, batch_size=40,
                                                       lr=7e-3, seed=9)
    with pytest.raises(NeuroMagicsError, match="either config= or keyword"):
        nm.train_sae(llama, texts=TEXTS, config=config, k=4, progress=False)


def test_steps_and_blocks_are_told_apart_under_a_duplicated_program(llama):
    """Program 0 1 2 1 2 3: block 3 runs at step 5 (counted here from the program), block 1 at
    steps 1 and 3 (refused: which one?), step 3 runs block 1; the SAE reads the step it names."""
    program = [0, 1, 2, 1, 2, 3]
    llama.set_program(program)
    sae = nm.train_sae(llama, texts=TEXTS, block=3, expansion=1, k=2, steps=2, batch_size=32, progress=False)
    assert (sae.step, sae.block) == (program.index(3), 3) and "step 5 (block 3)" in repr(sae)
    at_three = nm.train_sae(llama, texts=TEXTS, step=3, expansion=1, k=2, steps=2, batch_size=32, progress=False)
    assert (at_three.step, at_three.block) == (3, program[3])
    for options, words in [({"block": 1}, "Block 1 runs at steps 1, 3 in this program: say which with --step"),
                           ({"step": 3, "block": 2}, "step 3 runs block 1, not block 2"),
                           ({"step": 6}, "steps 0-5"), ({"block": 4}, "blocks 0-3")]:
        with pytest.raises(NeuroMagicsError, match=words) as caught:
            nm.train_sae(llama, texts=TEXTS, progress=False, **options)
        assert "\n" not in str(caught.value)
    assert list(llama.program.steps) == program


def test_the_magic_shows_the_config_fields_and_says_step_or_block(shell, tiny_in_shell):
    """The %sae help carries each config field's own help and default; --layer is refused in
    one line that names --step and --block; --block trains on the step that block runs at."""
    from IPython.core.error import UsageError

    from neuro_magics.magics.sae import SaeMagics

    help_text = " ".join(SaeMagics.sae.parser.format_help().split())
    for name in SaeTrainingConfig.names():
        flag = {"batch_size": "batch"}.get(name, name)
        assert f"--{flag} " in help_text
        assert " ".join(SaeTrainingConfig.help(name).split()) in help_text, name
    assert "(default 300)" in help_text and "(default 0.001)" in help_text
    with pytest.raises(UsageError, match="--step N .*--block N") as caught:
        shell.run_cell_magic("sae", "train --layer 1 --steps 2", "\n".join(TEXTS))
    assert "\n" not in str(caught.value) and not tiny_in_shell.interventions
    tiny_in_shell.set_program([0, 1, 2, 3, 2])
    sae = shell.run_cell_magic("sae", "train --block 3 --expansion 1 --k 2 --steps 2 --batch 32", "\n".join(TEXTS))
    assert (sae.step, sae.block) == (3, 3) and sae.metadata["config"]["batch_size"] == 32


# -- the coder: one encode path, built once ----------------------------------------------------------


def test_the_coder_is_built_once_per_device_and_rebuilt_when_a_weight_is_replaced(llama, monkeypatch):
    """Oracle: the numpy encode/decode of the SAE's current arrays. Encoding three times builds
    one coder; replacing W_dec, k or b_enc is seen by the next call (fails with a coder that is
    never rebuilt, or rebuilt on every call; with b_enc lowered until some rows have fewer than
    k positive pre-activations, fails with the ReLU before TopK left out); an in-place edit of a
    weight is refused."""
    sae = nm.train_sae(llama, texts=TEXTS, step=1, expansion=2, k=4, steps=3, batch_size=64, progress=False)
    built = []

    class CountingCoder(SparseCoder):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sae_result, "SparseCoder", CountingCoder)
    sae.W_enc = sae.W_enc  # drop the coder built during training's evaluation
    x = np.random.default_rng(0).normal(size=(5, llama.d_model)).astype(np.float32) * 2
    for _ in range(3):
        np.testing.assert_allclose(sae.encode(x), hand_topk_codes(sae, x), rtol=1e-4, atol=1e-4)
    assert len(built) == 1
    sae.W_dec = sae.W_dec[::-1] * 2
    codes = sae.encode(x)
    np.testing.assert_allclose(sae.decode(codes), hand_decode(arrays_of(sae), codes, sae.scale), rtol=1e-4, atol=1e-4)
    sae.k = 2
    assert (np.count_nonzero(sae.encode(x), axis=1) <= 2).all()
    np.testing.assert_allclose(sae.encode(x), hand_encode(arrays_of(sae), x, "topk", k=2, scale=sae.scale),
                               rtol=1e-4, atol=1e-4)
    sae.b_enc = sae.b_enc - 0.8 * np.abs(sae.encode(x)).max()  # rows with fewer than k positive pre-activations
    expected = hand_encode(arrays_of(sae), x, "topk", k=2, scale=sae.scale)
    assert (np.count_nonzero(expected, axis=1) < 2).any()
    np.testing.assert_allclose(sae.encode(x), expected, rtol=1e-4, atol=1e-4)
    assert len(built) == 4
    with pytest.raises(ValueError, match="read-only"):
        sae.W_enc[0, 0] = 1.0


def test_decoder_directions_and_the_feature_table(llama):
    """``decoder_directions()`` is the decoder in the model's units (what ``to_numpy`` used to
    return); ``to_numpy()`` is the feature table, frequencies counted here from the codes."""
    sae = nm.train_sae(llama, texts=TEXTS, step=1, expansion=2, k=4, steps=3, batch_size=64, progress=False)
    np.testing.assert_allclose(sae.decoder_directions(), sae.W_dec.astype(np.float64) / sae.scale, rtol=1e-6)
    table = sae.to_numpy()
    counts = np.zeros(sae.width)
    for indices, values in zip(sae.code_indices, sae.code_values):
        for feature in set(indices[values > 0].tolist()):
            counts[feature] += 1
    np.testing.assert_allclose(table[:, 0], counts / len(sae.code_indices))
    np.testing.assert_allclose(table[:, 1], [sae.code_values[sae.code_indices == f].max(initial=0)
                                             for f in range(sae.width)], rtol=1e-6)
    assert table.shape == (sae.width, 3)


# -- AuxK ----------------------------------------------------------------------------------------------


def _hand_auxk(pre, residual, dead, decoder, variance):
    """sparsify's AuxK written out: the d // 2 largest ReLU'd dead pre-activations rebuild the
    residual; squared error over the variance, times min(num_dead / k_aux, 1)."""
    k_aux = residual.shape[1] // 2
    scale = min(dead.sum() / k_aux, 1.0)
    total = 0.0
    for row in range(len(pre)):
        candidates = [(max(pre[row, f], 0.0), f) for f in np.flatnonzero(dead)]
        chosen = sorted(candidates, reverse=True)[:k_aux]
        rebuilt = sum(value * decoder[f] for value, f in chosen)
        total += float(((residual[row] - rebuilt) ** 2).sum())
    return scale * total / len(pre) / variance


@pytest.mark.parametrize("dead_features", [[0, 2, 3, 7, 9], [4, 8]])
def test_auxk_loss_equals_a_hand_computation(dead_features):
    """Oracle: the loop above. Five dead features (more than k_aux = 3: the largest three count,
    a live feature's larger pre-activation does not, and a row where only two dead ones are
    positive takes a zero for the third) and two (scale 2/3). Fails with the ReLU dropped, the
    scale dropped, live features let in, or another normaliser."""
    rng = np.random.default_rng(4)
    d, width = 6, 10
    weights = {"W_enc": rng.normal(size=(d, width)), "b_enc": rng.normal(size=width),
               "W_dec": rng.normal(size=(width, d)), "b_dec": rng.normal(size=d) + 3.0}
    coder = SparseCoder(weights, k=2)
    pre = rng.normal(size=(4, width)) * 2
    pre[0, 5] = 50.0  # live: never in AuxK
    pre[1, dead_features] = -1.0
    pre[1, dead_features[:2]] = [0.5, 2.0]  # only two dead features positive on this row
    residual = rng.normal(size=(4, d))
    dead = np.zeros(width, bool)
    dead[dead_features] = True
    variance = 1.7
    loss = auxk_loss(coder, torch.tensor(pre, dtype=torch.float32), torch.tensor(residual, dtype=torch.float32),
                     torch.from_numpy(dead), torch.tensor(variance))
    expected = _hand_auxk(pre, residual, dead, weights["W_dec"], variance)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


# -- the content-addressed cache ---------------------------------------------------------------------


def test_the_content_cache_names_entries_by_their_digest_and_keeps_what_is_there(tmp_path, monkeypatch):
    """Oracle: hashlib over the bytes written. The same content twice is one entry (the first
    file kept, not rewritten); other content another entry; a folder is named by the digest its
    caller gives."""
    monkeypatch.setenv("NEURO_MAGICS_CACHE", str(tmp_path))
    first, digest = content_cache.store_file("things", ".bin", lambda path: path.write_bytes(b"abc" * 100))
    assert digest == hashlib.sha256(b"abc" * 100).hexdigest()
    assert first == (tmp_path / "things" / f"{digest[:16]}.bin").resolve() and first.read_bytes() == b"abc" * 100
    inode = first.stat().st_ino
    again, _ = content_cache.store_file("things", ".bin", lambda path: path.write_bytes(b"abc" * 100))
    assert again == first and again.stat().st_ino == inode
    other, other_digest = content_cache.store_file("things", ".bin", lambda path: path.write_bytes(b"abd"))
    assert other.name == hashlib.sha256(b"abd").hexdigest()[:16] + ".bin"
    assert sorted(p.name for p in (tmp_path / "things").iterdir()) == sorted([first.name, other.name])

    def digest_of(folder: Path) -> str:
        inside = folder / "weights"
        return hashlib.sha256(inside.read_bytes()).hexdigest() if inside.is_file() else ""

    folder, folder_digest = content_cache.store_folder("folders", lambda f: (f / "weights").write_bytes(b"w"),
                                                       digest_of, prefix="tiny-")
    assert folder.name == "tiny-" + hashlib.sha256(b"w").hexdigest()[:16] and (folder / "weights").read_bytes() == b"w"
    assert [p.name for p in (tmp_path / "folders").iterdir()] == [folder.name]


# -- results saved before the split ------------------------------------------------------------------


def test_an_sae_saved_before_the_split_loads_in_a_fresh_process_and_reads_the_same():
    """The file was saved by the single-module sae.py (commit 10cd7c1: step 2 of tiny-llama,
    expansion 1, k 3, 4 steps of 64, seed 5). In a fresh process ``nm.load_result`` finds the
    package's result class; its encode equals numpy on the file's own arrays; its training
    config is read from the flat metadata of then."""
    raw = np.load(OLD_RESULT)
    arrays = {name: raw[f"array_{name}"].astype(np.float64) for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    header = json.loads(str(raw["__header__"]))
    x = np.random.default_rng(1).normal(size=(6, arrays["W_enc"].shape[0])).astype(np.float32)
    script = (
        "import json, sys, numpy as np, neuro_magics as nm\n"
        f"sae = nm.load_result({str(OLD_RESULT)!r})\n"
        f"x = np.array({x.tolist()!r}, dtype=np.float32)\n"
        "print(json.dumps({'kind': sae.kind, 'step': sae.step, 'block': sae.block, 'codes': sae.encode(x).tolist(),\n"
        "                  'config': sae.training_config.to_dict()}))\n")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(nm.__file__).parents[1]),
                                                                os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert (seen["kind"], seen["step"], seen["block"]) == ("sae", 2, 2)
    scale = header["fields"]["scale"]
    np.testing.assert_allclose(seen["codes"], hand_encode(arrays, x, "topk", k=3, scale=scale), rtol=1e-4, atol=1e-4)
    assert seen["config"] == SaeTrainingConfig(step=2, block=2, expansion=1, k=3, steps=4, batch_size=64,
                                               seed=5).to_dict()
    assert isinstance(nm.load_result(OLD_RESULT), SparseAutoencoder)
