"""Flag spelling and the flag groups several commands share (vocabulary, architecture, output).

Every command's parser is an `ArgumentParser` from here: flags are spelled with underscores (`--max_len`), and
the hyphenated spelling of any flag (`--max-len`) is accepted too, so scripts written against either spelling
keep working. Older spellings of renamed flags stay as explicit aliases next to the new name.
"""
import argparse

SPELLING_NOTE = "Every --flag_name can also be written --flag-name."


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, accepting `--a-b` for `--a_b` and the reverse (subcommand parsers inherit it)."""

    def __init__(self, *args, **kwargs):
        epilog = kwargs.get("epilog")
        kwargs["epilog"] = f"{epilog}\n\n{SPELLING_NOTE}" if epilog else SPELLING_NOTE
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        import sys

        argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(self._respell(argv), namespace)

    def _respell(self, argv):
        respelled = []
        for position, token in enumerate(argv):
            if token == "--":  # everything after it is positional
                return respelled + argv[position:]
            respelled.append(self._known_spelling(token))
        return respelled

    def _known_spelling(self, token):
        if not token.startswith("--") or len(token) < 3:
            return token
        name, equals, value = token.partition("=")
        if name in self._option_string_actions:
            return token
        for other in (name[:2] + name[2:].replace("-", "_"), name[:2] + name[2:].replace("_", "-")):
            if other in self._option_string_actions:
                return other + equals + value
        return token


def add_vocabulary_flags(group, hint=""):
    """The tokenizer's files: Hugging Face vocab.json + merges.txt, GluonNLP's two JSON files, or SentencePiece."""
    group.add_argument("--vocab", default=None, help=f"Hugging Face vocab.json (with --merges){hint}")
    group.add_argument("--merges", default=None, help="Hugging Face merges.txt (with --vocab)")
    group.add_argument("--gluonnlp_vocab", default=None,
                       help="GluonNLP vocabulary JSON (with --bpe_ranks), instead of --vocab/--merges")
    group.add_argument("--bpe_ranks", default=None, help="GluonNLP BPE ranks JSON (with --gluonnlp_vocab)")


def add_architecture_overrides(group):
    """Flags that change a predefined architecture's sizes (tiny models for tests and the demo)."""
    for name, what in (("num_layers", "encoder layers"), ("num_heads", "attention heads"),
                       ("units", "model width"), ("hidden_size", "feed-forward width"),
                       ("model_max_length", "position embeddings")):
        group.add_argument(f"--{name}", type=int, default=None, help=f"override the architecture's {what} (a "
                           "parameter file's shapes take precedence)")


def add_output_dir(group, default, what, required=False):
    """--output_dir (old spellings --out and --output accepted): the directory a command writes into."""
    group.add_argument("--output_dir", "--out", dest="output_dir", default=default, required=required,
                       metavar="DIR", help=f"{what} (default: %(default)s)" if not required else what)


def add_checkpoint_flags(group, model_flag="--model", nonfinite=True):
    """How a `.params` file is read (bort.checkpoint): the architecture whose head count a file without a record
    is assumed to have, the head count (the record's by default), and whether NaN/Inf weights may load."""
    from bort.cli.common import str2bool
    from bort.config import PREDEFINED

    group.add_argument(model_flag, default=None, choices=sorted(PREDEFINED),
                       help="architecture whose number of attention heads is assumed for a .params file without "
                            "a record (the sizes come from the file; default: bort_4_8_768_1024's 8, with a note)")
    group.add_argument("--num_heads", type=int, default=None,
                       help="number of attention heads (default: the checkpoint's record; a .params file's shapes "
                            "cannot tell it); contradicting the record is an error unless --force")
    if nonfinite:
        group.add_argument("--allow_nonfinite", type=str2bool, nargs="?", const=True, default=False,
                           help="load weights that hold NaN or infinite values (refused by default, naming the "
                                "tensors)")


def chosen_preset(argv, choices):
    """The --preset named in argv, or None: read before the real parser is built, since its defaults depend on it."""
    pre = ArgumentParser(add_help=False)
    pre.add_argument("--preset", choices=choices)
    return pre.parse_known_args(argv)[0].preset
