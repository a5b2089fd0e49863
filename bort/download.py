"""Downloading Bort's released weights and RoBERTa's vocabulary, for machines with a network.

`download_file` is the one streaming routine: it writes `<dest>.part`, resumes a partial `.part` with an HTTP
`Range` request (starting over when the server answers 200 instead of 206), retries connection errors with
backoff, checks the sha1 where one is published and only then renames the file onto `dest`, so a file under
its final name is always complete. `download_model` fetches the files of `KNOWN_FILES` into one directory and
checks that they are what they claim to be (the weights read as Bort parameters, the vocabulary loads).

Mirrors: `mirror=` or the environment variable `BORT_DOWNLOAD_MIRROR` (e.g. `http://host:8000/prefix`)
replaces the scheme and host of every known URL and keeps its path, so one server can stand in for S3,
Hugging Face and the Gluon repository.
"""
import dataclasses
import hashlib
import http.client
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from typing import Optional

from .errors import BortError, ChecksumError, ConfigError, DownloadError

MIRROR_ENV = "BORT_DOWNLOAD_MIRROR"
CHUNK_BYTES = 1 << 20
USER_AGENT = "bort-download/1.0"
# 4xx answers are final (the same request gets the same answer) except these; 5xx answers are retried.
RETRIED_HTTP_4XX = (408, 429)
ROBERTA_VOCAB_SIZE = 50265


@dataclasses.dataclass(frozen=True)
class KnownFile:
    """One file this package knows where to fetch."""
    name: str  # the file name under the output directory
    url: str
    sha1: Optional[str] = None  # of the bytes at `url`; None where nobody publishes one
    member: Optional[str] = None  # `url` is a zip archive and this member of it becomes `name`
    member_sha1: Optional[str] = None
    note: str = ""  # what a user should know about how the file is checked


BORT_PARAMS_URL = "https://alexa-saif-bort.s3.amazonaws.com/bort.params"
HF_ROBERTA_URL = "https://huggingface.co/FacebookAI/roberta-base/resolve/main/{}"
# GluonNLP 0.10's names, checksums and URL scheme: gluonnlp/data/utils.py (`_vocab_sha1`, `_url_format`),
# gluonnlp/data/transforms.py (`GPT2BPETokenizer.bpe_ranks_*_hash`) and mxnet/gluon/utils.py (`_get_repo_url`).
GLUON_REPO_URL = "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/"
GLUON_VOCAB_URL = GLUON_REPO_URL + "gluon/dataset/vocab/{}"

KNOWN_FILES = {
    "params": (
        KnownFile("bort.params", BORT_PARAMS_URL,
                  note="Amazon publishes no checksum for bort.params: it is checked by reading it as Bort "
                       "parameters instead"),
    ),
    "vocab:hf": tuple(
        KnownFile(name, HF_ROBERTA_URL.format(name),
                  note=f"no checksum is known for roberta-base's {name}: it is checked by loading the vocabulary")
        for name in ("vocab.json", "merges.txt")),
    "vocab:gluonnlp": (
        KnownFile("openwebtext_ccnews_stories_books_cased-2b804f8f.vocab",
                  GLUON_VOCAB_URL.format("openwebtext_ccnews_stories_books_cased-2b804f8f.zip"),
                  member="openwebtext_ccnews_stories_books_cased-2b804f8f.vocab",
                  member_sha1="2b804f8f90f9f93c07994b703ce508725061cf43"),
        KnownFile("openai_webtext_bpe_ranks-396d4d8e.json",
                  GLUON_VOCAB_URL.format("openai_webtext_bpe_ranks-396d4d8e.zip"),
                  sha1="1a770728fd102bc9dc332f322e6bfb294767a685",
                  member="openai_webtext_bpe_ranks-396d4d8e.json",
                  member_sha1="396d4d8ec90cb02f4d56e049e0e4add868bcd943"),
    ),
}
WHAT_CHOICES = ("params", "vocab")
VOCAB_FORMATS = ("hf", "gluonnlp")


@dataclasses.dataclass
class FileResult:
    """What happened to one file: status is 'downloaded' or 'skipped' (already there and matching)."""
    name: str
    path: str
    url: str
    status: str
    detail: str = ""


