"""%duplicate_layers, %drop_layers, %reset_layers, %generate on a tiny model in a real IPython shell."""

from __future__ import annotations

import pytest
import torch
import yaml
from IPython.core.error import UsageError
from transformers import AutoModelForCausalLM

from neuro_magics.analyses.diffing import DiffResult
from neuro_magics.analyses.generation import GenerationResult

TOKENS = torch.tensor([[5, 17, 33, 8, 61, 9, 40]])
QUICK = "--prompt 'hello there' --max-new-tokens 3"


def _logits(subject):
    with torch.no_grad():
        return subject.model(TOKENS, use_cache=False).logits


def test_duplicate_drop_and_reset_compose(shell, tiny_in_shell, capsys):
    result = shell.run_line_magic("duplicate_layers", f"1:3 {QUICK}")
    assert isinstance(result, DiffResult) and result.prompts == ["hello there"]
    assert tiny_in_shell.program.steps == (0, 1, 2, 1, 2, 3)
    assert (result.before.label, result.after.label) == ("original", "program 0-2,1-3")
    assert "positions 3-5 -> blocks 1-3" in capsys.readouterr().out
    # positions of the current program: position 3 is the second run of block 1
    assert shell.run_line_magic("drop_layers", "3 --no-diff") is None
    assert tiny_in_shell.program.steps == (0, 1, 2, 2, 3)
    shell.run_line_magic("duplicate_layers", "3-4 --times 2 --no-diff")  # inclusive spelling of 3:5
    assert tiny_in_shell.program.steps == (0, 1, 2, 2, 3, 2, 3, 2, 3)
    assert shell.run_line_magic("duplicate_layers", "--show") is None
    assert "0-2,2-3,2-3,2-3 (9 steps of 4 layers; positions 0-2 -> blocks 0-2; positions 3-4 -> blocks 2-3" in (
        capsys.readouterr().out)
    shell.run_line_magic("duplicate_layers", "--program '0-1,1:4' --no-diff")
    assert tiny_in_shell.program.steps == (0, 1, 1, 2, 3)
    assert shell.run_line_magic("reset_layers", "") is None
    assert tiny_in_shell.program.is_identity
    shell.run_line_magic("reset_layers", "")
    said = capsys.readouterr().out
    assert "Already the original program" in said and ".)." not in said and "steps))." in said


def test_reset_can_show_its_diff_and_prompts_come_from_a_variable(shell, tiny_in_shell):
    shell.user_ns["my_prompts"] = ["abc", "The cat"]
    shell.run_line_magic("drop_layers", "1,2 --no-diff")
    result = shell.run_line_magic("reset_layers", "--diff --prompts my_prompts --max-new-tokens 2")
    assert result.prompts == ["abc", "The cat"]
    assert (result.before.depth, result.after.depth) == (2, 4)
    assert tiny_in_shell.program.is_identity


def test_save_and_mergekit_export_the_new_program(shell, tiny_in_shell, tmp_path):
    folder, recipe = tmp_path / "rys", tmp_path / "rys.yaml"
    shell.run_line_magic("duplicate_layers", f"1:3 --no-diff --save {folder} --mergekit {recipe}")
    saved = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        torch.testing.assert_close(saved(TOKENS, use_cache=False).logits, _logits(tiny_in_shell), rtol=0, atol=1e-5)
    ranges = [s["sources"][0]["layer_range"] for s in yaml.safe_load(recipe.read_text())["slices"]]
    assert ranges == [[0, 3], [1, 4]]
    # --show with an export writes the current program without changing it
    again = tmp_path / "again.yaml"
    shell.run_line_magic("duplicate_layers", f"--show --mergekit {again}")
    assert again.read_text() == recipe.read_text()


BAD_LINES = [
    ("duplicate_layers", "3:3", "I < J"),
    ("duplicate_layers", "4:2", "I < J"),
    ("duplicate_layers", "0:7", "J <= 6"),
    ("duplicate_layers", "1:2 --times 0", "at least 1"),
    ("duplicate_layers", "0:6 --times 7", "over the limit"),
    ("duplicate_layers", "1:2 --times two", "invalid int"),
    ("duplicate_layers", "", "Give a block"),
    ("duplicate_layers", "--times 2", "goes with a block"),
    ("duplicate_layers", "1:2 --program 0-3", "not both"),
    ("duplicate_layers", "--show 1:2", "on its own"),
    ("duplicate_layers", "1-", "Cannot read"),
    ("duplicate_layers", "--program ''", "Empty"),
    ("duplicate_layers", "--program 0-3,,1", "Cannot read"),
    ("duplicate_layers", "--program 0-4", "blocks 0-3"),
    ("duplicate_layers", f"--program {','.join(['0-3'] * 9)}", "limit"),
    ("duplicate_layers", "1:2 --prompts nowhere", "no variable"),
    ("duplicate_layers", "1:2 --max-new-tokens 0", "at least 1"),
    ("duplicate_layers", "1:2 --bogus", "unrecognized"),
    ("drop_layers", "", "required"),
    ("drop_layers", "0:6", "every block"),
    ("drop_layers", "6", "out of range"),
    ("drop_layers", "2:1", "backwards"),
    ("drop_layers", "a", "Cannot read"),
    ("reset_layers", "--max-new-tokens x", "invalid int"),
    ("generate", "", "Empty prompt"),
    ("generate", "--temperature 0.7 hi", "add --sample"),
    ("generate", "--sample --temperature -1 hi", "above 0"),
    ("generate", "--max-new-tokens 0 hi", "at least 1"),
    ("generate", "--max-new-tokens 500 hi", "context"),
    ("generate", "--chat hi", "no chat template"),
    ("generate", "--frobnicate hi", "unrecognized"),
]


