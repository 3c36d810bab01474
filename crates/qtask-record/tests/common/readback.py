# Reads what qtask wrote with MLflow's own Python API and prints it as one JSON line.
# argv: tracking_uri experiment_name finished_run_id
import json
import math
import sys
import tempfile

import mlflow
from mlflow.tracking import MlflowClient

uri, name, finished = sys.argv[1], sys.argv[2], sys.argv[3]
mlflow.set_tracking_uri(uri)
client = MlflowClient()


def num(x):
    return "nan" if isinstance(x, float) and math.isnan(x) else x


def cell(x):
    # pandas fills columns a run does not have with NaN.
    return None if isinstance(x, float) and math.isnan(x) else x


df = mlflow.search_runs(experiment_names=[name], order_by=["attributes.start_time DESC"])
search = [
    {
        "run_id": row["run_id"],
        "status": row["status"],
        "model.class": cell(row.get("params.model.class")),
        "IC": cell(row.get("metrics.IC")),
        "train_status": cell(row.get("tags.train_status")),
    }
    for _, row in df.iterrows()
]
runs = {}
for r in client.search_runs([client.get_experiment_by_name(name).experiment_id]):
    run = client.get_run(r.info.run_id)
    runs[r.info.run_id] = {
        "status": run.info.status,
        "run_name": run.info.run_name,
        "end_time_set": run.info.end_time is not None,
        "params": run.data.params,
        "metrics": {k: num(v) for k, v in run.data.metrics.items()},
        "tags": {k: v for k, v in run.data.tags.items()},
        "ic_history": [[m.value, m.step] for m in client.get_metric_history(r.info.run_id, "IC")],
    }
top = [[a.path, a.is_dir, a.file_size] for a in client.list_artifacts(finished)]
inner = [[a.path, a.is_dir, a.file_size] for a in client.list_artifacts(finished, "sig_analysis")]
with tempfile.TemporaryDirectory() as d:
    path = client.download_artifacts(finished, "sig_analysis/ic.parquet", d)
    blob = open(path, "rb").read().hex()
    task = json.load(open(client.download_artifacts(finished, "task.json", d)))
print(json.dumps({"search": search, "runs": runs, "top": top, "inner": inner, "blob": blob, "task": task}))
