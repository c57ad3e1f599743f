"""Takes the README's screenshots of the hub (the model list and a model page) with headless
chromium, from a database populated as a busy hub's (tests.support.synthetic) with the example models' files
and cards; each PNG quantised to 256 colours to stay small.

Run from the repository root: `.venv/bin/python tests/web/screenshots.py docs/img`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the repository root, for tests.support

from modelhub.indexer.schema import open_database  # noqa: E402
from modelhub.store import ModelStore  # noqa: E402
from tests.support.synthetic import populate  # noqa: E402
from tests.support.browser import ROOT, hub_server, new_browser  # noqa: E402


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        store = ModelStore(Path(work) / "store")
        files = {}
        for rank, (name, folder) in enumerate((("iris-classifier", "iris"), ("diabetes-regressor", "diabetes"))):
            stored = store.put((ROOT / "examples" / folder / f"{folder}.onnx").read_bytes())
            files[rank] = (name, stored.digest_hex, f"file://examples/{folder}/README.md")
        url = f"sqlite:///{Path(work) / 'index.sqlite'}"
        engine = open_database(url)
        populate(engine, models=300, calls=150_000, callers=4_000, relayers=6, files=files, seed=3)
        engine.dispose()
        browser = new_browser(width=1280, height=1000)
        try:
            with hub_server(url, "--store", str(store.root), "--cards", str(ROOT)) as base:
                for page, name, height in (("/?window=30d", "hub-models.png", 1000),
                                           ("/models/{iris}", "hub-model.png", 1750)):
                    browser.set_window_size(1280, height)
                    browser.get(base + "/")
                    iris = browser.find_element("css selector", "#models a.name").get_attribute("href").rsplit("/", 1)[1]
                    browser.get(base + page.format(iris=iris))
                    time.sleep(0.5)  # the charts draw without animation, but let the fonts settle
                    target = out / name
                    browser.save_screenshot(str(target))
                    Image.open(target).convert("RGB").quantize(colors=256).save(target, optimize=True)
                    print(f"{target}: {target.stat().st_size // 1024} KiB")
        finally:
            browser.quit()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
