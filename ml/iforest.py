"""The IsolationForest: fitted with scikit-learn, exported to ONNX as ONE
`ai.onnx.ml.TreeEnsembleRegressor` node over all trees (skl2onnx's graph has ~27 nodes
per tree: ~0.8 ms a row and seconds to load; this one scores a row in microseconds).

Output `anomaly_score` is the score of Liu et al. (2008), s(x) = 2^(-E[h(x)] / c(psi)),
in (0, 1], higher is more unusual (about 0.5 is ordinary). It is scikit-learn's
`-score_samples(x)`; `decision_function(x) = -anomaly_score - offset_` (offset_ is on the
model card). Each leaf carries `-(depth + c(leaf samples)) / (n_trees * c(psi))`, so the
ensemble's sum is `-E[h(x)] / c(psi)` and one `Pow(2, sum)` finishes the score.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.ensemble import IsolationForest

OUTPUT = "anomaly_score"
N_TREES, MAX_SAMPLES = 100, 256


def fit(x, seed):
    forest = IsolationForest(n_estimators=N_TREES, max_samples=MAX_SAMPLES, contamination="auto",
                             max_features=1.0, bootstrap=False, random_state=seed, n_jobs=1)
    forest.fit(x)
    # Every tree sees every column in order: the export below indexes columns directly.
    assert forest._max_features == x.shape[1] and not forest.bootstrap_features
    return forest


def average_path_length(n):
    """c(n): the average path length of an unsuccessful search in a binary search tree
    of n points (scikit-learn's `_average_path_length`)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def float32_at_or_below(t):
    """The largest float32 <= t: for every float32 x, `x <= t32` iff `x <= t`, so the
    float32 tree ensemble routes rows exactly as scikit-learn's float64 thresholds do."""
    t32 = np.float32(t)
    if float(t32) > t:
        t32 = np.nextafter(t32, np.float32(-np.inf), dtype=np.float32)
    return float(t32)


def export(forest, n_features):
    norm = len(forest.estimators_) * average_path_length([forest.max_samples_])[0]
    a = {k: [] for k in ("tree", "node", "feature", "value", "mode", "true", "false", "missing")}
    targets = {"tree": [], "node": [], "weight": []}
    for t, est in enumerate(forest.estimators_):
        tree = est.tree_
        depth = np.zeros(tree.node_count, dtype=np.int64)
        for i in range(tree.node_count):  # children always come after their parent
            for child in (tree.children_left[i], tree.children_right[i]):
                if child >= 0:
                    depth[child] = depth[i] + 1
        leaf_path = depth + average_path_length(tree.n_node_samples)
        for i in range(tree.node_count):
            leaf = tree.children_left[i] < 0
            a["tree"].append(t)
            a["node"].append(i)
            a["feature"].append(0 if leaf else int(tree.feature[i]))
            a["value"].append(0.0 if leaf else float32_at_or_below(tree.threshold[i]))
            a["mode"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["true"].append(0 if leaf else int(tree.children_left[i]))
            a["false"].append(0 if leaf else int(tree.children_right[i]))
            # scikit-learn sends NaN to the side it learnt per node; "true" is left.
            a["missing"].append(0 if leaf else int(tree.missing_go_to_left[i]))
            if leaf:
                targets["tree"].append(t)
                targets["node"].append(i)
                targets["weight"].append(float(-leaf_path[i] / norm))
    ensemble = helper.make_node(
        "TreeEnsembleRegressor", ["input"], ["neg_relative_path"], domain="ai.onnx.ml",
        n_targets=1, aggregate_function="SUM", post_transform="NONE", base_values=[0.0],
        nodes_treeids=a["tree"], nodes_nodeids=a["node"], nodes_featureids=a["feature"],
        nodes_values=a["value"], nodes_modes=a["mode"], nodes_truenodeids=a["true"],
        nodes_falsenodeids=a["false"], nodes_missing_value_tracks_true=a["missing"],
        target_ids=[0] * len(targets["tree"]), target_treeids=targets["tree"],
        target_nodeids=targets["node"], target_weights=targets["weight"],
    )
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    power = helper.make_node("Pow", ["two", "neg_relative_path"], [OUTPUT])
    graph = helper.make_graph(
        [ensemble, power], "isolation_forest",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", 1])],
        initializer=[two],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def card(forest, fitted_on, as_feature):
    return {
        "kind": "isolation_forest", "file": "iforest.onnx", "output": OUTPUT,
        "trees": len(forest.estimators_), "max_samples": int(forest.max_samples_),
        "offset": float(forest.offset_), "fitted_on": fitted_on, "as_feature": as_feature,
        "score": "2^(-E[h(x)]/c(max_samples)): scikit-learn's -score_samples; "
                 "decision_function = -anomaly_score - offset",
    }
