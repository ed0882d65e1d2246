"""cluster.yaml passes Ray's own cluster-launcher validation and says what hoopray needs.

The validator is Ray's: ``prepare_config`` merges the AWS defaults the way ``ray up``
does, then ``validate_config`` checks the result against ``ray-schema.json`` and Ray's
own rules (head type exists, min_workers fit under max_workers). All of it runs offline.
"""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
GPUS_WANTED = 64
AWS_KEY = re.compile(
    r"\b(AKIA|ASIA)[0-9A-Z]{16}\b|aws_secret_access_key|aws_access_key_id|aws_session_token",
    re.IGNORECASE,
)
PROFILE_ARN = re.compile(r"^arn:aws:iam::[^:]+:instance-profile/\S+$")


@pytest.fixture(scope="module")
def text() -> str:
    return CLUSTER_YAML.read_text("utf-8")


@pytest.fixture(scope="module")
def cluster(text: str) -> dict:
    return yaml.safe_load(text)


def _prepared(config: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def _workers(cluster: dict) -> dict[str, dict]:
    return {
        name: t
        for name, t in cluster["available_node_types"].items()
        if name != cluster["head_node_type"]
    }


def _gpu_types(cluster: dict) -> dict[str, dict]:
    return {n: t for n, t in _workers(cluster).items() if t["resources"].get("GPU", 0) >= 1}


# --------------------------------------------------------------------------- Ray's validator


def test_cluster_yaml_passes_ray_validation(cluster: dict) -> None:
    prepared = _prepared(cluster)
    assert prepared["head_node_type"] in prepared["available_node_types"]
    assert prepared["provider"]["type"] == "aws"


def _set(config: dict, path: str, value: object) -> dict:
    *parents, leaf = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[leaf] = value
    return config


@pytest.mark.parametrize(
    ("path", "value", "error", "message"),
    [
        ("head_node_type", "missing", ValueError, "head_node_type"),
        ("max_workers", -1, jsonschema.ValidationError, "minimum"),
        ("max_workers", "many", jsonschema.ValidationError, "'many' is not of type"),
        ("not_a_field", 1, jsonschema.ValidationError, "'not_a_field' was unexpected"),
        (
            "available_node_types.gpu_l4.resources.GPU",
            0.5,
            jsonschema.ValidationError,
            "0.5 is not of type 'integer'",
        ),
        (
            "available_node_types.gpu_l4.num_gpus",
            1,
            jsonschema.ValidationError,
            "'num_gpus' was unexpected",
        ),
    ],
)
def test_validation_rejects_broken_variants(
    cluster: dict, path: str, value: object, error: type[Exception], message: str
) -> None:
    """The control: Ray's validator rejects a broken copy, so the check above can fail."""
    broken = _set(copy.deepcopy(cluster), path, value)
    with pytest.raises(error, match=re.escape(message)):
        _prepared(broken)


# --------------------------------------------------------------------------- what hoopray needs


def test_head_only_runs_the_driver(cluster: dict) -> None:
    head = cluster["available_node_types"][cluster["head_node_type"]]
    assert head["resources"] == {"CPU": 0, "GPU": 0}
    [start] = [c for c in cluster["head_start_ray_commands"] if "ray start" in c]
    argv = shlex.split(start.split(";")[-1])
    assert "--head" in argv and "--num-cpus=0" in argv, start


def test_cpu_worker_type_for_resolve_render_reports(cluster: dict) -> None:
    cpu = [
        t
        for t in _workers(cluster).values()
        if t["resources"].get("GPU", 0) == 0 and t["resources"].get("CPU", 0) > 0
    ]
    assert cpu, "no CPU worker type"
    assert all(t["min_workers"] < t["max_workers"] for t in cpu)


def test_gpu_types_reach_64_gpus_and_autoscale(cluster: dict) -> None:
    gpu = _gpu_types(cluster)
    assert gpu, "no GPU worker type"
    reach = sum(t["max_workers"] * t["resources"]["GPU"] for t in gpu.values())
    assert reach >= GPUS_WANTED, f"GPU worker types reach only {reach} GPUs"
    assert any(t["max_workers"] * t["resources"]["GPU"] >= GPUS_WANTED for t in gpu.values())
    for name, t in gpu.items():
        assert 0 <= t["min_workers"] < t["max_workers"], name


def test_global_max_workers_does_not_cut_a_type_short(cluster: dict) -> None:
    assert cluster["max_workers"] >= sum(t["max_workers"] for t in _workers(cluster).values())


def test_cluster_pins_image_and_installs_hoopray(cluster: dict) -> None:
    import ray

    image = cluster["docker"]["image"]
    assert image.startswith(f"rayproject/ray:{ray.__version__}-py311")
    assert any("pip install" in c and "hoopray" in c for c in cluster["setup_commands"])
    assert any("torch==" in c for c in cluster["setup_commands"])


def test_weights_reach_every_node(cluster: dict) -> None:
    """Synced from S3 once per node (setup_commands run on head and workers alike), and
    HOOPRAY_WEIGHTS names the copy for every process in the container."""
    [sync] = [c for c in cluster["setup_commands"] if "aws s3 sync" in c]
    argv = shlex.split(sync.split("&&")[-1])
    source, target = argv[argv.index("sync") + 1 : argv.index("sync") + 3]
    assert re.fullmatch(r"s3://[^/]+/weights/", source), source
    options = cluster["docker"]["run_options"]
    assert f"-e HOOPRAY_WEIGHTS={target.rstrip('/')}" in options, options
    prepared = _prepared(cluster)
    assert sync in prepared["head_setup_commands"]
    assert sync in prepared["worker_setup_commands"]
    for name, t in _workers(cluster).items():
        assert "worker_setup_commands" not in t, f"{name} would skip the weights sync"


def test_nodes_use_an_iam_instance_profile(cluster: dict, text: str) -> None:
    assert "IAM instance profile" in text
    for name, t in cluster["available_node_types"].items():
        arn = t["node_config"].get("IamInstanceProfile", {}).get("Arn", "")
        assert PROFILE_ARN.match(arn), f"{name}: IamInstanceProfile.Arn is {arn!r}"
    assert "aws_credentials" not in cluster["provider"]


def test_no_aws_keys_in_the_file(text: str) -> None:
    assert not AWS_KEY.search(text), AWS_KEY.search(text)


@pytest.mark.parametrize(
    "planted",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_ACCESS_KEY_ID=x",
    ],
)
def test_key_check_catches_a_planted_key(text: str, planted: str) -> None:
    """The control for the check above."""
    assert AWS_KEY.search(text + f"\n# {planted}\n")


def test_shared_file_system_alternative_is_documented(text: str) -> None:
    """The EFS/FSx mount path is the one conf/output/cluster.yaml names as the alternative
    to its S3 default."""
    conf = (ROOT / "conf" / "output" / "cluster.yaml").read_text("utf-8")
    assert yaml.safe_load(conf)["root"].startswith("s3://")
    mount = str(Path(re.search(r"output\.root=(/\S+)", conf).group(1)).parent)
    assert "EFS" in text and "FSx" in text
    assert f"-v {mount}:{mount}" in text
    assert re.search(rf"mount -t nfs4 .* {re.escape(mount)}$", text, re.M)
