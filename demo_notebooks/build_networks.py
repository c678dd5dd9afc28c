"""Writes 05_networks.ipynb from the cells below, so the notebook's source stays reviewable.

Run it after editing a cell: python demo_notebooks/build_networks.py
"""

from nbformat.v4 import new_code_cell, new_markdown_cell

CHECK = {"tags": ["nbval-check-output"]}
NAME = "05_networks.ipynb"

cells = [
    new_markdown_cell(
        "# Functional brain networks of SmolLM2-135M-Instruct\n\n"
        "Like fMRI networks in a brain, an LLM has functional networks that recur across inputs "
        "(\"Brain-Inspired Exploration of Functional Networks and Key Neurons in Large Language Models\", "
        "arXiv 2502.20408). The recipe: record every layer's MLP output for every token of a corpus, lay the "
        "layers side by side (a tokens x (layers x d_model) matrix), and split it with FastICA into independent "
        "time courses and their spatial maps. A network's neurons are those whose z-scored map exceeds 3.6; the "
        "key neurons are all of them together, under 2% of the model. The test: masking them should hurt far "
        "more than masking as many random neurons."
    ),
    new_code_cell("import neuro_magics as nm\n\n%load_ext neuro_magics\n%load_model\nm = %model"),
    new_markdown_cell(
        "## Finding the networks\n\n"
        "`%%networks` reads a built-in corpus of five genres (news-like, encyclopedic, math, code, dialogue; "
        "100 short texts each, written for this project), or the texts in the cell, one per line. Here a "
        "budget of 4,000 tokens (texts taken in turn from each genre) keeps the notebook quick; without "
        "`--max-tokens` the whole corpus (about 11,600 tokens) is read. Each text's first token is left out: "
        "this model parks an outsized attention-sink state there that would take a whole component.\n\n"
        "The gallery shows where each network lives (its neurons per layer), the tokens where its time "
        "course peaks, in context, and its time course over a text. In a live kernel, the button masks the "
        "picked network on the model and shows the before/after diff."
    ),
    new_code_cell("%networks --max-tokens 4000 -o nets"),
    new_markdown_cell(
        "What drives each network: the tokens where its time course peaks, and the genres they come from."
    ),
    new_code_cell(
        "from collections import Counter\n\n"
        "for k in range(nets.n_networks):\n"
        "    top = nets.top_tokens(k, 12)\n"
        "    tokens = ' '.join(repr(t['token']) for t in top[:8])\n"
        "    genre = Counter(t['label'] for t in top).most_common(1)[0]\n"
        "    print(f'network {k}: {int(nets.counts[k].sum()):3d} neurons · mostly {genre[0]:<12} · {tokens}')"
    ),
    new_code_cell(
        "key = nets.key_mask\n"
        "print(f'key neurons: {int(key.sum())} of {key.size} ({100 * key.mean():.2f}%)')"
    ),
    new_code_cell("print('under 2% of the MLP-output neurons:', bool(key.mean() < 0.02))", metadata=CHECK),
    new_code_cell("nets.figure()"),
    new_markdown_cell(
        "## The lesion experiment\n\n"
        "`nm.network_lesion` scores a probe (here the built-in facts, by the mean log-probability of each "
        "answer) with the model as it is, with the key neurons zeroed, with random masks of the same count in "
        "every layer (five seeds, never touching a key neuron), with random masks matched in count *and energy* "
        "(each stand-in neuron has nearly the same mean squared output as the key neuron it replaces), and with "
        "everything but the key neurons zeroed in the layers read (keep-only). `%%networks --lesion` does the "
        "same in one cell."
    ),
    new_code_cell("lesion = nm.network_lesion(m, nets, 'facts', seeds=5)\nlesion"),
    new_code_cell(
        "means = dict(zip(lesion.conditions, lesion.means))\n"
        "random = [v for c, v in means.items() if c.startswith('random')]\n"
        "print('masking the key neurons costs more than every random mask of the same size:',\n"
        "      bool(means['key masked'] < min(random)))\n"
        "print('random masks cost less than half of what the key mask costs:',\n"
        "      bool(means['baseline'] - sum(random) / len(random) < (means['baseline'] - means['key masked']) / 2))",
        metadata=CHECK,
    ),
    new_code_cell("lesion.figure()"),
    new_markdown_cell(
        "Key neurons are picked by how they co-vary, but they also carry more of the MLP output's energy "
        "than their number (their share is printed below), so a plain random mask of the same count removes "
        "less signal. The energy-matched control removes about as much as the key mask does. Here the key "
        "networks still cost far more than that. Found on the whole corpus instead (`nm.networks(m)`, no "
        "`--max-tokens`), they cost no more than energy-matched masks on the facts and text probes and far "
        "more on math: how much of a lesion is magnitude depends on which networks the corpus finds."
    ),
    new_code_cell(
        "energy = nets.energy\n"
        "print(f'key neurons: {nets.key_mask.mean():.1%} of the neurons, '\n"
        "      f'{energy[nets.key_mask].sum() / energy.sum():.1%} of the MLP-output energy')"
    ),
    new_code_cell(
        "matched = [v for c, v in means.items() if c.startswith('energy-matched')]\n"
        "print('energy-matched masks cost more than plain random ones:', bool(sum(matched) / len(matched) < sum(random) / len(random)))",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## Masking by hand\n\n"
        "A network mask is an ordinary ablation: `%ablate --network K|key` installs it (with `--mode keep-only` "
        "or `--mode amplify --value V` as alternatives), `%model` lists it, it acts in generation and under "
        "layer programs, and `%ablate --reset` removes it exactly."
    ),
    new_code_cell(
        "import torch\n\n"
        "ids = m.encode('The capital of France is')['input_ids']\n"
        "before = m.model(ids).logits\n"
        "%ablate --network key --prompt \"The capital of France is\" --max-new-tokens 8"
    ),
    new_code_cell("print(m.interventions[0].description)"),
    new_code_cell(
        "%ablate --reset\n"
        "print('reset restores the logits bit for bit:', torch.equal(m.model(ids).logits, before))",
        metadata=CHECK,
    ),
]

if __name__ == "__main__":
    from run_demo import build_notebook

    build_notebook(NAME, cells)
