"""What a change did to the data: reviews added, removed and relabelled per split, class balance
before and after, and the fingerprints, read from download's DVC-tracked output at both revisions.

The base's reviews come through DVC's API, from the local cache or the remote, at the base
revision's dvc.lock; where they cannot be had the section says so and falls back to the data
statistics the base committed (metrics/data.json).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import yaml

from sentiment.classifier.data.reviews import MANIFEST, SPLITS, VALIDATION
from sentiment.proof.records import DATA_METRICS
from sentiment.tools import git_show

RAW = "data/raw"  # download's output (dvc.yaml), where the records and the manifest are

Records = dict[str, dict[str, str]]  # split -> {text: label name}


def _records(manifest: dict, read_split) -> Records:
    labels = manifest["labels"]
    found = {}
    for split in manifest["splits"]:
        found[split] = {}
        for line in read_split(split).splitlines():
            record = json.loads(line)
            found[split][record["text"]] = labels[int(record["label"])]
    return found


def workspace_data(root: Path = Path(".")) -> tuple[dict, Records] | None:
    """The work tree's manifest and records, if download has run."""
    folder = root / RAW
    if not (folder / MANIFEST).is_file():
        return None
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    return manifest, _records(
        manifest, lambda split: (folder / f"{split}.jsonl").read_text(encoding="utf-8")
    )


def revision_data(revision: str) -> tuple[dict | None, Records | None, str]:
    """A revision's manifest and records through DVC's API; what is missing, and why."""
    import dvc.api

    try:
        manifest = json.loads(dvc.api.read(f"{RAW}/{MANIFEST}", repo=".", rev=revision))
    except Exception as error:  # DVC raises many types for a missing cache or remote
        return None, None, f"{revision}'s data is not in the DVC cache or remote ({_why(error)})"
    if "labels" not in manifest:
        return manifest, None, f"{revision}'s manifest names no labels"
    try:
        records = _records(
            manifest,
            lambda split: dvc.api.read(f"{RAW}/{split}.jsonl", repo=".", rev=revision),
        )
    except Exception as error:
        why = _why(error)
        return manifest, None, f"{revision}'s reviews are not in the DVC cache or remote ({why})"
    return manifest, records, ""


def _why(error: Exception) -> str:
    return (str(error).splitlines() or [error.__class__.__name__])[0][:120]


def raw_data_hash(lock_text: bytes | str | None) -> str | None:
    """The hash dvc.lock records for download's output: equal hashes, equal data."""
    if not lock_text:
        return None
    stage = (yaml.safe_load(lock_text) or {}).get("stages", {}).get("download", {})
    return next((out.get("md5") for out in stage.get("outs", []) if out["path"] == RAW), None)


def split_changes(old: dict[str, str], new: dict[str, str]) -> dict[str, int]:
    """Reviews added, removed and relabelled between two versions of a split, told apart by
    their text (a text repeated in a split counts once)."""
    kept = old.keys() & new.keys()
    return {
        "added": len(new.keys() - old.keys()),
        "removed": len(old.keys() - new.keys()),
        "relabelled": sum(1 for text in kept if old[text] != new[text]),
    }


def _balance(records: dict[str, str]) -> str:
    counts = Counter(records.values())
    total = max(len(records), 1)
    return ", ".join(f"{label} {count / total:.1%}" for label, count in sorted(counts.items()))


def data_section(base: str, root: Path = Path(".")) -> str:
    """Markdown: what the change did to the data against `base`; "" when the data is the same."""
    lock = root / "dvc.lock"
    new_hash = raw_data_hash(lock.read_text() if lock.is_file() else None)
    if new_hash is None or new_hash == raw_data_hash(git_show("dvc.lock", base)):
        return ""  # the same data (or no run to compare): nothing to say, nothing to fetch
    new = workspace_data(root)
    if new is None:
        return ""
    new_manifest, new_records = new
    old_manifest, old_records, missing = revision_data(base)
    lines = [f"## Data changed against {base}\n"]
    if old_manifest is not None and old_manifest.get("dataset") != new_manifest.get("dataset"):
        lines.append(
            f"The dataset is another: {old_manifest.get('dataset')} -> "
            f"{new_manifest.get('dataset')}; the metrics above compare two datasets.\n"
        )
    if old_records is None:
        lines.append(
            f"{missing}: the reviews cannot be compared one by one. The data statistics "
            f"{base} committed ({DATA_METRICS}) beside this change's:\n"
        )
        lines.append(_statistics_table(base, root))
        return "\n".join(lines) + "\n"
    splits = [s for s in (*SPLITS, VALIDATION) if s in old_records or s in new_records]
    rows = [
        "| split | reviews before | after | added | removed | relabelled | labels before | "
        "labels after |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def reviews(manifest: dict, split: str) -> int:  # the manifest counts repeated texts too
        return (manifest["splits"].get(split) or {}).get("reviews", 0)

    for split in splits:
        before, after = old_records.get(split, {}), new_records.get(split, {})
        moved = split_changes(before, after)
        rows.append(
            f"| {split} | {reviews(old_manifest, split):,} | {reviews(new_manifest, split):,} | "
            f"{moved['added']:,} | "
            f"{moved['removed']:,} | {moved['relabelled']:,} | {_balance(before)} | "
            f"{_balance(after)} |"
        )
    everything = split_changes(_merged(old_records), _merged(new_records))
    lines += [
        "\n".join(rows) + "\n",
        f"Over all splits: {everything['added']:,} reviews added, {everything['removed']:,} "
        f"removed, {everything['relabelled']:,} relabelled (a review carved into another split "
        "counts as removed from one and added to the other).\n",
        "| split | fingerprint before | after |",
        "|---|---|---|",
    ]
    for split in splits:
        old_print = (old_manifest["splits"].get(split) or {}).get("fingerprint", "-")
        new_print = (new_manifest["splits"].get(split) or {}).get("fingerprint", "-")
        lines.append(f"| {split} | `{old_print[:12]}` | `{new_print[:12]}` |")
    return "\n".join(lines) + "\n"


def _merged(records: Records) -> dict[str, str]:
    return {text: label for split in records.values() for text, label in split.items()}


def _statistics_table(base: str, root: Path) -> str:
    old = json.loads(git_show(DATA_METRICS, base) or b"{}")
    path = root / DATA_METRICS
    new = json.loads(path.read_text()) if path.is_file() else {}
    rows = ["| statistic | " + base + " | this change |", "|---|---|---|"]
    for split in (*SPLITS, VALIDATION):
        for key in ("reviews", "positive_share", "label_shares"):
            before, after = old.get(split, {}).get(key), new.get(split, {}).get(key)
            if before is not None or after is not None:
                rows.append(f"| {split} {key} | {before} | {after} |")
    return "\n".join(rows) + "\n"
