"""%%project and %probe: thin shells over nm.project and nm.probe; every option is checked
before any block runs, and each refusal is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuro_magics.analyses.probing import ProbeResult
from neuro_magics.analyses.projection import ProjectionResult
from test_bad_input import one_line


def test_project_reads_labelled_lines_and_stores_the_result(shell, tiny_in_shell):
    cell = "en\tthe cat\nfr\tle chat\nen\ta dog\n"
    result = shell.run_cell_magic("project", "--layers 1,3 --clusters 2 -o mapped", cell)
    assert isinstance(result, ProjectionResult) and shell.user_ns["mapped"] is result
    assert result.labels == ["en", "fr", "en"] and result.texts == ["the cat", "le chat", "a dog"]
    assert result.steps == [1, 3] and result.color == "cluster" and result.clusters.shape == (2, result.n_points)


def test_project_demo_and_text_points(shell, tiny_in_shell):
    result = shell.run_line_magic("project", "--demo --unit text --pool last --layers 2 --color label")
    assert result.unit == "text" and result.n_points == len(result.texts) and set(result.labels) == {"en", "fr"}


def test_probe_on_a_file_and_a_task(shell, tiny_in_shell, tmp_path):
    rows = [{"text": f"{word} {k}", "label": word} for word in ("up", "down") for k in range(4)]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = shell.run_line_magic("probe", f"--data {path} --layers 0-1 --cv 2 --kind massmean -o p")
    assert isinstance(result, ProbeResult) and shell.user_ns["p"] is result
    assert result.classes == ["down", "up"] and result.probe_kind == "massmean" and result.accuracy.shape == (2,)
    assert np.array_equal(shell.run_line_magic("probe", "--task language --layers 1 --cv 2").classes, ["en", "fr"])


@pytest.mark.parametrize("line, cell, match", [
    ("--method lda", "a\nb\nc", "Unknown --method 'lda'"),
    ("--unit word", "a\nb\nc", "Unknown --unit 'word'"),
    ("--pool max --unit text", "a\nb\nc", "Unknown --pool 'max'"),
    ("--site logits", "a\nb\nc", "Unknown --site 'logits'"),
    ("--color cluster", "a\nb\nc", "--color cluster needs --clusters"),
    ("--color size", "a\nb\nc", "Unknown --color 'size'"),
    ("--clusters 1", "a\nb\nc", "at least 2"),
    ("--clusters many", "a\nb\nc", "number of clusters or auto"),
    ("-o 1x", "a\nb\nc", "not a valid Python name"),
    ("", "  \n", "Write one text per line"),
    ("--demo", "some text", "leave the cell empty"),
    ("", "en\tthe cat\nle chat", "Line 2 has no label"),
    ("--steps 9", "a\nb\nc", "--steps '9'"),
])
def test_project_refuses_bad_options_in_one_line(shell, tiny_in_shell, line, cell, match):
    one_line(shell, tiny_in_shell, match, "project", line, cell, runs_nothing=True)


@pytest.mark.parametrize("line, match", [
    ("", "Give exactly one of --data"),
    ("--task sentiment --data x.jsonl", "Give exactly one of --data"),
    ("--task weather", "Unknown --task 'weather'"),
    ("--task sentiment --kind svm", "Unknown --kind 'svm'"),
    ("--task sentiment --cv 1", "at least 2 folds"),
    ("--task sentiment --pool max", "Unknown --pool 'max'"),
    ("--data /nonexistent/x.jsonl", "No file"),
    ("--task sentiment --steps 2-9", "--steps '2-9'"),
])
def test_probe_refuses_bad_options_in_one_line(shell, tiny_in_shell, line, match):
    one_line(shell, tiny_in_shell, match, "probe", line, runs_nothing=True)


def test_probe_refuses_one_class_and_too_few_texts_for_the_folds(shell, tiny_in_shell, tmp_path):
    one_class = tmp_path / "one.jsonl"
    one_class.write_text("".join(json.dumps({"text": f"t{k}", "label": "same"}) + "\n" for k in range(6)))
    one_line(shell, tiny_in_shell, "at least two classes", "probe", f"--data {one_class}", runs_nothing=True)
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps({"text": f"t{k}", "label": "ab"[k % 2]}) + "\n" for k in range(6)))
    one_line(shell, tiny_in_shell, "fewer than the 5 cross-validation folds", "probe", f"--data {few}",
             runs_nothing=True)
    unlabelled = tmp_path / "missing.jsonl"
    unlabelled.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n')
    one_line(shell, tiny_in_shell, "missing.jsonl:2 is not a", "probe", f"--data {unlabelled}", runs_nothing=True)