class _Retryable(Exception):
    """A failure worth another try (connection lost, timeout, a 5xx answer)."""


def file_sha1(path):
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def check_mirror(mirror):
    """ConfigError unless `mirror` is empty or an http(s) URL with a host."""
    base = urllib.parse.urlsplit(mirror or "")
    if mirror and (base.scheme not in ("http", "https") or not base.netloc):
        raise ConfigError(f"mirror {mirror!r} is not an http(s) URL such as http://host:8000 or "
                          f"https://host/prefix")


def apply_mirror(url, mirror):
    """`url` with its scheme and host replaced by `mirror` (which may carry a path prefix); unchanged if none."""
    if not mirror:
        return url
    check_mirror(mirror)
    parts = urllib.parse.urlsplit(url)
    return mirror.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def _open(url, dest, method="GET", offset=0, timeout=60.0):
    """urlopen with the errors sorted: final HTTP errors -> DownloadError, transient ones -> _Retryable."""
    request = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            raise  # the caller starts over without a Range
        message = f"{url}: HTTP {err.code} {err.reason} (downloading to {dest})"
        if err.code >= 500 or err.code in RETRIED_HTTP_4XX:
            raise _Retryable(message) from None
        raise DownloadError(message) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise _Retryable(f"{getattr(err, 'reason', None) or err}") from None


def _with_retries(action, url, dest, retries, backoff):
    """Run `action()`; a _Retryable failure is retried `retries` times, sleeping backoff, 2*backoff, ..."""
    for attempt in range(retries + 1):
        try:
            return action()
        except _Retryable as err:
            last = err
            if attempt < retries:
                time.sleep(backoff * 2 ** attempt)
    raise DownloadError(f"cannot download {url} to {dest}: {last} (gave up after {retries + 1} attempts; "
                        f"run again to resume)")


def _remote_size(url, dest, timeout):
    """The server's Content-Length for `url` (a HEAD request), or None when it does not say.

    urllib turns HEAD into GET when it follows a redirect; closing the response unread still fetches no body.
    """
    with _open(url, dest, method="HEAD", timeout=timeout) as response:
        length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _fetch_into(url, dest, part, progress, timeout):
    """One attempt at getting the rest of `url` into `part` (appending after a 206, rewriting after a 200)."""
    from bort.progress import tqdm

    have = os.path.getsize(part) if os.path.exists(part) else 0
    try:
        response = _open(url, dest, offset=have, timeout=timeout)
    except urllib.error.HTTPError:  # 416: the .part is as long as the file (or longer): start over
        os.remove(part)
        have = 0
        response = _open(url, dest, timeout=timeout)
    with response:
        if have and response.status == 206:
            start = response.headers.get("Content-Range", "").replace("bytes ", "").split("-")[0]
            if start != str(have):
                os.remove(part)
                raise _Retryable(f"server resumed at {start!r} instead of byte {have}; starting over")
            mode = "ab"
        elif response.status == 200:
            mode, have = "wb", 0  # the server sent the whole file
        else:
            raise DownloadError(f"{url}: unexpected HTTP {response.status} (downloading to {dest})")
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        with open(part, mode) as out, tqdm(total=have + expected if expected is not None else None, initial=have,
                                           unit="B", unit_scale=True, unit_divisor=1024,
                                           desc=os.path.basename(dest), disable=not progress) as bar:
            while True:
                try:
                    block = response.read(CHUNK_BYTES)
                except (http.client.HTTPException, OSError) as err:  # a write error below is not retried
                    raise _Retryable(f"connection lost after {have + received} bytes ({err})") from None
                if not block:
                    break
                out.write(block)
                received += len(block)
                bar.update(len(block))
    # http.client returns a short body without complaint when the connection drops: count the bytes.
    if expected is not None and received < expected:
        raise _Retryable(f"connection closed after {have + received} of {have + expected} bytes")


def _existing_is_current(url, dest, sha1, timeout, retries, backoff):
    """(True, '') when `dest` already holds the file, else (False, why it differs)."""
    if sha1:
        got = file_sha1(dest)
        return got == sha1, f"sha1 {got}, expected {sha1}"
    size = os.path.getsize(dest)
    remote = _with_retries(lambda: _remote_size(url, dest, timeout), url, dest, retries, backoff)
    if remote is None:
        return False, "no checksum is known and the server does not give the size to compare with"
    return size == remote, f"{size} bytes, the server has {remote}"


