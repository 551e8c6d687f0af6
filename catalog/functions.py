"""The fleet: one entry per Lambda function. Plain data, read by the program and the local tools."""

from __future__ import annotations

from catalog.model import (
    KEEP_TAG_PLACEHOLDER,
    SCHEDULED_TIME,
    STACK_PLACEHOLDER,
    AlertTopics,
    AnyOf,
    CallbackSchedules,
    ClusterSchedule,
    Condition,
    EnvSource,
    EventRule,
    FixedSchedule,
    FunctionSpec,
    HttpRoute,
    ObjectCreated,
    PermissionStatement,
    QueueMessages,
    ResourceRef,
)

R = ResourceRef

# The namespace of the fleet's own metrics (dashboards and alarms look there).
METRICS_NAMESPACE = "LambdaFleet"

COMMON_ENVIRONMENT: dict[str, EnvSource] = {
    "STATE_TABLE_NAME": EnvSource.STATE_TABLE_NAME,
    "HUB_ACCOUNT_ID": EnvSource.HUB_ACCOUNT_ID,
    "ALERT_TOPIC_ARN": EnvSource.ALERT_TOPIC_WARNING_ARN,
    "ALERT_TOPIC_CRITICAL_ARN": EnvSource.ALERT_TOPIC_CRITICAL_ARN,
    "ALERT_TOPIC_INFO_ARN": EnvSource.ALERT_TOPIC_INFO_ARN,
    "FLEET_DRY_RUN": EnvSource.DRY_RUN,
    "DATA_BUCKET_NAME": EnvSource.DATA_BUCKET_NAME,
    "FLEET_INVENTORY_KEY": EnvSource.FLEET_INVENTORY_KEY,
}


def via_services(*services: str) -> Condition:
    """The fleet key used only by `services` on the role's behalf (`kms:ViaService`), never
    called directly: no function calls KMS itself."""
    return Condition(
        "StringLike", "kms:ViaService", tuple(f"{service}.*.amazonaws.com" for service in services)
    )


# What the services that hold the fleet's data encrypted under the fleet key ask KMS for on a
# function's behalf. Nothing asks for kms:Encrypt: S3, SNS and SQS encrypt with a data key
# (GenerateDataKey), DynamoDB with the table key it decrypts (Decrypt), and reading anything
# back, or a multipart upload's later parts, is Decrypt.
FLEET_KEY_DECRYPT = PermissionStatement(
    # The state table (DynamoDB), the inventory and objects read (S3), a publish to an encrypted
    # topic (SNS), a queue's messages and the dead-letter queue (SQS), the environment (Lambda).
    actions=("kms:Decrypt",),
    resources=(R.FLEET_KEY,),
    conditions=(via_services("dynamodb", "lambda", "s3", "sns", "sqs"),),
)
FLEET_KEY_DATA_KEYS_FOR_MESSAGES = PermissionStatement(
    # Every function publishes alerts to the encrypted topics and sends its failed events to its
    # encrypted dead-letter queue.
    actions=("kms:GenerateDataKey",),
    resources=(R.FLEET_KEY,),
    conditions=(via_services("sns", "sqs"),),
)
FLEET_KEY_DATA_KEYS_FOR_OBJECTS = PermissionStatement(
    # Only a function that puts objects into the data bucket (SSE-KMS with the fleet key): S3
    # asks for a data key per object as the writer.
    actions=("kms:GenerateDataKey",),
    resources=(R.FLEET_KEY,),
    conditions=(via_services("s3"),),
)


PUBLISH_ALERTS = PermissionStatement(actions=("sns:Publish",), resources=(R.ALERT_TOPICS,))

