"""Writes 09_neurosurgery.ipynb from the cells below, so the notebook's source stays reviewable.

Run it after editing a cell: python demo_notebooks/build_neurosurgery.py
"""

from nbformat.v4 import new_code_cell, new_markdown_cell

CHECK = {"tags": ["nbval-check-output"]}

cells = [
    new_markdown_cell(
        "# Neurosurgery: editing a fact, pruning, reading the weights\n\n"
        "Activations tell us what **SmolLM2-135M-Instruct** computes; here we open its weights. Every "
        "change is a before/after report and is undone bit for bit: the subject keeps every weight it "
        "changes aside until `--undo` / `--reset`."
    ),
    new_code_cell("%load_ext neuro_magics\n%load_model\nimport torch\nm = %model\n"
                  "original = {name: p.detach().clone() for name, p in m.model.named_parameters()}"),
    new_markdown_cell(
        "## Knowledge editing (ROME)\n\n"
        "ROME reads one MLP's down projection as a key-value memory. The key is its input at the "
        "subject's last token (averaged over a few context prefixes); the value is optimised until the "
        "model says the new target; a rank-one update `W' = W + delta (C^-1 k)^T / (k^T C^-1 k)` writes it, "
        "with C the second moment of that layer's keys over a built-in corpus. `--layer auto` asks causal "
        "tracing (`nm.trace`) which MLP carries the fact at the subject's last token. The report: efficacy "
        "(p(new) > p(old) on the prompt), paraphrases, and neighbouring subjects, which should keep their "
        "answers; below it, the diff of the generations."
    ),
    new_code_cell(
        'fact = %edit --prompt "{} plays the sport of" --subject "LeBron James" --target " football" --layer auto '
        '--paraphrase "LeBron James is a professional" --paraphrase "The sport LeBron James is famous for is" '
        '--neighbour "Michael Jordan" --neighbour "Lionel Messi" --neighbour "Jesse James" --max-new-tokens 10\n'
        "fact"
    ),
    new_code_cell(
        'print(f"layer {fact.layer}: efficacy {fact.efficacy:.0%}, paraphrases {fact.generalisation:.0%}, '
        'neighbours unchanged {fact.specificity:.0%}")\n'
        'print(fact.to_pandas()[["prompt", "group", "old_answer", "logp_new_before", "logp_new_after"]].round(2).to_string())',
        metadata=CHECK,
    ),
    new_markdown_cell(
        "Causal tracing puts this fact in the first MLPs, where the key at *James* is mostly the token "
        "*James* itself: the edit leaks to *Jesse James*. That is what specificity measures; a later layer "
        "(`--layer 8`) leaks less to other *James*es. `%edit --undo` reverts the last edit, bit for bit:"
    ),
    new_code_cell(
        'print("edited:  ", repr(m.generate("LeBron James plays the sport of", max_new_tokens=6)))\n'
        "%edit --undo\n"
        'print("restored:", repr(m.generate("LeBron James plays the sport of", max_new_tokens=6)))\n'
        "assert all(torch.equal(p, original[name]) for name, p in m.model.named_parameters())",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## Pruning\n\n"
        "Wanda removes, in every output row of every block matrix, the weights with the smallest "
        "`|W_ij| * ||X_j||` (the input feature's norm over a calibration text); magnitude pruning uses "
        "`|W_ij|` alone. The report: perplexity of the diff's text, the facts and math probes (mean "
        "log p(answer)), and the sparsity of each matrix."
    ),
    new_code_cell("wanda = %prune --method wanda --sparsity 0.5\nwanda"),
    new_code_cell(
        'for name, before, after in wanda.summary_rows():\n    print(f"{name:38} {before:>14} -> {after}")\n'
        "%prune --reset\n"
        "assert all(torch.equal(p, original[name]) for name, p in m.model.named_parameters())",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "ShortGPT's layer removal drops the blocks whose output is most like their input (lowest Block "
        "Influence `1 - cos(x_l, x_l+1)`): a layer program, no weight copied, undone by `%reset_layers`."
    ),
    new_code_cell("layers = %prune --method layers --drop 4\nlayers"),
    new_code_cell(
        'print(f"dropped {layers.dropped}: perplexity {layers.perplexity_before:.2f} -> {layers.perplexity_after:.2f}")\n'
        "%reset_layers",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "`nm.save_materialized(m, path)` writes a pruned (or edited) model with the change folded into its "
        "weights.\n\n"
        "## Reading the weights\n\n"
        "Norms of every head's query, key, value and output matrices and of its OV and QK circuits; click "
        "a head for its singular spectra. Below, the MLP norms."
    ),
    new_code_cell("%weights"),
    new_markdown_cell(
        "What would int4 cost? `--quantize 4` rounds every block matrix per row (absmax), shows each "
        "matrix's relative error and the diff of the outputs, and leaves the model as it was."
    ),
    new_code_cell("int4 = %weights --quantize 4 --max-new-tokens 10\nint4"),
    new_code_cell(
        'print(f"int4: median weight error {float(__import__(\'numpy\').median(int4.errors)):.3f}, perplexity '
        '{int4.diff.before.perplexity:.2f} -> {int4.diff.after.perplexity:.2f}")\n'
        "assert not m.interventions",
        metadata=CHECK,
    ),
]

if __name__ == "__main__":
    from run_demo import build_notebook

    build_notebook("09_neurosurgery.ipynb", cells)
