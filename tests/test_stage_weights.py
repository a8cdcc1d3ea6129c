"""The staging script that runs in the cluster, exercised against in-memory fakes of S3,
Secrets Manager and the Hugging Face Hub: it copies each file once, skips what is
already staged, leaves out files vLLM does not need, syncs to EFS, and `wait` returns
only once the marker exists."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest

SCRIPT = (Path(__file__).parent.parent / "vllm_eks" / "k8s_charts" / "scripts"
          / "stage_weights.py")
REPO_FILES = {
    "config.json": b'{"architectures": ["LlamaForCausalLM"]}',
    "model-00001-of-00002.safetensors": b"a" * 64,
    "model-00002-of-00002.safetensors": b"b" * 32,
    "tokenizer.json": b"{}",
    "original/consolidated.00.pth": b"c" * 128,  # duplicate checkpoint: not staged
}


class ClientError(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


class FakeS3:
    exceptions = types.SimpleNamespace(ClientError=ClientError)

    def __init__(self):
        self.objects: dict[tuple[str, str], bytes] = {}
        self.uploads: list[str] = []

    def head_object(self, Bucket, Key):
        # What S3 answers a role whose s3:ListBucket carries an s3:prefix condition (the
        # HEAD request has no prefix): 403 for a missing key. The script must list.
        if (Bucket, Key) not in self.objects:
            raise ClientError("403")
        return {"ContentLength": len(self.objects[(Bucket, Key)])}

    def upload_file(self, filename, bucket, key):
        self.objects[(bucket, key)] = Path(filename).read_bytes()
        self.uploads.append(key)

    def put_object(self, Bucket, Key, Body):
        self.objects[(Bucket, Key)] = Body

    def download_file(self, bucket, key, filename):
        Path(filename).write_bytes(self.objects[(bucket, key)])

    def get_paginator(self, name):
        assert name == "list_objects_v2"
        store = self

        class Paginator:
            def paginate(self, Bucket, Prefix):
                yield {"Contents": [{"Key": k, "Size": len(v)} for (b, k), v in
                                    sorted(store.objects.items())
                                    if b == Bucket and k.startswith(Prefix)]}

        return Paginator()


class FakeSecrets:
    def __init__(self, token: str):
        self.token = token
        self.read = []

    def get_secret_value(self, SecretId):
        self.read.append(SecretId)
        return {"SecretString": json.dumps({"token": self.token, "unused": "x"})}


@pytest.fixture
def stage(monkeypatch, tmp_path):
    """The script module with boto3 and huggingface_hub replaced by fakes."""
    s3, secrets, downloads, seen_tokens = FakeS3(), FakeSecrets(""), [], []

    def client(service, region_name):
        assert region_name == "us-east-1"
        return {"s3": s3, "secretsmanager": secrets}[service]

    gated = types.SimpleNamespace(needs_token=False)

    class HfApi:
        def __init__(self, token=None):
            seen_tokens.append(token)
            self.token = token

        def model_info(self, repo, revision, files_metadata):
            assert files_metadata and revision == "main"
            if gated.needs_token and not self.token:
                error = RuntimeError("401 Client Error: gated repository")
                error.response = types.SimpleNamespace(status_code=401)
                raise error
            siblings = [types.SimpleNamespace(rfilename=n, size=len(b))
                        for n, b in REPO_FILES.items()]
            return types.SimpleNamespace(sha="abc123", siblings=siblings)

    def hf_hub_download(repo, filename, revision, token, local_dir):
        assert revision == "abc123"
        downloads.append(filename)
        path = Path(local_dir) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(REPO_FILES[filename])
        return str(path)

    monkeypatch.setitem(sys.modules, "boto3", types.SimpleNamespace(client=client))
    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(
        HfApi=HfApi, hf_hub_download=hf_hub_download))
    for name, value in {"AWS_REGION": "us-east-1", "HF_MODEL_ID": "org/model",
                        "WEIGHTS_BUCKET": "weights", "MODEL_PREFIX": "model/",
                        "HF_TOKEN_SECRET_ARN": "arn:secret", "TMPDIR": str(tmp_path),
                        "HF_REVISION": "main"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("EFS_MODEL_DIR", raising=False)
    spec = importlib.util.spec_from_file_location("stage_weights", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.fakes = types.SimpleNamespace(s3=s3, secrets=secrets, downloads=downloads,
                                         tokens=seen_tokens, gated=gated)
    return module


def test_stages_every_needed_file_once_then_marks_done(stage):
    stage.stage()
    s3 = stage.fakes.s3
    staged = {k for (_, k) in s3.objects}
    assert staged == {"model/config.json", "model/model-00001-of-00002.safetensors",
                      "model/model-00002-of-00002.safetensors", "model/tokenizer.json",
                      "model/.vllm-eks-staged"}
    marker = json.loads(s3.objects[("weights", "model/.vllm-eks-staged")])
    wanted_bytes = sum(len(b) for n, b in REPO_FILES.items() if not n.startswith("original/"))
    assert marker == {"repo": "org/model", "revision": "abc123", "files": 4,
                      "bytes": wanted_bytes}
    assert stage.fakes.secrets.read == ["arn:secret"]
    assert stage.fakes.tokens == [None]  # an empty secret means anonymous
    assert not list(Path(stage.os.environ["TMPDIR"]).rglob("*.safetensors"))  # scratch freed


def test_a_second_run_costs_one_request(stage):
    stage.stage()
    uploads = list(stage.fakes.s3.uploads)
    stage.stage()
    assert stage.fakes.s3.uploads == uploads
    assert stage.fakes.secrets.read == ["arn:secret"]  # not even the token is read again


def test_an_interrupted_stage_resumes_without_recopying(stage):
    s3 = stage.fakes.s3
    s3.objects[("weights", "model/model-00001-of-00002.safetensors")] = b"a" * 64
    s3.objects[("weights", "model/config.json")] = b"truncated"  # wrong size: copied again
    stage.stage()
    assert "model-00001-of-00002.safetensors" not in stage.fakes.downloads
    assert "config.json" in stage.fakes.downloads


def test_efs_sync_copies_from_s3_and_marks_the_directory(stage, tmp_path, monkeypatch):
    target = tmp_path / "efs" / "model"
    monkeypatch.setenv("EFS_MODEL_DIR", str(target))
    stage.stage()
    assert (target / "model-00002-of-00002.safetensors").read_bytes() == b"b" * 32
    assert (target / ".vllm-eks-staged").exists()
    assert not list(target.rglob("*.partial"))


def test_wait_returns_once_the_marker_exists(stage, monkeypatch):
    checks = []

    def fake_sleep(seconds):
        checks.append(seconds)
        stage.stage()  # the Job finishes while the server waits

    monkeypatch.setattr(stage.time, "sleep", fake_sleep)
    stage.wait()
    assert checks == [stage.WAIT_SECONDS]


def test_a_gated_model_waits_for_a_token_instead_of_failing(stage, monkeypatch):
    stage.fakes.gated.needs_token = True
    naps = []

    def operator_sets_the_token(seconds):
        naps.append(seconds)
        stage.fakes.secrets.token = "hf_" + "x" * 34

    monkeypatch.setattr(stage.time, "sleep", operator_sets_the_token)
    stage.stage()
    assert naps == [stage.TOKEN_WAIT_SECONDS]
    assert stage.fakes.tokens == [None, "hf_" + "x" * 34]
    assert ("weights", "model/.vllm-eks-staged") in stage.fakes.s3.objects


def test_other_hub_errors_fail_the_job(stage, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("hub unreachable")

    monkeypatch.setattr(sys.modules["huggingface_hub"], "HfApi", lambda token=None: (
        types.SimpleNamespace(model_info=broken)))
    with pytest.raises(ConnectionError):
        stage.stage()