def download_file(url, dest, sha1=None, force=False, progress=True, retries=3, backoff=1.0, timeout=60.0):
    """Fetch `url` to `dest`; returns 'downloaded' or 'skipped'.

    An existing `dest` is skipped when it matches (its sha1, or with no sha1 its size against the server's
    Content-Length) and otherwise refused unless `force`, in which case it is replaced once the new file is
    complete. A sha1 mismatch removes the download and raises `ChecksumError`.
    """
    dest = os.fspath(dest)
    if os.path.isdir(dest):
        raise DownloadError(f"{dest} is a directory; cannot download {url} there")
    if os.path.exists(dest):
        current, why = _existing_is_current(url, dest, sha1, timeout, retries, backoff)
        if current:
            return "skipped"
        if not force:
            raise DownloadError(f"{dest} already exists and differs from {url} ({why}); pass --force to "
                                f"replace it")
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = dest + ".part"
    _with_retries(lambda: _fetch_into(url, dest, part, progress, timeout), url, dest, retries, backoff)
    if sha1:
        got = file_sha1(part)
        if got != sha1:
            os.remove(part)
            raise ChecksumError(f"{url}: downloaded file has sha1 {got}, expected {sha1}; removed it and kept "
                                f"nothing at {dest}")
    os.replace(part, dest)
    return "downloaded"


def _extract_member(archive, member, dest, member_sha1, url):
    """Unzip `member` of `archive` onto `dest` atomically, checking its sha1 before it gets its final name."""
    from .io_utils import atomic_path

    try:
        with zipfile.ZipFile(archive) as bundle:
            if member not in bundle.namelist():
                raise DownloadError(f"{url}: the archive has no {member} (it has {', '.join(bundle.namelist())})")
            with atomic_path(dest) as tmp:
                with bundle.open(member) as source, open(tmp, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK_BYTES)
                got = file_sha1(tmp)
                if member_sha1 and got != member_sha1:
                    raise ChecksumError(f"{url}: {member} in the archive has sha1 {got}, expected {member_sha1}; "
                                        f"kept nothing at {dest}")
    except zipfile.BadZipFile as err:
        raise DownloadError(f"{url}: not a zip archive ({err}); kept nothing at {dest}") from None


def fetch_known_file(known, out_dir, mirror=None, force=False, progress=True, retries=3, backoff=1.0,
                     timeout=60.0):
    """Download one `KnownFile` into `out_dir` (unzipping it when it comes zipped); returns a `FileResult`."""
    dest = os.path.join(os.fspath(out_dir), known.name)
    url = apply_mirror(known.url, mirror)
    options = dict(progress=progress, retries=retries, backoff=backoff, timeout=timeout)
    if known.member is None:
        status = download_file(url, dest, known.sha1, force=force, **options)
        return FileResult(known.name, dest, url, status, known.note)
    if os.path.exists(dest):
        got = file_sha1(dest)
        if got == known.member_sha1:
            return FileResult(known.name, dest, url, "skipped", known.note)
        if not force:
            raise DownloadError(f"{dest} already exists and differs from the file in {url} (sha1 {got}, "
                                f"expected {known.member_sha1}); pass --force to replace it")
    archive = os.path.join(os.fspath(out_dir), os.path.basename(urllib.parse.urlsplit(url).path))
    download_file(url, archive, known.sha1, force=True, **options)
    try:
        _extract_member(archive, known.member, dest, known.member_sha1, url)
    finally:
        os.remove(archive)
    return FileResult(known.name, dest, url, "downloaded", known.note)


