"""Drive milvus-sim through pymilvus 1.1.2's HTTP handler and check what the client parses.

Usage: pymilvus_client.py <port>. Exits non-zero on the first failed check.
"""

import random
import sys

from milvus import IndexType, MetricType, Milvus

PORT = sys.argv[1]
DIM = 8
N = 5000


def ok(step, status):
    if not status.OK():
        sys.exit(f"{step}: status {status.code} {status.message}")


def check(step, cond, detail=""):
    if not cond:
        sys.exit(f"{step}: check failed {detail}")


client = Milvus(host="127.0.0.1", port=PORT, handler="HTTP")

status, version = client.server_version()
ok("server_version", status)
check("server_version", version == "1.1.1", version)

status = client.create_collection(
    {"collection_name": "py", "dimension": DIM, "index_file_size": 1, "metric_type": MetricType.L2}
)
ok("create_collection", status)
status, exists = client.has_collection("py")
ok("has_collection", status)
check("has_collection", exists is True)

ok("create_partition", client.create_partition("py", "day_2024-01-01"))
status, parts = client.list_partitions("py")
ok("list_partitions", status)
check("list_partitions", [p.tag for p in parts] == ["_default", "day_2024-01-01"], parts)

rng = random.Random(7)
vectors = [[rng.random() for _ in range(DIM)] for _ in range(N)]
ids = list(range(1, N + 1))
status, got_ids = client.insert("py", vectors, ids=ids, partition_tag="day_2024-01-01")
ok("insert", status)
check("insert", got_ids == ids)

ok("flush", client.flush(["py"]))

status, stats = client.get_collection_stats("py")
ok("get_collection_stats", status)
check("stats row_count", stats["row_count"] == N, stats)
part = [p for p in stats["partitions"] if p["tag"] == "day_2024-01-01"][0]
check("stats partition", part["row_count"] == N and len(part["segments"]) == 1, part)
check("stats data_size", part["segments"][0]["data_size"] == N * (DIM * 4 + 8), part)

ok("create_index", client.create_index("py", IndexType.IVF_PQ, {"m": 4, "nlist": 16}))
status, index = client.get_index_info("py")
ok("get_index_info", status)
check("index type", index.index_type == IndexType.IVF_PQ, index)
check("index params", index.params == {"m": 4, "nlist": 16}, index)

status, count = client.count_entities("py")
ok("count_entities", status)
check("count_entities", count == N, count)

status, result = client.search(
    "py", 3, vectors[41:43], partition_tags=["day_2024-01-01"], params={"nprobe": 8}
)
ok("search", status)
check("search shape", len(result) == 2 and len(result[0]) == 3, result)
check("search top1", result[0][0].id == 42 and result[1][0].id == 43, result)
check("search distance", abs(result[0][0].distance) < 1e-6, result)

ok("compact", client.compact("py"))
ok("drop_partition", client.drop_partition("py", "day_2024-01-01"))
status, parts = client.list_partitions("py")
ok("list_partitions after drop", status)
check("list_partitions after drop", [p.tag for p in parts] == ["_default"], parts)

status = client.create_partition("nope", "x")
check("error status", not status.OK() and status.code == 4, status)

print("pymilvus: all checks passed")
