"""Tune an SVC on scikit-learn's digits: a trial script as NNI's users write them.

    python train.py agent=tpe env=hpo env.search_space=examples/digits_svc.json \
        evaluator=trial evaluator.command="python examples/digits_svc.py"

It imports only rlnas.trial and scikit-learn. Run on its own (python examples/digits_svc.py)
it trains with its defaults below; train.py's evaluator=function can call validation_score directly.
"""

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from rlnas import trial

DEFAULTS = {"C": 1.0, "gamma": 0.001, "kernel": {"_name": "rbf"}}

x, y = load_digits(return_X_y=True)
x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.4, random_state=0, stratify=y)
x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest)


def validation_score(params: dict) -> dict:
    """Validation accuracy as "default" (what the search maximises), test accuracy beside it."""
    kernel = params["kernel"]
    model = SVC(C=params["C"], gamma=params["gamma"], kernel=kernel["_name"], degree=kernel.get("degree", 3))
    model.fit(x_train, y_train)
    return {"default": model.score(x_val, y_val), "test_acc": model.score(x_test, y_test)}


if __name__ == "__main__":
    trial.report_final_result(validation_score({**DEFAULTS, **trial.get_next_parameter()}))
