"""Names derived from keys (construct IDs are an external contract: derive them one way)."""


def pascal_case(name: str) -> str:
    """`aws-efs-csi-driver` -> `AwsEfsCsiDriver`; dots count as separators."""
    return "".join(part.capitalize() for part in name.replace(".", "-").split("-"))
