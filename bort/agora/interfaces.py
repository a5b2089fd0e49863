"""The small interfaces Agora's loop is written against. Anything with these methods works: the fine-tuning
of `bort.finetune` through `finetune_adapter.py`, or cheap deterministic stand-ins in tests.

The loop never looks inside an example, a label, a prediction or a model; these objects do.
"""
from typing import Any, List, Protocol, Sequence, Tuple


class CandidateTrainer(Protocol):
    """Trains and runs the candidate model (for Bort: the pretrained encoder plus a classifier head)."""

    def train(self, hparams: dict, train_examples: Sequence[Any], budget: int, seed: int) -> Any:
        """A model fine-tuned from the candidate's initial weights (fresh for every call) on `train_examples`
        with `hparams`, spending `budget` (the loop only passes it on; the adapter counts training examples
        processed) and seeded with `seed`. Must be deterministic for a resumed run to equal an uninterrupted one."""

    def predict(self, model: Any, examples: Sequence[Any]) -> List[Any]:
        """One prediction per example, in the form `AgoraTask.score` and `AgoraTask.is_mistake` take."""

    def save(self, model: Any, directory: str) -> None:
        """Write the model into the (existing, empty) `directory`."""

    def load(self, directory: str) -> Any:
        """The model `save` wrote."""


class AgoraTask(Protocol):
    """What the loop needs to know about the task's examples (see casting.py for the text tasks)."""

    def score(self, examples: Sequence[Any], predictions: Sequence[Any]) -> float:
        """Dev score, higher is better (the task's main metric)."""

    def is_mistake(self, example: Any, prediction: Any) -> bool:
        """Whether `prediction` is wrong for the labelled `example` (binary casting, see casting.py)."""

    def without_label(self, example: Any) -> Any:
        """The example with its gold label removed: all that generators and S ever see of a dev point."""

    def with_label(self, example: Any, label: Any, point_id: str) -> Any:
        """A training example: a generated `example` carrying S's `label`, identified by `point_id`."""

    def label_from_prediction(self, example: Any, prediction: Any) -> Any:
        """The label a model's prediction stands for (used when the candidate's own best model labels)."""

    def to_json(self, example: Any) -> Any:
        """A JSON-serialisable form of a generated training example (the run's state keeps them)."""

    def from_json(self, data: Any) -> Any:
        """The example `to_json` described."""


class Labeller(Protocol):
    """S: an already trained "ok-ish" model that labels generated points."""

    def label(self, examples: Sequence[Any]) -> List[Any]:
        """One label per (unlabelled) example."""


class PointGenerator(Protocol):
    """f: makes new points near given points."""

    def generate(self, examples: Sequence[Any], points_per_example: int, rng) -> List[Tuple[int, Any]]:
        """Up to `points_per_example` new unlabelled points per example, as (index of the source, point);
        `rng` is a `numpy.random.Generator`, the only source of randomness allowed."""
