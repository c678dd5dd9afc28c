"""Writes 04_interventions.ipynb from the cells below, so the notebook's source stays reviewable.

Run it after editing a cell: python demo_notebooks/build_interventions.py
"""

from nbformat.v4 import new_code_cell, new_markdown_cell

CHECK = {"tags": ["nbval-check-output"]}
CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPT = "When Mary and John went to the store, Mary gave a drink to"
PAIR = f'--clean "{CLEAN}" --corrupt "{CORRUPT}" --answers " Mary" " John"'

cells = [
    new_markdown_cell(
        "# Causal interventions: patching, ablation, steering\n\n"
        "Which internal states make **SmolLM2-135M-Instruct** answer *Mary* in an indirect-object sentence? "
        "We patch activations between a clean and a corrupt prompt, knock out the heads that matter, "
        "then steer the model's generations with a contrast vector."
    ),
    new_code_cell("%load_ext neuro_magics\n%load_model"),
    new_markdown_cell(
        "## Activation patching\n\n"
        "The clean prompt repeats *John*, so the answer is *Mary*; the corrupt one repeats *Mary*. `%patch` "
        "runs the corrupt prompt and, one cell at a time, puts back the clean residual stream at one layer "
        "and one position. The heatmap shows the normalised effect on the logit difference "
        "`logit(' Mary') - logit(' John')`: 1 means that single state restores the clean answer, 0 that it "
        "changes nothing. Every layer's cells start from the cached corrupt state at that layer and run as "
        "one batch. `--method both` adds attribution patching (one gradient for all cells) in the metric "
        "menu. Hover a cell for the patched top tokens; click it to compare them with clean and corrupt."
    ),
    new_code_cell(f"ioi = %patch {PAIR} --method both\nioi"),
    new_code_cell(
        'print(f"logit diff: clean {ioi.clean_metric:.2f}, corrupt {ioi.corrupt_metric:.2f}; '
        'exact vs attribution r = {ioi.correlation:.2f}")\n'
        "strongest = ioi.to_numpy().argmax(axis=1)\n"
        "for layer in (0, 8, 16, 24, 29):\n"
        "    p = strongest[layer]\n"
        '    print(f"layer {layer:2d}: strongest at position {p:2d} {ioi.clean_tokens[p]!r:8} effect {ioi.effect[layer, p]:.1f}")',
        metadata=CHECK,
    ),
    new_markdown_cell(
        "The name's effect moves from its own position in early layers to the last position in later "
        "layers: somewhere in between, attention heads copy it across. `--site heads` patches each head's "
        "output (at every position) instead."
    ),
    new_code_cell(f"heads = %patch {PAIR} --site heads\nheads"),
    new_code_cell(
        'top = heads.to_pandas().nlargest(3, "effect")\n'
        'print(top[["step", "head", "effect"]].round(2).to_string(index=False))\n'
        'spec = ",".join(f"{row.step}.{row.head}" for row in top.itertuples())\n'
        "spec",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## Ablation\n\n"
        "Knock those heads out (`--mode mean` replaces their output by its mean over a neutral reference "
        "text; `zero` is the default) and measure the clean logit difference again. Ablations stay on, "
        "for every forward and `generate`, until `%ablate --reset`; they also act inside any layer program."
    ),
    new_code_cell(
        "import neuro_magics as nm\n"
        "from neuro_magics.analyses.patching import answer_token_ids, metric_values\n\n"
        "m = %model\n"
        'answers = answer_token_ids(m, [" Mary", " John"])\n\n'
        "def clean_logit_diff():\n"
        f'    logits = m.model(m.encode("{CLEAN}")["input_ids"], use_cache=False).logits[:, -1]\n'
        '    return metric_values(logits, answers, "logit_diff").item()\n\n'
        "before = clean_logit_diff()\n"
        "%ablate --heads {spec} --mode mean --no-diff\n"
        "%ablate\n"
        'print(f"clean logit diff {before:.2f} -> {clean_logit_diff():.2f} with those heads mean-ablated")\n'
        "%ablate --reset\n"
        "assert clean_logit_diff() == before",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## Steering\n\n"
        "`%steer` adds a vector to the residual stream entering a block, at every position and every "
        "generated token: here the difference between the states of *Love* and *Hate* at layer 6. It "
        "shows a before/after diff of greedy generations first, then stays on until `%steer --reset`."
    ),
    new_code_cell(
        '%steer --pos "Love" --neg "Hate" --layer 6 --coef 1 --prompt "I think dogs are" '
        '--prompt "My neighbour is" --max-new-tokens 16'
    ),
    new_code_cell(
        "%steer\n"
        'print("steered:", repr(m.generate("I think dogs are", max_new_tokens=10)))\n'
        "%steer --reset\n"
        'print("plain:  ", repr(m.generate("I think dogs are", max_new_tokens=10)))',
        metadata=CHECK,
    ),
    new_markdown_cell(
        "Also available: causal tracing of a fact, "
        '`%patch --clean "The Eiffel Tower is located in the city of" --method trace --subject "Eiffel Tower"` '
        "(noise the subject's embeddings, restore single states; residual, attention and MLP windows), "
        "`%steer --pairs FILE.jsonl` for a mean difference over many contrast pairs, and the same functions "
        "from Python: `nm.patch`, `nm.ablate`, `nm.steer`. Every result has `.to_numpy()`, `.to_pandas()`, "
        "`.figure()` and `.save()`."
    ),
]

if __name__ == "__main__":
    from run_demo import build_notebook

    build_notebook("04_interventions.ipynb", cells)
