"""The download command (bort/download.py, scripts/download_model.py) against a local HTTP server.

No test touches the internet: a threaded server on 127.0.0.1 serves files from a temporary directory under the
known URLs' paths, and the downloads are pointed at it through the mirror override. Its handler answers
`Range` requests (Python's SimpleHTTPRequestHandler does not), records every request, and can be told to fail
with an HTTP status or to cut the connection after some bytes.
"""
import hashlib
import http.server
import importlib.util
import os
import re
import shutil
import socket
import threading
import zipfile

import mxnet as mx
import pytest

from bort.cli import run_main
from bort.download import (
    KNOWN_FILES,
    MIRROR_ENV,
    KnownFile,
    apply_mirror,
    download_file,
    download_model,
    fetch_known_file,
)
from bort.errors import ChecksumError, ConfigError, DownloadError
from bort.tokenizer import BortTokenizer, train_byte_level_bpe

from conftest import FIXTURES_DIR, SAMPLE_TEXT

HERE = os.path.dirname(os.path.abspath(__file__))
PARAMS_PATH = "/bort.params"  # the paths of the known URLs, as the mirror keeps them
HF_PATH = "/FacebookAI/roberta-base/resolve/main/"
FAST = dict(progress=False, retries=2, backoff=0.0, timeout=10.0)