def describe_bort_params(path):
    """One line about a Bort parameter file (parameter count, dtype, sizes); ParamsError when it is not one."""
    import numpy as np

    from .checkpoint import open_checkpoint
    from .errors import ParamsError
    from .params import DECODER_PREFIX, WORD_EMBED

    checkpoint = open_checkpoint(path)  # NaN or infinite weights are an error here too
    arrays, info = checkpoint.arrays, checkpoint.info
    if info.num_layers == 0:
        raise ParamsError(f"{path} is not a Bort parameter file: it has no encoder.transformer_cells")
    tied = info.prefix + DECODER_PREFIX + "3.weight"  # the word embedding, saved a second time
    count = sum(int(np.prod(array.shape)) for name, array in arrays.items()
                if not (name == tied and info.prefix + WORD_EMBED in arrays))
    return (f"{count / 1e6:.1f}M parameters ({len(arrays)} tensors), {info.dtype}, {info.num_layers} layers, "
            f"units {info.units}, FFN {info.hidden_size}, vocabulary {info.vocab_size}, "
            f"max length {info.max_length}, MLM decoder {'yes' if info.has_decoder else 'no'}")


def _check_or_remove(check, results, what):
    """Run `check()`; if it fails, remove the files downloaded just now and say which URL gave them."""
    try:
        return check()
    except BortError as err:
        fresh = [r for r in results if r.status == "downloaded"]
        for result in fresh:
            if os.path.exists(result.path):
                os.remove(result.path)
        action = ("removed " + ", ".join(r.path for r in fresh)) if fresh else "pass --force to download again"
        source = ", ".join(r.url for r in results)
        raise DownloadError(f"{source}: not {what} ({err}); {action}") from None


def parse_what(what):
    """'params,vocab' -> ('params', 'vocab'), checked."""
    items = tuple(item.strip() for item in (what.split(",") if isinstance(what, str) else what) if item.strip())
    unknown = [item for item in items if item not in WHAT_CHOICES]
    if unknown or not items:
        raise ConfigError(f"--what {what!r}: expected a comma-separated list of {', '.join(WHAT_CHOICES)}")
    return items


def download_model(out_dir="model", what=WHAT_CHOICES, vocab_format="hf", force=False, mirror=None,
                   progress=True, log=None, retries=3, backoff=1.0, timeout=60.0):
    """Fetch `bort.params` and/or RoBERTa's vocabulary into `out_dir`, check them, and return `FileResult`s.

    mirror: replaces scheme and host of every URL (default `$BORT_DOWNLOAD_MIRROR`). log: called with one line
    per step (e.g. `print`).
    """
    log = log or (lambda line: None)
    what = parse_what(what)
    if vocab_format not in VOCAB_FORMATS:
        raise ConfigError(f"--vocab-format {vocab_format!r}: expected one of {', '.join(VOCAB_FORMATS)}")
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    check_mirror(mirror)
    options = dict(mirror=mirror, force=force, progress=progress, retries=retries, backoff=backoff,
                   timeout=timeout)
    results = []
    groups = [("params", KNOWN_FILES["params"])] if "params" in what else []
    if "vocab" in what:
        groups.append(("vocab", KNOWN_FILES[f"vocab:{vocab_format}"]))
    for group, files in groups:
        fetched = []
        for known in files:
            log(f"{known.name}: from {apply_mirror(known.url, mirror)}")
            if known.note:
                log(f"{known.name}: {known.note}")
            result = fetch_known_file(known, out_dir, **options)
            log(f"{known.name}: {result.status} -> {result.path}")
            fetched.append(result)
        if group == "params":
            summary = _check_or_remove(lambda: describe_bort_params(fetched[0].path), fetched,
                                       "a Bort parameter file")
            fetched[0].detail = summary
            log(f"bort.params: {summary}")
        else:
            size = _check_or_remove(lambda: _vocabulary_size(vocab_format, [r.path for r in fetched]), fetched,
                                    "a loadable vocabulary")
            note = "" if size == ROBERTA_VOCAB_SIZE else f" (RoBERTa's has {ROBERTA_VOCAB_SIZE})"
            for result in fetched:
                result.detail = f"vocabulary of {size} tokens"
            log(f"vocabulary: {size} tokens{note}, loads with BortTokenizer.from_{vocab_format}")
        results += fetched
    return results


def _vocabulary_size(vocab_format, paths):
    from .tokenizer import BortTokenizer

    build = BortTokenizer.from_hf if vocab_format == "hf" else BortTokenizer.from_gluonnlp
    return build(*paths).vocab_size
