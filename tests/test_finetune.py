"""%finetune: LoRA adapters as hooked interventions (ORACLES.md rows 30-31).

Oracles: peft's own LoRA (``get_peft_model`` on a deepcopy, with our A and B copied into its
``lora_A`` / ``lora_B``; ``PeftModel.from_pretrained`` of our folder; peft's ``save_pretrained``
loaded by us); the model's logits and every parameter before the fine-tune (bit-identical);
a hand merge ``W + alpha / r * B @ A`` on a deepcopy; a fine-tune of k steps run without
interruption (what an interrupted one must equal).
"""

from __future__ import annotations

import copy
import json

import numpy as np

import pytest
import torch
from IPython.core.error import UsageError
from tiny_models import tiny_model, tiny_tokenizer

import neuro_magics as nm
from neuro_magics.analyses import finetune as ft
from neuro_magics.core.adapters import weight_matrix
from neuro_magics.core.interventions import rebuild

TEXT = "The quick brown fox jumps over the lazy dog. " * 12


@pytest.fixture(autouse=True)
def adapter_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURO_MAGICS_CACHE", str(tmp_path / "cache"))


def llama() -> nm.Subject:
    return nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")


def random_adapter(subject: nm.Subject, rank: int = 4, alpha: float = 8.0, targets=None, seed: int = 3):
    """An adapter with random A and B (B non-zero, unlike a fresh one), cached to a file."""
    generator = torch.Generator().manual_seed(seed)
    modules = subject.block_matrices()
    A, B = {}, {}
    for name in targets or ft.resolve_targets(subject, None):
        out_features, in_features = weight_matrix(modules[name]).shape
        A[name] = torch.randn(rank, in_features, generator=generator) * 0.3
        B[name] = torch.randn(out_features, rank, generator=generator) * 0.3
    adapter = ft.LoraAdapter(rank=rank, alpha=alpha, A=A, B=B, base_model=subject.name)
    adapter.cache(subject)
    return adapter


def parameters(subject: nm.Subject) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in subject.model.named_parameters()}


def assert_parameters_equal(subject: nm.Subject, before: dict[str, torch.Tensor]) -> None:
    after = dict(subject.model.named_parameters())
    assert after.keys() == before.keys()
    for name, value in before.items():
        assert torch.equal(after[name].detach(), value), name


def peft_oracle(subject: nm.Subject, adapter: ft.LoraAdapter):
    """peft's own LoRA on a deepcopy of the model, with our A and B copied in by module path."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=adapter.rank, lora_alpha=adapter.alpha, lora_dropout=0.0,
                        target_modules=sorted({name.split(".", 1)[1] for name in adapter.targets}))
    model = get_peft_model(copy.deepcopy(subject.model), config)
    with torch.no_grad():
        for name in adapter.targets:
            module = model.base_model.model.get_submodule(ft.module_path(subject, name))
            module.lora_A["default"].weight.copy_(adapter.A[name])
            module.lora_B["default"].weight.copy_(adapter.B[name])
    return model.eval()


def test_hooked_lora_equals_peft_on_every_family(tiny, token_ids):
    """Oracle: peft's get_peft_model on a deepcopy with the same A/B (fails with the scaling
    alpha / r left out, or the hook on the module's input)."""
    adapter = random_adapter(tiny)
    with torch.no_grad():
        base = tiny.model(token_ids).logits
        expected = peft_oracle(tiny, adapter)(input_ids=token_ids).logits
        intervention = ft.adapter_intervention(tiny, adapter).install(tiny)
        got = tiny.model(token_ids).logits
    assert (expected - base).abs().max() > 1e-3  # the adapter does something
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert tiny.interventions == (intervention,)
    assert "LoRA r=4" in repr(tiny)


