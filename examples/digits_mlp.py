"""Tune a small torch MLP on scikit-learn's digits, reporting validation accuracy every epoch.

    python train.py agent=evolution env=hpo env.search_space=examples/digits_mlp.json \
        evaluator=trial evaluator.command="python examples/digits_mlp.py"

The per-epoch reports are what early stopping reads; the last epoch's accuracy is the score.
"""

import os

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from rlnas import trial

params = {"lr": 0.01, "hidden": 64, "dropout": 0.1, "batch_size": 64, "epochs": 20}
params.update(trial.get_next_parameter())
torch.manual_seed(int(os.environ.get("RLNAS_SEED", 0)))
torch.set_num_threads(1)

x, y = load_digits(return_X_y=True)
x_train, x_val, y_train, y_val = train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y)
x_train, x_val = torch.tensor(x_train, dtype=torch.float32), torch.tensor(x_val, dtype=torch.float32)
y_train, y_val = torch.tensor(y_train), torch.tensor(y_val)

model = torch.nn.Sequential(torch.nn.Linear(64, params["hidden"]), torch.nn.ReLU(),
                            torch.nn.Dropout(params["dropout"]), torch.nn.Linear(params["hidden"], 10))
optimizer = torch.optim.Adam(model.parameters(), lr=params["lr"])
for _epoch in range(int(params["epochs"])):
    model.train()
    for batch in torch.randperm(len(x_train)).split(int(params["batch_size"])):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
    trial.report_intermediate_result(accuracy)
trial.report_final_result(accuracy)
