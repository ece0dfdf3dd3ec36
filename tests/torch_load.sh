#!/usr/bin/env bash
# torch_load.sh BACKPROP SOURCE_DIR — PyTorch loads a model in one call
# (examples/backprop_torch.py) and predicts what `backprop predict` does:
# a model trained on a CSV with standardized features and labels that are
# names, on the file with labels and on one of features only; and a model
# of IDX-like data without scaling. Skipped (77) without a Python that has
# torch and numpy.
set -euo pipefail
bp=$1; src=$2
py=""
for candidate in /usr/bin/python3 python3; do
    if "$candidate" -c "import torch, numpy" >/dev/null 2>&1; then py=$candidate; break; fi
done
[ -n "$py" ] || { echo "SKIPPED: no python3 with torch and numpy"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" - "$work" <<'PY'
import random, sys
random.seed(3)
names = ["Iris-setosa", "Iris versicolor", "iris_virginica"]
with open(sys.argv[1] + "/train.csv", "w") as f, open(sys.argv[1] + "/new.csv", "w") as g:
    f.write("sepal length;sepal width;species\n")
    for i in range(300):
        k = i % 3
        x = (50 + 20 * k + random.gauss(0, 3), 300 - 40 * k + random.gauss(0, 10))
        f.write(f"{x[0]:.3f};{x[1]:.3f};{names[k]}\n")
        g.write(f"{x[0]:.3f};{x[1]:.3f}\n")
PY
"$bp" train --data "$work/train.csv" --delimiter ';' --standardize --epochs 8 --device cpu -q \
    --save "$work/m.st"
"$bp" predict --model "$work/m.st" --data "$work/train.csv" -q -o "$work/p.csv"
"$py" "$src/examples/load_in_pytorch.py" "$work/m.st" "$work/train.csv" "$work/p.csv"
"$bp" predict --model "$work/m.st" --data "$work/new.csv" --unlabeled -q -o "$work/u.csv"
"$py" "$src/examples/load_in_pytorch.py" "$work/m.st" "$work/new.csv" "$work/u.csv" --unlabeled
grep -q "^Iris versicolor," "$work/u.csv" || { echo "FAILED: predict printed no class names"; exit 1; }
# In one call from Python, with the class names.
"$py" - "$src/examples" "$work/m.st" "$work/train.csv" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import backprop_torch, torch
model = backprop_torch.load(sys.argv[2])
x, y = backprop_torch.read_data(sys.argv[3], model)
accuracy = (model(x).argmax(1) == y).double().mean().item()
assert model.class_names == ["Iris versicolor", "Iris-setosa", "iris_virginica"], model.class_names
assert isinstance(model[0], backprop_torch.InputScaling), model
assert accuracy > 0.9, accuracy
print(f"backprop_torch.load: {len(model)} modules, accuracy {accuracy:.3f}, classes {model.class_names}")
PY
echo OK