def test_our_folder_loads_in_peft_and_peft_folders_load_here(tmp_path, token_ids):
    """Oracle: PeftModel.from_pretrained of our saved folder; peft's save_pretrained of a random
    LoRA (init_lora_weights=False) loaded by nm.load_adapter (fails with A and B swapped)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    subject = llama()
    adapter = random_adapter(subject)
    ft.adapter_intervention(subject, adapter).install(subject)
    with torch.no_grad():
        ours = subject.model(token_ids).logits
        folder = nm.save_adapter(subject, tmp_path / "ours")
        nm.remove_adapters(subject)
        peft_model = PeftModel.from_pretrained(copy.deepcopy(subject.model), str(folder)).eval()
        torch.testing.assert_close(peft_model(input_ids=token_ids).logits, ours, atol=1e-6, rtol=1e-5)

        trained = get_peft_model(copy.deepcopy(subject.model), LoraConfig(
            r=2, lora_alpha=5, target_modules=["o_proj", "down_proj"], init_lora_weights=False)).eval()
        trained.save_pretrained(str(tmp_path / "theirs"))
        theirs = trained(input_ids=token_ids).logits
        loaded = nm.load_adapter(subject, tmp_path / "theirs")
        torch.testing.assert_close(subject.model(token_ids).logits, theirs, atol=1e-6, rtol=1e-5)
    assert loaded.adapter.rank == 2 and len(loaded.adapter.targets) == 8


def test_spec_rebuilds_the_same_adapter_and_refuses_a_changed_file(token_ids):
    """Oracle: the installed adapter's logits; the rebuilt one from the recorded spec equals them."""
    subject = llama()
    result = nm.finetune(subject, TEXT, steps=3, lr=1e-2, context=32, progress=False)
    spec = subject.interventions[0].spec
    assert spec["arguments"] == {"adapter": result.adapter_path, "sha256": result.sha256}
    with torch.no_grad():
        installed = subject.model(token_ids).logits
        nm.remove_adapters(subject)
        rebuild(subject, spec).install(subject)
        assert torch.equal(subject.model(token_ids).logits, installed)
    with open(f"{result.adapter_path}/{ft.WEIGHTS_FILE}", "r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x00\x80\x3f")
    with pytest.raises(nm.NeuroMagicsError, match="changed since"):
        rebuild(subject, spec)


def test_zero_steps_change_nothing(token_ids):
    """Oracle: the logits before (bit-identical: B starts at zero)."""
    subject = llama()
    with torch.no_grad():
        before = subject.model(token_ids).logits
    result = nm.finetune(subject, TEXT, steps=0, progress=False)
    assert [i.kind for i in subject.interventions] == ["lora"] and result.steps_done == 0
    with torch.no_grad():
        assert torch.equal(subject.model(token_ids).logits, before)


def test_remove_and_reset_after_a_finetune_are_bit_identical(token_ids):
    """Oracle: every parameter and the logits before; requires_grad as the user left it."""
    subject = llama()
    subject.model.lm_head.weight.requires_grad_(False)  # the user's choice must come back too
    before, grads = parameters(subject), {n: p.requires_grad for n, p in subject.model.named_parameters()}
    with torch.no_grad():
        logits = subject.model(token_ids).logits
    result = nm.finetune(subject, TEXT, steps=4, lr=1e-2, context=32, progress=False)
    assert result.loss.shape == (4,)
    assert_parameters_equal(subject, before)  # hooks only: the weights never moved
    assert {n: p.requires_grad for n, p in subject.model.named_parameters()} == grads
    with torch.no_grad():
        assert not torch.equal(subject.model(token_ids).logits, logits)
        nm.reset_interventions(subject)
        assert torch.equal(subject.model(token_ids).logits, logits)


def test_merge_matches_the_hooks_and_unmerge_is_bit_identical(token_ids):
    """Oracle: a hand merge W + alpha / r * B @ A on a deepcopy; the parameters before the merge
    (fails with the merge's delta transposed, or unmerge subtracting instead of restoring)."""
    subject = llama()
    adapter = random_adapter(subject)
    hand = copy.deepcopy(subject.model)  # before installing: a deepcopy would copy the hooks too
    ft.adapter_intervention(subject, adapter).install(subject)
    with torch.no_grad():
        for name in adapter.targets:
            weight_matrix(hand.get_submodule(ft.module_path(subject, name))).add_(
                adapter.alpha / adapter.rank * adapter.B[name] @ adapter.A[name])
        hooked = subject.model(token_ids).logits
    before = parameters(subject)
    assert nm.merge_adapters(subject) == 1
    assert [i.kind for i in subject.interventions] == ["lora_merged"]
    with torch.no_grad():
        merged = subject.model(token_ids).logits
        by_hand = hand(token_ids).logits
    for name, module in subject.block_matrices().items():
        expected = weight_matrix(hand.get_submodule(ft.module_path(subject, name)))
        assert torch.equal(weight_matrix(module), expected), name
    torch.testing.assert_close(merged, by_hand, atol=0, rtol=0)
    torch.testing.assert_close(merged, hooked, atol=1e-5, rtol=1e-5)
    assert nm.unmerge_adapters(subject) == 1
    assert_parameters_equal(subject, before)
    with torch.no_grad():
        assert torch.equal(subject.model(token_ids).logits, hooked)


