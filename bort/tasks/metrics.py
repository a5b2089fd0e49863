"""Metrics as the GLUE, SuperGLUE and RACE leaderboards compute them (pure Python + numpy).

All return floats in [0, 1] (correlations in [-1, 1]), never percentages.

- `accuracy(golds, preds)`
- `matthews_corrcoef(golds, preds)`: binary or multi-class (Gorodkin's R_K, as sklearn and GLUE's AX use);
  0 when a marginal is constant, as sklearn returns.
- `binary_f1(golds, preds, positive)`: F1 of the positive class (MRPC, QQP, MultiRC's F1a).
- `macro_f1(golds, preds)`: unweighted mean of per-class F1 over the classes seen in golds or preds
  (sklearn `average='macro'`; CB).
- `pearson(x, y)`, `spearman(x, y)`: Spearman is Pearson on average ranks (ties share their mean rank).
- `multirc_scores(golds, preds)`: per-question lists of 0/1 -> `(f1a, em)`; F1a pools every answer option,
  EM is the fraction of questions with every option right.
- `record_scores(gold_answers, preds)`: per-query gold strings and a predicted string -> `(f1, em)`, each the
  max over the gold answers, averaged over queries, after SQuAD/ReCoRD normalisation (`normalize_answer`).
- `gender_parity(groups, preds)`: fraction of groups (AX-g minimal pairs) whose predictions all agree.
"""
import collections
import re
import string

import numpy as np


def _check_lengths(golds, preds):
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} gold labels but {len(preds)} predictions")
    if not len(golds):
        raise ValueError("no examples to score")


def accuracy(golds, preds):
    _check_lengths(golds, preds)
    return sum(g == p for g, p in zip(golds, preds)) / len(golds)


def _confusion(golds, preds):
    classes = sorted(set(golds) | set(preds), key=str)
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.float64)
    for g, p in zip(golds, preds):
        matrix[index[g], index[p]] += 1
    return classes, matrix


def matthews_corrcoef(golds, preds):
    _check_lengths(golds, preds)
    _, matrix = _confusion(golds, preds)
    true_counts = matrix.sum(axis=1)
    pred_counts = matrix.sum(axis=0)
    correct = np.trace(matrix)
    total = matrix.sum()
    numerator = correct * total - np.dot(true_counts, pred_counts)
    denominator = np.sqrt((total ** 2 - np.dot(pred_counts, pred_counts))
                          * (total ** 2 - np.dot(true_counts, true_counts)))
    return float(numerator / denominator) if denominator else 0.0


def _f1(true_positive, false_positive, false_negative):
    denominator = 2 * true_positive + false_positive + false_negative
    return 2 * true_positive / denominator if denominator else 0.0


def binary_f1(golds, preds, positive):
    _check_lengths(golds, preds)
    tp = sum(g == positive and p == positive for g, p in zip(golds, preds))
    fp = sum(g != positive and p == positive for g, p in zip(golds, preds))
    fn = sum(g == positive and p != positive for g, p in zip(golds, preds))
    return _f1(tp, fp, fn)


def macro_f1(golds, preds):
    _check_lengths(golds, preds)
    classes = sorted(set(golds) | set(preds), key=str)
    return float(np.mean([binary_f1(golds, preds, c) for c in classes]))


def pearson(x, y):
    _check_lengths(x, y)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.dot(x, y) / denominator) if denominator else 0.0


def average_ranks(values):
    """1-based ranks; tied values get the mean of the ranks they span."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and values[order[end + 1]] == values[order[start]]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(x, y):
    _check_lengths(x, y)
    return pearson(average_ranks(x), average_ranks(y))


def multirc_scores(golds, preds):
    """`golds`, `preds`: one sequence of 0/1 answer labels per question. Returns `(f1a, em)`."""
    _check_lengths(golds, preds)
    flat_golds, flat_preds, exact = [], [], 0
    for question_golds, question_preds in zip(golds, preds):
        if len(question_golds) != len(question_preds):
            raise ValueError(f"a question has {len(question_golds)} answers but {len(question_preds)} predictions")
        flat_golds.extend(int(g) for g in question_golds)
        flat_preds.extend(int(p) for p in question_preds)
        exact += all(int(g) == int(p) for g, p in zip(question_golds, question_preds))
    return binary_f1(flat_golds, flat_preds, 1), exact / len(golds)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text):
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace (the SQuAD/ReCoRD rule)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction, gold):
    prediction_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(prediction_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction, gold):
    return float(normalize_answer(prediction) == normalize_answer(gold))


def record_scores(gold_answers, preds):
    """`gold_answers`: one non-empty sequence of strings per query; `preds`: one string per query."""
    _check_lengths(gold_answers, preds)
    f1_total = em_total = 0.0
    for golds, prediction in zip(gold_answers, preds):
        if not golds:
            raise ValueError("a query has no gold answers")
        f1_total += max(token_f1(prediction, g) for g in golds)
        em_total += max(exact_match(prediction, g) for g in golds)
    return f1_total / len(preds), em_total / len(preds)


def gender_parity(groups, preds):
    """`groups[i]`: the minimal pair example i belongs to. Fraction of pairs predicted identically."""
    _check_lengths(groups, preds)
    by_group = collections.OrderedDict()
    for group, prediction in zip(groups, preds):
        by_group.setdefault(group, []).append(prediction)
    same = sum(len(set(members)) == 1 for members in by_group.values())
    return same / len(by_group)
