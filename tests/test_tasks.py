"""Task definitions, readers, metrics and submission writers (bort.tasks) on tiny official-format files."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import stats

from bort.errors import ConfigError, DataError, InputError
from bort.tasks import TASKS, default_data_dir, get_task
from bort.tasks import metrics as M

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = {b: os.path.join(HERE, "data", b) for b in ("glue", "superglue", "race")}

# Number of examples (MultiRC/ReCoRD: questions, RACE: questions) in each bundled file, counted by hand.
EXPECTED_COUNTS = {
    "CoLA": {"train": 5, "dev": 3, "test": 3},
    "SST": {"train": 4, "dev": 2, "test": 2},
    "MRPC": {"train": 3, "dev": 3, "test": 2},
    "QQP": {"train": 4, "dev": 3, "test": 2},
    "STS-B": {"train": 4, "dev": 4, "test": 2},
    "MNLI": {"train": 9, "dev_matched": 3, "dev_mismatched": 2, "test_matched": 2, "test_mismatched": 3},
    "QNLI": {"train": 3, "dev": 2, "test": 1},
    "RTE": {"train": 4, "dev": 2, "test": 2},
    "WNLI": {"train": 4, "dev": 2, "test": 1},
    "AX": {"test": 3},
    "BoolQ": {"train": 4, "dev": 2, "test": 2},
    "CB": {"train": 3, "dev": 2, "test": 1},
    "COPA": {"train": 4, "dev": 2, "test": 2},
    "MultiRC": {"train": 4, "dev": 2, "test": 4},
    "ReCoRD": {"train": 4, "dev": 2, "test": 2},
    "SuperGLUERTE": {"train": 3, "dev": 2, "test": 1},
    "WiC": {"train": 3, "dev": 2, "test": 1},
    "WSC": {"train": 3, "dev": 2, "test": 1},
    "AXb": {"test": 4},
    "AXg": {"test": 4},
    "RACE-H": {"train": 3, "dev": 3, "test": 3},
    "RACE-M": {"train": 4, "dev": 3, "test": 3},
}

SUBMISSION_NAMES = {
    ("CoLA", "test"): "CoLA.tsv", ("SST", "test"): "SST-2.tsv", ("MRPC", "test"): "MRPC.tsv",
    ("QQP", "test"): "QQP.tsv", ("STS-B", "test"): "STS-B.tsv", ("MNLI", "test_matched"): "MNLI-m.tsv",
    ("MNLI", "test_mismatched"): "MNLI-mm.tsv", ("QNLI", "test"): "QNLI.tsv", ("RTE", "test"): "RTE.tsv",
    ("WNLI", "test"): "WNLI.tsv", ("AX", "test"): "AX.tsv", ("BoolQ", "test"): "BoolQ.jsonl",
    ("CB", "test"): "CB.jsonl", ("COPA", "test"): "COPA.jsonl", ("MultiRC", "test"): "MultiRC.jsonl",
    ("ReCoRD", "test"): "ReCoRD.jsonl", ("SuperGLUERTE", "test"): "RTE.jsonl", ("WiC", "test"): "WiC.jsonl",
    ("WSC", "test"): "WSC.jsonl", ("AXb", "test"): "AX-b.jsonl", ("AXg", "test"): "AX-g.jsonl",
    ("RACE-H", "test"): "RACE-H.jsonl", ("RACE-M", "test"): "RACE-M.jsonl",
}


def read(name, split):
    task = get_task(name)
    return task, task.read(DATA[task.benchmark], split)


def zero_scores(task, examples):
    """Scores of the right shape for every head, all equal (so every prediction is the first option)."""
    out = []
    for ex in examples:
        if task.head == "classification":
            out.append(np.zeros(task.num_labels))
        elif task.head == "regression":
            out.append(np.array([2.5]))
        elif task.head == "multiple_choice":
            out.append(np.zeros(len(ex.options)))
        else:
            out.append(np.zeros((len(ex.options), 2)))
    return out


def read_lines(path):
    with open(path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    assert text.endswith("\n") and "\r" not in text
    return text[:-1].split("\n")


# ----- registry ---------------------------------------------------------------------------------------------

def test_registry_has_every_release_task_and_the_glue_diagnostic():
    assert list(TASKS) == list(EXPECTED_COUNTS)
    for name, task in TASKS.items():
        assert get_task(name) is task
        assert task.main_metric == task.metrics[0]


@pytest.mark.parametrize("alias,name", [("SST-2", "SST"), ("sst-2", "SST"), ("rte", "RTE"), ("AX-b", "AXb"),
                                        ("AX-g", "AXg"), ("SuperGLUE-RTE", "SuperGLUERTE"), ("STSB", "STS-B"),
                                        ("race-h", "RACE-H")])
def test_aliases(alias, name):
    assert get_task(alias) is TASKS[name]


def test_unknown_task_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        get_task("SQuAD")
    for name in ("CoLA", "MultiRC", "RACE-M", "SuperGLUERTE"):
        assert name in str(err.value)


def test_heads_labels_and_splits():
    assert TASKS["STS-B"].head == "regression" and TASKS["STS-B"].num_labels == 1
    assert TASKS["COPA"].head == TASKS["RACE-H"].head == "multiple_choice" and TASKS["COPA"].num_labels == 1
    assert TASKS["MultiRC"].head == "answer_scoring" and TASKS["MultiRC"].num_labels == 2
    assert TASKS["ReCoRD"].head == "candidate_ranking" and TASKS["ReCoRD"].num_labels == 2
    assert TASKS["MNLI"].labels == ("neutral", "entailment", "contradiction")
    assert TASKS["CB"].num_labels == 3 and TASKS["BoolQ"].labels == ("false", "true")
    assert TASKS["MNLI"].dev_splits == ("dev_matched", "dev_mismatched")
    assert TASKS["MNLI"].test_splits == ("test_matched", "test_mismatched")
    assert TASKS["CoLA"].dev_splits == ("dev",) and TASKS["CoLA"].test_splits == ("test",)
    assert (TASKS["AX"].train_task, TASKS["AXb"].train_task, TASKS["AXg"].train_task) == ("MNLI", "SuperGLUERTE", "SuperGLUERTE")
    assert TASKS["RTE"].train_task == "RTE"
    for name in ("AX", "AXb", "AXg"):
        assert TASKS[name].splits == ("test",) and TASKS[name].test_only and TASKS[name].dev_splits == ()


def test_main_metrics_follow_the_leaderboards():
    expected = {"CoLA": ("mcc",), "MRPC": ("f1", "accuracy"), "QQP": ("f1", "accuracy"),
                "STS-B": ("pearson", "spearman"), "CB": ("macro_f1", "accuracy"), "MultiRC": ("f1a", "em"),
                "ReCoRD": ("f1", "em"), "AXb": ("mcc",), "AXg": ("gender_parity", "accuracy"), "AX": ("mcc",)}
    for name, task in TASKS.items():
        assert task.metrics == expected.get(name, ("accuracy",)), name


def test_test_only_tasks_do_not_load_train(tmp_path):
    # docs/release_bugs.md, "Diagnostics cannot run": the release always loaded train/dev, which the diagnostics do not have.
    for name in ("AX", "AXb", "AXg"):
        with pytest.raises(ConfigError, match="no split 'train'"):
            get_task(name).read(DATA[get_task(name).benchmark], "train")


# ----- reading ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,split", [(n, s) for n, counts in EXPECTED_COUNTS.items() for s in counts])
def test_read_counts_and_instances(name, split):
    task, examples = read(name, split)
    assert task.splits == tuple(EXPECTED_COUNTS[name])
    assert len(examples) == EXPECTED_COUNTS[name][split]
    assert all(ex.split == split for ex in examples)
    labelled = not split.startswith("test") or name in ("AXb", "AXg", "RACE-H", "RACE-M")
    for ex in examples:
        inst = task.to_instances(ex)
        assert inst.segments and all(isinstance(a, str) and (b is None or isinstance(b, str)) for a, b in inst.segments)
        assert (inst.label is not None) == labelled
        if task.head == "classification":
            assert len(inst.segments) == 1
            if labelled:
                assert task.labels[inst.label] == ex.label
        elif task.head == "regression" and labelled:
            assert isinstance(inst.label, float)
        elif task.head == "multiple_choice":
            assert len(inst.segments) == len(ex.option_keys) >= 2
            if labelled:
                assert 0 <= inst.label < len(inst.segments)
        elif task.head in ("answer_scoring", "candidate_ranking") and labelled:
            assert len(inst.label) == len(inst.segments) and set(inst.label) <= {0, 1}


def test_cola_headerless_columns_and_test_index():
    _, train = read("CoLA", "train")
    assert [ex.label for ex in train] == ["1", "1", "0", "1", "0"]
    assert train[2].text_a == "They drank the pub." and train[2].text_b is None
    assert [ex.idx for ex in train] == [0, 1, 2, 3, 4]
    _, dev = read("CoLA", "dev")
    assert dev[1].text_a == 'Fred "watered the plants flat.'  # quotes are text, not CSV quoting
    _, test = read("CoLA", "test")
    assert [ex.idx for ex in test] == [0, 1, 2] and test[2].text_a == "Bill pushed Harry off the sofa the."


def test_glue_pair_fields():
    _, mrpc = read("MRPC", "train")  # header starts with a byte-order mark, as the download script leaves it
    assert mrpc[0].text_a.startswith("Amrozi accused") and mrpc[0].text_b.startswith("Referring to him")
    assert [ex.label for ex in mrpc] == ["1", "0", "1"]
    _, qqp = read("QQP", "test")
    assert [ex.idx for ex in qqp] == [0, 1] and qqp[1].text_b == "Which fish would survive in salt water?"
    _, qqp_dev = read("QQP", "dev")
    assert [ex.idx for ex in qqp_dev] == [201359, 263843, 172974]
    _, sts = read("STS-B", "train")
    assert [ex.label for ex in sts] == [5.0, 3.8, 3.8, 2.6]
    _, mnli = read("MNLI", "dev_matched")
    assert [ex.label for ex in mnli] == ["neutral", "contradiction", "entailment"]
    assert mnli[0].text_b == "Everyone really likes the newest benefits "
    _, qnli = read("QNLI", "train")
    assert qnli[2].text_a.startswith("What two things") and qnli[2].label == "entailment"


def test_superglue_fields_are_not_mangled():
    _, cb = read("CB", "train")  # the release cut CB texts to their last 4 "."-pieces and dropped a char
    assert cb[0].text_a == "It was a complex language. Not written down but handed down. One might say it was peeled down."
    assert cb[0].text_b == "the language was peeled down" and cb[1].label == "neutral"
    _, boolq = read("BoolQ", "train")
    assert [ex.label for ex in boolq] == ["true", "true", "true", "false"]
    assert boolq[0].text_b == "do iran and afghanistan speak the same language"
    _, wic = read("WiC", "dev")
    assert wic[0].text_a == "beat: We beat the competition." and wic[0].label == "true"
    _, wsc = read("WSC", "train")
    assert wsc[0].text_b == 'Does "He" refer to "Mark"?' and wsc[0].label == "false"
    _, axg = read("AXg", "test")
    assert [ex.group for ex in axg] == [0, 0, 1, 1]  # minimal pairs are consecutive rows, whatever pair_id says


def test_copa_options():
    task, copa = read("COPA", "dev")
    assert copa[1].options == (("The politician lost the election.", "What was the effect? He ran negative campaign ads."),
                               ("The politician lost the election.", "What was the effect? No one voted for him."))
    assert task.to_instances(copa[1]).label == 1


def test_multirc_one_example_per_question_with_clean_passage():
    task, examples = read("MultiRC", "train")
    first = examples[0]
    # docs/release_bugs.md, "MultiRC passage as a list": the release passed a list of sentences; here the passage is one clean string.
    assert first.text_a.startswith("While this process moved along, diplomacy continued its rounds. Direct pressure")
    assert "<b>" not in first.text_a and "<br>" not in first.text_a and "Sent 1" not in first.text_a
    assert first.option_keys == (0, 1, 2) and first.label == (0, 1, 1) and first.group == 0
    assert first.options[1] == (first.text_a, "What did the high-level effort to persuade Pakistan include? "
                                              "Direct pressure on the Taliban")
    assert [ex.idx for ex in examples] == [0, 1, 2, 3] and [ex.group for ex in examples] == [0, 0, 1, 1]
    assert examples[3].option_keys == (8, 9)
    assert task.to_instances(first) == ([s for s in first.options], [0, 1, 1])


def test_record_candidates_line_up_with_labels():
    task, examples = read("ReCoRD", "train")
    first = examples[0]
    # docs/release_bugs.md, "ReCoRD and MultiRC evaluation": every distinct entity is a candidate, in order of first mention, and labels follow that list.
    assert first.option_keys == ("Afghanistan", "Badam Bagh", "Gulistan Mirzaei")
    assert first.label == ("Afghanistan",)
    assert task.to_instances(first).label == [1, 0, 0]
    assert task.to_instances(examples[1]).label == [0, 1, 0]
    assert first.options[2][1] == "Her documentary about Gulistan Mirzaei is due to be shown this year."
    assert "@highlight" not in first.text_a and "\n- Most of the women" in first.text_a
    assert [ex.idx for ex in examples] == [0, 1, 2, 3] and [ex.group for ex in examples] == [0, 0, 1, 1]
    _, test = read("ReCoRD", "test")
    assert test[0].label is None and test[0].option_keys == first.option_keys


def test_race_natural_order_cloze_and_labels():
    task, examples = read("RACE-H", "dev")
    # 2.txt comes before 10.txt
    assert [ex.idx for ex in examples] == ["high2.txt-0", "high10.txt-0", "high10.txt-1"]
    assert [ex.label for ex in examples] == [0, 2, 1]
    assert examples[2].options[1] == (examples[2].text_a, "Tom is a student .")
    assert examples[1].options[0][1] == "When does Tom play football? Saturday morning"
    assert examples[1].option_keys == ("A", "B", "C", "D")


# ----- predictions and metrics ------------------------------------------------------------------------------

def test_predictions_from_scores_per_head():
    task, cola = read("CoLA", "dev")
    assert task.predictions_from_scores(cola, [[0.2, 0.1], [-1, 3], [0, 0.5]]) == ["0", "1", "1"]
    sts, examples = read("STS-B", "dev")
    assert sts.predictions_from_scores(examples[:2], [np.array([4.2]), 1.5]) == [4.2, 1.5]
    copa, examples = read("COPA", "dev")
    assert copa.predictions_from_scores(examples, [[0.1, 0.9], np.array([[2.0], [1.0]])]) == [1, 0]
    multirc, examples = read("MultiRC", "dev")
    scores = [np.array([[1.0, 0.0], [0.0, 2.0], [0.5, 0.6]]), np.array([-1.0, 3.0])]
    assert multirc.predictions_from_scores(examples, scores) == [(0, 1, 1), (0, 1)]
    record, examples = read("ReCoRD", "dev")
    scores = [np.array([[0.0, 1.0], [0.0, 3.0], [2.0, 0.0]]), np.array([0.1, 0.2, 0.05])]
    assert record.predictions_from_scores(examples, scores) == ["Badam Bagh", "Badam Bagh"]


def test_predictions_with_wrong_shapes_fail_clearly():
    task, cola = read("CoLA", "dev")
    with pytest.raises(InputError, match="shape"):
        task.predictions_from_scores(cola, [[0.0, 1.0, 2.0]] * 3)
    with pytest.raises(InputError, match="3 examples but 2"):
        task.predictions_from_scores(cola, [[0.0, 1.0]] * 2)
    multirc, examples = read("MultiRC", "dev")
    with pytest.raises(InputError, match="segments"):
        multirc.predictions_from_scores(examples, [np.zeros((2, 2)), np.zeros((2, 2))])


def test_accuracy_f1_and_macro_f1_by_hand():
    golds = ["1", "1", "0", "0", "1", "0"]
    preds = ["1", "0", "0", "1", "1", "0"]
    assert M.accuracy(golds, preds) == pytest.approx(4 / 6)
    # tp=2, fp=1, fn=1 -> P=2/3, R=2/3, F1=2/3
    assert M.binary_f1(golds, preds, "1") == pytest.approx(2 / 3)
    cb_golds = ["e", "e", "c", "n", "c", "e"]
    cb_preds = ["e", "c", "c", "e", "c", "e"]
    # e: tp2 fp1 fn1 -> 2/3 ; c: tp2 fp1 fn0 -> 0.8 ; n: tp0 fp0 fn1 -> 0
    assert M.macro_f1(cb_golds, cb_preds) == pytest.approx((2 / 3 + 0.8 + 0) / 3)


def test_mcc_binary_and_multiclass():
    golds = [1, 1, 1, 0, 0, 0, 0, 1]
    preds = [1, 0, 1, 0, 0, 1, 0, 1]
    tp, tn, fp, fn = 3, 3, 1, 1
    expected = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert M.matthews_corrcoef(golds, preds) == pytest.approx(expected)
    assert M.matthews_corrcoef([0, 1, 0], [1, 1, 1]) == 0.0  # constant predictions
    rng = np.random.RandomState(0)
    g = rng.randint(0, 3, size=50)
    p = np.where(rng.rand(50) < 0.6, g, rng.randint(0, 3, size=50))
    # Multi-class MCC is the correlation of the one-hot indicator matrices (Gorodkin 2004).
    X, Y = np.eye(3)[g], np.eye(3)[p]
    X, Y = X - X.mean(0), Y - Y.mean(0)
    expected = (X * Y).sum() / np.sqrt((X * X).sum() * (Y * Y).sum())
    assert M.matthews_corrcoef(list(g), list(p)) == pytest.approx(expected)


def test_pearson_and_spearman_match_scipy():
    rng = np.random.RandomState(1)
    x = rng.rand(30) * 5
    y = x + rng.randn(30)
    y[:6] = np.round(y[:6])  # ties
    x[10:14] = 2.0
    assert M.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])
    assert M.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])


def test_multirc_f1a_and_em_by_hand():
    golds = [(0, 1, 1), (1, 0), (0, 0, 1, 1)]
    preds = [(0, 1, 1), (1, 1), (0, 1, 0, 1)]
    # pooled: tp=4 (q1:2, q2:1, q3:1), fp=2 (q2, q3), fn=1 (q3) -> F1 = 8/11; EM: only q1 -> 1/3
    f1a, em = M.multirc_scores(golds, preds)
    assert f1a == pytest.approx(8 / 11) and em == pytest.approx(1 / 3)


def test_record_normalisation_f1_em_by_hand():
    assert M.normalize_answer("The  Badam-Bagh prison!") == "badambagh prison"
    assert M.normalize_answer("An apple and a pear") == "apple and pear"
    golds = [("Barack Obama", "Obama"), ("the United States",), ("New York City",)]
    preds = ["obama", "United States of America", "Boston"]
    # q1: EM 1 (matches "Obama"). q2: pred tokens [united, states, of, america], gold [united, states]
    #     -> P=2/4, R=1, F1=2/3, EM 0. q3: 0.
    f1, em = M.record_scores(golds, preds)
    assert f1 == pytest.approx((1 + 2 / 3 + 0) / 3) and em == pytest.approx(1 / 3)


def test_gender_parity_by_hand():
    groups = [7, 7, 9, 9, 4, 4]
    preds = ["entailment", "entailment", "entailment", "not_entailment", "not_entailment", "not_entailment"]
    assert M.gender_parity(groups, preds) == pytest.approx(2 / 3)


def test_evaluate_returns_main_metric_first():
    task, dev = read("MRPC", "dev")  # golds 1, 0, 0
    result = task.evaluate(dev, ["1", "1", "0"])
    assert list(result) == ["f1", "accuracy"]
    assert result["f1"] == pytest.approx(2 / 3) and result["accuracy"] == pytest.approx(2 / 3)
    task, dev = read("STS-B", "dev")  # golds 5.0, 4.75, 5.0, 2.4
    preds = [4.0, 4.5, 3.0, 1.0]
    result = task.evaluate(dev, preds)
    assert list(result) == ["pearson", "spearman"]
    assert result["pearson"] == pytest.approx(stats.pearsonr([5.0, 4.75, 5.0, 2.4], preds)[0])
    task, dev = read("MultiRC", "dev")
    assert task.evaluate(dev, [(0, 1, 1), (0, 1)]) == {"f1a": 1.0, "em": 1.0}
    assert task.evaluate(dev, [(0, 1, 0), (0, 1)])["em"] == 0.5
    task, dev = read("ReCoRD", "dev")
    assert task.evaluate(dev, ["Afghanistan", "Gulistan Mirzaei"]) == {"f1": 0.5, "em": 0.5}
    task, axg = read("AXg", "test")
    result = task.evaluate(axg, ["not_entailment", "entailment", "entailment", "entailment"])
    assert result == {"gender_parity": 0.5, "accuracy": 0.75}
    task, race = read("RACE-M", "dev")
    assert task.evaluate(race, [3, 0, 0]) == {"accuracy": pytest.approx(2 / 3)}


def test_evaluate_without_labels_is_an_error():
    task, test = read("RTE", "test")
    with pytest.raises(DataError, match="no gold label"):
        task.evaluate(test, ["entailment"] * len(test))


# ----- submission files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,split", sorted(SUBMISSION_NAMES))
def test_every_test_split_writes_its_official_file(name, split, tmp_path):
    task, examples = read(name, split)
    preds = task.predictions_from_scores(examples, zero_scores(task, examples))
    path = task.write_predictions(examples, preds, tmp_path)
    assert os.path.basename(path) == SUBMISSION_NAMES[(name, split)]
    assert sorted(os.listdir(tmp_path)) == [SUBMISSION_NAMES[(name, split)]]  # atomic: no temporary left over
    lines = read_lines(path)
    if task.benchmark == "glue":
        assert lines[0] == "index\tprediction" and len(lines) == len(examples) + 1
        assert [line.split("\t")[0] for line in lines[1:]] == [str(ex.idx) for ex in examples]
    else:
        records = [json.loads(line) for line in lines]
        if name == "MultiRC":
            assert sum(len(r["passage"]["questions"]) for r in records) == len(examples)
        elif name.startswith("RACE"):
            assert sum(len(r["answers"]) for r in records) == len(examples)
        else:
            assert [r["idx"] for r in records] == [ex.idx for ex in examples]


def test_glue_tsv_exact_contents(tmp_path):
    task, test = read("CoLA", "test")
    path = task.write_predictions(test, ["1", "0", "1"], tmp_path)
    assert read_lines(path) == ["index\tprediction", "0\t1", "1\t0", "2\t1"]
    task, test = read("MNLI", "test_mismatched")
    path = task.write_predictions(test, ["entailment", "neutral", "contradiction"], tmp_path)
    assert path.endswith("MNLI-mm.tsv")
    assert read_lines(path) == ["index\tprediction", "0\tentailment", "1\tneutral", "2\tcontradiction"]
    task, test = read("STS-B", "test")
    path = task.write_predictions(test, [5.7, 2.34567], tmp_path)
    assert read_lines(path) == ["index\tprediction", "0\t5.000", "1\t2.346"]
    task, test = read("AX", "test")
    path = task.write_predictions(test, ["neutral", "entailment", "contradiction"], tmp_path)
    assert read_lines(path) == ["index\tprediction", "0\tneutral", "1\tentailment", "2\tcontradiction"]


def test_superglue_label_types(tmp_path):
    cases = [("BoolQ", ["true", "false"], ["true", "false"]),
             ("WiC", ["false"], ["false"]),
             ("WSC", ["true"], ["True"]),
             ("CB", ["contradiction"], ["contradiction"]),
             ("SuperGLUERTE", ["not_entailment"], ["not_entailment"]),
             ("COPA", [1, 0], [1, 0])]
    for name, preds, expected in cases:
        task, test = read(name, "test")
        path = task.write_predictions(test, preds, tmp_path)
        records = [json.loads(line) for line in read_lines(path)]
        assert records == [{"idx": ex.idx, "label": value} for ex, value in zip(test, expected)], name
    assert isinstance(records[0]["label"], int)


def test_multirc_record_race_exact_contents(tmp_path):
    task, test = read("MultiRC", "test")
    path = task.write_predictions(test, [(0, 1, 1), (1, 0), (0, 0, 0), (1, 1)], tmp_path)
    assert [json.loads(line) for line in read_lines(path)] == [
        {"idx": 0, "passage": {"questions": [
            {"idx": 0, "answers": [{"idx": 0, "label": 0}, {"idx": 1, "label": 1}, {"idx": 2, "label": 1}]},
            {"idx": 1, "answers": [{"idx": 3, "label": 1}, {"idx": 4, "label": 0}]}]}},
        {"idx": 1, "passage": {"questions": [
            {"idx": 2, "answers": [{"idx": 5, "label": 0}, {"idx": 6, "label": 0}, {"idx": 7, "label": 0}]},
            {"idx": 3, "answers": [{"idx": 8, "label": 1}, {"idx": 9, "label": 1}]}]}}]
    task, test = read("ReCoRD", "test")
    path = task.write_predictions(test, ["Gulistan Mirzaei", "Badam Bagh"], tmp_path)
    assert read_lines(path) == ['{"idx": 0, "label": "Gulistan Mirzaei"}', '{"idx": 1, "label": "Badam Bagh"}']
    task, test = read("RACE-H", "test")
    path = task.write_predictions(test, [3, 2, 1], tmp_path)
    assert [json.loads(line) for line in read_lines(path)] == [
        {"id": "high2.txt", "answers": ["D"]}, {"id": "high10.txt", "answers": ["C", "B"]}]


def test_dev_predictions_get_a_distinct_name(tmp_path):
    task, dev = read("MNLI", "dev_matched")
    path = task.write_predictions(dev, ["neutral"] * len(dev), tmp_path)
    assert os.path.basename(path) == "MNLI_dev_matched.tsv"


# ----- bad input --------------------------------------------------------------------------------------------

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def test_missing_file_names_every_place_looked(tmp_path):
    with pytest.raises(DataError) as err:
        get_task("RTE").read(tmp_path, "dev")
    message = str(err.value)
    assert "dev.tsv" in message and os.path.join(str(tmp_path), "RTE", "dev.tsv") in message
    assert os.path.join(str(tmp_path), "glue_data", "RTE", "dev.tsv") in message


def test_alternative_layouts_are_found(tmp_path):
    write(str(tmp_path / "glue_data" / "RTE" / "dev.tsv"), "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    write(str(tmp_path / "superglue" / "RTE" / "val.jsonl"),
          '{"premise": "p", "hypothesis": "h", "label": "entailment", "idx": 0}\n')
    assert get_task("RTE").read(tmp_path, "dev")[0].text_a == "a"
    assert get_task("SuperGLUERTE").read(tmp_path, "dev")[0].text_a == "p"


@pytest.mark.parametrize("text,pattern", [
    ("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tonly two\tcolumns\n", r"dev\.tsv:3: 3 tab-separated columns, expected 4"),
    ("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tmaybe\n", r"dev\.tsv:3: unknown label 'maybe'"),
    ("index\tpremise\thypothesis\tlabel\n0\ta\tb\tentailment\n", r"dev\.tsv:1: header has no column 'sentence1'"),
    ("index\tsentence1\tsentence2\tlabel\n", r"dev\.tsv: no RTE examples"),
    ("", r"dev\.tsv: the file is empty"),
])
def test_malformed_tsv(tmp_path, text, pattern):
    write(str(tmp_path / "RTE" / "dev.tsv"), text)
    with pytest.raises(DataError, match=pattern):
        get_task("RTE").read(tmp_path, "dev")


def test_bad_sts_score_and_cola_row(tmp_path):
    write(str(tmp_path / "STS-B" / "dev.tsv"),
          "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
          "0\tg\tf\ty\to\ts\ts\ta\tb\thigh\n")
    with pytest.raises(DataError, match=r"dev\.tsv:2: score 'high' is not a number"):
        get_task("STS-B").read(tmp_path, "dev")
    write(str(tmp_path / "CoLA" / "train.tsv"), "gj04\t1\t\tFine.\ngj04\t1\tNo tab for the sentence\n")
    with pytest.raises(DataError, match=r"train\.tsv:2: 3 tab-separated columns, expected 4"):
        get_task("CoLA").read(tmp_path, "train")


def test_qqp_short_train_rows_are_skipped_with_a_warning_but_not_in_dev(tmp_path):
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    rows = "1\t1\t2\tq one?\tq two?\t0\n2\t3\t4\tbroken row\n3\t5\t6\tq?\tq?\t1\n"
    write(str(tmp_path / "QQP" / "train.tsv"), header + rows)
    write(str(tmp_path / "QQP" / "dev.tsv"), header + rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        examples = get_task("QQP").read(tmp_path, "train")
    assert [ex.idx for ex in examples] == [1, 3]
    assert any("skipped 1 rows" in str(w.message) for w in caught)
    with pytest.raises(DataError, match=r"dev\.tsv:3"):
        get_task("QQP").read(tmp_path, "dev")


@pytest.mark.parametrize("task_name,folder,text,pattern", [
    ("CB", "CB", '{"premise": "p", "hypothesis": "h", "label": "neutral", "idx": 0}\n{"premise": "p", "hypo\n',
     r"val\.jsonl:2: broken JSON"),
    ("CB", "CB", '{"premise": "p", "hypothesis": "h", "label": "sure", "idx": 0}\n', r"val\.jsonl:1: unknown label 'sure'"),
    ("CB", "CB", '{"premise": "p", "label": "neutral", "idx": 0}\n', r"val\.jsonl:1: missing field 'hypothesis'"),
    ("BoolQ", "BoolQ", '{"question": "q", "passage": "p", "idx": 0, "label": 3}\n', r"val\.jsonl:1: unknown label 3"),
    ("COPA", "COPA", '{"premise": "p", "choice1": "a", "choice2": "b", "question": "why", "label": 0, "idx": 0}\n',
     r"val\.jsonl:1: COPA question"),
    ("CB", "CB", "\n\n", r"no CB examples"),
    ("ReCoRD", "ReCoRD", '{"idx": 0, "passage": {"text": "abc", "entities": [{"start": 1, "end": 9}]}, "qas": []}\n',
     r"val\.jsonl:1 \(entity 0\): span 1\.\.9 lies outside"),
    ("MultiRC", "MultiRC", '{"idx": 0, "passage": {"text": "t", "questions": [{"question": "q", "idx": 0, '
     '"answers": [{"text": "a", "idx": 0, "label": 2}]}]}}\n', r"val\.jsonl:1 \(question 0\) \(answer 0\): unknown label 2"),
])
def test_malformed_jsonl(tmp_path, task_name, folder, text, pattern):
    write(str(tmp_path / folder / "val.jsonl"), text)
    with pytest.raises(DataError, match=pattern):
        get_task(task_name).read(tmp_path, "dev")


def test_malformed_race(tmp_path):
    article = {"id": "high1.txt", "article": "a", "questions": ["q?"], "options": [["w", "x", "y", "z"]], "answers": ["E"]}
    write(str(tmp_path / "RACE" / "dev" / "high" / "1.txt"), json.dumps(article))
    with pytest.raises(DataError, match=r"1\.txt: question 0: unknown answer 'E'"):
        get_task("RACE-H").read(tmp_path, "dev")
    write(str(tmp_path / "RACE" / "dev" / "high" / "1.txt"), '{"id": "high1.txt",\n "article": }')
    with pytest.raises(DataError, match=r"1\.txt:2: broken JSON"):
        get_task("RACE-H").read(tmp_path, "dev")
    os.remove(str(tmp_path / "RACE" / "dev" / "high" / "1.txt"))
    with pytest.raises(DataError, match="no RACE-H examples"):
        get_task("RACE-H").read(tmp_path, "dev")
    with pytest.raises(DataError, match="directory 'train/high' not found"):
        get_task("RACE-H").read(tmp_path, "train")


def test_unknown_split_is_a_config_error():
    with pytest.raises(ConfigError, match="dev_matched"):
        get_task("MNLI").read(DATA["glue"], "dev")


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("BORT_DATA", str(tmp_path / "bort"))
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mx"))
    assert default_data_dir() == str(tmp_path / "bort")
    monkeypatch.delenv("BORT_DATA")
    assert default_data_dir() == os.path.join(str(tmp_path / "mx"), "datasets")
    monkeypatch.delenv("MXNET_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == os.path.join(str(tmp_path), ".mxnet", "datasets")
    write(str(tmp_path / ".mxnet" / "datasets" / "glue_wnli" / "dev.tsv"),
          "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t1\n")  # GluonNLP's cache folder name
    assert len(get_task("WNLI").read(None, "dev")) == 1


def test_tasks_package_never_imports_mxnet():
    code = "import sys, bort.tasks; assert 'mxnet' not in sys.modules and 'gluonnlp' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(HERE))


def test_diagnostics_share_the_label_order_of_the_model_that_predicts_them():
    for name in ("AX", "AXb", "AXg"):
        task = TASKS[name]
        assert task.labels == TASKS[task.train_task].labels


def test_dev_score_averages_the_main_metric_over_dev_splits():
    # docs/release_bugs.md, "Best-epoch selection": the release selected epochs on the last MNLI dev split only.
    mnli = TASKS["MNLI"]
    assert mnli.dev_score({"dev_matched": {"accuracy": 0.8}, "dev_mismatched": {"accuracy": 0.7}}) == pytest.approx(0.75)
    assert TASKS["MRPC"].dev_score({"dev": {"f1": 0.9, "accuracy": 0.5}}) == pytest.approx(0.9)
    with pytest.raises(InputError, match="dev_mismatched"):
        mnli.dev_score({"dev_matched": {"accuracy": 0.8}})
