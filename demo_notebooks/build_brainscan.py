"""Writes 03_brainscan.ipynb from the cells below, so the notebook's source stays reviewable.

Run it after editing a cell: python demo_notebooks/build_brainscan.py
"""

from nbformat.v4 import new_code_cell, new_markdown_cell

CHECK = {"tags": ["nbval-check-output"]}
NAME = "03_brainscan.ipynb"

cells = [
    new_markdown_cell(
        "# A brain scan of SmolLM2-135M-Instruct\n\n"
        "The RYS result: repeating a block of 7 middle layers of a 72B model, with no weight changed, topped "
        "the 2024 Open LLM Leaderboard. Finding that block took days of sweeping every configuration "
        "`(i, j)`: run blocks `0..j-1`, then `i..L-1`, so the block `i..j-1` runs twice, and score the model. "
        "`%%brainscan` makes the sweep one cell on any model: all 465 configurations of the built-in "
        "30-layer model, shown as an (L+1) x (L+1) map of score minus baseline."
    ),
    new_code_cell("%load_ext neuro_magics\n%load_model\nm = %model"),
    new_markdown_cell(
        "## The sweep\n\n"
        "`--probe text` scores the mean log-likelihood of a plain passage (here the first built-in one, "
        "`--limit 1`); `math` and `facts` score answers, and the cell body can hold your own items as JSON "
        "lines. `--score logprob` teacher-forces the answer, so the whole sweep is a handful of batched runs: "
        "configurations that end at `j` share the prefix `0..j-1`, and those that start at `i` run the same "
        "suffix `i..L-1` together.\n\n"
        "Rows are the start `i`, columns the end `j`; the colours diverge from 0 (the untouched model), with "
        "the scale under the map. "
        "Hover a cell for its configuration, score, delta and block size; the toggle switches to the cheap "
        "proxies (Block Influence per layer and the angular distance between layer inputs). In a live kernel, "
        "clicking a cell applies that program to the model and shows the before/after diff below the map."
    ),
    new_code_cell("%brainscan --probe text --limit 1 -o scan"),
    new_markdown_cell(
        "Your own probe goes in the cell body of `%%brainscan`, one JSON object per line (`prompt`, `answer`, "
        "optional `scorer`: `number` or `match` for `--score generate`). `--layers I0:J0` restricts the sweep "
        "to blocks inside that window."
    ),
    new_code_cell(
        "%%brainscan --probe facts --layers 10:20 -o capitals\n"
        '{"prompt": "The capital of Spain is", "answer": "Madrid"}\n'
        '{"prompt": "The capital of Germany is", "answer": "Berlin"}\n'
        '{"prompt": "The capital of Canada is", "answer": "Ottawa"}'
    ),
    new_markdown_cell(
        "## The anatomy\n\n"
        "The map shows what the RYS work describes: every block that includes layer 0 is catastrophic, blocks "
        "reaching into the last layers hurt, and middle blocks are nearly harmless."
    ),
    new_code_cell(
        "import numpy as np\n\n"
        "L = m.n_layers\n"
        "middle = [scan.delta[i, j] for i in range(L // 4, 3 * L // 4) for j in range(i + 1, 3 * L // 4 + 1)]\n"
        "print(f'best block containing layer 0: delta {scan.delta[0, 1:].max():+.1f}')\n"
        "print(f'median middle block:           delta {np.median(middle):+.1f}')\n"
        "print('every block with layer 0 is far worse than the median middle block:',\n"
        "      bool(scan.delta[0, 1:].max() < np.median(middle) - 0.5))",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "Results are data: `scan.delta` is the map as an array (NaN where undefined), `scan.best(k)` the top "
        "configurations, `scan.to_pandas()` one tidy row per configuration, `scan.figure()` a plotly figure, "
        "and `scan.save(path)` / `nm.load_result(path)` a file. `--save PATH` writes the scan as it goes and "
        "`--resume PATH` continues one that was interrupted with Ctrl-C."
    ),
    new_code_cell(
        "frame = scan.to_pandas()\n"
        "frame['angular_distance'] = scan.angular_distance[frame.i, frame.j]\n"
        "print(frame.sort_values('delta', ascending=False).head(5).round(3).to_string(index=False))\n"
        "rho = frame['delta'].rank().corr((-frame['angular_distance']).rank())  # Spearman\n"
        "print(f'rank correlation of delta with -angular distance (the one-forward proxy): {rho:.2f}')"
    ),
    new_markdown_cell(
        "## Click into a configuration\n\n"
        "Clicking a cell runs `scan.apply(i, j)`: the program is applied to the model (it stays applied) and "
        "the before/after diff shows what it does to greedy continuations, next-token guesses and perplexity. "
        "Here we apply the best configuration from Python."
    ),
    new_code_cell(
        "best = scan.best(1)[0]\n"
        "print(f'duplicate {best.i}:{best.j} (block of {best.block_size}), delta {best.delta:+.3f}')\n"
        "scan.apply(best.i, best.j)"
    ),
    new_code_cell(
        "print('applied:', m.program == scan.program(best.i, best.j))\n"
        "m.reset()\n"
        "print('reset:', m.program.is_identity)",
        metadata=CHECK,
    ),
]

if __name__ == "__main__":
    from run_demo import build_notebook

    build_notebook(NAME, cells)
