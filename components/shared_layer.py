"""The shared layer: the `fleet_shared` package every function imports, as a Lambda layer."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.archives import build_layer_archive, layer_entries
from components.bytecode import RUNTIME, RuntimePython
from components.fleet_function import ARCHITECTURE


@dataclass(frozen=True)
class SharedLayerArgs:
    layer_name: str
    provider: aws.Provider
    # The interpreter that compiles the archive's bytecode; without one it carries sources only.
    runtime_python: RuntimePython | None = None


class SharedLayer(pulumi.ComponentResource):
    """A layer version built from `handlers/fleet_shared/` (deterministic archive)."""

    layer: aws.lambda_.LayerVersion
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: SharedLayerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:functions:SharedLayer", name, None, opts)
        archive = build_layer_archive(runtime_python=args.runtime_python)
        if not layer_entries():
            pulumi.log.warn(
                "handlers/fleet_shared/ has no files yet: the shared layer archive is empty",
                resource=self,
            )
        self.layer = aws.lambda_.LayerVersion(
            f"{name}-layer",
            layer_name=args.layer_name,
            description="lambda-fleet shared package (fleet_shared)",
            code=pulumi.FileArchive(str(archive.path)),
            source_code_hash=archive.sha256_base64,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.arn = self.layer.arn
        self.register_outputs({"arn": self.arn})