# The state table's items, read and written: each function's own partitions only, which the
# program adds as a `dynamodb:LeadingKeys` condition from `fleet_shared.state_keys`
# (`components.function_wiring.STATE_TABLE_ITEM_ACTIONS`).
STATE_TABLE_READS = PermissionStatement(
    actions=("dynamodb:GetItem", "dynamodb:Query"), resources=(R.STATE_TABLE,)
)
STATE_TABLE_WRITES = PermissionStatement(
    actions=("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
    resources=(R.STATE_TABLE,),
)

# Every function keeps state, raises alerts (but the router: COMMON_PERMISSIONS_OF_THE_ROUTER)
# and reads the fleet inventory.
COMMON_PERMISSIONS: tuple[PermissionStatement, ...] = (
    STATE_TABLE_READS,
    STATE_TABLE_WRITES,
    PUBLISH_ALERTS,
    PermissionStatement(actions=("s3:GetObject",), resources=(R.DATA_BUCKET_OBJECTS,)),
    FLEET_KEY_DECRYPT,
    FLEET_KEY_DATA_KEYS_FOR_MESSAGES,
    # The Service Authorization Reference lists no resource type for PutMetricData and the X-Ray
    # calls. PutMetricData's condition key, cloudwatch:namespace, holds metrics to the fleet's
    # namespace. PutTelemetryRecords has no condition key; PutTraceSegments has only
    # logs:LogGeneratingResourceArns, an ARN a request may carry and the function's segments
    # need not, so a condition on it could refuse them.
    PermissionStatement(
        actions=("cloudwatch:PutMetricData",),
        resources=(R.ANY,),
        conditions=(Condition("StringEquals", "cloudwatch:namespace", (METRICS_NAMESPACE,)),),
    ),
    PermissionStatement(
        actions=("xray:PutTraceSegments", "xray:PutTelemetryRecords"), resources=(R.ANY,)
    ),
)

# The notification router consumes the alert topics and raises no alert of its own (its alarms
# reach the e-mail topic through CloudWatch): a publish to one of them would come back to it.
COMMON_PERMISSIONS_OF_THE_ROUTER = tuple(
    statement for statement in COMMON_PERMISSIONS if statement != PUBLISH_ALERTS
)

# A function that acts in members assumes its own role there (and nobody else's), by name.
MEMBER_ROLE_ENVIRONMENT: dict[str, EnvSource] = {"MEMBER_ROLE_NAME": EnvSource.MEMBER_ROLE_NAME}
ASSUME_OWN_MEMBER_ROLE = PermissionStatement(
    actions=("sts:AssumeRole",), resources=(R.OWN_MEMBER_ROLES,)
)

# The state table's attributes a Scan may name, and the only way it may name them: its key
# (pk, sk: components/state_table.py) and expiry (expires_at), never the data (a lock's owner, a
# stored result, a held value). The one Scan (fleet_shared.state_table.keys_holding_value, a
# once-only search for values saved before their function indexed them) filters on the key and
# projects the partition key and the expiry. `dynamodb:Attributes` holds the attribute names a
# request carries; a Scan naming none reads every attribute, and a key a request lacks passes
# ForAllValues, so `dynamodb:Select` must be SPECIFIC_ATTRIBUTES too: only the attributes the
# request names (AWS's "Allows access to specific attributes" policy, with StringEquals where
# it has StringEqualsIfExists, so that a Scan not saying Select is refused, not read as one).
STATE_TABLE_SCANNED_ATTRIBUTES = ("expires_at", "pk", "sk")
STATE_TABLE_KEYS_SCAN = PermissionStatement(
    actions=("dynamodb:Scan",),
    resources=(R.STATE_TABLE,),
    conditions=(
        Condition(
            "ForAllValues:StringEquals", "dynamodb:Attributes", STATE_TABLE_SCANNED_ATTRIBUTES
        ),
        Condition("StringEquals", "dynamodb:Select", ("SPECIFIC_ATTRIBUTES",)),
    ),
)

# Conditions on what member roles may destroy: only what the fleet marked for it. The cleanup
# mark is the stack's own (`{stack}`, filled in per stack): one stack's role never deletes on
# another stack's mark in a member account they share.
CLEANUP_MARK_TAG = f"lambda-fleet:delete-after:{STACK_PLACEHOLDER}"
BACKUP_TAG = "lambda-fleet:backup"
MARKED_FOR_DELETION = Condition("Null", f"aws:ResourceTag/{CLEANUP_MARK_TAG}", ("false",))
NOT_A_FLEET_BACKUP = Condition("Null", f"aws:ResourceTag/{BACKUP_TAG}", ("true",))
# What cleanup_manager never deletes, marked or not (handlers/cleanup_manager/candidates.py): a
# volume backup_scheduler copies (`backup`), a Kubernetes persistent volume or VolumeSnapshot's
# snapshot (the EBS CSI driver's and the in-tree provisioner's tags), a snapshot Data Lifecycle
# Manager or AWS Backup made. The role is refused them too: a mark alone, its own or one a bug
# put there, never deletes the only copy of a cluster's data or another tool's backup.
VOLUME_TAGS_NEVER_DELETED = (
    "backup",
    "CSIVolumeName",
    "ebs.csi.aws.com/cluster",
    "kubernetes.io/created-for/pv/name",
)
SNAPSHOT_TAGS_NEVER_DELETED = (
    "CSIVolumeSnapshotName",
    "ebs.csi.aws.com/cluster",
    "aws:dlm:lifecycle-policy-id",
    "aws:backup:source-resource",
)


def without_tags(keys: tuple[str, ...]) -> tuple[Condition, ...]:
    """The resource carries none of the tag `keys`."""
    return tuple(Condition("Null", f"aws:ResourceTag/{key}", ("true",)) for key in keys)


# Nor anything the stack's cleanup policy keeps: its keep tag (`keep_tag`, filled in per stack)
# set to anything but `false`, as the handler reads it; a resource without the tag may go. A value
# the handler reads as false only once trimmed is refused: the safe side.
NOT_KEPT = Condition(
    "StringEqualsIgnoreCaseIfExists", f"aws:ResourceTag/{KEEP_TAG_PLACEHOLDER}", ("false",)
)

ONLY_THE_CLEANUP_MARK = (
    Condition("ForAllValues:StringEquals", "aws:TagKeys", (CLEANUP_MARK_TAG,)),
    Condition("Null", "aws:TagKeys", ("false",)),
)
A_FLEET_BACKUP = Condition("Null", f"aws:ResourceTag/{BACKUP_TAG}", ("false",))
WHILE_CREATING_A_SNAPSHOT = Condition("StringEquals", "ec2:CreateAction", ("CreateSnapshot",))
SNAPSHOT_ID_TAG = "lambda-fleet:snapshot-id"
STACK_TAG = "lambda-fleet:stack"
# A fleet backup is then tagged with its own id and its stack, and with nothing else: a copy
# someone made of it with its tags names another snapshot, so the backups never prune it, and a
# copy made before the stack tag was is pruned only by the stack whose day's record names it.
# A stack's backups carry its name in STACK_TAG: a role deletes only its own stack's snapshots,
# tags a snapshot it creates with its own stack only, and gives its own id and stack only to a
# fleet backup of its stack or one without the tag (made before it was), never to another
# stack's (which it could then delete). `StringEquals` on a tag the resource lacks never holds;
# `...IfExists` holds then.
OF_ITS_STACK = Condition("StringEquals", f"aws:ResourceTag/{STACK_TAG}", (STACK_PLACEHOLDER,))
OF_ITS_STACK_OR_NONE = Condition(
    "StringEqualsIfExists", f"aws:ResourceTag/{STACK_TAG}", (STACK_PLACEHOLDER,)
)
TAGGING_WITH_ITS_STACK = Condition(
    "StringEquals", f"aws:RequestTag/{STACK_TAG}", (STACK_PLACEHOLDER,)
)
ONLY_ITS_OWN_ID_ON_A_FLEET_BACKUP = (
    A_FLEET_BACKUP,
    OF_ITS_STACK_OR_NONE,
    TAGGING_WITH_ITS_STACK,
    Condition("ForAllValues:StringEquals", "aws:TagKeys", (SNAPSHOT_ID_TAG, STACK_TAG)),
    Condition("Null", "aws:TagKeys", ("false",)),
)


def data_bucket_objects(actions: tuple[str, ...], *prefixes: str) -> PermissionStatement:
    """`actions` on the data bucket's objects under `prefixes` only: each writer reaches its own
    folders, and none the inventory (`config/`), whose floors, sizes and dry run every function
    obeys; `pulumi up` alone writes it."""
    return PermissionStatement(
        actions=actions, resources=(R.DATA_BUCKET_OBJECTS,), object_prefixes=prefixes
    )


DATA_BUCKET_LIST = PermissionStatement(actions=("s3:ListBucket",), resources=(R.DATA_BUCKET,))
# Reading the version an S3 event names (GetObject with VersionId) is its own action.
DATA_BUCKET_READ_VERSIONS = PermissionStatement(
    actions=("s3:GetObjectVersion",), resources=(R.DATA_BUCKET_OBJECTS,)
)
# Deleting one version (DeleteObject with VersionId) is its own action too: report_processor
# removes only the version it rejected, never a newer one that landed meanwhile; under raw/ only,
# since a version deleted is gone for good.
DATA_BUCKET_DELETE_RAW_VERSIONS = data_bucket_objects(("s3:DeleteObjectVersion",), "raw/")

EKS_READ = ("eks:DescribeCluster", "eks:ListNodegroups", "eks:DescribeNodegroup")
METRICS_READ = ("cloudwatch:GetMetricData",)
# A cluster's load balancers (found by their cluster tag) and their targets' health.
# tag:GetResources finds them; DescribeTags reads their tags where a member refuses it.
LOAD_BALANCERS_FOUND = (
    "tag:GetResources",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTags",
)
LOAD_BALANCERS_READ = (
    *LOAD_BALANCERS_FOUND,
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
)


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        name="eks_scaler",
        description=(
            "Scales the stack file's managed node groups on schedule or request: floors, "
            "cooldown, lock."
        ),
        memory_mb=256,
        timeout_seconds=120,
        environment={
            **COMMON_ENVIRONMENT,
            **MEMBER_ROLE_ENVIRONMENT,
            "FORECASTER_FUNCTION_NAME": EnvSource.FORECASTER_FUNCTION_NAME,
        },
        permissions=(
            *COMMON_PERMISSIONS,
            ASSUME_OWN_MEMBER_ROLE,
            PermissionStatement(actions=("lambda:InvokeFunction",), resources=(R.FLEET_FUNCTIONS,)),
        ),
        # autoscaling:DescribeTags: Cluster Autoscaler's tags on a node group's Auto Scaling group.
        member_actions=(
            *EKS_READ,
            "eks:UpdateNodegroupConfig",
            "autoscaling:DescribeTags",
            *METRICS_READ,
        ),
        triggers=(
            ClusterSchedule(action="scale_up", time_field="scale_up_time"),
            ClusterSchedule(action="scale_down", time_field="scale_down_time"),
            HttpRoute(method="POST", path="/scale"),
        ),
        # Changes node groups: at most five at once (schedules of several clusters firing together,
        # plus a few HTTP requests); the per-node-group lock serialises the rest.
        reserved_concurrency=5,
        invokes=("demand_forecaster",),
    ),
    FunctionSpec(
        name="spot_optimizer",
        description="Scores spot capacity per type and AZ; handles spot interruption warnings.",
        memory_mb=256,
        timeout_seconds=300,
        environment={**COMMON_ENVIRONMENT, **MEMBER_ROLE_ENVIRONMENT},
        permissions=(
            *COMMON_PERMISSIONS,
            ASSUME_OWN_MEMBER_ROLE,
            # The reference lists no resource type and no condition key for GetProducts.
            PermissionStatement(actions=("pricing:GetProducts",), resources=(R.ANY,)),
        ),
        # eks:DescribeCluster and autoscaling:DescribeTags: the fallback passes over on-demand
        # groups an autoscaler manages (Karpenter's tags, Cluster Autoscaler's on the ASG).
        member_actions=(
            "ec2:DescribeSpotPriceHistory",
            "ec2:DescribeInstances",
            "eks:ListNodegroups",
            "eks:DescribeCluster",
            "eks:DescribeNodegroup",
            "eks:UpdateNodegroupConfig",
            "autoscaling:DescribeTags",
        ),
        triggers=(
            FixedSchedule(
                name="spot-analysis", expression="rate(1 hour)", payload={"action": "analyze_fleet"}
            ),
            EventRule(
                name="spot-interruption",
                pattern={
                    "source": ["aws.ec2"],
                    "detail-type": ["EC2 Spot Instance Interruption Warning"],
                },
            ),
        ),
        # Changes node groups: an hourly analysis and bursts of interruption warnings share three
        # copies; throttled events are retried by Lambda and EventBridge, not lost.
        reserved_concurrency=3,
    ),
    FunctionSpec(
        name="demand_forecaster",
        description=(
            "Forecasts node demand per cluster from CloudWatch history, with calibrated confidence."
        ),
        memory_mb=1024,
        timeout_seconds=300,
        environment={
            **COMMON_ENVIRONMENT,
            **MEMBER_ROLE_ENVIRONMENT,
            "SCALER_FUNCTION_NAME": EnvSource.SCALER_FUNCTION_NAME,
        },
        permissions=(
            *COMMON_PERMISSIONS,
            ASSUME_OWN_MEMBER_ROLE,
            # Clusters in predictive mode: the hourly run asks the scaler for their sizes.
            PermissionStatement(actions=("lambda:InvokeFunction",), resources=(R.FLEET_FUNCTIONS,)),
        ),
        member_actions=("eks:DescribeNodegroup", *METRICS_READ, "ec2:DescribeInstanceTypes"),
        triggers=(
            FixedSchedule(
                name="demand-forecast",
                expression="rate(1 hour)",
                payload={"action": "forecast_fleet", "horizon_minutes": 180, "run": SCHEDULED_TIME},
            ),
        ),
        uses_pandas_layer=True,
        invokes=("eks_scaler",),
    ),
    FunctionSpec(
        name="cost_analyzer",
        description="Cost by service, account and cluster; anomalies; rightsizing.",
        memory_mb=1024,
        timeout_seconds=900,
        environment={
            **COMMON_ENVIRONMENT,
            **MEMBER_ROLE_ENVIRONMENT,
            "ATHENA_WORKGROUP": EnvSource.ATHENA_WORKGROUP,
            "COST_QUERY_ENGINE": EnvSource.COST_QUERY_ENGINE,
            "COST_CUR_BUCKET": EnvSource.COST_CUR_BUCKET,
            "COST_CUR_PREFIX": EnvSource.COST_CUR_PREFIX,
            "COST_ATHENA_DATABASE": EnvSource.COST_ATHENA_DATABASE,
            "COST_ATHENA_TABLE": EnvSource.COST_ATHENA_TABLE,
        },
        permissions=(
            *COMMON_PERMISSIONS,
            ASSUME_OWN_MEMBER_ROLE,
            # Its reports; and Athena writes a query's results under athena-results/ (the
            # workgroup's location) with the caller's credentials.
            data_bucket_objects(("s3:PutObject",), "reports/cost/", "athena-results/"),
            FLEET_KEY_DATA_KEYS_FOR_OBJECTS,
            DATA_BUCKET_LIST,
            # `*`, per the Service Authorization Reference: ListFunctions, GetMetricData,
            # StopQuery (it names a query id) and DescribeQueries (it lists the account's
            # queries) have no resource type and no condition key. The Cost Explorer calls have
            # an optional billingview type (with aws:ResourceTag); the function names no billing
            # view, and the reference does not say which ARN a call without one is checked
            # against, so a statement on a view's ARN might not match it.
            PermissionStatement(
                actions=(
                    "ce:GetCostAndUsage",
                    "ce:GetCostForecast",
                    "lambda:ListFunctions",
                    "cloudwatch:GetMetricData",
                    "logs:DescribeQueries",
                    "logs:StopQuery",
                ),
                resources=(R.ANY,),
            ),
            PermissionStatement(
                actions=(
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                ),
                resources=(R.ATHENA_WORKGROUP,),
            ),
            # Athena reads the CUR table's definition from Glue (only when the stack configures
            # the athena engine; otherwise the statement resolves to nothing and is left out)...
            PermissionStatement(
                actions=("glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"),
                resources=(R.CUR_GLUE_TABLE,),
            ),
            # ...and the CUR files with the caller's credentials; results go to the data bucket.
            PermissionStatement(actions=("s3:GetObject",), resources=(R.CUR_OBJECTS,)),
            PermissionStatement(
                actions=("s3:ListBucket", "s3:GetBucketLocation"), resources=(R.CUR_BUCKET,)
            ),
            PermissionStatement(actions=("s3:GetBucketLocation",), resources=(R.DATA_BUCKET,)),
            # GetQueryResults is authorized against the queried log groups (the same reference
            # lists log-group as its required resource type), which StartQuery limits to ours.
            PermissionStatement(
                actions=("logs:StartQuery", "logs:GetQueryResults"),
                resources=(R.FLEET_LOG_GROUPS,),
            ),
        ),
        member_actions=METRICS_READ,
        triggers=(
            FixedSchedule(
                name="cost-analysis",
                expression="cron(30 6 * * ? *)",
                payload={"action": "analyze", "run": SCHEDULED_TIME},
            ),
        ),
        uses_pandas_layer=True,
    ),
    FunctionSpec(
        name="anomaly_detector",
        description="Robust (median/MAD) anomaly detection on metrics and daily cost.",
        memory_mb=512,
        timeout_seconds=300,
        environment={**COMMON_ENVIRONMENT, **MEMBER_ROLE_ENVIRONMENT},
        permissions=(
            *COMMON_PERMISSIONS,
            ASSUME_OWN_MEMBER_ROLE,
            # `*`, as for cost_analyzer's same actions.
            PermissionStatement(
                actions=("ce:GetCostAndUsage", "cloudwatch:GetMetricData"), resources=(R.ANY,)
            ),
        ),
        # DescribeAlarms: the unit of an alarm's metric its event leaves out (`alarm_units.py`).
        member_actions=(*METRICS_READ, "cloudwatch:DescribeAlarms"),
        triggers=(
            FixedSchedule(
                name="anomaly-detection", expression="rate(15 minutes)", payload={"action": "scan"}
            ),
            EventRule(
                name="anomaly-alarm",
                pattern={
                    "source": ["aws.cloudwatch"],
                    "detail-type": ["CloudWatch Alarm State Change"],
                    "detail": {"state": {"value": ["ALARM"]}},
                },
            ),
        ),
        uses_pandas_layer=True,
    ),
    FunctionSpec(
        name="health_monitor",
        description="Cluster, node group, endpoint and alarm health, with severities and alerts.",
        memory_mb=256,
        timeout_seconds=120,
        environment={**COMMON_ENVIRONMENT, **MEMBER_ROLE_ENVIRONMENT},
        permissions=(*COMMON_PERMISSIONS, ASSUME_OWN_MEMBER_ROLE),
        member_actions=(
            *EKS_READ,
            "autoscaling:DescribeAutoScalingGroups",
            "cloudwatch:DescribeAlarms",
            *LOAD_BALANCERS_READ,
            *METRICS_READ,
        ),
        triggers=(
            FixedSchedule(
                name="health-check", expression="rate(5 minutes)", payload={"action": "check_fleet"}
            ),
            EventRule(
                name="alarm-state-change",
                pattern={
                    "source": ["aws.cloudwatch"],
                    "detail-type": ["CloudWatch Alarm State Change"],
                },
            ),
        ),
    ),
    FunctionSpec(
        name="change_validator",
        description=(
            "Validates EKS changes against the health before them: passed, degraded, failed, "
            "inconclusive or not enough baseline; names the rollback."
        ),
        memory_mb=256,
        # A measurement keeps 91 s for one more hung member read and the record and alert
        # (change_validator/services.py): at 120 s it had 29 s to read in, about 300 requests at
        # ELB's 10 Describe requests a second, too few for a cluster with one load balancer per
        # ingress, whose changes then all ended inconclusive. 300 s leave 209 s, and after a
        # quick measurement the restore waits out the scaler's own 120 s. Lambda bills the time
        # used, not the timeout.
        timeout_seconds=300,
        environment={
            **COMMON_ENVIRONMENT,
            **MEMBER_ROLE_ENVIRONMENT,
            "VALIDATION_FUNCTION_ARN": EnvSource.OWN_FUNCTION_ARN,
            "VALIDATION_DEAD_LETTER_ARN": EnvSource.OWN_DEAD_LETTER_QUEUE_ARN,
            "VALIDATION_SCHEDULE_GROUP": EnvSource.CALLBACK_SCHEDULE_GROUP,
            "VALIDATION_SCHEDULER_ROLE_ARN": EnvSource.CALLBACK_SCHEDULER_ROLE_ARN,
            "VALIDATION_BAKE_MINUTES": EnvSource.VALIDATION_BAKE_MINUTES,
            "VALIDATION_RESTORE_SCALER_CHANGES": EnvSource.VALIDATION_RESTORE_SCALER_CHANGES,
            "SCALER_MEMBER_ROLE_NAME": EnvSource.SCALER_MEMBER_ROLE_NAME,
            "SCALER_FUNCTION_NAME": EnvSource.SCALER_FUNCTION_NAME,
        },
        permissions=(
            *COMMON_PERMISSIONS,
            ASSUME_OWN_MEMBER_ROLE,
            # A regression after the scaler's own change: the scaler restores the sizes.
            PermissionStatement(actions=("lambda:InvokeFunction",), resources=(R.FLEET_FUNCTIONS,)),
            # Once, as the validator upgrades: the validations opened before it indexed them
            # (change_validator/earlier_validations.py).
            STATE_TABLE_KEYS_SCAN,
            # Waiting costs no Lambda time: one-time schedules call the function back. A retry
            # that finds its step booked already reads the time it was booked for; a bake check
            # books its successor before measuring, and deletes it once the change is judged.
            PermissionStatement(
                actions=(
                    "scheduler:CreateSchedule",
                    "scheduler:GetSchedule",
                    "scheduler:DeleteSchedule",
                ),
                resources=(R.CALLBACK_SCHEDULES,),
            ),
            PermissionStatement(
                actions=("iam:PassRole",),
                resources=(R.CALLBACK_SCHEDULER_ROLE,),
                conditions=(
                    Condition("StringEquals", "iam:PassedToService", ("scheduler.amazonaws.com",)),
                ),
            ),
        ),
        member_actions=(
            *EKS_READ,
            "eks:DescribeUpdate",
            "autoscaling:DescribeAutoScalingGroups",
            *LOAD_BALANCERS_READ,
            *METRICS_READ,
        ),
        triggers=(
            EventRule(
                name="eks-change",
                # CloudTrail's records of the EKS calls whose updates are validated (a launch
                # template update is an UpdateNodegroupVersion naming one); the `aws.` source
                # cannot be forged with PutEvents.
                pattern={
                    "source": ["aws.eks"],
                    "detail-type": ["AWS API Call via CloudTrail"],
                    "detail": {
                        "eventSource": ["eks.amazonaws.com"],
                        "eventName": [
                            "UpdateClusterVersion",
                            "UpdateNodegroupVersion",
                            "UpdateNodegroupConfig",
                        ],
                    },
                },
            ),
            CallbackSchedules(),
            # A callback schedule deleted by hand (or never delivered) would leave its
            # validation open for ever: the sweep ends it, with its warning.
            FixedSchedule(
                name="stalled-validations", expression="rate(1 hour)", payload={"action": "sweep"}
            ),
        ),
        invokes=("eks_scaler",),
    ),
    FunctionSpec(
        name="security_scanner",
        description="Compliance checks across member accounts; risk scoring of security events.",
        memory_mb=512,
        timeout_seconds=900,
        environment={
            **COMMON_ENVIRONMENT,
            **MEMBER_ROLE_ENVIRONMENT,
            "SCAN_QUEUE_URL": EnvSource.FUNCTION_QUEUE_URL,
            # Reports are dated by the day in the stack's schedule time zone.
            "SCHEDULE_TIME_ZONE": EnvSource.SCHEDULE_TIME_ZONE,
        },
        permissions=(
            *COMMON_PERMISSIONS,
            ASSUME_OWN_MEMBER_ROLE,
            data_bucket_objects(("s3:PutObject",), "reports/security/"),
            FLEET_KEY_DATA_KEYS_FOR_OBJECTS,
            PermissionStatement(
                actions=("securityhub:BatchImportFindings",),
                resources=(R.SECURITY_HUB,),
            ),
            # Once, as the scanner upgrades: the targets' states saved before it indexed them
            # (security_scanner/left_accounts.py).
            STATE_TABLE_KEYS_SCAN,
            PermissionStatement(
                actions=(
                    "sqs:SendMessage",
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                ),
                resources=(R.FUNCTION_QUEUE,),
            ),
        ),
        member_actions=(
            "s3:ListAllMyBuckets",
            "s3:GetBucketPublicAccessBlock",
            "s3:GetEncryptionConfiguration",
            "s3:GetBucketPolicy",
            "s3:GetBucketVersioning",
            "ec2:DescribeSecurityGroups",
            # Whether a rule a ModifySecurityGroupRules event set to the world is outbound.
            "ec2:DescribeSecurityGroupRules",
            "iam:ListPolicies",
            "iam:GetPolicyVersion",
            "iam:ListRoles",
            "iam:ListRolePolicies",
            "iam:GetRolePolicy",
            "iam:ListUsers",
            "iam:ListUserPolicies",
            "iam:GetUserPolicy",
            "iam:ListGroups",
            "iam:ListGroupPolicies",
            "iam:GetGroupPolicy",
            "eks:ListClusters",
            "eks:DescribeCluster",
            "lambda:ListFunctions",
            "lambda:GetPolicy",
            "lambda:ListAliases",
            "lambda:ListVersionsByFunction",
            "sqs:ListQueues",
            "sqs:GetQueueAttributes",
            "sns:ListTopics",
            "sns:GetTopicAttributes",
        ),
        triggers=(
            FixedSchedule(
                name="security-scan", expression="rate(6 hours)", payload={"action": "scan"}
            ),
            EventRule(
                name="guardduty-finding",
                pattern={"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]},
            ),
            EventRule(
                name="cloudtrail-management",
                # CloudTrail events come from `aws.<service>` sources (`aws.signin` for console
                # sign-ins); EventBridge refuses PutEvents of a custom event with an `aws.` source,
                # so the prefix keeps forged events out.
                pattern={
                    "source": [{"prefix": "aws."}],
                    "detail-type": [
                        "AWS API Call via CloudTrail",
                        "AWS Console Sign In via CloudTrail",
                    ],
                },
            ),
            QueueMessages(batch_size=1),
        ),
    ),
    FunctionSpec(
        name="notification_router",
        description="Dedupes, correlates and routes alerts by severity to Slack, PagerDuty, email.",
        memory_mb=256,
        timeout_seconds=60,
        environment={
            **COMMON_ENVIRONMENT,
            "EMAIL_TOPIC_ARN": EnvSource.EMAIL_TOPIC_ARN,
            "SLACK_WEBHOOK_SECRET": EnvSource.SLACK_WEBHOOK_SECRET,
            "PAGERDUTY_ROUTING_KEY_SECRET": EnvSource.PAGERDUTY_ROUTING_KEY_SECRET,
            "ROUTER_QUEUE_URL": EnvSource.FUNCTION_QUEUE_URL,
            "ROUTER_DEAD_LETTER_QUEUE_URL": EnvSource.FUNCTION_QUEUE_DEAD_LETTERS_URL,
            "ROUTER_REDELIVERY_SECONDS": EnvSource.OWN_REDELIVERY_SECONDS,
        },
        permissions=(
            *COMMON_PERMISSIONS_OF_THE_ROUTER,
            PermissionStatement(actions=("sns:Publish",), resources=(R.EMAIL_TOPIC,)),
            PermissionStatement(
                actions=("secretsmanager:GetSecretValue",), resources=(R.ALERT_SECRETS,)
            ),
            PermissionStatement(
                actions=(
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    # Delays a message until the Retry-After a channel asked for.
                    "sqs:ChangeMessageVisibility",
                ),
                resources=(R.FUNCTION_QUEUE,),
            ),
            # Keeps an SNS message it cannot read where an unreadable queue message ends up:
            # the queue's dead-letter queue, whose alarm tells people and which redrives.
            PermissionStatement(
                actions=("sqs:SendMessage",), resources=(R.FUNCTION_QUEUE_DEAD_LETTERS,)
            ),
        ),
        triggers=(
            AlertTopics(severities=("critical", "warning", "info")),
            # An alert topic's event that failed past Lambda's retries (a channel's outage) is
            # read again from the queue, whose dead-letter queue redrives: docs/functions/
            # notification_router.md, "When a channel is down".
            QueueMessages(batch_size=10, failed_invocations=True),
        ),
        reserved_concurrency=10,
    ),
    FunctionSpec(
        name="cleanup_manager",
        description=(
            "Finds stale snapshots, volumes, Lambda versions its policy names; "
            "notifies, deletes if told."
        ),
        memory_mb=256,
        timeout_seconds=600,
        # The stack's cleanup policy, whole, as JSON: what it may clean and whether it deletes;
        # marks are dated by the day in the zone the daily run is scheduled in.
        environment={
            **COMMON_ENVIRONMENT,
            **MEMBER_ROLE_ENVIRONMENT,
            "CLEANUP_POLICY": EnvSource.CLEANUP_POLICY,
            "SCHEDULE_TIME_ZONE": EnvSource.SCHEDULE_TIME_ZONE,
            # Names its marks: stacks sharing a member account count and delete only their own.
            "STACK_NAME": EnvSource.STACK_NAME,
        },
        permissions=(*COMMON_PERMISSIONS, ASSUME_OWN_MEMBER_ROLE),
        member_actions=(
            "ec2:DescribeSnapshots",
            "ec2:DescribeSnapshotAttribute",
            "ec2:DescribeImages",
            "ec2:DescribeLaunchTemplates",
            "ec2:DescribeLaunchTemplateVersions",
            "autoscaling:DescribeLaunchConfigurations",
            "ec2:DescribeVolumes",
            "ec2:CreateTags",
            "ec2:DeleteTags",
            "ec2:DeleteSnapshot",
            "ec2:DeleteVolume",
            "lambda:ListFunctions",
            "lambda:ListVersionsByFunction",
            "lambda:ListAliases",
            "lambda:ListEventSourceMappings",
            "lambda:ListProvisionedConcurrencyConfigs",
            "lambda:ListTags",
            "lambda:DeleteFunction",
        ),
        # Deletes only what its stack marked (never a fleet backup, nor what it never deletes)
        # and its policy does not keep; tags only with its mark. Lambda deletions are held to
        # qualified versions by the resource scope, and to functions not kept.
        member_conditions={
            "ec2:DeleteSnapshot": (
                MARKED_FOR_DELETION,
                NOT_A_FLEET_BACKUP,
                *without_tags(SNAPSHOT_TAGS_NEVER_DELETED),
                NOT_KEPT,
            ),
            "ec2:DeleteVolume": (
                MARKED_FOR_DELETION,
                *without_tags(VOLUME_TAGS_NEVER_DELETED),
                NOT_KEPT,
            ),
            "lambda:DeleteFunction": (NOT_KEPT,),
            "ec2:CreateTags": ONLY_THE_CLEANUP_MARK,
            "ec2:DeleteTags": ONLY_THE_CLEANUP_MARK,
        },
        triggers=(
            FixedSchedule(
                name="cleanup", expression="cron(0 19 * * ? *)", payload={"action": "cleanup"}
            ),
        ),
        # Deletes: one run at a time, so two runs never mark or delete the same resource.
        reserved_concurrency=1,
    ),
    FunctionSpec(
        name="backup_scheduler",
        description="Snapshots and backs up resources tagged for backup; applies retention.",
        memory_mb=256,
        timeout_seconds=600,
        # The stack names its copies: stacks sharing a member account prune only their own.
        environment={
            **COMMON_ENVIRONMENT,
            **MEMBER_ROLE_ENVIRONMENT,
            "STACK_NAME": EnvSource.STACK_NAME,
        },
        permissions=(
            *COMMON_PERMISSIONS,
            ASSUME_OWN_MEMBER_ROLE,
            # Once, as the scheduler upgrades: the access episodes saved before it indexed them
            # (fleet_shared/access_episodes.py).
            STATE_TABLE_KEYS_SCAN,
        ),
        member_actions=(
            "ec2:DescribeVolumes",
            "ec2:CreateSnapshot",
            "ec2:CreateTags",
            "ec2:DescribeSnapshots",
            "ec2:DeleteSnapshot",
            "dynamodb:ListTables",
            "dynamodb:DescribeTable",
            "dynamodb:ListTagsOfResource",
            "dynamodb:CreateBackup",
            "dynamodb:ListBackups",
            "dynamodb:DeleteBackup",
        ),
        # Deletes only its own stack's snapshots; tags only the snapshots it is creating, and
        # then a fleet backup with its own id, each with its own stack. DeleteBackup cannot be
        # so held: a DynamoDB backup carries no tags, and its ARN ends in an id DynamoDB gives,
        # not its name; the stack's own state table shows which backups are its own.
        member_conditions={
            "ec2:DeleteSnapshot": (A_FLEET_BACKUP, OF_ITS_STACK),
            "ec2:CreateTags": AnyOf(
                (
                    (WHILE_CREATING_A_SNAPSHOT, TAGGING_WITH_ITS_STACK),
                    ONLY_ITS_OWN_ID_ON_A_FLEET_BACKUP,
                )
            ),
        },
        triggers=(
            FixedSchedule(
                name="backup",
                expression="cron(0 4 * * ? *)",
                payload={"action": "backup", "run": SCHEDULED_TIME},
            ),
        ),
        # Snapshots and deletes: one run at a time, so a retried run never doubles the backups.
        reserved_concurrency=1,
    ),
    FunctionSpec(
        name="report_fetcher",
        description="Fetches region and service availability from SSM public parameters.",
        memory_mb=512,
        timeout_seconds=300,
        # Reports are dated by the day in the zone the fetch is scheduled in.
        environment={
            **COMMON_ENVIRONMENT,
            "SCHEDULE_TIME_ZONE": EnvSource.SCHEDULE_TIME_ZONE,
        },
        permissions=(
            *COMMON_PERMISSIONS,
            # Its runs, and its cache of the feed between runs.
            data_bucket_objects(("s3:PutObject",), "raw/", "cache/"),
            FLEET_KEY_DATA_KEYS_FOR_OBJECTS,
            DATA_BUCKET_LIST,
            PermissionStatement(
                actions=("ssm:GetParametersByPath", "ssm:GetParameters"),
                resources=(R.GLOBAL_INFRASTRUCTURE_PARAMETERS,),
            ),
        ),
        triggers=(
            # `run` names the run's claim: a run Scheduler delivers twice is fetched once.
            FixedSchedule(
                name="report-fetch",
                expression="cron(0 5 * * ? *)",
                payload={"action": "fetch", "run": SCHEDULED_TIME},
            ),
        ),
    ),
    FunctionSpec(
        name="report_processor",
        description="Builds the region x service matrix, quality checks and changes with pandas.",
        # A raw document at its bound (32 MiB) beside a previous run at its bound (64 MiB), in
        # the shape with the most objects (500,000 services), peaked at 3,095 MiB: the benchmark
        # report_pipeline (docs/benchmarks.md#report-pipeline). 1024 held 8 MiB beside 16 MiB.
        memory_mb=4096,
        # That peak as the cost analyzer sizes a measured maximum (x 1.3, up to 64 MB): what it
        # would recommend had it seen a run at the bounds, which its rightsizing never does.
        minimum_memory_mb=4032,
        timeout_seconds=300,
        environment=dict(COMMON_ENVIRONMENT),
        permissions=(
            *COMMON_PERMISSIONS,
            # A processed run; a rejected raw document moves under raw/rejected/ with its reason.
            data_bucket_objects(("s3:PutObject",), "processed/", "raw/rejected/"),
            FLEET_KEY_DATA_KEYS_FOR_OBJECTS,
            data_bucket_objects(("s3:DeleteObject",), "raw/"),
            DATA_BUCKET_LIST,
            DATA_BUCKET_READ_VERSIONS,
            DATA_BUCKET_DELETE_RAW_VERSIONS,
        ),
        triggers=(ObjectCreated(prefix="raw/", suffix=".json"),),
        uses_pandas_layer=True,
        reads_output_of=("report_fetcher",),
    ),
    FunctionSpec(
        name="report_generator",
        description="Writes the availability report as Excel, JSON and CSV.",
        memory_mb=1024,
        timeout_seconds=300,
        environment=dict(COMMON_ENVIRONMENT),
        permissions=(
            *COMMON_PERMISSIONS,
            # A report under reports/<date>/ and reports/latest/, staged under tmp/reports/ (not
            # reports/cost/ nor reports/security/, the other functions' reports).
            data_bucket_objects(
                ("s3:PutObject", "s3:DeleteObject"),
                "reports/????-??-??/",
                "reports/latest/",
                "tmp/reports/",
            ),
            FLEET_KEY_DATA_KEYS_FOR_OBJECTS,
            DATA_BUCKET_LIST,
            DATA_BUCKET_READ_VERSIONS,
        ),
        triggers=(ObjectCreated(prefix="processed/"),),
        uses_pandas_layer=True,
        reads_output_of=("report_processor",),
    ),
    FunctionSpec(
        name="performance_analyzer",
        description="Per-cluster utilisation, bottlenecks, weekly trends; alerts on regressions.",
        memory_mb=256,
        timeout_seconds=300,
        environment={**COMMON_ENVIRONMENT, **MEMBER_ROLE_ENVIRONMENT},
        permissions=(
            *COMMON_PERMISSIONS,
            ASSUME_OWN_MEMBER_ROLE,
            data_bucket_objects(("s3:PutObject",), "analyses/"),
            FLEET_KEY_DATA_KEYS_FOR_OBJECTS,
        ),
        member_actions=(
            *METRICS_READ,
            *LOAD_BALANCERS_FOUND,
        ),
        triggers=(
            FixedSchedule(
                name="performance-analysis",
                expression="rate(4 hours)",
                payload={"action": "analyze_fleet"},
            ),
        ),
    ),
    FunctionSpec(
        name="scaling_optimizer",
        description="Turns 14 days of analyses into a reviewable patch to the stack file.",
        memory_mb=512,
        timeout_seconds=300,
        environment=dict(COMMON_ENVIRONMENT),
        permissions=(
            *COMMON_PERMISSIONS,
            data_bucket_objects(("s3:PutObject",), "recommendations/"),
            FLEET_KEY_DATA_KEYS_FOR_OBJECTS,
            DATA_BUCKET_LIST,
        ),
        triggers=(
            FixedSchedule(
                name="scaling-optimization",
                expression="cron(0 7 * * ? *)",
                payload={"action": "optimize"},
            ),
        ),
        reads_output_of=("performance_analyzer",),
    ),
)

FUNCTIONS_BY_NAME: dict[str, FunctionSpec] = {spec.name: spec for spec in FUNCTIONS}


def function_spec(name: str) -> FunctionSpec:
    """The catalog entry of `name`; a clear error lists the known functions."""
    try:
        return FUNCTIONS_BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(FUNCTIONS_BY_NAME))
        raise KeyError(f"unknown function {name!r}; known functions: {known}") from None
