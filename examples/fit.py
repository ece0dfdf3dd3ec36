# The README's "From Python" example: `backprop train`'s default run (Fashion-MNIST, or generated spirals
# where it is absent; 15 epochs, batch 32, SGD lr 0.02 momentum 0.9 on a cosine schedule, seed 1) on the CPU.
import backprop
from backprop.datasets import fashion_mnist_or_spirals

(X, y), (X_test, y_test) = fashion_mnist_or_spirals(seed=1)
net = backprop.Network([X.shape[1], 256, 128, y.max() + 1], "relu", loss="ce", seed=1)
net.fit(X, y, epochs=15, batch=32, optimizer="sgd", lr=0.02, momentum=0.9, schedule="cosine", seed=1)
print(f"test accuracy {100 * net.evaluate(X_test, y_test).accuracy:.2f}%")
