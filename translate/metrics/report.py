"""The scores of one evaluation: rows of (metric, features, subject, value), a table and ``eval.json``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass
class Score:
    metric: str
    """``FID`` (Inception) or ``FD`` (classifier), ``KID``, ``IS``, ``SSIM``, ``PSNR``, ``L1``, ``LPIPS``,
    ``diversity``, ``target share``, ``flip <attribute>`` / ``to <label>``, ``class accuracy``,
    ``coverage entropy``, ``classes covered``, ``NN train distance``."""
    subject: str
    """What was scored: ``translation``, ``input as-is``, ``samples``, ``real held-out``."""
    value: float
    n: int
    """How many images (or image pairs) the value comes from."""
    features: str = "-"
    """The extractor: ``inception``, ``classifier``, ``lpips-alex``, ``pixels``; ``-`` for pixel formulas."""
    std: float | None = None
    """KID: over subsets; IS: over splits."""
    section: str = ""
    """The export (``a2b``, ``b2a``, ``sample``, ...) or target the row belongs to."""


@dataclass
class Report:
    method: str
    step: int
    run: str
    data: str
    scores: list[Score] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extractors: dict[str, dict] = field(default_factory=dict)
    """``features`` key -> name, weights file and its SHA-256."""
    sections: dict[str, str] = field(default_factory=dict)
    """Section -> a line describing it (what was translated, what the reference is)."""

    def add(self, scores: list[Score]) -> None:
        self.scores.extend(scores)

    def note(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)

    def to_dict(self) -> dict:
        rows = []
        for score in self.scores:
            row = {"method": self.method, "step": self.step, **asdict(score)}
            extractor = self.extractors.get(score.features, {})
            row["weights_sha256"] = extractor.get("sha256")
            rows.append(row)
        return {
            "method": self.method,
            "step": self.step,
            "run": self.run,
            "data": self.data,
            "sections": self.sections,
            "extractors": self.extractors,
            "scores": rows,
            "notes": self.notes,
        }

    def table(self) -> str:
        lines = [f"{self.method} at step {self.step}: {self.run}"]
        for section in dict.fromkeys(s.section for s in self.scores):
            scores = [s for s in self.scores if s.section == section]
            subjects = list(dict.fromkeys(s.subject for s in scores))
            rows = list(dict.fromkeys((s.metric, s.features) for s in scores))
            cells = {(s.metric, s.features, s.subject): s for s in scores}
            width = max(16, *(len(m) + 2 for m, _ in rows))
            lines.append("")
            if section:
                lines.append(f"[{section}] {self.sections.get(section, '')}".rstrip())
            header = f"{'metric':<{width}}{'features':<14}" + "".join(f"{s:>22}" for s in subjects)
            lines.append(header + f"{'n':>7}")
            for metric, features in rows:
                line = f"{metric:<{width}}{features:<14}"
                counts = []
                for subject in subjects:
                    score = cells.get((metric, features, subject))
                    line += f"{format_value(score):>22}"
                    if score is not None:
                        counts.append(score.n)
                lines.append(line + f"{'/'.join(map(str, dict.fromkeys(counts))):>7}")
        for name, extractor in self.extractors.items():
            digest = (extractor.get("sha256") or "")[:12]
            where = f" {extractor['weights']} (sha256 {digest}...)" if extractor.get("weights") else ""
            lines.append(f"features {name}: {extractor['name']}{where}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def format_value(score: Score | None) -> str:
    if score is None:
        return "-"
    if math.isnan(score.value):
        return "nan"
    text = f"{score.value:.4g}"
    if score.std is not None:
        text += f" ± {score.std:.2g}"
    return text
