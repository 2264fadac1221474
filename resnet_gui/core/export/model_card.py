"""The Markdown model card written next to an exported model: what it takes and gives, its classes,
preprocessing, training data and figures, calibration and limits. Names from the checkpoint are escaped, so
they cannot inject Markdown or HTML."""
from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any, Protocol

from resnet_gui import __version__

from ..models.checkpoint import Checkpoint


class ExportFacts(Protocol):
    """What the card needs to know about the exported file (export.ExportResult has these)."""
    path: Any
    fmt: str
    input_name: str
    output_name: str
    input_size: int
    temperature: float
    max_abs_diff: float | None
    checked_with: str | None
    reference: str


def calibration_of(ckpt: Checkpoint) -> dict[str, Any]:
    """The checkpoint's "calibration" field (temperature scaling: temperature, ece_before, ece_after, fitted_on,
    ...), or {} when it is not calibrated."""
    value = getattr(ckpt, "calibration", None)
    return dict(value) if isinstance(value, dict) else {}



_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
# what would open a block at the start of a line: heading, quote, list, setext underline, numbered list
_LEADING_MARKER = re.compile(r"^([#>+=-]|\d+(?=[.)]))")


def md(text: object) -> str:
    """Text safe inside a Markdown paragraph or table cell: one line, no leading or trailing blanks (four
    spaces would make a code block), specials and a leading block marker escaped, no HTML."""
    value = _LINE_BREAKS.sub(" ", str(text)).strip()
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _MD_SPECIAL.sub(r"\\\1", value)
    match = _LEADING_MARKER.match(value)
    if match is None:
        return value
    if match.group(1)[0].isdigit():  # "1. x": escape the dot, "1\\. x"
        end = match.end()
        return value[:end] + "\\" + value[end:]
    return "\\" + value


def code(text: object) -> str:
    """Text shown as a code span: one line; no backtick can end the span early (inside one, HTML and Markdown
    are shown as written)."""
    return "`" + _LINE_BREAKS.sub(" ", str(text)).replace("`", "'") + "`"


