"""Agora: fine-tuning by growing the training set around the dev mistakes of the best candidate, labelled by
an already trained model, while pruning the hyperparameter search space (README.md, section "Agora").

Modules (import what you need; nothing is imported here, so `import bort.agora` stays free of MXNet):
- `loop`: `run_agora`, `AgoraSettings`, `AgoraResult`: the resumable loop and its JSON-lines log.
- `interfaces`: the protocols the loop is written against (candidate trainer, task casting, labeller S, f).
- `grid`: the search space Θ (the release's grid, JSON grid files). `pruning`: step 6 of the loop.
- `casting`: `TaskCasting` (mistakes, labels and scores for every `bort.tasks` head), `ModelLabeller`.
- `token_edits`, `mlm_perturbation`: data-generating functions on token ids with a drift limit (`drift`);
  `text_points`: those applied to the texts of task examples.
- `finetune_adapter`: `FinetuneCandidates`, the candidates trained by `bort.finetune`; `load_labeller`.
- `baseline`: plain fine-tuning of the same grid under the same total budget, for comparison.
"""
