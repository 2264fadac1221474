"""A stand-in for `torchrun ... -m resnet_gui train [--config FILE] ... --json --stop-file PATH` in GUI tests:
prints recorded JSON events of a two-process run (rank 0's view) with small delays and watches the stop file.

    --mode finish    started, 2 epochs of 3 batches, checkpoints, finished
    --mode endless   batches until the stop file appears, then cancelled (exit 0, as torchrun does)
    --mode stubborn  batches forever, ignoring the stop file (the launcher must kill it)
"""
import argparse
import json
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--mode", default="finish")
parser.add_argument("--nproc", type=int, default=2)
parser.add_argument("--stop-file")
parser.add_argument("--name", default="fake-ddp")
parser.add_argument("--config")  # a new run's settings file: its name is the run's
args, rest = parser.parse_known_args()
if args.config:
    args.name = json.loads(Path(args.config).read_text()).get("name") or args.name
STEPS, EPOCHS = 3, 2
CONFIG = {"arch": "resnet18_cifar", "dataset": "folder", "batch_size": 4, "lr": 0.05, "optimizer": "sgd",
          "epochs": EPOCHS, "world_size": args.nproc}


def emit(obj):
    print(json.dumps(obj), flush=True)


def stopped():
    return args.stop_file and Path(args.stop_file).exists()


def ended(status, message, epochs_done):
    emit({"event": status, "status": status, "message": message, "run_name": args.name,
          "best_name": args.name if epochs_done else None, "best_path": None,
          "best_val_accuracy": 0.5 if epochs_done else None, "last_path": None, "epochs_done": epochs_done,
          "warnings": []})


print(f"fake torchrun: {args.nproc} processes, options {' '.join(rest)}", flush=True)
print("W0101 00:00:00.000 torch/distributed/run.py: a line on stderr", file=sys.stderr, flush=True)
emit({"event": "status", "message": "Scanning the folder"})
emit({"event": "dataset", "description": {"name": "shapes", "train_images": 12, "val_images": 6,
                                          "val_source": "split 20 %"}})
emit({"event": "started", "run_name": args.name, "device": "cuda:0", "precision": "bf16", "epochs": EPOCHS,
      "start_epoch": 0, "steps_per_epoch": STEPS, "train_images": 12, "val_images": 6,
      "class_names": ["a", "b", "c"], "config": CONFIG, "data_path": "tensor", "history": [],
      "world_size": args.nproc})
step, epoch = 0, 1
while True:
    for i in range(1, STEPS + 1):
        time.sleep(0.05)
        if stopped() and args.mode != "stubborn":
            ended("cancelled", f"Stopped during epoch {epoch}", epoch - 1)
            sys.exit(0)
        step += 1
        loss = 2.0 / (1 + 0.2 * step)
        emit({"event": "batch", "epoch": epoch, "epochs": EPOCHS, "step": i, "steps": STEPS, "loss": loss,
              "losses": [[step, loss]], "lr": 0.05, "images_per_s": 800.0, "eta_s": 3.0})
    if args.mode == "finish":
        emit({"event": "epoch", "epoch": epoch, "epochs": EPOCHS, "train_loss": 2.0 / epoch,
              "train_accuracy": 0.3 * epoch, "val_loss": 2.2 / epoch, "val_accuracy": 0.25 * epoch,
              "lr": 0.05, "images_per_s": 800.0, "epoch_time_s": 0.2, "eta_s": 0.2 * (EPOCHS - epoch), "best": True})
        emit({"event": "checkpoint", "which": "best", "path": "best.pth", "epoch": epoch, "name": args.name,
              "val_accuracy": 0.25 * epoch})
        if epoch == EPOCHS:
            ended("finished", f"Finished {EPOCHS} epochs; best validation accuracy 50.00%, saved as '{args.name}'",
                  EPOCHS)
            sys.exit(0)
        epoch += 1