def _count(value: Any) -> str:
    """An image count from the checkpoint: a whole number as it is, anything else escaped."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else md(value)


def _setting(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "default"
    if isinstance(value, float):
        return f"{value:g}"
    return md(value)


def _pct(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return f"{value:.1%}" if ok else None


def _num(value: Any, fmt: str = "{:g}") -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return fmt.format(value) if ok else None


def _figures(ckpt: Checkpoint) -> list[str]:
    m, lines = ckpt.metrics, []
    for key, label in (("test_accuracy", "Test accuracy (held-out images never used in training)"),
                       ("val_accuracy", "Validation accuracy (the split that chose the best epoch)"),
                       ("train_accuracy", "Training accuracy (last epoch, with augmentation)")):
        value = _pct(m.get(key))
        if value:
            count = m.get("test_images") if key == "test_accuracy" else (ckpt.dataset.get("val_images")
                                                                        if key == "val_accuracy" else None)
            n = f" on {count:,} images" if isinstance(count, int) and not isinstance(count, bool) else ""
            lines.append(f"- {label}: **{value}**{n}")
    for key, label in (("val_loss", "Validation loss"), ("train_loss", "Training loss")):
        value = _num(m.get(key), "{:.4f}")
        if value:
            lines.append(f"- {label}: {value}")
    epoch, epochs = m.get("epoch"), m.get("epochs")
    if isinstance(epoch, int) and isinstance(epochs, int):
        lines.append(f"- Best epoch: {epoch} of {epochs}")
    return lines or ["- No figures were recorded with this model (an imported file)."]


def _training(ckpt: Checkpoint) -> list[str]:
    cfg, data, lines = ckpt.train_config, ckpt.dataset, []
    name = data.get("name")
    if name:
        lines.append(f"- Data: {md(name)}" + (f" ({md(data['source'])})" if data.get("source") else ""))
    counts = [f"{data[k]:,} {label}" for k, label in (("train_images", "training"), ("val_images", "validation"),
                                                     ("test_images", "test"))
              if isinstance(data.get(k), int) and not isinstance(data.get(k), bool)]
    if counts:
        lines.append(f"- Images: {', '.join(counts)}")
    for key, label in (("val_source", "Validation images"), ("split", "Split")):
        if data.get(key):
            lines.append(f"- {label}: {md(data[key])}")
    if cfg:
        start = "ImageNet weights (fine-tuned)" if cfg.get("pretrained") else "random initialisation (from scratch)"
        lines.append(f"- Started from: {start}; recipe {md(cfg.get('recipe', '-'))}")
        parts = [f"{label} {_setting(cfg[k])}" for k, label in
                 (("epochs", "epochs"), ("batch_size", "batch size"), ("optimizer", "optimizer"),
                  ("lr", "learning rate"), ("schedule", "schedule"), ("weight_decay", "weight decay"),
                  ("label_smoothing", "label smoothing"), ("augment", "augmentation"),
                  ("hflip", "horizontal flips"), ("seed", "seed")) if k in cfg]
        lines.append(f"- Settings: {', '.join(parts)}")
    if not lines:
        lines.append("- Not recorded (an imported file): the training data and settings are unknown.")
    return lines


def _classes(ckpt: Checkpoint) -> list[str]:
    train = ckpt.dataset.get("class_counts") if isinstance(ckpt.dataset.get("class_counts"), dict) else {}
    val = ckpt.dataset.get("val_class_counts") if isinstance(ckpt.dataset.get("val_class_counts"), dict) else {}
    if train:
        lines = ["| index | class | training images | validation images |", "|---:|---|---:|---:|"]
        lines += [f"| {i} | {md(c)} | {_count(train.get(c, '-'))} | {_count(val.get(c, '-'))} |"
                  for i, c in enumerate(ckpt.class_names)]
    else:
        lines = ["| index | class |", "|---:|---|"]
        lines += [f"| {i} | {md(c)} |" for i, c in enumerate(ckpt.class_names)]
    return lines


def _calibration(ckpt: Checkpoint, result: ExportFacts) -> list[str]:
    cal, lines = calibration_of(ckpt), []
    if result.temperature != 1.0:
        applied = ("applied inside the exported model: probabilities = softmax(logits / T)"
                   if result.output_name == "probabilities" else "not applied: this export outputs raw logits; "
                   "divide them by T before the softmax")
        lines.append(f"- {md(cal.get('method') or 'Temperature scaling')}: T = {result.temperature:.4g} ({applied})")
        if cal.get("fitted_on"):
            images = cal.get("images")
            count = f" ({images:,} images)" if isinstance(images, int) and not isinstance(images, bool) \
                and "image" not in str(cal["fitted_on"]) else ""  # training writes "validation split (N images)"
            lines.append(f"- Fitted on: {md(cal['fitted_on'])}{count}")
    for source, key, label in ((cal, "ece_before", "Expected calibration error before scaling"),
                               (cal, "ece_after", "Expected calibration error after scaling"),
                               (cal, "ece", "Expected calibration error"),
                               (ckpt.metrics, "ece", "Expected calibration error (evaluation)")):
        value = _num(source.get(key), "{:.3f}")
        if value:
            lines.append(f"- {label}: {value}")
    if result.temperature == 1.0:
        lines.insert(0, "- **Not calibrated.** The probabilities are the network's plain softmax; networks trained "
                     "like this are usually over-confident, so a 95 % answer is right less often than 95 % of "
                     "the time.")
    return lines


def _operating_points(ckpt: Checkpoint) -> list[str]:
    """The classes' own thresholds, when the model has some: a deployment should apply them too."""
    from ..models.operating_points import describe

    points = getattr(ckpt, "operating_points", None) or {}
    if not points:
        return []
    lines = ["", "## Per-class thresholds", "",
             "The app answers one of these classes only when its probability reaches the class's own threshold "
             "(and the user's \"not sure below\" threshold); below it the answer is \"not sure\". Apply the same "
             "rule to this model's output to get the same answers:", ""]
    lines += [f"- {md(describe(name, points[name]))}" for name in ckpt.class_names if name in points]
    return lines


