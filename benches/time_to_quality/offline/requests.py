"""Stands in for the `requests` package when nanoGPT's data/*/prepare.py runs here: it imports
requests to download tinyshakespeare when input.txt is absent, but nanogpt_budget.sh always
places the corpus as input.txt first, so nothing is ever fetched and the real package (absent
from the torch venv) is not needed. A call means input.txt was missing: it fails loudly."""


def get(url, *args, **kwargs):
    raise RuntimeError(f"offline: refusing to download {url}; place the corpus as input.txt first")
