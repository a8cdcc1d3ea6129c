"""Stage a Hugging Face model into S3 (and optionally onto EFS), once.

Runs in the pinned vLLM image (python3, huggingface_hub and boto3 are in it). Idempotent
and resumable: a file already in S3 with the right size is skipped, and a marker object
records a finished stage, so re-running the Job costs one request. The Hugging Face
token is read from Secrets Manager at run time; it is never in a manifest.

    stage_weights.py stage   # Job: Hugging Face -> s3://$WEIGHTS_BUCKET/$MODEL_PREFIX
                             #      (-> $EFS_MODEL_DIR when set), and a benchmark
                             #      dataset to s3://$WEIGHTS_BUCKET/$DATASET_S3_KEY when set
    stage_weights.py wait    # init container of vLLM: block until the marker exists
"""

import json
import os
import pathlib
import sys
import time

import boto3

MARKER = ".vllm-eks-staged"
# Not needed to serve: original (consolidated) checkpoints and other runtimes' formats
# would double the bytes staged.
SKIPPED_PREFIXES = ("original/", "metal/")
SKIPPED_SUFFIXES = (".pth", ".gguf")
WAIT_SECONDS = 30
TOKEN_WAIT_SECONDS = 60


def env(name):
    value = os.environ.get(name, "")
    if not value:
        sys.exit(f"stage_weights: environment variable {name} is not set")
    return value


def s3_client():
    return boto3.client("s3", region_name=env("AWS_REGION"))


def s3_sizes(s3, bucket, prefix):
    """Key -> size of every object under `prefix`. Listing, not HEAD: the pod's role may
    list only under its prefix (an s3:prefix condition), and without a matching
    s3:ListBucket grant S3 answers a HEAD on a missing key with 403, not 404."""
    sizes = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            sizes[item["Key"]] = item["Size"]
    return sizes


def s3_size(s3, bucket, key):
    return s3_sizes(s3, bucket, key).get(key)


def hugging_face_token():
    secret = boto3.client("secretsmanager", region_name=env("AWS_REGION")).get_secret_value(
        SecretId=env("HF_TOKEN_SECRET_ARN"))
    return json.loads(secret["SecretString"]).get("token") or None


def wanted(path):
    return not (path.startswith(SKIPPED_PREFIXES) or path.endswith(SKIPPED_SUFFIXES))


def model_info(repo, revision):
    """The repository's files at `revision`, and the token that could read them. A gated
    or private repository without a (valid) token waits for one to be put into the
    secret, instead of failing the Job: the Job then finishes on its own."""
    from huggingface_hub import HfApi

    while True:
        token = hugging_face_token()
        try:
            return HfApi(token=token).model_info(repo, revision=revision,
                                                 files_metadata=True), token
        except Exception as error:  # huggingface_hub's HTTP errors carry the response
            status = getattr(getattr(error, "response", None), "status_code", None)
            if status not in (401, 403):
                raise
            print(f"{repo} needs a Hugging Face token with access (HTTP {status}): put "
                  f'{{"token": "hf_..."}} into {env("HF_TOKEN_SECRET_ARN")}; checking '
                  f"again in {TOKEN_WAIT_SECONDS} s", flush=True)
            time.sleep(TOKEN_WAIT_SECONDS)


def stage_s3(s3, bucket, prefix):
    from huggingface_hub import hf_hub_download

    repo = env("HF_MODEL_ID")
    info, token = model_info(repo, env("HF_REVISION"))
    files = [f for f in info.siblings if wanted(f.rfilename)]
    scratch = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / "stage"
    staged = s3_sizes(s3, bucket, prefix)
    total = 0
    for number, file in enumerate(files, 1):
        key = prefix + file.rfilename
        total += file.size or 0
        if file.size is not None and staged.get(key) == file.size:
            print(f"[{number}/{len(files)}] {key}: already staged", flush=True)
            continue
        print(f"[{number}/{len(files)}] {key}: {file.size or 0:,} bytes", flush=True)
        local = hf_hub_download(repo, file.rfilename, revision=info.sha, token=token,
                                local_dir=scratch)
        s3.upload_file(local, bucket, key)
        os.remove(local)
    marker = {"repo": repo, "revision": info.sha, "files": len(files), "bytes": total}
    s3.put_object(Bucket=bucket, Key=prefix + MARKER, Body=json.dumps(marker).encode())
    print(f"staged {repo}@{info.sha}: {len(files)} files, {total:,} bytes", flush=True)


def sync_efs(s3, bucket, prefix, directory):
    directory.mkdir(parents=True, exist_ok=True)
    for key, size in sorted(s3_sizes(s3, bucket, prefix).items()):
        relative = key[len(prefix):]
        if not relative or relative == MARKER:
            continue
        target = directory / relative
        if target.exists() and target.stat().st_size == size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        s3.download_file(bucket, key, str(partial))
        partial.rename(target)
        print(f"synced {relative}", flush=True)
    (directory / MARKER).write_text(json.dumps({"source": f"s3://{bucket}/{prefix}"}))


def stage_dataset(s3, bucket, key, repo, filename):
    """A benchmark dataset (a file of a Hugging Face dataset repository) to `key`, once."""
    if s3_size(s3, bucket, key) is not None:
        print(f"s3://{bucket}/{key} is already staged", flush=True)
        return
    from huggingface_hub import hf_hub_download

    scratch = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / "dataset"
    local = hf_hub_download(repo, filename, repo_type="dataset", local_dir=scratch)
    s3.upload_file(local, bucket, key)
    os.remove(local)
    print(f"staged dataset {repo}/{filename} to s3://{bucket}/{key}", flush=True)


def stage():
    s3, bucket, prefix = s3_client(), env("WEIGHTS_BUCKET"), env("MODEL_PREFIX")
    if os.environ.get("DATASET_S3_KEY"):
        stage_dataset(s3, bucket, env("DATASET_S3_KEY"), env("DATASET_REPO"),
                      env("DATASET_FILE"))
    if s3_size(s3, bucket, prefix + MARKER) is None:
        stage_s3(s3, bucket, prefix)
    else:
        print(f"s3://{bucket}/{prefix} is already staged", flush=True)
    efs_dir = os.environ.get("EFS_MODEL_DIR")
    if efs_dir and not (pathlib.Path(efs_dir) / MARKER).exists():
        sync_efs(s3, bucket, prefix, pathlib.Path(efs_dir))


def wait():
    efs_dir = os.environ.get("EFS_MODEL_DIR")
    while True:
        if efs_dir:
            ready = (pathlib.Path(efs_dir) / MARKER).exists()
        else:
            ready = s3_size(s3_client(), env("WEIGHTS_BUCKET"),
                            env("MODEL_PREFIX") + MARKER) is not None
        if ready:
            print("weights are staged", flush=True)
            return
        print(f"waiting for the staging Job; checking again in {WAIT_SECONDS} s", flush=True)
        time.sleep(WAIT_SECONDS)


if __name__ == "__main__":
    {"stage": stage, "wait": wait}[sys.argv[1]]()