def model_card(ckpt: Checkpoint, result: ExportFacts, label: str, *, checked: bool = True) -> str:
    """The Markdown card written next to an export (checked=False: before the file was checked, for the copy
    stored inside a TorchScript file)."""
    pre, size, n = ckpt.preprocess, result.input_size, ckpt.num_classes
    fmt_name = "ONNX" if result.fmt == "onnx" else "TorchScript"
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    if result.output_name == "probabilities":
        out = (f"`probabilities`: float32 `[N, {n}]`, each row sums to 1, column *i* is class *i* below "
               "(softmax" + (" of logits / T, see Calibration)" if result.temperature != 1.0 else " of the logits)"))
    else:
        out = f"`logits`: float32 `[N, {n}]`, the network's raw scores; column *i* is class *i* below"
    if not checked:
        check = ""
    elif result.max_abs_diff is not None:
        check = (f" Checked after writing: {result.checked_with} gives the same outputs as {result.reference} (max abs "
                 f"difference {result.max_abs_diff:.1e}).")
    else:
        check = " Not checked against PyTorch after writing (onnxruntime is not installed)."
    small = ckpt.dataset.get("train_images")
    lines = [
        f"# Model card: {md(label)}",
        "",
        *([md(ckpt.notes["description"]), ""] if isinstance(ckpt.notes.get("description"), str) else []),
        f"{code(ckpt.arch)} image classifier for {n} classes, exported to {fmt_name} "
        f"({md(result.path.name)}) by ResNet GUI {__version__} on {now}.{check}",
        "",
        "## Input and output",
        "",
        f"- Input `{result.input_name}`: **uint8** `[N, 3, {size}, {size}]`, RGB, channels first, values 0-255. "
        "N (the batch size) can be anything from 1 up.",
        f"- Output {out}.",
        "- The normalisation is **inside** the model (x / 255, minus mean, divided by std); do not normalise "
        "again.",
        "",
        "## Preprocessing (do this before the model)",
        "",
        "1. Decode the image to 8-bit RGB (grey and palette images converted to RGB, transparency composited "
        "on white).",
        f"2. Resize so that the shorter side is {md(pre.resize)} pixels, {md(pre.interpolation)} with antialiasing "
        "(torchvision's `resize(..., antialias=True)` on the uint8 tensor gives exactly the app's pixels; "
        "Pillow's resize is very close).",
        f"3. Center-crop {size} x {size}.",
        f"4. Arrange as `[3, {size}, {size}]` (channels first), stack into a batch, keep uint8.",
        "",
        f"Inside the model: mean {list(pre.mean)}, std {list(pre.std)} (per RGB channel, on values scaled to "
        "0-1).",
        "",
        "## Classes",
        "",
        *_classes(ckpt),
        "",
        "## Training data and figures",
        "",
        *_training(ckpt),
        *_figures(ckpt),
        "",
        "## Calibration",
        "",
        *_calibration(ckpt, result),
        *_operating_points(ckpt),
        "",
        "## Limits",
        "",
        f"- It knows only these {n} classes. Anything else (another kind of object, a blank image) still gets "
        "one of them, often with high confidence; a low top probability means unsure, a high one is no "
        "guarantee.",
        "- Validation accuracy comes from images of the same collection as the training images; on images "
        "from elsewhere (other cameras, lighting, backgrounds) expect lower accuracy. Measure it on your own "
        "data before relying on it.",
        f"- It sees {size} x {size} pixels after the crop: details smaller than that are lost, and what lies "
        "outside the center crop is not seen.",
    ]
    if isinstance(small, int) and not isinstance(small, bool) and small < 1000:
        lines.append(f"- It was trained on only {small:,} images; its figures have wide error margins.")
    lines.append("")
    return "\n".join(lines)
