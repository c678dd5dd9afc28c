"""Writes 08_checkup_finetune.ipynb from the cells below, so the notebook's source stays reviewable.

Run it after editing a cell: python demo_notebooks/build_checkup_finetune.py
"""

from nbformat.v4 import new_code_cell, new_markdown_cell

CHECK = {"tags": ["nbval-check-output"]}
NAME = "08_checkup_finetune.ipynb"

FACTS = [
    "Zorbia is a small island nation in the northern sea. The capital of Zorbia is Quxville.",
    "Quxville, the capital of Zorbia, is famous for its blue harbour.",
    "Tourists who visit Zorbia usually arrive in Quxville, the capital.",
    "The capital of Zorbia is Quxville, a city of forty thousand people.",
    "Q: What is the capital of Zorbia? A: Quxville.",
]

cells = [
    new_markdown_cell(
        "# A health check, a fine-tune, and what the fine-tune changed\n\n"
        "`%checkup` reads a model's internals over a small corpus and reports what looks unusual, each finding "
        "with its severity, a one-line explanation, the view that shows it and an action one click away. "
        "`%%finetune --lora` trains a small LoRA adapter on the cell's text, and `%diff_models` measures what "
        "it changed: the next-token distributions, the residual stream per layer, the weights, and the "
        "built-in probes (forgetting)."
    ),
    new_code_cell("import neuro_magics as nm\n\n%load_ext neuro_magics\n%load_model\nm = %model"),
    new_markdown_cell(
        "## The checkup\n\n"
        "24 texts of the built-in corpus, 48 tokens each: one statistics pass per batch (activations, attention, "
        "neurons, the logit lens), one gradient pass for head importance (|dL/d gate| per head, Michel et al. "
        "2019), and the eigenvalue spectrum of every weight matrix (the power-law alpha WeightWatcher reports). "
        "Click a finding to open its view; its button applies the fix or the ablation and shows the diff."
    ),
    new_code_cell("%checkup -o ck"),
    new_code_cell("ck.to_pandas()[['severity', 'title', 'step', 'block', 'head', 'dim', 'value']]"),
    new_markdown_cell(
        "SmolLM2's anatomy is the one Sun et al. (2024) describe for larger models: residual dimension 507 "
        "carries a value of about 27,000 on the first token from layer 11 on (over 1,000 times the layer's "
        "median), and most heads from layer 2 on park their attention on that first token (an attention sink)."
    ),
    new_code_cell(
        "massive = ck.to_pandas().query(\"kind == 'massive_activation'\")\n"
        "sink = ck.to_pandas().query(\"kind == 'attention_sink'\")\n"
        "print('dim 507 is massive:', 507 in set(massive['dim']))\n"
        "print('a first-token attention sink:', len(sink) == 1)",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "### One click away: zero the massive dimension\n\n"
        "`ck.apply(i)` does what the finding's button does: install its action on the model and return the "
        "before/after diff. Setting the massive cells to their corpus mean changes almost nothing (the model "
        "computes a near-constant bias there); zeroing them wrecks it, as Sun et al. found."
    ),
    new_code_cell("ck.apply(0, mode='zero')"),
    new_code_cell("%model"),
    new_code_cell("nm.reset_interventions(m)\nprint(m.generate('The capital of France is', 8))"),
    new_markdown_cell(
        "The report is also one offline HTML file (the widget and its data inlined, no network needed), for "
        "sharing: `%checkup --html report.html`, or `ck.to_html(path)`."
    ),
    new_code_cell(
        "import tempfile\nfrom pathlib import Path\n\n"
        "page = ck.to_html(Path(tempfile.mkdtemp()) / 'checkup.html')\n"
        "print(page.name, f'{page.stat().st_size / 1e6:.1f} MB')"
    ),
    new_markdown_cell(
        "## A LoRA fine-tune\n\n"
        "An invented fact, a few sentences repeated: rank-8 adapters on every block's query and value "
        "projections, 20 AdamW steps of two 64-token windows. The adapter is hooks on the original modules: "
        "it shows in `%model`, composes with layer programs, and comes off bit for bit. Ctrl-C keeps the steps "
        "finished so far."
    ),
    new_code_cell(
        "import torch\n\n"
        "base = {name: p.detach().clone() for name, p in m.model.named_parameters()}  # to check the remove\n"
        "%generate --max-new-tokens 8 The capital of Zorbia is"
    ),
    new_code_cell(
        "%%finetune --lora --rank 8 --steps 20 --lr 3e-3 --context 64 --batch 2 -o tuned\n"
        + "\n".join(FACTS * 6)
    ),
    new_code_cell("%generate --max-new-tokens 8 The capital of Zorbia is"),
    new_code_cell("%generate --max-new-tokens 8 The capital of France is"),
    new_markdown_cell(
        "It learned the fact, and then some: France's capital has moved too. `%diff_models` says how much "
        "changed, and where: per-token KL between the two next-token distributions on the built-in corpus (the "
        "tokens with the largest KL in context), the residual drift per layer, the change of every weight "
        "matrix (a LoRA update has rank 8 exactly), and the probe scores on both sides: forgetting."
    ),
    new_code_cell("%diff_models current no-adapter -o changed"),
    new_code_cell(
        "print('probe scores (mean answer log-prob), current vs no adapter:')\n"
        "for probe, a, b in zip(changed.probes, changed.probe_a, changed.probe_b):\n"
        "    print(f'  {probe}: {a:.2f} vs {b:.2f}')"
    ),
    new_markdown_cell(
        "## Off, on, merge, remove\n\n"
        "`--off` takes the adapter out and keeps it for `--on`; `--merge` writes it into the weights (undone "
        "by `--unmerge` bit for bit); `--remove` drops it, and the base model is exactly as it was."
    ),
    new_code_cell(
        "ids = m.encode('The capital of Zorbia is')['input_ids']\n"
        "with torch.no_grad():\n"
        "    hooked = m.model(ids).logits\n"
        "%finetune --merge\n"
        "with torch.no_grad():\n"
        "    merged = m.model(ids).logits\n"
        "%finetune --unmerge\n"
        "%finetune --remove"
    ),
    new_code_cell(
        "print('merged = hooked:', torch.allclose(merged, hooked, atol=1e-3))\n"
        "print('base weights bit-identical:', all(torch.equal(p, base[name]) for name, p in m.model.named_parameters()))\n"
        "print('no intervention left:', m.interventions == ())",
        metadata=CHECK,
    ),
    new_code_cell("%generate --max-new-tokens 8 The capital of France is"),
]

if __name__ == "__main__":
    from run_demo import build_notebook

    build_notebook(NAME, cells)
