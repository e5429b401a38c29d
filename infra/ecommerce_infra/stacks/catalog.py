"""The Glue catalog: the database, the clean zone's tables (partition projection, no crawler) and a
crawler for the raw zone."""

from __future__ import annotations

import json
import re

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from cdk_nag import NagSuppressions
from constructs import Construct

from ecommerce_infra import contract
from ecommerce_infra.nag import finding, object_wildcard, suppression
from ecommerce_infra.settings import InfraSettings
from ecommerce_infra.stacks.common import LakeStack

PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

RAW_TABLE_PREFIX = "raw_"


def glue_arns(stack: Stack, database: str) -> dict[str, str]:
    """ARNs of the Data Catalog, the database and the database's tables."""
    base = f"arn:{Aws.PARTITION}:glue:{stack.region}:{stack.account}"
    return {
        "catalog": f"{base}:catalog",
        "database": f"{base}:database/{database}",
        "tables": f"{base}:table/{database}/*",
    }


def clean_table_parameters(settings: InfraSettings, bucket_name: str) -> dict[str, str]:
    """Table parameters of the clean ``transactions`` table: Parquet with partition projection.

    DuckDB's partitioned COPY writes ``year=2011/month=1`` (no zero padding), so both partition keys
    are projected as plain integers and the location template uses them as they are.
    """
    first, last = settings.clean_year_range
    location = f"s3://{bucket_name}/{settings.folder(contract.CLEAN_TABLE_PREFIX)}"
    return {
        "classification": "parquet",
        "EXTERNAL": "TRUE",
        "projection.enabled": "true",
        "projection.year.type": "integer",
        "projection.year.range": f"{first},{last}",
        "projection.month.type": "integer",
        "projection.month.range": "1,12",
        "storage.location.template": location + "year=${year}/month=${month}/",
    }


