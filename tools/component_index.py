"""Write translate/components.json: every built-in component's name and description, which ``translate list``
prints without importing torch. Run it after adding or renaming a component (a test says when it is due).

    python tools/component_index.py
"""

from __future__ import annotations

import json

import translate.components  # noqa: F401  (registers every built-in component)
from translate.registry import INDEX, describe_all


def main() -> None:
    INDEX.write_text(json.dumps(describe_all(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {INDEX}")


if __name__ == "__main__":
    main()
