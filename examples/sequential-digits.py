"""Many-to-one: classify scikit-learn's 8x8 handwritten digits read row by row (8 steps of 8 pixels).

Each image is a sequence of 8 rows; the recurrent network reads one row per
time step and only its final hidden state is used: a linear layer maps it to
the 10 digit scores (for a bidirectional network, the final states of both
directions are concatenated). Choose the cell with ``--cell rnn|lstm|gru``,
stack layers with ``--layers N`` and read the rows in both directions with
``--bidirectional``. Train/test split: 80/20, stratified, from
``tinygrad_rnn.data.load_digits_sequences``.
"""
from __future__ import annotations

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import examples_export as exporting
from tinygrad_rnn import examples_parallel as parallel
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import nn, optim
from tinygrad_rnn.data import load_digits_sequences
from tinygrad_rnn.nn import functional as F

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    parser.add_argument("--cell", choices=sorted(CELLS), default="lstm", help="recurrent cell (default lstm)")
    parser.add_argument("--layers", type=support.positive_int, default=1, help="stacked layers (default 1)")
    parser.add_argument("--bidirectional", action="store_true", help="read the rows top-down and bottom-up")
    parser.add_argument("--hidden", type=support.positive_int, default=64, help="hidden units (default 64)")
    parser.add_argument("--epochs", type=support.positive_int, default=None, help="epochs (default 4 quick, 30 full)")
    parser.add_argument("--batch-size", type=support.positive_int, default=64, help="images per step (default 64)")
    parser.add_argument("--lr", type=float, default=0.005, help="Adam learning rate (default 0.005)")
    parallel.add_flag(parser)
    exporting.add_flag(parser)
    return parser


class RowReader(nn.Module):
    """(B, 8 rows, 8 pixels) → RNN/LSTM/GRU over the rows → final hidden state(s) → 10 scores."""

    def __init__(self, cell, hidden_size, num_layers, bidirectional):
        super().__init__()
        self.rnn = CELLS[cell](8, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=bidirectional)
        self.directions = 2 if bidirectional else 1
        self.classifier = nn.Linear(hidden_size * self.directions, 10)

    def forward(self, images):
        _, state = self.rnn(images)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM returns (h_n, c_n)
        last_layer = [h_n[-self.directions + d] for d in range(self.directions)]
        return self.classifier(tr.cat(last_layer, dim=1) if self.directions == 2 else last_layer[0])


@tr.no_grad()
def predict(model, images, device, batch_size=512):
    model.eval()
    out = [model(tr.tensor(images[i:i + batch_size], device=device)).numpy().argmax(axis=1)
           for i in range(0, len(images), batch_size)]
    model.train()
    return np.concatenate(out)


