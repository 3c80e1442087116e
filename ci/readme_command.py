"""Print the README command marked `<!-- ci:NAME -->` (the fenced block after it).

`.ci/run` runs the README's test command through this, so CI runs exactly what a
user is told to run, and a README that drifts from the project fails CI.
"""

import pathlib
import re
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def readme_command(name, readme=README):
    text = readme.read_text(encoding="utf-8")
    match = re.search(rf"<!-- ci:{re.escape(name)} -->\s*```(?:bash|sh)?\n(.*?)```", text, re.S)
    if match is None:
        raise SystemExit(f"README.md has no block marked <!-- ci:{name} -->")
    return match.group(1).strip()


if __name__ == "__main__":
    print(readme_command(sys.argv[1] if len(sys.argv) > 1 else "test"))
