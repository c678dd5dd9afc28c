"""Writes 02_layer_surgery.ipynb from the cells below, so the notebook's source stays reviewable.

Run it after editing a cell: python demo_notebooks/build_layer_surgery.py
"""

from nbformat.v4 import new_code_cell, new_markdown_cell

CHECK = {"tags": ["nbval-check-output"]}
NAME = "02_layer_surgery.ipynb"

cells = [
    new_markdown_cell(
        "# Layer surgery: duplicate, drop and re-stack blocks without copying a weight\n\n"
        "Repeating a block of middle layers, with no weight changed, can make a model *better*: that is "
        "the RYS result that topped the 2024 Open LLM Leaderboard. Goliath-style merges stack overlapping "
        "layer ranges. Here we do both on the built-in **SmolLM2-135M-Instruct** (30 Llama blocks) and "
        "look at what each change does."
    ),
    new_code_cell("%load_ext neuro_magics\n%load_model\nm = %model"),
    new_code_cell("%generate --max-new-tokens 12 The capital of France is", metadata=CHECK),
    new_markdown_cell(
        "## Duplicate a block (RYS)\n\n"
        "`%duplicate_layers I:J` runs blocks `0..J-1`, then `I..L-1`: the block `I..J-1` (half-open, like a "
        "Python slice) runs twice in a row; `--times N` repeats it N more times. Nothing is copied: every "
        "occurrence is a view sharing its block's parameters, with its own KV-cache slot.\n\n"
        "Each change returns a **before/after diff** on a built-in set of varied prompts (or yours, with "
        "`--prompt TEXT`): greedy continuations side by side with the first divergence marked, tokens of "
        "the original continuation shaded by how much their log-prob moved, perplexity of a short text, "
        "depth and parameter count. Click a prompt for both next-token top-k lists."
    ),
    new_code_cell("rys = %duplicate_layers 10:16\nrys"),
    new_code_cell(
        "print(repr(rys))\n"
        "for label, stats in rys.stats().items():\n"
        "    print(f\"{label:>20}: perplexity {stats['perplexity']:.2f}, depth {stats['depth']}, \"\n"
        "          f\"parameters {stats['parameters']:,}\")",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "`--show` prints the program, and which blocks each run of *positions* calls. Positions matter "
        "because changes compose on the current program: `%duplicate_layers I:J` and `%drop_layers` index "
        "positions of the program as it is now (for the original model, positions are block indices)."
    ),
    new_code_cell("%duplicate_layers --show", metadata=CHECK),
    new_code_cell("%generate --max-new-tokens 12 The capital of France is", metadata=CHECK),
    new_markdown_cell(
        "The result is data: `rys.to_pandas()` has one row per token of each original continuation, "
        "with its log-prob before and after; `rys.figure()` is a plotly heatmap of the change, "
        "`rys.save(path)` a file `nm.load_result` reads back."
    ),
    new_code_cell(
        "tokens = rys.to_pandas()\n"
        "print(tokens.groupby('prompt_index')['logprob_change'].sum().round(1).to_dict())"
    ),
    new_markdown_cell(
        "## Compose: drop, then duplicate\n\n"
        "Pruning is a program too. Drop the second-to-last position, then repeat positions 20-23 of what "
        "is left (`20-23` is inclusive, `20:24` half-open: the same block). `--no-diff` skips the diff."
    ),
    new_code_cell(
        "%reset_layers\n"
        "%drop_layers 28 --no-diff\n"
        "%duplicate_layers 20-23 --no-diff",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## Any program: a Goliath-style stack\n\n"
        "`--program` replaces the whole program by ranges of *original* blocks (`a-b` inclusive, `a:b` "
        "half-open). Overlapping ranges interleave the model with itself: here 40 steps from 30 blocks. "
        "The diff runs on your own prompts this time."
    ),
    new_code_cell(
        "%duplicate_layers --program \"0-19,10-29\" --prompt \"The capital of France is\" "
        "--prompt \"Once upon a time\" --max-new-tokens 16"
    ),
    new_markdown_cell(
        "## Export: a real model, and a mergekit recipe\n\n"
        "`--save DIR` writes the current program as a plain Hugging Face model (the blocks physically "
        "copied in program order, safetensors + config + tokenizer): anyone can load it with "
        "`AutoModelForCausalLM.from_pretrained(DIR)` and get the same logits. `--mergekit FILE` writes "
        "the equivalent mergekit passthrough config. With `--show`, the current program is exported "
        "without changing it."
    ),
    new_code_cell(
        "import pathlib\nimport tempfile\n\n"
        "export = pathlib.Path(tempfile.mkdtemp())\n"
        "%duplicate_layers --show --save {export}/goliath --mergekit {export}/goliath.yaml"
    ),
    new_code_cell(
        "import shutil\n\n"
        "import torch\n"
        "from transformers import AutoModelForCausalLM\n"
        "from transformers.utils import logging\n\n"
        "logging.disable_progress_bar()  # its notebook bar is a widget: a saved notebook keeps a dead one\n"
        "saved = AutoModelForCausalLM.from_pretrained(export / 'goliath', dtype=torch.float32)\n"
        "encoded = m.encode('The capital of France is')\n"
        "with torch.no_grad():\n"
        "    ours = m.model(**encoded).logits\n"
        "    theirs = saved(**encoded).logits\n"
        "print('layers in the saved model:', saved.config.num_hidden_layers)\n"
        "print('same logits:', torch.allclose(ours, theirs, atol=1e-4))\n"
        "print('\\n'.join(line for line in (export / 'goliath.yaml').read_text().splitlines() if 'layer_range' in line))\n"
        "del saved\n"
        "shutil.rmtree(export)",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## In Python\n\n"
        "Every magic is a thin shell over a function: `nm.duplicate_layers(m, i, j, times=1)`, "
        "`nm.drop_layers(m, \"3,5\")`, `nm.set_program(m, \"0-19,10-29\")` (each returns the diff, or the "
        "new program with `diff=False`), `nm.save_materialized`, `nm.mergekit_yaml`, and `nm.compare` for a "
        "diff of any change, e.g. a program you only want to try."
    ),
    new_code_cell(
        "import neuro_magics as nm\n\n"
        "m.reset()\n"
        "program = nm.duplicate_layers(m, 10, 16, times=2, diff=False)\n"
        "print(program, len(program), 'steps')\n"
        "m.reset()\n"
        "print(m.program.is_identity)",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "`%%generate --chat` wraps the cell in the model's chat template (a user turn); the model runs "
        "whatever program is current (here, the original)."
    ),
    new_code_cell("%%generate --chat --max-new-tokens 20\nName three primary colors.", metadata=CHECK),
]

if __name__ == "__main__":
    from run_demo import build_notebook

    build_notebook(NAME, cells)