def test_off_on_and_remove(token_ids):
    """Oracle: the logits with and without the adapter, bit for bit."""
    subject = llama()
    with torch.no_grad():
        base = subject.model(token_ids).logits
    ft.adapter_intervention(subject, random_adapter(subject)).install(subject)
    nm.merge_adapters(subject)
    with torch.no_grad():
        on = subject.model(token_ids).logits
    assert nm.adapters_off(subject) == 1 and subject.interventions == ()
    with torch.no_grad():
        assert torch.equal(subject.model(token_ids).logits, base)
    assert nm.adapters_on(subject) == 1 and subject.interventions[0].kind == "lora_merged"
    with torch.no_grad():
        assert torch.equal(subject.model(token_ids).logits, on)
    nm.adapters_off(subject)
    assert nm.remove_adapters(subject) == 1 and nm.adapters_on(subject) == 0
    with torch.no_grad():
        assert torch.equal(subject.model(token_ids).logits, base)


def test_interrupted_finetune_keeps_whole_steps_or_nothing(token_ids, monkeypatch):
    """Oracle: an uninterrupted fine-tune of k steps with the same seed. Ctrl-C after step 3, inside
    step 3's forward, or right after step 3's update (before it is recorded) leaves exactly the
    adapter of the whole steps (3, 2, 2); Ctrl-C inside the first step leaves no adapter and the
    model bit-identical (fails when the live A/B of the broken step are installed)."""
    def run(steps: int, **kwargs):
        subject = llama()
        result = nm.finetune(subject, TEXT, steps=steps, lr=1e-2, context=32, batch_size=2, seed=5,
                             progress=False, **kwargs)
        return subject, result

    def interrupt_after(k):
        def on_step(step, loss):
            if step == k:
                raise KeyboardInterrupt
        return on_step

    adamw_step = torch.optim.AdamW.step

    def interrupted_update(self, *args, **kwargs):  # the third update lands, then Ctrl-C
        adamw_step(self, *args, **kwargs)
        updates["n"] += 1
        if updates["n"] == 3:
            raise KeyboardInterrupt

    for steps_kept, option in ((3, {"on_step": interrupt_after(3)}), (2, "update"), (2, None), (0, None)):
        reference_subject, reference = run(steps_kept)
        if option == "update":
            updates = {"n": 0}
            with monkeypatch.context() as patch:
                patch.setattr(torch.optim.AdamW, "step", interrupted_update)
                subject, result = run(10)
        elif option is None:  # Ctrl-C inside the forward of step steps_kept + 1
            subject = llama()
            calls = {"n": 0}

            def hook(module, args):
                calls["n"] += 1
                if calls["n"] == steps_kept + 1:
                    raise KeyboardInterrupt

            handle = subject.model.model.embed_tokens.register_forward_pre_hook(hook)
            try:
                result = nm.finetune(subject, TEXT, steps=10, lr=1e-2, context=32, batch_size=2, seed=5,
                                     progress=False)
            finally:
                handle.remove()
        else:
            subject, result = run(10, **option)
        assert result.interrupted and result.steps_done == steps_kept
        assert all(p.requires_grad for p in subject.model.parameters())
        if steps_kept == 0:
            assert subject.interventions == () and result.adapter_path is None
            with torch.no_grad():
                assert torch.equal(subject.model(token_ids).logits, llama().model(token_ids).logits)
            continue
        [intervention] = subject.interventions
        assert intervention.adapter.steps == steps_kept and intervention.adapter.interrupted
        assert "interrupted" in intervention.description
        for name in reference.adapter.targets:
            assert torch.equal(intervention.adapter.A[name], reference.adapter.A[name])
            assert torch.equal(intervention.adapter.B[name], reference.adapter.B[name])
        with torch.no_grad():
            assert torch.equal(subject.model(token_ids).logits, reference_subject.model(token_ids).logits)


