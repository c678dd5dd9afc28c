"""Writes 10_sae.ipynb from the cells below, so the notebook's source stays reviewable.

Run it after editing a cell: python demo_notebooks/build_sae.py
"""

from nbformat.v4 import new_code_cell, new_markdown_cell

CHECK = {"tags": ["nbval-check-output"]}
NAME = "10_sae.ipynb"

cells = [
    new_markdown_cell(
        "# Sparse autoencoder features of SmolLM2-135M-Instruct\n\n"
        "A sparse autoencoder (SAE) rewrites one site's activation, a 576-dim vector per token, as a sparse sum "
        "of learned directions (features) out of a dictionary several times wider than the model. Each token "
        "uses only a few features, so each feature tends to mean one thing: reading the tokens where it fires "
        "most, and the tokens its direction pushes up through the unembedding, says what. `%sae` trains a "
        "TopK SAE (Gao et al. 2024) on the residual stream, shows a dashboard of its features, searches them by "
        "token or text, and steers or ablates one on the model. `%sae load` reads published SAEs (SAELens or "
        "EleutherAI sparsify files) the same way."
    ),
    new_code_cell("import neuro_magics as nm\n\n%load_ext neuro_magics\n%load_model\nm = %model"),
    new_markdown_cell(
        "## Training\n\n"
        "2,304 features (4 x 576), 32 active per token, on the output of block 12 (program step 12), from the built-in corpus "
        "(five genres, about 10,800 training tokens; every tenth text is held out). 150 Adam steps keep this "
        "notebook quick; the default is 300. The report is measured on the held-out texts: FVU (the share of "
        "the activations' variance the reconstruction misses), L0, dead features, and the next-token loss with "
        "the reconstruction spliced in, between the original model and zeroing the site.\n\n"
        "The dashboard lists the features by how often they fire (dead ones marked). Click one: its card "
        "shows the activation histogram, the tokens its decoder direction raises and lowers, the top "
        "contexts and samples from five activation intervals, each token coloured by the feature's "
        "activation. Type a token or a text and press Enter to list the features most active on it. "
        "The buttons steer by the feature or ablate it on the model (%model lists what they install; `%steer --reset` and `nm.reset_interventions(m, 'sae_ablate')` remove them)."
    ),
    new_code_cell("%sae train --step 12 --steps 150 -o sae"),
    new_code_cell(
        "print(f'FVU {sae.fvu:.2f}, L0 {sae.l0:.0f}, {sae.loss_recovered:.0%} of the zero-ablation loss recovered')"
    ),
    new_code_cell(
        "print('spliced-in loss between the original and zero ablation:', sae.ce_original < sae.ce_spliced < sae.ce_zero)\n"
        "print('32 features per token:', round(sae.l0) == 32)",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## Reading features\n\n"
        "By token: the features that fire most on held-out tokens equal to it. By text: the model runs on the "
        "text and the features are ranked by their mean activation over its tokens."
    ),
    new_code_cell("%sae show --search ' the' --n 5"),
    new_code_cell("%sae show --text 'def add(a, b):\\n    return a + b' --n 5"),
    new_code_cell(
        "feature = sae.search_text(m, 'def add(a, b):\\n    return a + b', 1)[0][0]\n"
        "%sae show --feature {feature} --n 5"
    ),
    new_markdown_cell(
        "## Steering by a feature\n\n"
        "`%sae steer` adds `coef` units of the feature's decoder direction to the residual stream where layer "
        "12's output goes, at every position, through `nm.steer`. Greedy continuations before and after:"
    ),
    new_code_cell("%generate --max-new-tokens 24 The best way to spend a weekend is"),
    new_code_cell(
        "%sae steer --feature {feature} --coef 12\n"
        "%generate --max-new-tokens 24 The best way to spend a weekend is"
    ),
    new_code_cell("%steer --reset"),
    new_markdown_cell(
        "## Ablating a feature\n\n"
        "`%sae ablate` removes the feature's own contribution `f(x) x direction` from layer 12's output at every "
        "position. The intervention records the SAE's file and its SHA-256 (an SAE never saved goes into the "
        "cache folder under its content's hash), so a result made under it replays it. Here the code "
        "feature's ablation on a code prompt: the log-probability of the next token moves."
    ),
    new_code_cell(
        "import torch\n\n"
        "ids = m.encode('def add(a, b):\\n    return a')['input_ids']\n"
        "with torch.no_grad():\n"
        "    before = m.model(ids).logits[0, -1].log_softmax(-1)\n"
        "%sae ablate --feature {feature}\n"
        "with torch.no_grad():\n"
        "    after = m.model(ids).logits[0, -1].log_softmax(-1)\n"
        "top = int(before.argmax())\n"
        "print(f'{m.token_pieces([top])[0]!r}: log-prob {before[top]:.3f} -> {after[top]:.3f}')"
    ),
    new_code_cell(
        "nm.reset_interventions(m, 'sae_ablate')\n"
        "with torch.no_grad():\n"
        "    print('reset restores the logits bit for bit:', torch.equal(m.model(ids).logits[0, -1].log_softmax(-1), before))",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## Published SAEs\n\n"
        "`%sae load FOLDER` reads a SAELens folder (`cfg.json` + `sae_weights.safetensors`: standard, TopK or "
        "JumpReLU) or a sparsify folder (`cfg.json` + `sae.safetensors`); a hub name downloads one "
        "(`%sae load EleutherAI/REPO --sae-id layers.12`; a SAELens release goes through "
        "`SAE.from_pretrained` when sae_lens is installed). This notebook stays offline, so it writes its own "
        "SAE in SAELens's format and loads it back: the features are the same."
    ),
    new_code_cell(
        "import tempfile\n\n"
        "folder = sae.save_saelens(tempfile.mkdtemp() + '/sae_layer12')\n"
        "%sae load {folder} -o published"
    ),
    new_code_cell(
        "x = torch.randn(4, m.d_model) * 3\n"
        "print('same features as the trained SAE:', torch.allclose(published.encode(x), sae.encode(x), atol=1e-3))",
        metadata=CHECK,
    ),
]

if __name__ == "__main__":
    from run_demo import build_notebook

    build_notebook(NAME, cells)
