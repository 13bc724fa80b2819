"""The page `sentiment serve` answers at `/`: type or paste a text, see the predicted label and
every label's probability as a bar, beside the model card. One HTML file: its style and script
inline, nothing fetched but the server's own predict endpoint (no CDN, no build step). A link
may carry the text to classify: `/?text=...`."""

from __future__ import annotations

import html
import json

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  body { font: 16px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 46rem;
         padding: 0 1rem; color: #1d1d1f; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  .lede { color: #555; margin-top: 0; }
  textarea { width: 100%; box-sizing: border-box; min-height: 8rem; font: inherit;
             padding: .6rem; border: 1px solid #bbb; border-radius: 6px; }
  button { font: inherit; padding: .45rem 1.2rem; margin-top: .5rem; border: 0;
           border-radius: 6px; background: #2255cc; color: white; cursor: pointer; }
  button:disabled { background: #889; }
  #result { margin-top: 1.2rem; min-height: 2rem; }
  #verdict { font-size: 1.2rem; font-weight: 600; }
  .row { display: grid; grid-template-columns: 9rem 1fr 4.5rem; align-items: center;
         gap: .6rem; margin: .35rem 0; }
  .track { background: #eceef2; border-radius: 4px; height: 1.1rem; overflow: hidden; }
  .bar { height: 100%; background: #2255cc; width: 0; }
  .bar.top { background: #1a8a4a; }
  .value { text-align: right; font-variant-numeric: tabular-nums; }
  #error { color: #b00020; }
  table { border-collapse: collapse; margin-top: .5rem; font-size: .92rem; }
  td { padding: .2rem .8rem .2rem 0; vertical-align: top; }
  td:first-child { color: #555; white-space: nowrap; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<p class="lede">Type or paste a text; the model gives each label's probability.</p>
<form id="form">
  <textarea id="text" placeholder="A review, a sentence, a paragraph..."></textarea>
  <button id="go" type="submit">Classify</button>
</form>
<div id="result" aria-live="polite">
  <div id="verdict"></div>
  <div id="bars"></div>
  <div id="error"></div>
</div>
<h2>Model card</h2>
<table id="card">__CARD_ROWS__</table>
<script>
const MODEL = __MODEL__;
const LABELS = __LABELS__;
const form = document.getElementById("form");
const button = document.getElementById("go");
function show(probabilities, label) {
  const bars = document.getElementById("bars");
  bars.textContent = "";
  const top = Math.max(...probabilities);
  LABELS.forEach((name, i) => {
    const row = document.createElement("div");
    row.className = "row";
    row.dataset.label = name;
    const title = document.createElement("span");
    title.textContent = name;
    const track = document.createElement("div");
    track.className = "track";
    const bar = document.createElement("div");
    bar.className = "bar" + (probabilities[i] === top ? " top" : "");
    bar.style.width = (100 * probabilities[i]).toFixed(1) + "%";
    track.appendChild(bar);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = (100 * probabilities[i]).toFixed(1) + "%";
    row.append(title, track, value);
    bars.appendChild(row);
  });
  document.getElementById("verdict").textContent = label;
}
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("error");
  error.textContent = "";
  button.disabled = true;
  try {
    const response = await fetch("/v1/models/" + encodeURIComponent(MODEL) + ":predict", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({instances: [document.getElementById("text").value]}),
    });
    const body = await response.json();
    if (!response.ok) { throw new Error(body.error || response.statusText); }
    const prediction = body.predictions[0];
    show(prediction.probabilities, prediction.label);
    document.body.dataset.state = "answered";
  } catch (failure) {
    error.textContent = failure.message;
    document.body.dataset.state = "failed";
  } finally {
    button.disabled = false;
  }
});
// A link can carry the text (/?text=...): the page fills it in and classifies it at once.
const given = new URLSearchParams(location.search).get("text");
if (given) {
  document.getElementById("text").value = given;
  form.requestSubmit();
}
</script>
</body>
</html>
"""


def card_rows(card: dict) -> list[tuple[str, str]]:
    """The model card's lines a person reads first: what ships, trained on what, how it tests."""
    data = card.get("data", {})
    metrics = card.get("test_metrics", {})
    rows = [
        ("ships", str(card.get("shipped", "network"))),
        ("model", str(card.get("model", ""))),
        ("trained on", str(data.get("dataset", "")) + _sizes(data)),
        ("labels", ", ".join(card.get("labels", []))),
    ]
    if "accuracy" in metrics:
        rows.append(
            (
                "test accuracy",
                f"{metrics['accuracy']:.4f} on {metrics.get('reviews', 0):,} test texts"
                + (f", ROC AUC {metrics['roc_auc']:.4f}" if "roc_auc" in metrics else ""),
            )
        )
    if "blend_weight" in metrics:
        rows.append(("blend weight", f"{metrics['blend_weight']:g} (the network's share)"))
    rows.append(("commit", str(card.get("git_commit") or "unknown")[:12]))
    return rows


def _sizes(data: dict) -> str:
    splits = data.get("splits", {})
    sizes = ", ".join(
        f"{name} {stats['reviews']:,}"
        for name, stats in splits.items()
        if isinstance(stats, dict) and "reviews" in stats
    )
    return f" ({sizes})" if sizes else ""


def page_html(card: dict, name: str) -> str:
    """The page for the model `name` described by `card`."""
    title = f"{html.escape(name)}: {html.escape(', '.join(card.get('labels', [])))}"
    rows = "".join(
        f"<tr><td>{html.escape(key)}</td><td>{html.escape(value)}</td></tr>"
        for key, value in card_rows(card)
    )

    # JSON inside a script: '</' could close it, so it is escaped
    def script_json(value) -> str:
        return json.dumps(value).replace("</", "<\\/")

    return (
        PAGE.replace("__TITLE__", title)
        .replace("__CARD_ROWS__", rows)
        .replace("__MODEL__", script_json(name))
        .replace("__LABELS__", script_json(card.get("labels", [])))
    )
