"""The demo's HTML report, parsed: it fits 1280 px, shows identities whole, names each registry
call, explains the metric comparison in the table itself and counts in good English."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

from stack.lineage import EndpointNode, EventNode, Lineage, RunNode, VersionNode
from stack.report import write_report

SVG = "{http://www.w3.org/2000/svg}"
OBJECT = "gs://mlops-data/incoming/churn-2026-12-01.csv#1796162002576327"
UPLOAD = "google.cloud.aiplatform.v1.ModelService.UploadModel"
MERGE = "google.cloud.aiplatform.v1.ModelService.MergeVersionAliases"


def demo_lineage() -> Lineage:
    """The shape of the demo's loop: data -> training -> v1 -> registry events -> deployment, and
    monitoring -> alert -> retraining -> v2 (promoted on its holdout) -> deployment."""

    def event(eid: str, kind: str, identity: str, job: str | None, **kw: str) -> EventNode:
        return EventNode(eid, f"on_{kind}", kind, identity, "launch", job_id=job, **kw)  # type: ignore[arg-type]

    runs = {
        "training-1796162002576327-a1b2": RunNode(
            "training-1796162002576327-a1b2",
            "training",
            "r",
            "SUCCEEDED",
            outputs={"model_name": "churn", "version": "1"},
        ),
        "deployment-churn-1-c3d4": RunNode(
            "deployment-churn-1-c3d4", "deployment", "r", "SUCCEEDED", outputs={"endpoint": "churn"}
        ),
        "monitoring-e5f6": RunNode(
            "monitoring-e5f6", "monitoring", "r", "SUCCEEDED", outputs={"published": True, "alert_id": "A1"}
        ),
        "retraining-a1-0a0b": RunNode(
            "retraining-a1-0a0b",
            "retraining",
            "r",
            "SUCCEEDED",
            outputs={"model_name": "churn", "version": "2"},
        ),
        "deployment-churn-2-9f8e": RunNode(
            "deployment-churn-2-9f8e", "deployment", "r", "SUCCEEDED", outputs={"endpoint": "churn"}
        ),
    }
    events = [
        event("e1", "storage", "storage:x", "training-1796162002576327-a1b2", subject=OBJECT),
        event("e2", "registry", "registry:churn@1:upload", None, subject="churn@1", method=UPLOAD),
        event(
            "e3",
            "registry",
            "registry:churn@1:alias",
            "deployment-churn-1-c3d4",
            subject="churn@1",
            method=MERGE,
        ),
        event("e4", "run-request", "run-request:monitoring", "monitoring-e5f6"),
        event("e5", "alert", "alert:/A1/", "retraining-a1-0a0b"),
        event("e6", "registry", "registry:churn@2:upload", None, subject="churn@2", method=UPLOAD),
        event(
            "e7",
            "registry",
            "registry:churn@2:alias",
            "deployment-churn-2-9f8e",
            subject="churn@2",
            method=MERGE,
        ),
    ]
    versions = {
        "churn@1": VersionNode("churn", "1", [], {"roc_auc": 0.83}, {}, "", "training-1796162002576327-a1b2", True,
                               ["no current champion", "roc_auc 0.8300 passes the floor 0.6000"]),
        "churn@2": VersionNode("churn", "2", ["champion"], {"roc_auc": 0.81}, {}, "", "retraining-a1-0a0b", True,
                               ["roc_auc 0.8100 beats champion v1 (0.7800) by more than 0.0100"]),
    }  # fmt: skip
    endpoints = {"churn": EndpointNode("churn", "churn", {"2": 100}, ["2"])}
    return Lineage(events, runs, versions, endpoints)


def svg_of(html_text: str) -> ET.Element:
    return ET.fromstring(re.search(r"<svg.*?</svg>", html_text, re.S).group(0))  # type: ignore[union-attr]


def node_texts(svg: ET.Element) -> list[str]:
    """The visible text of each node (its tspans joined), as a reader sees it."""
    return ["".join(g.find(f"{SVG}text").itertext()) for g in svg.iter(f"{SVG}g")]  # type: ignore[union-attr]


class Table(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def report(tmp_path: Path) -> str:
    return write_report(demo_lineage(), tmp_path / "report.html").read_text()


def test_the_lineage_graph_fits_a_1280_px_page(tmp_path: Path) -> None:
    svg = svg_of(report(tmp_path))
    # body margin 2em and the frame's padding leave ~1200 px at 1280 px.
    assert int(svg.get("width", "0")) <= 1200
    boxes = [r for r in svg.iter(f"{SVG}rect")]
    assert len(boxes) == 7 + 5 + 2 + 1
    for r in boxes:
        assert float(r.get("x", 0)) + float(r.get("width", 0)) <= int(svg.get("width", 0))
        assert float(r.get("y", 0)) + float(r.get("height", 0)) <= int(svg.get("height", 0))


def test_identities_are_shown_whole(tmp_path: Path) -> None:
    texts = node_texts(svg_of(report(tmp_path)))
    assert any(OBJECT in t.replace(" ", "") or OBJECT in t for t in texts), texts
    assert any("training-1796162002576327-a1b2" in t for t in texts)


def test_each_registry_node_names_its_call(tmp_path: Path) -> None:
    texts = node_texts(svg_of(report(tmp_path)))
    registry = sorted(t for t in texts if t.startswith("registry"))
    assert registry == [
        "registry: MergeVersionAliaseschurn@1",
        "registry: MergeVersionAliaseschurn@2",
        "registry: UploadModelchurn@1",
        "registry: UploadModelchurn@2",
    ]


def test_the_table_says_which_holdout_each_number_comes_from(tmp_path: Path) -> None:
    text = report(tmp_path)
    table = Table()
    table.feed(text[text.index("<h2>Champion vs challenger</h2>") :])
    header, v1, v2 = table.rows[:3]
    assert header[2] == "roc_auc on its own holdout"
    assert "challenger vs champion, both scored on the challenger's holdout" in header[4]
    # v2 is promoted with a lower roc_auc than v1's: the row itself says why.
    assert v2[:4] == ["churn@2", "champion", "0.8100", "promoted"]
    assert (
        v2[4]
        == "both scored on the holdout of churn@2: roc_auc 0.8100 beats champion v1 (0.7800) by more than 0.0100"
    )
    assert v1[3] == "promoted"
    assert "Metrics are each version's holdout scores" not in text  # no footnote to find


def test_counts_are_in_good_english(tmp_path: Path) -> None:
    text = report(tmp_path)
    assert "7 events, 5 runs, 2 model versions, 1 endpoint." in " ".join(text.split())