class CatalogStack(LakeStack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)  # settings=, bucket=: see LakeStack
        settings, bucket = self.settings, self.bucket
        db_name = settings.glue_database
        arns = glue_arns(self, db_name)

        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=self.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=db_name,
                description="The ecommerce platform's lake (raw tables by crawler, clean by projection)",
                location_uri=f"s3://{bucket.bucket_name}/{settings.folder('') if settings.s3_prefix else ''}",
            ),
        )

        # --- the clean zone: partition projection, so no crawler and no partition upkeep ----------
        clean_location = f"s3://{bucket.bucket_name}/{settings.folder(contract.CLEAN_TABLE_PREFIX)}"
        self.clean_table = glue.CfnTable(
            self,
            "CleanTransactionsTable",
            catalog_id=self.account,
            database_name=db_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=contract.CLEAN_TABLE,
                description="Clean transaction lines (one row per source line), Parquet by year/month",
                table_type="EXTERNAL_TABLE",
                parameters=clean_table_parameters(settings, bucket.bucket_name),
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=n, type=contract.GLUE_TYPES[t], comment=c)
                    for n, t, c in contract.CLEAN_PARTITIONS
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=clean_location,
                    input_format=PARQUET_INPUT,
                    output_format=PARQUET_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=PARQUET_SERDE,
                        parameters={"serialization.format": "1"},
                    ),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=n, type=contract.GLUE_TYPES[t], comment=c)
                        for n, t, c in contract.CLEAN_COLUMNS
                    ],
                    compressed=False,
                    stored_as_sub_directories=False,
                ),
            ),
        )
        self.clean_table.add_resource_dependency(self.database)

        # --- the raw zone: a crawler (formats and columns of raw data vary) --------------------------
        self.logs_key = kms.Key(
            self,
            "CrawlerLogsKey",
            description="Encrypts the Glue crawler's CloudWatch logs",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.logs_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsForGlue",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws-glue/*"
                    }
                },
            )
        )
        security_name = f"{db_name}-crawler-security"
        self.security_configuration = glue.CfnSecurityConfiguration(
            self,
            "CrawlerSecurityConfiguration",
            name=security_name,
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=self.logs_key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=self.logs_key.key_arn
                ),
                s3_encryptions=[glue.CfnSecurityConfiguration.S3EncryptionProperty(s3_encryption_mode="SSE-S3")],
            ),
        )

        raw_paths = [settings.folder(contract.RAW_STREAM_PREFIX), settings.folder(contract.RAW_BATCH_PREFIX)]
        self.crawler_role = iam.Role(
            self,
            "CrawlerRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Lets the raw-zone crawler read raw/ and maintain the raw_* tables",
        )
        crawler_policy = iam.Policy(
            self,
            "CrawlerPolicy",
            roles=[self.crawler_role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadRawZone",
                    actions=["s3:GetObject"],
                    resources=[bucket.arn_for_objects(p + "*") for p in raw_paths],
                ),
                iam.PolicyStatement(
                    sid="ListRawZone",
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [p + "*" for p in raw_paths]}},
                ),
                iam.PolicyStatement(
                    sid="ReadDatabase",
                    actions=["glue:GetDatabase"],
                    resources=[arns["catalog"], arns["database"]],
                ),
                iam.PolicyStatement(
                    sid="MaintainRawTables",
                    actions=[
                        "glue:GetTable",
                        "glue:GetTables",
                        "glue:CreateTable",
                        "glue:UpdateTable",
                        "glue:GetPartition",
                        "glue:GetPartitions",
                        "glue:BatchGetPartition",
                        "glue:CreatePartition",
                        "glue:BatchCreatePartition",
                        "glue:UpdatePartition",
                        "glue:BatchUpdatePartition",
                    ],
                    resources=[
                        arns["catalog"],
                        arns["database"],
                        f"arn:{Aws.PARTITION}:glue:{self.region}:{self.account}:table/{db_name}/{RAW_TABLE_PREFIX}*",
                    ],
                ),
                iam.PolicyStatement(
                    sid="CrawlerLogs",
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:AssociateKmsKey",
                    ],
                    resources=[
                        f"arn:{Aws.PARTITION}:logs:{self.region}:{self.account}:log-group:/aws-glue/crawlers*"
                    ],
                ),
            ],
        )
        NagSuppressions.add_resource_suppressions(
            crawler_policy,
            [
                suppression(
                    "AwsSolutions-IAM5",
                    reason="The crawler reads every object under raw/stream/ and raw/batch/, owns "
                    "the raw_* tables it discovers (names not known in advance) and writes to the "
                    "/aws-glue/crawlers* log groups Glue names after the role and security "
                    "configuration.",
                    applies_to=[
                        *(object_wildcard(p) for p in raw_paths),
                        finding(f"Resource::.*:table/{re.escape(db_name)}/{RAW_TABLE_PREFIX}\\*"),
                        finding("Resource::.*:log-group:/aws-glue/crawlers\\*"),
                    ],
                )
            ],
        )

        self.crawler = glue.CfnCrawler(
            self,
            "RawCrawler",
            name=f"{db_name}-raw-zone",
            description="Catalogues the raw zone (stream NDJSON and batch files) as raw_* tables",
            role=self.crawler_role.role_arn,
            database_name=db_name,
            table_prefix=RAW_TABLE_PREFIX,
            targets=glue.CfnCrawler.TargetsProperty(
                s3_targets=[
                    glue.CfnCrawler.S3TargetProperty(
                        path=f"s3://{bucket.bucket_name}/{p}", exclusions=["**/_staging/**"]
                    )
                    for p in raw_paths
                ]
            ),
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="UPDATE_IN_DATABASE", delete_behavior="LOG"
            ),
            recrawl_policy=glue.CfnCrawler.RecrawlPolicyProperty(recrawl_behavior="CRAWL_EVERYTHING"),
            schedule=glue.CfnCrawler.ScheduleProperty(schedule_expression=settings.crawler_schedule),
            crawler_security_configuration=security_name,
            configuration=json.dumps(
                {
                    "Version": 1.0,
                    "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"},
                    "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
                }
            ),
        )
        self.crawler.add_resource_dependency(self.database)
        self.crawler.add_resource_dependency(self.security_configuration)
        self.crawler.node.add_dependency(crawler_policy)
