"""Train the small fixture model the sidecar's tests (and `make run`, until the
trained model ships) load: LightGBM on synthetic rows of the sidecar's feature list,
exported to ONNX with a model card. The trees are deterministic for a given seed
(the ONNX bytes, and so the version hash, carry converter-generated names).

    python ml/make_fixture_model.py --out models/fixture
    python ml/make_fixture_model.py --anomaly-feature --out models/fixture-anomaly

With `--anomaly-feature` the directory also holds an isolation forest (`iforest.onnx`)
whose score is the classifier's 50th input, with its tree dump and `parity.json`: the
sidecar's tests exercise that shape of model with it, whatever the shipped model is.
"""

import argparse
import hashlib
import json
import pathlib

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType

import iforest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FEATURES = json.loads((ROOT / "shared" / "feature_list.json").read_text())


def synthetic(n: int, rng: np.random.Generator):
    names = FEATURES["names"]
    col = {name: i for i, name in enumerate(names)}
    x = np.zeros((n, len(names)), dtype=np.float32)
    fraud = rng.random(n) < 0.1
    amount = np.where(fraud, rng.lognormal(5.0, 1.0, n), rng.lognormal(3.5, 0.8, n))
    x[:, col["amount_ref"]] = amount
    for entity in ("card", "customer", "ip", "device"):
        base = np.where(fraud, rng.poisson(6, n) + 1, rng.poisson(0.3, n) + 1)
        for k, w in enumerate(("1m", "1h", "24h", "7d", "30d")):
            x[:, col[f"{entity}_count_{w}"]] = base + rng.poisson(k * 0.7, n) * k
    x[:, col["device_distinct_cards_24h"]] = np.where(fraud, rng.poisson(3, n) + 1, 1)
    x[:, col["card_distinct_customers_24h"]] = np.where(fraud, rng.poisson(1, n) + 1, 1)
    x[:, col["customer_distinct_cards_24h"]] = np.where(fraud, rng.poisson(2, n) + 1, 1)
    x[:, col["card_age_seconds"]] = np.where(fraud, rng.exponential(600, n), rng.exponential(5e6, n))
    x[:, col["account_age_days"]] = np.where(fraud, rng.exponential(5, n), rng.exponential(400, n))
    x[:, col["card_country_ne_shipping"]] = (rng.random(n) < np.where(fraud, 0.6, 0.05)).astype(np.float32)
    x[:, col["email_disposable"]] = (rng.random(n) < np.where(fraud, 0.3, 0.01)).astype(np.float32)
    x[:, col["hour_of_day"]] = rng.integers(0, 24, n)
    x[:, col["day_of_week"]] = rng.integers(0, 7, n)
    x[:, col["item_count"]] = rng.integers(1, 5, n)
    x[:, col["distinct_skus"]] = 1
    # Some rows miss what a request may omit or an outage may hide: the model must route NaN.
    for name in ("device_count_1h", "account_age_days", "card_count_1m"):
        x[rng.random(n) < 0.1, col[name]] = np.nan
    return x, fraud.astype(np.int32)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "models" / "fixture"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--anomaly-feature", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    x, y = synthetic(20_000, rng)
    features = x
    if args.anomaly_feature:
        forest = iforest.fit(x, args.seed)
        forest_bytes = iforest.export(forest, x.shape[1])
        session = ort.InferenceSession(forest_bytes, providers=["CPUExecutionProvider"])
        anomaly = session.run([iforest.OUTPUT], {"input": x})[0]
        x = np.hstack([x, anomaly])
    model = lgb.LGBMClassifier(
        n_estimators=60, num_leaves=15, learning_rate=0.1, deterministic=True,
        num_threads=1, random_state=args.seed, verbose=-1,
    )
    model.fit(x, y)
    onx = convert_lightgbm(model, initial_types=[("input", FloatTensorType([None, x.shape[1]]))],
                           zipmap=False, target_opset=15)
    # The converter fixes the label output's first dimension at 1; make it symbolic.
    for out in onx.graph.output:
        out.type.tensor_type.shape.dim[0].dim_param = "N"
    data = onx.SerializeToString()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(data)
    card = {
        "version": "fixture-" + hashlib.sha256(data).hexdigest()[:10],
        "feature_list_hash": FEATURES["hash"],
        "output": "probabilities",
        "kind": "lightgbm",
        "training_data": {"source": "synthetic (ml/make_fixture_model.py)", "rows": int(len(y)), "seed": args.seed},
        "note": "Fixture for tests and for `make run` until the trained model ships. Not a fraud model.",
    }
    if args.anomaly_feature:
        card["version"] = "fixture-anomaly-" + hashlib.sha256(model.booster_.model_to_string().encode()).hexdigest()[:10]
        card["inputs"] = FEATURES["names"] + [iforest.OUTPUT]
        card["anomaly"] = iforest.card(forest, "the synthetic rows", True)
        card["note"] = "Fixture for tests of a model whose classifier takes the anomaly score. Not a fraud model."
        (out / "iforest.onnx").write_bytes(forest_bytes)
        (out / "trees.json").write_text(json.dumps(model.booster_.dump_model()["tree_info"]) + "\n")
        rows = np.concatenate([np.flatnonzero(y == 1)[:10], np.flatnonzero(y == 0)[:10]])
        classifier = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        (out / "parity.json").write_text(json.dumps({
            "rows": [[None if np.isnan(v) else float(v) for v in r] for r in features[rows]],
            "anomaly_scores": [float(v) for v in x[rows, -1]],
            "scores": [float(v) for v in classifier.run(["probabilities"], {"input": x[rows]})[0][:, 1]],
            "contributions": model.booster_.predict(x[rows], pred_contrib=True).tolist(),
        }) + "\n")
    (out / "model.json").write_text(json.dumps(card, indent=2) + "\n")
    onnx.checker.check_model(onx)
    print(f"wrote {out}/model.onnx ({len(data)} bytes), version {card['version']}")


if __name__ == "__main__":
    main()