def plot(losses, accuracies, confusion, x_test, y_test, predicted, run):
    fig, _ = support.figure(None, figsize=(15, 4.6))
    left, right = fig.subfigures(1, 2, width_ratios=[2, 1])
    loss_ax, conf_ax = left.subplots(1, 2)
    loss_ax.plot(np.arange(1, len(losses) + 1), losses, lw=0.8, label="train loss (per step)")
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("cross-entropy")
    twin = loss_ax.twinx()
    steps, acc = zip(*accuracies)
    twin.plot(steps, acc, color="tab:orange", marker="o", ms=3, label="test accuracy (per epoch)")
    twin.set_ylabel("test accuracy")
    twin.set_ylim(0, 1)
    loss_ax.set_title("training")
    loss_ax.legend(loc="center right", fontsize=8)
    twin.legend(loc="lower right", fontsize=8)

    conf_ax.imshow(confusion, cmap="Blues")
    for i in range(10):
        for j in range(10):
            if confusion[i, j]:
                conf_ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                             color="white" if confusion[i, j] > confusion.max() / 2 else "black")
    conf_ax.set_xticks(range(10))
    conf_ax.set_yticks(range(10))
    conf_ax.set_xlabel("predicted")
    conf_ax.set_ylabel("true")
    conf_ax.set_title("test confusion matrix")

    right.suptitle("test digits: predicted (true); red = wrong", fontsize=10)
    wrong = np.flatnonzero(predicted != y_test)[:8]
    right_ones = np.flatnonzero(predicted == y_test)[: 24 - len(wrong)]
    for ax, index in zip(right.subplots(4, 6).ravel(), np.concatenate([wrong, right_ones])):
        ax.imshow(x_test[index], cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ok = predicted[index] == y_test[index]
        ax.set_title(f"{predicted[index]} ({y_test[index]})", fontsize=8, color="black" if ok else "red")
    run.save_figure(fig, "digits.png")


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    args = run.args
    device = run.device
    x_train, y_train, x_test, y_test = load_digits_sequences(test_fraction=0.2, seed=run.seed)
    model = RowReader(args.cell, args.hidden, args.layers, args.bidirectional).to(device)
    dp = parallel.start(run)  # --distributed: each process trains on its share of every batch
    trained = dp.wrap(model)
    optimizer = optim.Adam(trained.parameters(), lr=args.lr)
    epochs = args.epochs or (4 if run.quick else 30)
    batch_size = dp.global_batch(args.batch_size)
    batches = -(-len(x_train) // batch_size)

    losses, accuracies = [], []
    bar = run.progress(range(epochs * batches), desc=f"train {args.cell}")
    for step in bar:
        epoch, batch = divmod(step, batches)
        if batch == 0:
            order = run.rng.permutation(len(x_train))
        rows = order[batch * batch_size:(batch + 1) * batch_size]
        mine = dp.shard(rows)
        scores = trained(tr.tensor(x_train[mine], device=device))
        total = F.cross_entropy(scores, tr.tensor(y_train[mine], device=device), reduction="sum")
        loss = dp.mean(total, len(rows))  # the mean over the whole batch, whatever this process's share
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(run.check_loss(loss))
        if batch == batches - 1:
            accuracies.append((len(losses), float((predict(model, x_test, device) == y_test).mean())))
        bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}",
                        test_acc=f"{accuracies[-1][1]:.3f}" if accuracies else "-")

    predicted = predict(model, x_test, device)
    test_accuracy = float((predicted == y_test).mean())
    train_accuracy = float((predict(model, x_train, device) == y_train).mean())
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (y_test, predicted), 1)
    description = f"{args.layers}-layer {'bidirectional ' if args.bidirectional else ''}{args.cell.upper()}"
    print(f"\n{description}, {args.hidden} hidden units, {epochs} epochs: test accuracy {test_accuracy:.2%} "
          f"({int((predicted == y_test).sum())}/{len(y_test)}), train accuracy {train_accuracy:.2%}")
    print("Confusion matrix (rows: true digit, columns: predicted):")
    print("     " + " ".join(f"{j:4d}" for j in range(10)))
    for i in range(10):
        print(f"  {i}: " + " ".join(f"{v:4d}" for v in confusion[i]))

    plot(losses, accuracies, confusion, x_test, y_test, predicted, run)
    loss = F.cross_entropy(model(tr.tensor(x_test[:2], device=device)), tr.tensor(y_test[:2], device=device))
    loss.name = "loss"
    run.graph(loss, "graph", model=model)
    if dp.main:
        tr.save({"model": model.state_dict(), "args": {k: v for k, v in vars(args).items() if not k.startswith("_")}},
                run.path("model.npz"))
    dp.finish()
    exporting.export(run, model, (tr.tensor(x_test[:8], device=device),), ["images"], ["scores"])

    return run.finish({
        "model": description,
        "test_accuracy": test_accuracy,
        "train_accuracy": train_accuracy,
        "epochs": epochs,
        "test_accuracy_per_epoch": [a for _, a in accuracies],
        "final_loss": losses[-1],
        "losses": losses,
    })


if __name__ == "__main__":
    main()