def test_loss_goes_down_on_a_repeated_text_and_is_reproducible():
    """Oracle: HF's own loss (labels=ids) on the text before and after, and a second run with
    the same seed (fails with a random gradient, or an unseeded batch order)."""
    subject = llama()
    ids = subject.tokenizer(TEXT[:64], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = float(subject.model(input_ids=ids, labels=ids).loss)
    modules = "q_proj,v_proj,up_proj,down_proj"
    result = nm.finetune(subject, TEXT, steps=30, lr=1e-2, context=32, modules=modules, progress=False)
    with torch.no_grad():
        after = float(subject.model(input_ids=ids, labels=ids).loss)
    assert after < before - 0.3
    assert result.loss[-5:].mean() < result.loss[:5].mean() - 0.3
    again = nm.finetune(llama(), TEXT, steps=30, lr=1e-2, context=32, modules=modules, progress=False)
    assert again.sha256 == result.sha256 and list(again.loss) == list(result.loss)


def test_lora_under_a_duplicated_program_acts_at_both_occurrences(token_ids):
    """Oracle: the same program on a deepcopy whose block 1 has the update merged by hand (fails
    when the adapter acts at only one occurrence of block 1)."""
    subject = llama()
    targets = [name for name in ft.resolve_targets(subject, None) if name.startswith("1.")]
    adapter = random_adapter(subject, targets=targets)
    hand = nm.Subject(copy.deepcopy(subject.model), subject.tokenizer)
    ft.adapter_intervention(subject, adapter).install(subject)
    with torch.no_grad():
        for name in targets:
            weight_matrix(hand.model.get_submodule(ft.module_path(subject, name))).add_(
                adapter.alpha / adapter.rank * adapter.B[name] @ adapter.A[name])
    program = [0, 1, 1, 2, 3]
    with torch.no_grad(), subject.program_applied(program), hand.program_applied(program):
        torch.testing.assert_close(subject.model(token_ids).logits, hand.model(token_ids).logits,
                                   atol=1e-5, rtol=1e-5)
    with torch.no_grad(), hand.program_applied([0, 1, 2, 3]), subject.program_applied([0, 1, 2, 3]):
        torch.testing.assert_close(subject.model(token_ids).logits, hand.model(token_ids).logits,
                                   atol=1e-5, rtol=1e-5)


def test_finetune_trains_under_a_program():
    """Training runs the current program (the adapter learns there) and leaves it in place."""
    subject = llama()
    subject.set_program([0, 1, 1, 2, 3])
    result = nm.finetune(subject, TEXT, steps=3, lr=1e-2, context=32, progress=False)
    assert result.steps_done == 3 and list(subject.program) == [0, 1, 1, 2, 3]
    assert result.metadata["program"] == [0, 1, 1, 2, 3]


@pytest.mark.parametrize("options, message", [
    ({"modules": "nope_proj"}, "No linear module 'nope_proj'"),
    ({"rank": 0}, "--rank must be a whole number at least 1"),
    ({"steps": -1}, "--steps"),
    ({"lr": 0.0}, "--lr must be a number above 0"),
    ({"dropout": 1.0}, "--dropout"),
    ({"text": "  \n"}, "The text is empty"),
    ({"text": None, "file": "/nonexistent/file.txt"}, "No file"),
    ({"text": "a"}, "one token long"),
])
def test_bad_input_is_one_line_and_changes_nothing(options, message, token_ids):
    subject = llama()
    before = parameters(subject)
    with torch.no_grad():
        logits = subject.model(token_ids).logits
    options = {"text": TEXT, **options}
    with pytest.raises(nm.NeuroMagicsError, match=message) as error:
        nm.finetune(subject, options.pop("text"), progress=False, **options)
    assert "\n" not in str(error.value)
    assert subject.interventions == ()
    assert_parameters_equal(subject, before)
    with torch.no_grad():
        assert torch.equal(subject.model(token_ids).logits, logits)


def test_an_adapter_for_another_model_is_refused(tmp_path):
    subject = llama()
    other = nm.Subject(tiny_model("gpt2"), tiny_tokenizer())
    with pytest.raises(nm.NeuroMagicsError, match="No adapter is installed"):
        nm.save_adapter(other, tmp_path / "none")
    ft.adapter_intervention(other, random_adapter(other)).install(other)
    folder = nm.save_adapter(other, tmp_path / "gpt2")
    with pytest.raises(nm.NeuroMagicsError, match="outside tiny-llama's decoder blocks"):
        nm.load_adapter(subject, folder)
    assert subject.interventions == ()


def test_magics(tiny_in_shell, shell, tmp_path, token_ids):
    subject = tiny_in_shell
    with torch.no_grad():
        base = subject.model(token_ids).logits
    result = shell.run_cell_magic("finetune", "--lora --steps 3 --rank 2 --lr 1e-2 --context 32 -o tuned", TEXT)
    assert result.steps_done == 3 and shell.user_ns["tuned"] is result
    assert subject.interventions[0].adapter.rank == 2
    for action in ("--merge", "--unmerge", "--off", "--on", "--list"):
        shell.run_line_magic("finetune", action)
    shell.run_line_magic("finetune", f"--save {tmp_path / 'a'}")
    shell.run_line_magic("finetune", "--remove")
    with torch.no_grad():
        assert torch.equal(subject.model(token_ids).logits, base)
    shell.run_line_magic("finetune", f"--load {tmp_path / 'a'}")
    assert [i.kind for i in subject.interventions] == ["lora"]
    shell.run_line_magic("finetune", "--remove")
    for line, cell, message in [
        ("", None, "Say what to do"),
        ("--lora", None, "Nothing to train on"),
        ("--lora --rank 0", TEXT, "--rank must be"),
        ("--lora --modules xyz", TEXT, "No linear module 'xyz'"),
        ("--off --rank 3", None, "takes no other option"),
        ("--lora --file x.txt", TEXT, "either in the cell or with --file"),
        ("--merge", "text", "takes no cell"),
    ]:
        with pytest.raises(UsageError, match=message):
            if cell is None:
                shell.run_line_magic("finetune", line)
            else:
                shell.run_cell_magic("finetune", line, cell)
    assert subject.interventions == ()
    with torch.no_grad():
        assert torch.equal(subject.model(token_ids).logits, base)


def test_switches_with_no_adapter_say_there_is_nothing_to_do(tiny_in_shell, shell, capsys):
    for action, said in (("--merge", "nothing to merge"), ("--unmerge", "nothing to unmerge"),
                         ("--off", "nothing to turn off"), ("--on", "nothing to turn on"), ("--remove", "No adapter to remove")):
        shell.run_line_magic("finetune", action)
        assert said in capsys.readouterr().out
    assert tiny_in_shell.interventions == ()


def test_result_saves_loads_and_draws(tmp_path):
    subject = llama()
    result = nm.finetune(subject, TEXT, steps=3, lr=1e-2, context=32, progress=False)
    loaded = nm.load_result(result.save(tmp_path / "ft.npz"))
    assert list(loaded.loss) == list(result.loss) and loaded.adapter_path == result.adapter_path
    assert list(loaded.to_pandas()["loss"]) == list(result.loss)
    assert "3 steps: loss" in repr(loaded)
    widget = result.widget()
    assert widget.values.shape == (1, 3)


@pytest.mark.integration
def test_default_model_finetune_diff_and_remove(default_subject):
    """The default model: a 3-step LoRA on q/v, its diff (rank 8 on exactly the adapted
    matrices, KL > 0), and removal bit-identical (every parameter and the logits)."""
    subject = default_subject
    ids = subject.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    before = parameters(subject)
    with torch.no_grad():
        logits = subject.model(ids).logits
    result = nm.finetune(subject, "The capital of France is Paris. " * 8, steps=3, context=32, batch_size=1,
                         progress=False)
    try:
        diff = nm.diff_models(subject, "current", "no-adapter", corpus=["The capital of France is Paris."],
                              max_tokens=16, probes=False, progress=False)
        adapted = set(result.targets)
        assert {name for name, rank in zip(diff.matrices, diff.weight_rank) if rank} == adapted
        assert all(rank == 8 for name, rank in zip(diff.matrices, diff.weight_rank) if name in adapted)
        assert diff.mean_kl > 0 and len(adapted) == 2 * subject.n_layers
    finally:
        nm.remove_adapters(subject)
    assert_parameters_equal(subject, before)
    with torch.no_grad():
        assert torch.equal(subject.model(ids).logits, logits)


def test_a_window_longer_than_the_context_is_refused():
    subject = llama()
    with pytest.raises(nm.NeuroMagicsError, match="longer than this model's 128 tokens"):
        nm.finetune(subject, TEXT, context=129, progress=False)
    assert subject.interventions == ()


# -- scaling, dropout and the numbers a fine-tune reports (each against an independent computation) --


def hand_merged(subject: nm.Subject, adapter: ft.LoraAdapter, scaling: float):
    """A deepcopy of the model with ``scaling * B @ A`` added to each target by hand."""
    model = copy.deepcopy(subject.model)
    with torch.no_grad():
        for name in adapter.targets:
            weight_matrix(model.get_submodule(ft.module_path(subject, name))).add_(
                scaling * adapter.B[name] @ adapter.A[name])
    return model


def test_rslora_scales_by_alpha_over_sqrt_rank_as_peft_does(tmp_path, token_ids):
    """Oracle: peft's own LoRA with ``use_rslora=True`` and our A/B copied in (rank 4: alpha / sqrt(r)
    = 4 differs from alpha / r = 2); the hand merge ``W + alpha / sqrt(r) * B @ A``; peft loading our
    saved folder (fails with rsLoRA ignored in the hook, the merge, or the saved config)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    subject = llama()
    adapter = random_adapter(subject, rank=4, alpha=8.0)
    adapter.use_rslora = True
    assert adapter.scaling == pytest.approx(8.0 / 2.0)
    config = LoraConfig(r=4, lora_alpha=8.0, lora_dropout=0.0, use_rslora=True,
                        target_modules=sorted({name.split(".", 1)[1] for name in adapter.targets}))
    peft_model = get_peft_model(copy.deepcopy(subject.model), config)
    with torch.no_grad():
        for name in adapter.targets:
            module = peft_model.base_model.model.get_submodule(ft.module_path(subject, name))
            module.lora_A["default"].weight.copy_(adapter.A[name])
            module.lora_B["default"].weight.copy_(adapter.B[name])
        expected = peft_model.eval()(input_ids=token_ids).logits
        plain = hand_merged(subject, adapter, 8.0 / 4)(token_ids).logits
        by_hand = hand_merged(subject, adapter, 8.0 / 2)(token_ids).logits
    assert (expected - plain).abs().max() > 1e-3  # the two scalings are told apart
    torch.testing.assert_close(by_hand, expected, atol=1e-5, rtol=1e-5)
    ft.adapter_intervention(subject, adapter).install(subject)
    with torch.no_grad():
        torch.testing.assert_close(subject.model(token_ids).logits, expected, atol=1e-6, rtol=1e-5)
        folder = nm.save_adapter(subject, tmp_path / "rs")
        nm.merge_adapters(subject)
        torch.testing.assert_close(subject.model(token_ids).logits, expected, atol=1e-5, rtol=1e-5)
        nm.remove_adapters(subject)
        loaded = PeftModel.from_pretrained(copy.deepcopy(subject.model), str(folder)).eval()
        torch.testing.assert_close(loaded(input_ids=token_ids).logits, expected, atol=1e-6, rtol=1e-5)
        nm.load_adapter(subject, folder)
        torch.testing.assert_close(subject.model(token_ids).logits, expected, atol=1e-6, rtol=1e-5)


def test_lora_dropout_is_off_outside_training(token_ids):
    """Oracle: a hand forward (the update merged by hand into a deepcopy, no dropout) and peft's LoRA
    with the same dropout in eval mode. An adapter with dropout 0.5 gives exactly that output, twice
    over, also with the model in train mode (fails when the dropout runs at inference)."""
    subject = llama()
    adapter = random_adapter(subject)
    adapter.dropout = 0.5
    with torch.no_grad():
        expected = hand_merged(subject, adapter, adapter.alpha / adapter.rank)(token_ids).logits
    ft.adapter_intervention(subject, adapter).install(subject)
    with torch.no_grad():
        first = subject.model(token_ids).logits
        second = subject.model(token_ids).logits
        subject.model.train()
        try:
            in_train_mode = subject.model(token_ids).logits
        finally:
            subject.model.eval()
    torch.testing.assert_close(first, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(first, second) and torch.equal(first, in_train_mode)


def test_lora_dropout_acts_while_training():
    """Oracle: the same seeded fine-tune without dropout. With dropout 0.5 the adapter after two steps
    differs (the first step's loss is the same: B starts at zero, so the dropped input cannot show
    yet); fails when the dropout is never applied in training."""
    plain = nm.finetune(llama(), TEXT, steps=2, lr=1e-2, context=32, progress=False)
    dropped = nm.finetune(llama(), TEXT, steps=2, lr=1e-2, context=32, dropout=0.5, progress=False)
    assert dropped.loss[0] == pytest.approx(plain.loss[0], abs=1e-6)
    name = plain.adapter.targets[0]
    assert not torch.allclose(dropped.adapter.B[name], plain.adapter.B[name], atol=1e-6)


def hand_windows(subject: nm.Subject, texts: list[str], width: int) -> list[list[int]]:
    """The texts' tokens joined by the end-of-sequence token, cut into windows of ``width`` by hand,
    the last one ending at the last token."""
    ids = []
    for k, text in enumerate(texts):
        ids += ([subject.tokenizer.eos_token_id] if k else []) + subject.tokenizer(text)["input_ids"]
    windows = [ids[s:s + width] for s in range(0, len(ids) - width + 1, width)]
    if len(ids) % width:
        windows.append(ids[-width:])
    return windows


def test_the_training_windows_and_token_count_equal_a_hand_cut():
    """Oracle: the windows cut by hand (two texts of lengths that do not divide the window: the last
    window overlaps the one before); ``n_tokens`` counts them (fails with the last window dropped,
    or the texts joined without the end-of-sequence token)."""
    subject = llama()
    texts = ["The cat sat on the mat.", "A dog ran after a red ball in the park."]
    windows = hand_windows(subject, texts, 16)
    assert len(windows) == 4 and windows[-1][0] == windows[-2][-1]  # 63 tokens: the last window overlaps by one
    assert subject.tokenizer.eos_token_id in windows[1]
    assert ft.training_chunks(subject, texts, 16).tolist() == windows
    result = nm.finetune(subject, texts, steps=0, context=16, progress=False)
    assert result.n_tokens == 16 * len(windows)


def test_each_steps_loss_is_hfs_loss_of_the_adapter_before_that_step():
    """Oracle: HF's own causal-LM loss (``labels=ids``) over every window (the batch holds them all),
    on the base model for step 1 and with the adapter of a seeded 1-step fine-tune for step 2
    (fails with the loss recorded after the update, or taken over another batch)."""
    texts = ["The quick brown fox jumps over the lazy dog again and again."]
    windows = torch.tensor(hand_windows(llama(), texts, 16))
    options = dict(lr=5e-2, context=16, batch_size=len(windows), modules="q_proj,v_proj,down_proj", progress=False)
    two = nm.finetune(llama(), texts, steps=2, **options)
    subject = llama()
    with torch.no_grad():
        base = float(subject.model(input_ids=windows, labels=windows).loss)
    nm.finetune(subject, texts, steps=1, **options)
    with torch.no_grad():
        after_one = float(subject.model(input_ids=windows, labels=windows).loss)
    assert abs(after_one - base) > 1e-3
    np.testing.assert_allclose(two.loss, [base, after_one], rtol=1e-5)
    assert two.to_pandas()["loss"].tolist() == two.loss.tolist() and two.steps_done == 2


def test_a_config_from_a_newer_peft_loads_unless_it_switches_on_something_unknown(tmp_path, token_ids):
    """peft's own from_pretrained fails on keys a newer peft wrote (an adapter cached by peft 0.22
    read under 0.13): keys left at nothing load; a key set to something is refused in one line."""
    subject = llama()
    adapter = random_adapter(subject)
    folder = adapter.save(subject, tmp_path / "adapter")
    config_path = folder / ft.CONFIG_FILE
    config = json.loads(config_path.read_text())
    config.update(an_option_from_the_future=None, a_switch_from_the_future=False, peft_version="99.0")
    config_path.write_text(json.dumps(config))
    loaded = ft.LoraAdapter.load(subject, folder)
    assert (loaded.rank, loaded.alpha) == (adapter.rank, adapter.alpha)
    assert all(torch.equal(loaded.A[name], adapter.A[name]) and torch.equal(loaded.B[name], adapter.B[name])
               for name in adapter.A)
    config.update(a_method_from_the_future={"enabled": True})
    config_path.write_text(json.dumps(config))
    with pytest.raises(nm.NeuroMagicsError, match="sets 'a_method_from_the_future'.*upgrade peft") as error:
        ft.LoraAdapter.load(subject, folder)
    assert "\n" not in str(error.value)
