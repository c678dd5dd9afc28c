"""Writes 07_attribution.ipynb from the cells below, so the notebook's source stays reviewable.

Run it after editing a cell: python demo_notebooks/build_attribution.py
"""

from nbformat.v4 import new_code_cell, new_markdown_cell

CHECK = {"tags": ["nbval-check-output"]}
FACT = "The Eiffel Tower is in the city of"
IOI = "When Mary and John went to the store, John gave a drink to"

cells = [
    new_markdown_cell(
        "# Attribution: which inputs and which components made the model say this\n\n"
        "`%attribute` explains one next token of **SmolLM2-135M-Instruct** two ways. *Input attribution* "
        "scores each prompt token: saliency (the gradient's size), input x gradient, integrated gradients "
        "(Gauss-Legendre like Captum's; every step in one batch, with its completeness gap), occlusion (the token replaced by the "
        "pad token, all tokens in one batched run) and attention rollout. *Direct logit attribution* splits "
        "the logit difference into what the embedding, every attention head and every MLP wrote into the "
        "residual stream, read through the final norm with its scale frozen: the parts add up exactly."
    ),
    new_code_cell("%load_ext neuro_magics\n%load_model"),
    new_markdown_cell(
        "## A fact\n\n"
        "Why *Paris* rather than *London*? The explained quantity is `logit(' Paris') - logit(' London')`. "
        "Switch the method in the widget; the *DLA heads* view is the layer x head map. Integrated gradients "
        "keep the first token as it is on the path (it is the model's attention sink; `--move-first` moves "
        "it too, and the completeness gap grows)."
    ),
    new_code_cell(f'%%attribute --target " Paris" --foil " London" -o paris\n{FACT}'),
    new_code_cell(
        'order = paris.scores["occlusion"][0, :-1].argsort()[::-1][:3]\n'
        'print("occlusion, most needed:", [paris.sources[i] for i in order])\n'
        'print(f"logit diff {paris.values[0]:.2f}; DLA parts add up to {paris.dla.value.sum():.2f}")\n'
        'print(f"IG completeness gap {paris.ig_relative_gap[0]:.1%} of f(x) - f(baseline) with {paris.steps} steps")',
        metadata=CHECK,
    ),
    new_markdown_cell(
        "Rollout puts nearly all of the last token's mass on the first token: the attention sink, a "
        "reminder that attention weights are not attributions.\n\n"
        "## Indirect object identification\n\n"
        "The patching demo (`04_interventions`) found heads 23.3, 29.1 and 20.0 restoring *Mary* over *John*. "
        "Direct logit attribution finds the heads that write the answer straight into the logits without "
        "any patching: one forward pass."
    ),
    new_code_cell(f'%%attribute --target " Mary" --foil " John" --method occlusion,input_x_grad -o ioi\n{IOI}'),
    new_code_cell(
        'heads = ioi.dla[ioi.dla.component == "head"]\n'
        'print(heads.nlargest(3, "value")[["layer", "head", "value"]].round(2).to_string(index=False))\n'
        'print("most negative:", [f"{r.layer}.{r.head}" for r in heads.nsmallest(2, "value").itertuples()])',
        metadata=CHECK,
    ),
    new_markdown_cell(
        "Head 23.3, the strongest in both analyses, moves its share from the *second* John: what it copies "
        "from the repeated name raises *Mary* over *John*. In the widget, click a head in the *DLA heads* "
        "view: the tokens show what it moved from each of them, and the attention explorer below zooms "
        "onto its pattern."
    ),
    new_code_cell(
        "moved = ioi.dla_parts.head_sources[23, 3]\n"
        "for position in moved.argsort()[::-1][:2]:\n"
        '    print(f"{position:2d} {ioi.sources[position]!r:8} {moved[position]:+.2f}")',
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## Generated text\n\n"
        "With `--generate N` the model writes N tokens and each one is explained by everything before it: "
        "a source x generated-token matrix. Hover a generated token to paint its sources, or open the "
        "*matrix* view."
    ),
    new_code_cell('%attribute --generate 6 --method occlusion,saliency --no-dla "The capital of France is"'),
    new_markdown_cell(
        "The same from Python: `nm.attribute(subject, prompt, target=..., foil=..., method=..., steps=..., "
        "generate=...)`. Every result has `.to_numpy(method)`, `.to_pandas()`, `.dla`, `.figure()` and "
        "`.save()`; the widget exports each view as SVG or PNG."
    ),
    new_code_cell('ioi.figure("occlusion")'),
]

if __name__ == "__main__":
    from run_demo import build_notebook

    build_notebook("07_attribution.ipynb", cells)
