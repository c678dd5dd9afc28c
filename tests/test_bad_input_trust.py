"""Trust on today's install: bad input and interrupts. Each bad line is one plain UsageError (one
line), raised before any work, and leaves the model bit-identical (logits, program, active
interventions); an interrupt says it was interrupted and keeps what finished."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
import torch
from IPython.core.error import UsageError

import neuro_magics as nm
from neuro_magics.analyses.sae import coder as sae_coder, evaluation as sae_evaluation
from neuro_magics.analyses import tracing
from test_bad_input import ITEMS, TOKENS, assert_unchanged, one_line, state
from tiny_models import tiny_model, tiny_tokenizer

TEXTS = "\n".join(f"the cat {i} sat on the mat while {i * 7} dogs ran home" for i in range(120))


# -- interrupts ----------------------------------------------------------------------------------


def test_edit_auto_interrupted_in_tracing_edits_nothing_and_says_so(shell, tiny_in_shell, monkeypatch, capsys):
    calls = []
    original = tracing._restored_logits

    def stops_on_the_third_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # two batches of the trace finished: part of the map is finite
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(tracing, "_restored_logits", stops_on_the_third_run)
    message = one_line(shell, tiny_in_shell, "Interrupted during causal tracing", "edit",
                       '--prompt "{} lives in" --subject "Anna Smith" --target " Paris" --no-diff')
    assert "nothing was edited" in message and len(calls) == 3
    assert "Interrupted: kept the" in capsys.readouterr().out  # the sweep's own line, once
    assert not tiny_in_shell.interventions


def _interrupt_training_at(monkeypatch, step: int) -> None:
    """KeyboardInterrupt inside Adam step ``step`` (1-based) of fit_topk: steps before it finished."""
    original, calls = sae_coder.SparseCoder.drop_parallel_gradient, []

    def interrupted(self):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(sae_coder.SparseCoder, "drop_parallel_gradient", interrupted)


def test_sae_train_interrupted_keeps_the_finished_steps_and_reads_one_batch(shell, tiny_in_shell, monkeypatch, capsys):
    line = "train --step 1 --expansion 2 --k 4 --steps 6 --batch 64"
    _interrupt_training_at(monkeypatch, 3)
    evaluated = []
    original_evaluate = sae_evaluation.evaluate

    def counting(subject, coder, scale, site, step, texts, **kwargs):
        evaluated.append(len(texts))
        return original_evaluate(subject, coder, scale, site, step, texts, **kwargs)

    monkeypatch.setattr(sae_evaluation, "evaluate", counting)
    interrupted = shell.run_cell_magic("sae", line, TEXTS)
    out = capsys.readouterr().out
    held_out = len(TEXTS.splitlines()[::sae_evaluation.HOLDOUT])
    assert held_out > sae_evaluation.EVAL_BATCH  # the full reading would take several batches
    assert evaluated == [sae_evaluation.EVAL_BATCH]
    assert interrupted.report["interrupted"] and interrupted.report["steps_done"] == 2
    assert f"Interrupted: kept the SAE after 2 of 6 steps; its report reads the first {sae_evaluation.EVAL_BATCH}" in out
    monkeypatch.undo()
    # what finished is what two uninterrupted steps give, bit for bit
    two_steps = shell.run_cell_magic("sae", line.replace("--steps 6", "--steps 2"), TEXTS)
    assert not two_steps.report["interrupted"]
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert np.array_equal(getattr(interrupted, name), getattr(two_steps, name)), name


def test_networks_lesion_is_skipped_after_an_interrupted_capture(shell, tiny_in_shell, monkeypatch, capsys):
    from neuro_magics.analyses import lesion, networks

    original_run_units = networks.run_units

    def first_batch_then_interrupt(subject, work, units, costs, *, on_result, **kwargs):
        compute = work.factory(subject, *work.arguments)
        on_result(units[0], compute(units[0]))
        raise KeyboardInterrupt

    lesions = []
    monkeypatch.setattr(networks, "run_units", first_batch_then_interrupt)
    monkeypatch.setattr(lesion, "network_lesion", lambda *a, **k: lesions.append(1))
    before = state(tiny_in_shell)
    result = shell.run_cell_magic("networks", "--components 2 --lesion", TEXTS)
    assert result.metadata["interrupted"] and not lesions
    out = capsys.readouterr().out
    assert "Interrupted" in out and "the lesion was not run" in out
    assert_unchanged(tiny_in_shell, before)
    assert original_run_units is not networks.run_units


# -- values checked before any work -------------------------------------------------------------


@pytest.mark.parametrize("magic, line, cell", [
    ("project", "--unit text --seed -5", "one text\nanother text\na third text\n"),
    ("project", "--seed 4294967296", "one text\nanother text\na third text\n"),
    ("networks", "--components 2 --seed -1", TEXTS),
    ("sae", "train --step 1 --seed -3", TEXTS),
    ("finetune", "--lora --steps 0 --seed 4294967296", "some text to train on"),
])
def test_a_seed_the_generators_refuse_is_refused_before_any_work(shell, tiny_in_shell, magic, line, cell):
    one_line(shell, tiny_in_shell, "--seed must be a whole number from 0 to 4294967295", magic, line, cell,
             runs_nothing=True)


def test_a_config_transformers_refuses_is_one_line(shell, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    with pytest.raises(UsageError, match=r"config.json transformers refuses: The hidden size \(8\)") as info:
        shell.run_line_magic("load_model", f"{tmp_path} --device cpu")
    assert type(info.value) is UsageError and "\n" not in str(info.value)
    assert shell.neuro_magics_session.subject is None


def test_a_folder_without_weights_says_the_weights_are_missing(shell, tiny_in_shell, tmp_path):
    tiny_model("llama").config.save_pretrained(tmp_path)  # a config, no weights, no tokenizer
    one_line(shell, tiny_in_shell, "has a config.json but no weights", "diff_models", f"current {tmp_path}",
             runs_nothing=True)
    with pytest.raises(nm.NeuroMagicsError, match="no weights"):
        nm.load_model(str(tmp_path), device="cpu")


# -- output names --------------------------------------------------------------------------------


@pytest.mark.parametrize("magic, line, cell", [
    ("scan", "-o for", "hello"),
    ("project", "-o def", "a b\nc d\ne f\n"),
    ("attribute", "-o class hi", None),
    ("brainscan", "--layers 3:4 -o lambda", ITEMS),
    ("sae", "train --step 1 -o None", TEXTS),
])
def test_a_keyword_is_not_an_output_name(shell, tiny_in_shell, magic, line, cell):
    one_line(shell, tiny_in_shell, "not a valid Python name", magic, line, cell, runs_nothing=True)


@pytest.mark.parametrize("magic, line, cell", [
    ("scan", "-o m", "hello"),
    ("brainscan", "--layers 3:4 -o m", ITEMS),
    ("sae", "train --step 1 -o m", TEXTS),
    ("networks", "--components 2 -o m", TEXTS),
    ("checkup", "--max-texts 2 -o m", None),
])
def test_an_output_name_holding_the_model_is_refused(shell, tiny_in_shell, magic, line, cell):
    shell.user_ns["m"] = tiny_in_shell
    one_line(shell, tiny_in_shell, "'m' holds the loaded model", magic, line, cell, runs_nothing=True)
    assert shell.user_ns["m"] is tiny_in_shell


def test_networks_refuses_a_lesion_name_holding_the_model(shell, tiny_in_shell):
    shell.user_ns["nets_lesion"] = tiny_in_shell
    one_line(shell, tiny_in_shell, "holds the loaded model", "networks", "--components 2 --lesion -o nets", TEXTS,
             runs_nothing=True)
    assert shell.user_ns["nets_lesion"] is tiny_in_shell


# -- paths, ranges and combinations --------------------------------------------------------------


def test_resume_reads_the_file_as_named_and_keeps_saving_there(shell, tiny_in_shell, tmp_path):
    partial = nm.brainscan(tiny_in_shell, items=ITEMS, layers="2:4", progress=False)
    partial.item_scores[2, 3] = partial.scores[2, 3] = np.nan  # one cell left to do
    partial.save(tmp_path / "scan.npz")
    named = tmp_path / "binary.bin"
    shutil.move(tmp_path / "scan.npz", named)
    result = shell.run_cell_magic("brainscan", f"--layers 2:4 --resume {named}", ITEMS)
    assert result.complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["binary.bin"]  # no binary.bin.npz beside it
    assert nm.load_result(named).n_finished == result.n_finished == 3


@pytest.mark.parametrize("magic, line, cell", [
    ("duplicate_layers", "-1:3 --no-diff", None),
    ("duplicate_layers", "--program -1:3 --no-diff", None),
    ("drop_layers", "-1 --no-diff", None),
    ("brainscan", "--layers -1:3", ITEMS),
    ("scan", "--layers -2:1", "hello"),
])
def test_a_negative_range_says_what_is_allowed(shell, tiny_in_shell, magic, line, cell):
    message = one_line(shell, tiny_in_shell, "Cannot read '-", magic, line, cell, runs_nothing=True)
    assert "negative" in message and "unrecognized" not in message


@pytest.mark.parametrize("line, match", [
    ("--method steps --drop-steps 1 --sparsity 0.3", "--sparsity is for wanda and magnitude"),
    ("--method magnitude --corpus builtin", "--corpus is for wanda and steps"),
    ("--sparsity 0.3", "--sparsity needs --method"),
    ("--reset --sparsity 0.3", "--sparsity does not go with --reset"),
])
def test_prune_refuses_an_option_its_method_ignores(shell, tiny_in_shell, line, match):
    one_line(shell, tiny_in_shell, match, "prune", line, runs_nothing=True)


def test_prune_in_python_refuses_sparsity_with_layers(tiny_in_shell):
    with pytest.raises(nm.NeuroMagicsError, match="--sparsity is for wanda and magnitude"):
        nm.prune(tiny_in_shell, "layers", 0.3, drop=1)


@pytest.mark.parametrize("record", [{"positive": 1, "negative": 2}, {"positive": "warm", "negative": 2.5},
                                    {"positive": "", "negative": "cold"}, {"positive": None, "negative": "cold"}])
def test_contrast_pairs_must_be_texts(shell, tiny_in_shell, tmp_path, record):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"positive": "hot", "negative": "cold"}) + "\n" + json.dumps(record) + "\n")
    message = one_line(shell, tiny_in_shell, ":2: the (positive|negative) side must be a non-empty text", "steer",
                       f"--pairs {pairs} --layer 1 --coef 2 --no-diff", runs_nothing=True)
    assert str(pairs) in message
    with pytest.raises(nm.NeuroMagicsError, match="Pair 1: the positive side"):
        nm.steer(tiny_in_shell, layer=1, coef=2.0, pairs=[(1, "cold")])


def test_a_probe_text_must_be_a_text(tiny_in_shell, tmp_path):
    data = tmp_path / "probe.jsonl"
    data.write_text("\n".join(json.dumps({"text": text, "label": label})
                              for text, label in [("good day", 1), (7, 0), ("bad day", 0), ("fine day", 1)]))
    with pytest.raises(nm.NeuroMagicsError, match=r"probe.jsonl:2: \"text\" must be a non-empty text"):
        nm.probe(tiny_in_shell, str(data), cv=2, progress=False)
    with pytest.raises(nm.NeuroMagicsError, match="non-empty string, not 7"):
        nm.probe(tiny_in_shell, [("good day", "a"), (7, "b")], cv=2, progress=False)


def _full_rank_of_default_targets(subject) -> int:
    """min(in, out) over the q_proj and v_proj weights (peft's default Llama targets), read here."""
    return min(min(module.weight.shape) for name, module in subject.model.named_modules()
               if name.endswith(("q_proj", "v_proj")))


def test_lora_rank_above_the_targeted_matrices_is_refused(shell, tiny_in_shell):
    limit = _full_rank_of_default_targets(tiny_in_shell)
    assert limit == 16  # v_proj of the tiny Llama: 32 in, 2 kv heads x 8 = 16 out
    one_line(shell, tiny_in_shell, f"--rank {limit + 1} is more than .*v_proj can hold .*= {limit}", "finetune",
             f"--lora --rank {limit + 1} --steps 0", "some text to train on", runs_nothing=True)
    shell.run_cell_magic("finetune", f"--lora --rank {limit} --steps 0", "some text to train on")
    assert [i.kind for i in tiny_in_shell.interventions] == ["lora"]


@pytest.mark.parametrize("magic, line", [("networks", "--components 2"), ("sae", "train --step 1"),
                                         ("brainscan", "--layers 3:4")])
@pytest.mark.parametrize("cell", ["\n\n", "   \n\t\n"])  # IPython itself refuses a cell of nothing at all
def test_an_empty_cell_is_not_no_cell(shell, tiny_in_shell, magic, line, cell):
    one_line(shell, tiny_in_shell, "The cell is empty", magic, line, cell, runs_nothing=True)


def test_a_file_that_is_not_npz_says_so(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"a": 1}')
    with pytest.raises(nm.NeuroMagicsError, match="it is not a .npz file"):
        nm.load_result(path)


# -- whole numbers: one rule -----------------------------------------------------------------------


ARABIC_THREE, ARABIC_ZERO = "\u0663", "\u0660"


def test_every_whole_number_option_reads_ascii_digits_only(shell):
    """Structural: no magic option is read by plain int (which takes other scripts' digits)."""
    from neuro_magics.magics import magic_classes
    from neuro_magics.magics.session import integer

    seen = 0
    for magic_class in magic_classes():
        for function in vars(magic_class).values():
            parser = getattr(function, "parser", None)
            for action in getattr(parser, "_actions", ()):
                assert action.type is not int, f"{function.__name__} {action.option_strings}"
                seen += action.type is integer
    assert seen > 30
    assert integer("12") == 12 and integer("-3") == -3
    for text in (ARABIC_THREE, "\u00b2", "1_000", "", "1.0"):
        with pytest.raises(argparse.ArgumentTypeError):
            integer(text)


@pytest.mark.parametrize("magic, line, cell, match", [
    ("duplicate_layers", f"1:3 --times {ARABIC_THREE} --no-diff", None, "digits 0-9"),
    ("patch", f"--clean 'a b' --corrupt 'a c' --answers b c --top-k {ARABIC_THREE}", None, "digits 0-9"),
    ("sae", f"train --step {ARABIC_THREE}", TEXTS, "digits 0-9"),
    ("brainscan", f"--layers 3:4 --limit {ARABIC_THREE}", ITEMS, "digits 0-9"),
    ("edit", f'--prompt "{{}} x" --subject a --target b --layer {ARABIC_THREE}', None, "digits 0-9"),
    ("project", f"--clusters {ARABIC_THREE}", "a b\nc d\ne f\n", "digits 0-9"),
    ("generate", f"--max-new-tokens {ARABIC_THREE} hi", None, "digits 0-9"),
    ("diff_models", f"current original --max-tokens {ARABIC_THREE}", None, "digits 0-9"),
    ("drop_layers", f"{ARABIC_THREE} --no-diff", None, "Cannot read"),
    ("duplicate_layers", f"{ARABIC_ZERO}:2 --no-diff", None, "Cannot read"),
    ("scan", f"--layers {ARABIC_ZERO}:2", "hello", "Cannot read"),
    ("attribute", f"--spans 1:{ARABIC_THREE} hi there", None, "Cannot read"),
    ("ablate", f"--heads {ARABIC_THREE}.1 --no-diff", None, "Cannot read"),
])
def test_other_scripts_digits_are_refused_by_every_option(shell, tiny_in_shell, magic, line, cell, match):
    one_line(shell, tiny_in_shell, match, magic, line, cell, runs_nothing=True)


# -- SAE: undo an ablation, name a steer, refuse what an action ignores ------------------------------


@pytest.fixture
def tiny_sae(shell, tiny_in_shell):
    return shell.run_cell_magic("sae", "train --step 1 --expansion 2 --k 4 --steps 3 --batch 64 -o s", TEXTS)


def test_sae_ablate_reset_restores_the_model_bit_for_bit(shell, tiny_in_shell, tiny_sae, capsys):
    before = state(tiny_in_shell)
    with torch.no_grad():  # block 1's output on TOKENS, read from HF: its strongest feature changes the logits
        site = tiny_in_shell.model(TOKENS, use_cache=False, output_hidden_states=True).hidden_states[2]
    codes = np.asarray(tiny_sae.encode(site[0].float()))
    strongest = int(codes.sum(0).argmax())
    assert codes[:, strongest].max() > 0
    shell.run_line_magic("sae", f"ablate --feature {strongest}")
    with torch.no_grad():
        assert not torch.equal(tiny_in_shell.model(TOKENS, use_cache=False).logits, before[0])
    shell.run_line_magic("steer", "--pos abc --neg xyz --layer 2 --coef 1 --no-diff")  # another kind stays
    shell.run_line_magic("sae", "ablate --reset")
    assert "Removed 1 SAE feature ablation(s)." in capsys.readouterr().out
    assert [i.kind for i in tiny_in_shell.interventions] == ["steer"]
    shell.run_line_magic("steer", "--reset")
    assert_unchanged(tiny_in_shell, before)
    one_line(shell, tiny_in_shell, "give it no feature", "sae", "ablate --reset --feature 2")


def test_an_sae_steer_names_its_sae_and_feature_in_model(shell, tiny_in_shell, tiny_sae, tmp_path):
    shell.run_line_magic("sae", "steer --feature 5 --coef 2")
    description = tiny_in_shell.interventions[-1].description
    assert "SAE feature 5 of resid_post at block 1" in description and "a given vector" not in description
    assert "SAE feature 5" in repr(shell.run_line_magic("model", ""))
    shell.run_line_magic("steer", "--reset")
    tiny_sae.save(tmp_path / "mine.npz")
    shell.run_line_magic("sae", "steer --feature 6 --coef 2")
    assert "SAE feature 6 of resid_post at block 1, mine.npz" in tiny_in_shell.interventions[-1].description


@pytest.mark.parametrize("line, match", [
    ("show --steps 5", "--steps is for %sae train, not %sae show"),
    ("steer --feature 1 --coef 2 --step 3", "--step is for %sae train or %sae load, not %sae steer"),
    ("ablate --feature 1 --coef 2", "--coef is for %sae steer, not %sae ablate"),
    ("show --reset", "--reset is for %sae ablate, not %sae show"),
    ("train --step 1 --feature 3", "--feature is for %sae show or %sae steer or %sae ablate, not %sae train"),
])
def test_sae_refuses_an_option_its_action_ignores(shell, tiny_in_shell, tiny_sae, line, match):
    one_line(shell, tiny_in_shell, match, "sae", line, runs_nothing=True)


@pytest.mark.parametrize("magic, line, match", [
    ("edit", "--undo --layer 3", "--undo takes no other options"),
    ("edit", "--list --no-diff", "--list takes no other options"),
    ("ablate", "--reset --mode mean", "--reset takes no other options"),
    ("steer", "--reset --no-diff", "--reset takes no other options"),
    ("weights", "--max-new-tokens 3", "--max-new-tokens goes with --quantize"),
])
def test_an_action_refuses_options_it_would_ignore(shell, tiny_in_shell, magic, line, match):
    one_line(shell, tiny_in_shell, match, magic, line, runs_nothing=True)


def test_options_given_tells_a_written_default_from_an_absent_one(shell):
    from neuro_magics.magics.session import parse_arguments

    magic = shell.magics_manager.magics["line"]["prune"]
    assert parse_arguments(magic, "--method wanda --corpus builtin").options_given == {"method", "corpus"}
    assert parse_arguments(magic, "--method wanda").options_given == {"method"}
    edit = shell.magics_manager.magics["line"]["edit"]
    assert parse_arguments(edit, "--paraphrase x --undo").options_given == {"paraphrase", "undo"}


def test_a_magic_line_is_parsed_once_with_argparses_own_defaults(shell):
    """One parse: each written option's type runs once (twice before, when the line was parsed again
    to tell written options from defaults); an absent option gets exactly the value plain argparse
    gives it, a string default converted by its type, appended options left as argparse leaves them."""
    import argparse

    from IPython.core.magic_arguments import argument, magic_arguments

    from neuro_magics.magics.session import parse_arguments

    calls = []

    def counted(text: str) -> int:
        calls.append(text)
        return int(text) * 10

    @magic_arguments()
    @argument("--size", type=counted, default="7")
    @argument("--scale", type=float, default=0.5)
    @argument("--flag", action="store_true")
    @argument("--tag", action="append")
    @argument("name", nargs="?")
    def fake(line):
        """A magic for the test."""

    args = parse_arguments(fake, "--size 3 --tag a --tag b x")
    assert calls == ["3"] and args.size == 30 and args.tag == ["a", "b"] and args.name == "x"
    assert args.options_given == {"size", "tag"} and args.scale == 0.5 and args.flag is False
    calls.clear()
    bare = parse_arguments(fake, "")
    plain = fake.parser.parse_args([])
    assert vars(bare) == {**vars(plain), "options_given": frozenset()} and bare.size == 70
    assert calls == ["7", "7"]  # the string default, converted once by us and once by plain argparse
    prune = shell.magics_manager.magics["line"]["prune"]
    assert vars(parse_arguments(prune, "--method wanda")) == {
        **vars(prune.parser.parse_args(["--method", "wanda"])), "options_given": frozenset({"method"})}
    assert isinstance(bare, argparse.Namespace)


@pytest.mark.parametrize("line", ["sae ablate --reset", "prune --reset", "ablate --reset", "steer --reset"])
def test_a_reset_with_nothing_installed_says_so(shell, tiny_in_shell, capsys, line):
    shell.run_line_magic(*line.split(" ", 1))
    out = capsys.readouterr().out
    assert "nothing to re" in out and " 0 " not in out
    assert tiny_in_shell.interventions == ()