class FileServer:
    """Serves `root` on 127.0.0.1; `requests` lists (method, path, Range header) of every request received."""

    def __init__(self, root):
        self.root = root
        self.requests = []
        self.status_for = {}  # path -> HTTP status to answer instead of the file
        self.cut_after = {}  # path -> [bytes to send before closing the connection, how many times]
        self.honour_range = True
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self):
                self._serve(with_body=False)

            def do_GET(self):
                self._serve(with_body=True)

            def _serve(self, with_body):
                server.requests.append((self.command, self.path, self.headers.get("Range")))
                if self.path in server.status_for:
                    self.send_error(server.status_for[self.path])
                    return
                local = os.path.join(server.root, self.path.lstrip("/"))
                if not os.path.isfile(local):
                    self.send_error(404)
                    return
                with open(local, "rb") as handle:
                    data = handle.read()
                start, status = 0, 200
                wanted = self.headers.get("Range")
                if wanted and server.honour_range:
                    start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not with_body:
                    return
                body = data[start:]
                cut = server.cut_after.get(self.path)
                if cut and cut[1] > 0:
                    cut[1] -= 1
                    body = body[:cut[0]]  # the handler returns and HTTP/1.0 closes the connection
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs=dict(poll_interval=0.02),
                                       daemon=True)

    def put(self, path, source=None, data=None):
        local = os.path.join(self.root, path.lstrip("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        if source is not None:
            shutil.copyfile(source, local)
        else:
            with open(local, "wb") as handle:
                handle.write(data)
        return local

    def gets(self, path):
        return [r for r in self.requests if r[0] == "GET" and r[1] == path]


@pytest.fixture
def server(tmp_path):
    served = FileServer(str(tmp_path / "served"))
    served.thread.start()
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


@pytest.fixture(scope="module")
def small_vocab(tmp_path_factory):
    """A RoBERTa-style vocab.json + merges.txt (300 tokens) trained on the sample text."""
    directory = tmp_path_factory.mktemp("vocab")
    train_byte_level_bpe([SAMPLE_TEXT], str(directory), 300)
    return str(directory)


@pytest.fixture(autouse=True)
def no_mirror_from_environment(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)


def _bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


def _sha1(path):
    return hashlib.sha1(_bytes(path)).hexdigest()


def _serve_release(server, small_vocab):
    params = server.put(PARAMS_PATH, os.path.join(FIXTURES_DIR, "tiny_fp32.params"))
    for name in ("vocab.json", "merges.txt"):
        server.put(HF_PATH + name, os.path.join(small_vocab, name))
    return params


def _script_main():
    spec = importlib.util.spec_from_file_location("script_download_model",
                                                  os.path.join(HERE, "..", "scripts", "download_model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


# ------------------------------------------------------------------------------------------------ the table
def test_known_urls_and_mirror():
    assert KNOWN_FILES["params"][0].url == "https://alexa-saif-bort.s3.amazonaws.com/bort.params"
    assert KNOWN_FILES["params"][0].sha1 is None  # nobody publishes one; the file is inspected instead
    assert [f.url for f in KNOWN_FILES["vocab:hf"]] == [
        "https://huggingface.co/FacebookAI/roberta-base/resolve/main/vocab.json",
        "https://huggingface.co/FacebookAI/roberta-base/resolve/main/merges.txt"]
    # GluonNLP's own names embed the first 8 hex digits of the file's sha1.
    for known in KNOWN_FILES["vocab:gluonnlp"]:
        assert known.member == known.name and known.name.split("-")[-1].split(".")[0] == known.member_sha1[:8]
    assert apply_mirror("https://huggingface.co/a/b.json?x=1", "http://127.0.0.1:9/pre/") == \
        "http://127.0.0.1:9/pre/a/b.json?x=1"
    assert apply_mirror("https://h/a", None) == "https://h/a"
    with pytest.raises(ConfigError, match="ftp://x"):
        apply_mirror("https://h/a", "ftp://x")


# ------------------------------------------------------------------------------------------- full downloads
def test_download_model_fetches_params_and_vocabulary(server, small_vocab, tmp_path):
    params = _serve_release(server, small_vocab)
    out = tmp_path / "model"
    lines = []
    results = download_model(str(out), mirror=server.url, log=lines.append, **FAST)

    assert [(r.name, r.status) for r in results] == [
        ("bort.params", "downloaded"), ("vocab.json", "downloaded"), ("merges.txt", "downloaded")]
    assert _bytes(out / "bort.params") == _bytes(params)
    for name in ("vocab.json", "merges.txt"):
        assert _bytes(out / name) == _bytes(os.path.join(small_vocab, name))
    assert sorted(os.listdir(out)) == ["bort.params", "merges.txt", "vocab.json"]  # no .part left behind
    # The fixture: 2 layers, units 64, FFN 48, vocabulary 300, 64 positions, MLM decoder, float32.
    arrays = mx.nd.load(params)
    count = sum(a.size for n, a in arrays.items() if n != "decoder.3.weight")
    assert results[0].detail.startswith(f"{count / 1e6:.1f}M parameters ({len(arrays)} tensors), float32, 2 layers, "
                                        "units 64, FFN 48, vocabulary 300")
    assert results[1].detail == "vocabulary of 300 tokens"
    assert any("no checksum" in line and "bort.params" in line for line in lines)
    assert any(line.startswith("vocabulary: 300 tokens (RoBERTa's has 50265)") for line in lines)


def test_environment_variable_sets_the_mirror(server, small_vocab, tmp_path, monkeypatch):
    _serve_release(server, small_vocab)
    monkeypatch.setenv(MIRROR_ENV, server.url + "/")
    results = download_model(str(tmp_path / "m"), what="vocab", **FAST)
    assert [r.url for r in results] == [server.url + HF_PATH + "vocab.json", server.url + HF_PATH + "merges.txt"]


# --------------------------------------------------------------------------------------------------- resume
def test_resumes_a_partial_part_file_with_a_range_request(server, tmp_path):
    source = server.put(PARAMS_PATH, os.path.join(FIXTURES_DIR, "tiny_fp32.params"))
    dest = tmp_path / "bort.params"
    with open(str(dest) + ".part", "wb") as handle:
        handle.write(_bytes(source)[:1000])

    assert download_file(server.url + PARAMS_PATH, str(dest), sha1=_sha1(source), **FAST) == "downloaded"
    assert server.gets(PARAMS_PATH) == [("GET", PARAMS_PATH, "bytes=1000-")]
    assert _bytes(dest) == _bytes(source)
    assert not os.path.exists(str(dest) + ".part")


def test_cut_connection_is_retried_from_where_it_stopped(server, tmp_path):
    source = server.put(PARAMS_PATH, os.path.join(FIXTURES_DIR, "tiny_fp32.params"))
    server.cut_after[PARAMS_PATH] = [50000, 2]  # the first two answers stop after 50000 bytes
    dest = tmp_path / "bort.params"

    download_file(server.url + PARAMS_PATH, str(dest), **FAST)
    assert server.gets(PARAMS_PATH) == [("GET", PARAMS_PATH, None), ("GET", PARAMS_PATH, "bytes=50000-"),
                                        ("GET", PARAMS_PATH, "bytes=100000-")]
    assert _bytes(dest) == _bytes(source)


def test_server_without_range_support_starts_over(server, tmp_path):
    source = server.put(PARAMS_PATH, os.path.join(FIXTURES_DIR, "tiny_fp32.params"))
    server.honour_range = False
    dest = tmp_path / "bort.params"
    with open(str(dest) + ".part", "wb") as handle:
        handle.write(b"x" * 1000)  # not even a prefix of the file: appending would corrupt it

    download_file(server.url + PARAMS_PATH, str(dest), **FAST)
    assert server.gets(PARAMS_PATH) == [("GET", PARAMS_PATH, "bytes=1000-")]  # answered 200, whole file
    assert _bytes(dest) == _bytes(source)


def test_part_file_as_long_as_the_file_starts_over(server, tmp_path):
    source = server.put(PARAMS_PATH, os.path.join(FIXTURES_DIR, "tiny_fp32.params"))
    dest = tmp_path / "bort.params"
    with open(str(dest) + ".part", "wb") as handle:
        handle.write(b"y" * len(_bytes(source)))  # complete but wrong: the server answers 416

    download_file(server.url + PARAMS_PATH, str(dest), **FAST)
    assert [r[2] for r in server.gets(PARAMS_PATH)] == [f"bytes={len(_bytes(source))}-", None]
    assert _bytes(dest) == _bytes(source)


# --------------------------------------------------------------------------------------------------- errors
def test_sha1_mismatch_keeps_nothing(server, tmp_path):
    server.put("/f.bin", data=b"some bytes")
    dest = tmp_path / "f.bin"
    with pytest.raises(ChecksumError) as caught:
        download_file(server.url + "/f.bin", str(dest), sha1="0" * 40, **FAST)
    message = str(caught.value)
    assert server.url + "/f.bin" in message and str(dest) in message and "0" * 40 in message
    assert os.listdir(tmp_path) == ["served"]  # neither f.bin nor f.bin.part


@pytest.mark.parametrize("status", [404, 403])
def test_http_error_names_the_url_and_is_not_retried(server, tmp_path, status):
    if status == 403:
        server.put(PARAMS_PATH, data=b"forbidden anyway")
        server.status_for[PARAMS_PATH] = 403
    out = tmp_path / "model"
    with pytest.raises(DownloadError, match=rf"{re.escape(server.url + PARAMS_PATH)}: HTTP {status}") as caught:
        download_model(str(out), what="params", mirror=server.url, **FAST)
    assert str(out / "bort.params") in str(caught.value)
    assert len(server.gets(PARAMS_PATH)) == 1
    assert not os.path.exists(out / "bort.params")


def test_connection_failure_after_retries(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/bort.params"
    with pytest.raises(DownloadError, match=r"gave up after 3 attempts") as caught:
        download_file(url, str(tmp_path / "bort.params"), **FAST)
    assert url in str(caught.value) and str(tmp_path / "bort.params") in str(caught.value)


@pytest.mark.parametrize("content", ["mxnet_not_bort", "garbage"])
def test_download_that_is_not_bort_is_removed(server, tmp_path, content):
    if content == "garbage":
        server.put(PARAMS_PATH, data=b"<html>Access denied</html>")
    else:
        mx.nd.save(os.path.join(str(tmp_path), "other.params"), {"conv0.weight": mx.nd.ones((2, 2))})
        server.put(PARAMS_PATH, os.path.join(str(tmp_path), "other.params"))
    out = tmp_path / "model"
    with pytest.raises(DownloadError, match="not a Bort parameter file") as caught:
        download_model(str(out), what="params", mirror=server.url, **FAST)
    assert server.url + PARAMS_PATH in str(caught.value) and "removed" in str(caught.value)
    assert os.listdir(out) == []


def test_vocabulary_that_does_not_load_is_removed(server, small_vocab, tmp_path):
    server.put(HF_PATH + "vocab.json", data=b"<html>not json</html>")
    server.put(HF_PATH + "merges.txt", os.path.join(small_vocab, "merges.txt"))
    out = tmp_path / "model"
    with pytest.raises(DownloadError, match="not a loadable vocabulary"):
        download_model(str(out), what="vocab", mirror=server.url, **FAST)
    assert os.listdir(out) == []


# ------------------------------------------------------------------------------------ existing destinations
def test_existing_destination_without_checksum_compared_by_size(server, small_vocab, tmp_path):
    source = server.put(PARAMS_PATH, os.path.join(FIXTURES_DIR, "tiny_fp32.params"))
    out = tmp_path / "model"
    os.makedirs(out)
    shutil.copyfile(source, out / "bort.params")

    results = download_model(str(out), what="params", mirror=server.url, **FAST)
    assert results[0].status == "skipped" and results[0].detail.startswith("0.")
    assert [r[0] for r in server.requests] == ["HEAD"]  # the size was compared; nothing was downloaded

    with open(out / "bort.params", "wb") as handle:
        handle.write(b"an older, shorter file")
    with pytest.raises(DownloadError, match=r"already exists and differs .*22 bytes.*pass --force"):
        download_model(str(out), what="params", mirror=server.url, **FAST)
    assert _bytes(out / "bort.params") == b"an older, shorter file"

    results = download_model(str(out), what="params", mirror=server.url, force=True, **FAST)
    assert results[0].status == "downloaded" and _bytes(out / "bort.params") == _bytes(source)


def test_existing_destination_with_checksum(server, tmp_path):
    server.put("/f.bin", data=b"the published bytes")
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"the published bytes")
    sha1 = hashlib.sha1(b"the published bytes").hexdigest()
    assert download_file(server.url + "/f.bin", str(dest), sha1=sha1, **FAST) == "skipped"
    assert server.requests == []  # a matching checksum needs no request at all

    dest.write_bytes(b"other bytes")
    with pytest.raises(DownloadError, match="already exists and differs.*pass --force"):
        download_file(server.url + "/f.bin", str(dest), sha1=sha1, **FAST)
    assert download_file(server.url + "/f.bin", str(dest), sha1=sha1, force=True, **FAST) == "downloaded"
    assert dest.read_bytes() == b"the published bytes"


# ------------------------------------------------------------------------------------------ zipped (GluonNLP)
def _zip(path, member, data):
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr(member, data)


def test_zipped_file_is_unzipped_and_checked(server, small_vocab, tmp_path):
    tokenizer = BortTokenizer.from_hf(os.path.join(small_vocab, "vocab.json"),
                                      os.path.join(small_vocab, "merges.txt"))
    gluon_dir = tmp_path / "gluon"
    os.makedirs(gluon_dir)
    tokenizer.save_gluonnlp(str(gluon_dir / "v.vocab"), str(gluon_dir / "r.json"))
    out = tmp_path / "model"
    for local, name in (("v.vocab", "test-vocab.vocab"), ("r.json", "test_bpe_ranks.json")):
        _zip(str(tmp_path / "a.zip"), name, _bytes(gluon_dir / local))
        server.put(f"/gluon/dataset/vocab/{name}.zip", str(tmp_path / "a.zip"))
        known = KnownFile(name, f"https://example.invalid/gluon/dataset/vocab/{name}.zip",
                          sha1=_sha1(str(tmp_path / "a.zip")), member=name,
                          member_sha1=_sha1(str(gluon_dir / local)))
        assert fetch_known_file(known, str(out), mirror=server.url, **FAST).status == "downloaded"
        assert _bytes(out / name) == _bytes(gluon_dir / local)
        assert fetch_known_file(known, str(out), mirror=server.url, **FAST).status == "skipped"
    assert sorted(os.listdir(out)) == ["test-vocab.vocab", "test_bpe_ranks.json"]  # archives removed
    reloaded = BortTokenizer.from_gluonnlp(str(out / "test-vocab.vocab"), str(out / "test_bpe_ranks.json"))
    assert reloaded.encode("Hello world") == tokenizer.encode("Hello world")


def test_gluonnlp_files_with_the_wrong_content_are_refused(server, tmp_path):
    """The real table's sha1s: a vocabulary zip whose member is not GluonNLP's file leaves nothing behind."""
    vocab, _ = KNOWN_FILES["vocab:gluonnlp"]
    _zip(str(tmp_path / "v.zip"), vocab.member, b'{"idx_to_token": []}')
    server.put("/gluon/dataset/vocab/" + os.path.basename(vocab.url), str(tmp_path / "v.zip"))
    out = tmp_path / "model"
    with pytest.raises(ChecksumError, match=f"{vocab.member} in the archive has sha1 .*expected "
                                            f"{vocab.member_sha1}"):
        download_model(str(out), what="vocab", vocab_format="gluonnlp", mirror=server.url, **FAST)
    assert os.listdir(out) == []


# ------------------------------------------------------------------------------------------------ the script
def test_script_downloads_and_reports(server, small_vocab, tmp_path, capsys):
    _serve_release(server, small_vocab)
    out = tmp_path / "model"
    with pytest.raises(SystemExit) as exited:
        run_main(_script_main(), ["--out", str(out), "--mirror", server.url, "--progress", "false"])
    assert exited.value.code == 0
    printed = capsys.readouterr().out
    assert "bort.params: 0." in printed and "vocabulary: 300 tokens" in printed
    assert printed.strip().endswith(f"done: 3 downloaded, 0 already there, in {out}")


def test_script_error_is_one_line_and_exit_code_2(server, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        run_main(_script_main(), ["--out", str(tmp_path / "model"), "--mirror", server.url, "--what", "params",
                                  "--progress", "false"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"error: {server.url}{PARAMS_PATH}: HTTP 404")


def test_script_rejects_unknown_what(capsys):
    with pytest.raises(SystemExit) as exited:
        run_main(_script_main(), ["--what", "weights"])
    assert exited.value.code == 2 and "--what 'weights'" in capsys.readouterr().err


def test_script_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as exited:
        _script_main()(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--output_dir", "--what", "--vocab_format", "--force", "--mirror", "--progress", MIRROR_ENV):
        assert flag in text
