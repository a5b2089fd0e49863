"""Regenerates the bundled demo data (already committed; run only to change it):
    .venv/bin/python data/demo/generate.py   (the vocabulary in vocab/ was trained once; see README.md here)

- glue/SST-2: a made-up sentiment task in GLUE's SST-2 format: a review sentence whose label follows
  the polarity of its opinion words (flipped by "not"). Learnable from scratch in a minute on a CPU.
- glue/WNLI and superglue/WSC: small Winograd-style sets in the official formats, for the TEST1/TEST2
  smoke tests (too small to learn anything from; they check that the pipeline runs).
Text is generated from templates with a fixed seed, so the files are reproducible.
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
POSITIVE = ["wonderful", "delightful", "brilliant", "moving", "charming", "gripping", "beautiful", "funny",
            "clever", "superb", "touching", "smart"]
NEGATIVE = ["dull", "tedious", "awful", "boring", "clumsy", "shallow", "bland", "painful", "messy", "silly",
            "lifeless", "weak"]
SUBJECTS = ["the film", "this movie", "the story", "the acting", "the script", "the ending", "the cast",
            "the soundtrack", "the director's new picture", "the first half", "the dialogue", "the plot"]
FILLERS = ["", "frankly ", "honestly ", "overall ", "in the end ", "for most of its length "]
INTENSIFIERS = ["", "truly ", "really ", "quite ", "rather ", "utterly "]
NAMES = ["Anna", "Ben", "Carla", "David", "Emma", "Frank", "Grace", "Henry", "Iris", "Jack", "Kate", "Leo"]


def review(rng):
    positive = rng.random() < 0.5
    negated = rng.random() < 0.1
    word = rng.choice(POSITIVE if positive != negated else NEGATIVE)
    text = f"{rng.choice(FILLERS)}{rng.choice(SUBJECTS)} is {'not ' if negated else ''}" \
           f"{rng.choice(INTENSIFIERS)}{word} ."
    return text.strip(), int(positive)


def write_tsv(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\t".join(header) + "\n")
        for row in rows:
            handle.write("\t".join(str(value) for value in row) + "\n")


def sst(rng):
    for split, count in (("train", 800), ("dev", 200), ("test", 200)):
        rows = [review(rng) for _ in range(count)]
        if split == "test":
            write_tsv(f"{HERE}/glue/SST-2/test.tsv", ["index", "sentence"], [(i, t) for i, (t, _) in enumerate(rows)])
        else:
            write_tsv(f"{HERE}/glue/SST-2/{split}.tsv", ["sentence", "label"], rows)


def winograd(rng):
    """(sentence, pronoun sentence, candidate, is_correct) items about two people and a pronoun."""
    templates = [
        ("{a} thanked {b} because {p} had helped with the move.", "{b}", "{a}"),
        ("{a} could not lift {b} because {p} was too weak.", "{a}", "{b}"),
        ("{a} called {b} because {p} wanted some advice.", "{a}", "{b}"),
        ("{a} beat {b} at chess because {p} played more carefully.", "{a}", "{b}"),
        ("{a} apologised to {b} because {p} had been rude.", "{a}", "{b}"),
        ("{a} paid {b} because {p} had fixed the roof.", "{b}", "{a}"),
    ]
    items = []
    for _ in range(64):
        template, right, wrong = rng.choice(templates)
        a, b = rng.sample(NAMES, 2)
        values = dict(a=a, b=b, p="they")
        sentence = template.format(**values)
        candidate = (right if rng.random() < 0.5 else wrong).format(**values)
        items.append((sentence, candidate, candidate == right.format(**values)))
    return items


def wnli_and_wsc(rng):
    items = winograd(rng)
    splits = {"train": items[:40], "dev": items[40:52], "test": items[52:]}
    for split, part in splits.items():
        rows = []
        for index, (sentence, candidate, correct) in enumerate(part):
            hypothesis = sentence.split(" because ")[1].replace("they", candidate, 1).capitalize()
            rows.append((index, sentence, hypothesis) + (() if split == "test" else (int(correct),)))
        header = ["index", "sentence1", "sentence2"] + ([] if split == "test" else ["label"])
        write_tsv(f"{HERE}/glue/WNLI/{split}.tsv", header, rows)
        os.makedirs(f"{HERE}/superglue/WSC", exist_ok=True)
        name = {"train": "train", "dev": "val", "test": "test"}[split]
        with open(f"{HERE}/superglue/WSC/{name}.jsonl", "w", encoding="utf-8", newline="\n") as handle:
            for index, (sentence, candidate, correct) in enumerate(part):
                words = sentence.split()
                record = {"text": sentence, "idx": index,
                          "target": {"span1_text": candidate, "span1_index": words.index(candidate),
                                     "span2_text": "they", "span2_index": words.index("they")}}
                if split != "test":
                    record["label"] = bool(correct)
                handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    generator = random.Random(20201118)
    sst(generator)
    wnli_and_wsc(generator)