@pytest.mark.parametrize("magic, line, message", BAD_LINES)
def test_bad_input_is_one_line_and_leaves_the_model_exactly_as_it_was(shell, tiny_in_shell, tmp_path, magic, line, message):
    tiny_in_shell.set_program((0, 1, 2, 1, 2, 3))
    program, logits = tiny_in_shell.program, _logits(tiny_in_shell)
    with pytest.raises(UsageError, match=message) as info:
        shell.run_line_magic(magic, line)
    assert "\n" not in str(info.value)
    assert type(info.value) is UsageError  # a subclass would print a traceback
    assert tiny_in_shell.program == program
    assert torch.equal(_logits(tiny_in_shell), logits)


def test_exports_are_checked_before_the_model_changes(shell, tiny_in_shell, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(UsageError, match="already exists and is not empty"):
        shell.run_line_magic("duplicate_layers", f"1:3 --no-diff --save {tmp_path / 'taken'}")
    with pytest.raises(UsageError, match="lies under the file"):
        shell.run_line_magic("drop_layers", f"1 --no-diff --mergekit {tmp_path / 'taken' / 'x' / 'y.yaml'}")
    assert tiny_in_shell.program.is_identity


def test_no_model_loaded(shell):
    shell.neuro_magics_session.subject = None
    for magic, line in (("duplicate_layers", "1:2"), ("drop_layers", "1"), ("reset_layers", ""), ("generate", "hi")):
        with pytest.raises(UsageError, match="No model is loaded"):
            shell.run_line_magic(magic, line)


def test_generate_line_and_cell(shell, tiny_in_shell):
    text = shell.run_line_magic("generate", "--max-new-tokens 4 Don't  stop")
    assert isinstance(text, GenerationResult) and text.text == str(text)
    assert text.prompt == "Don't  stop" and text.n_new_tokens == 4
    assert text == tiny_in_shell.generate("Don't  stop", max_new_tokens=4)
    cell = shell.run_cell_magic("generate", "--max-new-tokens 4", "Don't  stop\n")
    assert cell == text
    assert shell.run_line_magic("generate", "--max-new-tokens 4 -- --dashes") == tiny_in_shell.generate("--dashes", max_new_tokens=4)
    with pytest.raises(UsageError, match="not both"):
        shell.run_cell_magic("generate", "prompt", "cell")


def test_generate_runs_the_current_program_with_a_correct_kv_cache(shell, tiny_in_shell):
    shell.run_line_magic("duplicate_layers", "1:3 --no-diff")
    text = shell.run_line_magic("generate", "--max-new-tokens 6 hello")
    sequence = tiny_in_shell.encode("hello")["input_ids"]
    with torch.no_grad():
        for _ in range(6):
            sequence = torch.cat([sequence, tiny_in_shell.model(sequence, use_cache=False).logits[:, -1:].argmax(-1)], dim=1)
    assert text == tiny_in_shell.tokenizer.decode(sequence[0, -6:], skip_special_tokens=True)
    assert text.program == "0-2,1-3"


def test_sampling_with_a_seed_is_reproducible_and_leaves_the_global_rng_alone(shell, tiny_in_shell):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = shell.run_line_magic("generate", "--sample --seed 7 --temperature 1.5 --max-new-tokens 12 abc")
    second = shell.run_line_magic("generate", "--sample --seed 7 --temperature 1.5 --max-new-tokens 12 abc")
    assert first == second and first.settings["temperature"] == 1.5
    assert torch.equal(torch.rand(1), expected_next)
    other = shell.run_line_magic("generate", "--sample --seed 8 --temperature 1.5 --max-new-tokens 12 abc")
    greedy = shell.run_line_magic("generate", "--max-new-tokens 12 abc")
    assert len({str(first), str(other), str(greedy)}) == 3


def test_chat_uses_the_template(shell, tiny_in_shell):
    tiny_in_shell.tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<bot>{% endif %}"
    )
    text = shell.run_cell_magic("generate", "--chat --max-new-tokens 3", "hi there\n")
    assert text.prompt == "<user>hi there<bot>"
    assert text == tiny_in_shell.generate("<user>hi there<bot>", max_new_tokens=3)


def test_help_lists_the_options(shell):
    magics = shell.magics_manager.magics["line"]
    help_text = magics["duplicate_layers"].__doc__
    for option in ("I:J", "--times", "--program", "--show", "--save", "--mergekit", "--prompt", "--no-diff"):
        assert option in help_text
    assert "half-open" in help_text and "inclusive" in help_text
    assert "--sample" in magics["generate"].__doc__ and "--chat" in magics["generate"].__doc__
    assert "positions" in magics["drop_layers"].__doc__
